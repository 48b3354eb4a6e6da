//! The OpenAI-compatible gateway: state shared by the `/v1` handlers and the decision path.
//!
//! Until the router lands, `model: "auto"` resolves through the same decision path to the
//! route's baseline (the first model of baseline-then-candidates that can serve the request),
//! and every decision is recorded as a `RouteDecided` event with the reason; a named model
//! bypasses routing and is still recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use switchyard_config::RouteConfig;
use switchyard_events::{
    Candidate, DecisionId, Envelope, EventId, Evidence, ModelName, OrgId, PartitionKey, Phase,
    RequestId, RouteDecided, RouteMode, RouteName, SessionId, Timestamp, TraceId, UnitScore, Usd,
};
use switchyard_providers::{
    AnyProvider, Catalog, ChatRequest, ModelInfo, Needs, estimate_input_tokens,
};
use switchyard_router::{Lang, Models, Pin, RoutePolicy, RoutingTable, TraceIds};
use switchyard_runtime::Clock;

use crate::ApiError;
use crate::auth::Caller;
use crate::control::ControlPlane;
use crate::publish::Publisher;

/// The header that names a route.
pub const ROUTE_HEADER: &str = "x-switchyard-route";
/// The header that names a session (groups requests for session NPS).
pub const SESSION_HEADER: &str = "x-switchyard-session";
/// The response header carrying the decision id.
pub const DECISION_HEADER: &str = "x-switchyard-decision-id";

/// Everything the `/v1` handlers need.
pub struct Gateway {
    /// Providers by name (`demo`, `openai`, ...).
    pub providers: HashMap<String, AnyProvider>,
    /// Prices and capabilities.
    pub catalog: Catalog,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// The event publisher.
    pub publisher: Publisher,
    /// API keys.
    pub plane: ControlPlane,
    /// Whether requests must carry a key.
    pub auth_required: bool,
    /// Event time.
    pub clock: Arc<dyn Clock>,
    /// Retries and fallback.
    pub retry: RetryPolicy,
    /// The router: priors, routing table, signer.
    pub router: crate::routing::RouterState,
    /// The decisions read model, where this node can read it.
    pub decisions: Option<switchyard_decisions::DecisionQueries<switchyard_store::AnyStore>>,
    /// Shadow mirroring: the per-(org, route) UTC-day spend against `mirror_daily_cap_usd`.
    pub mirrors: crate::mirror::Mirrors,
    /// Per-key requests and tokens per minute.
    pub limits: crate::limits::RateLimiter,
    /// Partitions of the request-path topics (see [`Gateway::mint_request_id`]).
    pub request_partitions: u32,
}

/// Returns a new completion id (`chatcmpl-<uuid>`). In a session, the id is drawn so that it
/// falls in the session's log partition (of `partitions`): a request's events are keyed by its
/// session, and feedback that names only the request id (keyed by that id) must reach the same
/// partition, so that the processor instance owning the session's decisions also sees their
/// feedback when processors scale out by partition. Costs about `partitions` murmur2 hashes.
pub fn request_id_in_partition(session: Option<&SessionId>, partitions: u32) -> RequestId {
    let mint = || RequestId::new(format!("chatcmpl-{}", EventId::now_v7().as_uuid().simple()));
    let Some(session) = session.filter(|_| partitions > 1) else {
        return mint();
    };
    let target = switchyard_log::partition_for_key(session.as_str().as_bytes(), partitions);
    // Each draw lands in the target with probability 1/partitions: the bound is never reached
    // in practice (p < e^-64), and an id past it is still valid, only keyed elsewhere.
    let mut id = mint();
    for _ in 0..64 * partitions {
        if switchyard_log::partition_for_key(id.as_str().as_bytes(), partitions) == target {
            break;
        }
        id = mint();
    }
    id
}

/// The models the router may pick: catalog rows whose provider is configured.
struct Servable<'a>(&'a Gateway);

impl Models for Servable<'_> {
    fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.0
            .catalog
            .get(id)
            .filter(|m| self.0.providers.contains_key(m.provider()))
    }
}

/// How provider failures are retried and when the fallback takes over.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of one model on retryable failures.
    pub retries: u32,
    /// First retry delay; doubles per retry.
    pub backoff: std::time::Duration,
    /// Longest Retry-After worth sleeping on.
    pub max_retry_after: std::time::Duration,
    /// Time to first token of a stream.
    pub first_token_timeout: std::time::Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.routes.keys())
            .finish_non_exhaustive()
    }
}

/// The outcome of the decision path for one request.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Decision id.
    pub id: DecisionId,
    /// The route.
    pub route: RouteName,
    /// The model that will serve.
    pub model: ModelInfo,
    /// The route's baseline.
    pub baseline: String,
    /// The route's mode.
    pub mode: RouteMode,
    /// Whether the model was chosen by routing (`auto`); a model the client named is never
    /// replaced by a fallback.
    pub routed: bool,
    /// The request's estimated input tokens (computed once, here).
    pub input_tokens: u64,
    /// What the request needs from a model.
    pub needs: Needs,
    /// The route's policy in force.
    pub policy: Arc<RoutePolicy>,
    /// The router's outcome (`None` for a model the client named).
    pub outcome: Option<switchyard_router::Outcome>,
    /// The routing table the decision read.
    pub table: Arc<RoutingTable>,
    /// The language of the explanation.
    pub lang: Lang,
}

impl Gateway {
    /// Returns the provider of a catalog model, if configured.
    pub fn provider(&self, model: &ModelInfo) -> Option<&AnyProvider> {
        self.providers.get(model.provider())
    }

    /// Returns every model a client may name: catalog models whose provider is configured.
    pub fn servable_models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.catalog
            .models()
            .filter(|m| self.providers.contains_key(m.provider()))
    }

    /// Returns the current time as an event timestamp.
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.clock.now_micros())
    }

    /// Runs the decision path.
    pub fn decide(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        req: &ChatRequest,
    ) -> Result<Decision, ApiError> {
        let route_name = match headers.get(ROUTE_HEADER).and_then(|v| v.to_str().ok()) {
            Some(name) => name,
            None => match &caller.default_route {
                Some(route) => route.as_str(),
                None => {
                    crate::routing::route_by_rules(&self.router.rules, req).unwrap_or("default")
                }
            },
        };
        let resolved = self.plane.route(&caller.org, route_name, self.now()).ok_or_else(|| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "Unknown route `{route_name}` (from the {ROUTE_HEADER} header or the API key). Known routes: {}.",
                self.plane.route_names(&caller.org).join(", ")
            ),
            kind: "invalid_request_error",
            param: Some(ROUTE_HEADER.into()),
            code: Some("unknown_route"),
        })?;
        let policy = Arc::clone(&resolved.view.policy);
        let pin = resolved.pin.map(|p| p.pin);
        let tokens = estimate_input_tokens(req);
        let needs = Needs::of(req, tokens);
        let id = DecisionId::new(format!("dec-{}", EventId::now_v7()));
        let lang = Lang::negotiate(
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
            self.router.default_lang,
        );
        let table = self.router.table.load_full();

        if req.model != "auto" {
            let model = self.catalog.get(&req.model).filter(|m| self.providers.contains_key(m.provider())).ok_or_else(|| ApiError {
                status: StatusCode::NOT_FOUND,
                message: format!("The model `{}` does not exist or you do not have access to it. GET /v1/models lists the models.", req.model),
                kind: "invalid_request_error",
                param: Some("model".into()),
                code: Some("model_not_found"),
            })?;
            if let Some(why) = model.cannot_meet(&needs) {
                return Err(ApiError {
                    status: StatusCode::BAD_REQUEST,
                    message: format!(
                        "The model `{}` cannot serve this request: {why}.",
                        req.model
                    ),
                    kind: "invalid_request_error",
                    param: Some("model".into()),
                    code: Some("unsupported_request"),
                });
            }
            return Ok(Decision {
                id,
                route: RouteName::new(route_name),
                model: model.clone(),
                baseline: policy.baseline.clone(),
                mode: policy.mode,
                routed: false,
                input_tokens: tokens,
                needs,
                policy,
                outcome: None,
                table,
                lang,
            });
        }

        let session = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
        let decision = self.route_with(
            &caller.org,
            &policy,
            pin.as_ref(),
            &table,
            needs,
            id.as_str(),
            session,
        )?;
        let model = self
            .catalog
            .get(&decision.served)
            .cloned()
            .ok_or_else(|| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!(
                    "The router chose `{}`, which is not in the model catalog.",
                    decision.served
                ),
                kind: "server_error",
                param: None,
                code: None,
            })?;
        Ok(Decision {
            id,
            route: RouteName::new(route_name),
            model,
            baseline: policy.baseline.clone(),
            mode: policy.mode,
            routed: true,
            input_tokens: tokens,
            needs,
            policy,
            outcome: Some(decision),
            table,
            lang,
        })
    }

    /// Runs the router for a route: the pure decision over the current table and pin.
    ///
    /// The seed is a hash of the decision id (unique per request); the canary bucket is a hash
    /// of the org, the route and the session (the decision id without one), so a session stays
    /// on its side of a canary split.
    #[expect(
        clippy::too_many_arguments,
        reason = "every input of one decision, named"
    )]
    pub fn route_with(
        &self,
        org: &OrgId,
        policy: &RoutePolicy,
        pin: Option<&Pin>,
        table: &RoutingTable,
        needs: Needs,
        decision_id: &str,
        session: Option<&str>,
    ) -> Result<switchyard_router::Outcome, ApiError> {
        let priors = self.router.priors_for(org.as_str());
        let ctx = switchyard_router::Context {
            policy,
            stats: table.route(org.as_str(), &policy.name),
            // The version of the org's snapshot the stats come from: an audit looks up exactly
            // this snapshot to recompute the decision.
            table_version: table.org_version(org.as_str()),
            priors: &priors,
            models: &Servable(self),
            pin,
            // Only a route that mirrors at all looks its spend up.
            mirror_budget_left: policy.mirror_fraction > 0.0
                && self.mirror_budget_left(org, &policy.name),
        };
        let request = switchyard_router::Request {
            org: org.as_str(),
            needs,
            seed: switchyard_router::Request::seed_of(decision_id),
            canary_bucket: switchyard_router::Request::bucket_of(
                org.as_str(),
                &policy.name,
                session.unwrap_or(decision_id),
            ),
        };
        switchyard_router::decide(&ctx, &request).map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("{e}."),
            kind: "invalid_request_error",
            param: Some("messages".into()),
            code: Some("no_capable_model"),
        })
    }

    /// Returns whether a route's shadow mirrors may spend more today: no
    /// `mirror_daily_cap_usd`, or today's spend (UTC day, by the gateway's clock) below it; see
    /// [`crate::mirror`]. The cap is the route's effective one (the org's route configuration,
    /// else the configuration file's).
    pub fn mirror_budget_left(&self, org: &OrgId, route: &str) -> bool {
        let now = self.now();
        let cap = self
            .plane
            .route(org, route, now)
            .and_then(|resolved| resolved.view.mirror_daily_cap_usd);
        self.mirrors
            .spend
            .budget_left(org, route, cap, now.as_micros())
    }

    /// Returns a new completion id; see [`request_id_in_partition`].
    pub fn mint_request_id(&self, session: Option<&SessionId>) -> RequestId {
        request_id_in_partition(session, self.request_partitions)
    }

    /// Counts one request of the caller's key against its limits, reserving `tokens`;
    /// returns the admission time (µs) its usage is later settled against.
    pub fn admit(&self, caller: &Caller, tokens: u64) -> Result<i64, Box<crate::limits::Limited>> {
        let now = self.clock.now_micros();
        self.limits
            .admit(&caller.key_id, &caller.org, caller.limits, tokens, now)
            .map(|()| now)
    }

    /// Builds the `RouteDecided` trace of a decision, unsigned: the publisher signs the traces
    /// of each batch it appends with one signature, off the request path (a dry run signs its
    /// trace itself).
    pub fn decided_event(
        &self,
        caller: &Caller,
        decision: &Decision,
        request_id: &RequestId,
        session: Option<&SessionId>,
        trace: &TraceId,
    ) -> RouteDecided {
        let ids = TraceIds {
            envelope: Envelope {
                event_id: EventId::now_v7(),
                org: caller.org.clone(),
                event_time: Timestamp::from_micros(self.clock.now_micros()),
                trace_id: trace.clone(),
                partition_key: PartitionKey::session_or_request(session, request_id),
            },
            decision_id: decision.id.clone(),
            request_id: request_id.clone(),
            session_id: session.cloned(),
        };
        match &decision.outcome {
            Some(outcome) => switchyard_router::build_trace(
                ids,
                &decision.policy,
                decision
                    .table
                    .route(caller.org.as_str(), &decision.policy.name),
                &decision.needs,
                outcome,
                decision.lang,
            ),
            None => self.named_trace(ids, decision),
        }
    }

    /// The trace of a request that named its model: routing bypassed, still recorded.
    fn named_trace(&self, ids: TraceIds, decision: &Decision) -> RouteDecided {
        let model = ModelName::new(decision.model.id.as_str());
        RouteDecided {
            envelope: ids.envelope,
            decision_id: ids.decision_id,
            request_id: ids.request_id,
            session_id: ids.session_id,
            route: decision.route.clone(),
            mode: decision.mode,
            chosen_model: model.clone(),
            baseline_model: ModelName::new(decision.baseline.as_str()),
            served_model: model.clone(),
            reason: "named_model".into(),
            phase: Phase::ZERO,
            confidence: UnitScore::MAX,
            routing_table_version: decision.table.version,
            seed: 0,
            candidates: vec![Candidate {
                model: model.clone(),
                score: None,
                success: None,
                feedback: None,
                cost: None,
                filtered_reason: None,
                estimated_cost_usd: decision
                    .policy
                    .learning
                    .estimated_cost(&decision.model, &decision.needs)
                    .and_then(|c| Usd::new(c).ok()),
            }],
            signals: Vec::new(),
            constraints: Vec::new(),
            evidence: Evidence {
                samples: 0,
                score_gap: None,
                variance: None,
                regressions: BTreeMap::new(),
            },
            pin: None,
            reversible: false,
            explanation: format!(
                "The client named {}: routing was bypassed on route {}.",
                decision.model.id, decision.route
            ),
            explanation_language: "en".into(),
            shadow_model: None,
            canary_percent: None,
            signature: String::new(),
            signing_key_id: String::new(),
            features: switchyard_router::features_of(&decision.needs),
            score_weights: switchyard_router::trace::event_weights(decision.policy.weights),
            constraints_hash: decision.policy.constraints_hash.clone(),
            route_version: decision.policy.version,
            unpriced_models: if decision.model.price_known() {
                Vec::new()
            } else {
                vec![model]
            },
            mirrored: false,
            canary_bucket: None,
            signature_proof: None,
            // Routing was bypassed: no priors were read.
            pool_version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::partition_key;
    use switchyard_events::Target;
    use switchyard_log::partition_for_key;

    #[test]
    fn feedback_by_request_id_lands_in_the_partition_of_the_requests_session() {
        for partitions in [2, 3, 8, 12, 64] {
            for n in 0..200 {
                let session = SessionId::new(format!("session-{n}"));
                let id = request_id_in_partition(Some(&session), partitions);
                assert!(id.as_str().starts_with("chatcmpl-"), "{id}");
                // The request's own events are keyed by the session; feedback naming only the
                // request id (no session header) is keyed by the id.
                let feedback = partition_key(
                    &Target::Request {
                        request_id: id.clone(),
                    },
                    None,
                );
                assert_eq!(
                    partition_for_key(feedback.as_str().as_bytes(), partitions),
                    partition_for_key(session.as_str().as_bytes(), partitions),
                    "{session} / {id} with {partitions} partitions"
                );
            }
        }
    }

    #[test]
    fn ids_without_a_session_are_plain_and_distinct() {
        let a = request_id_in_partition(None, 12);
        let b = request_id_in_partition(None, 12);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), "chatcmpl-".len() + 32);
    }
}
