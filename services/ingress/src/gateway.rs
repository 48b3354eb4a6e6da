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
    Candidate, DecisionId, Envelope, EventId, Evidence, ModelName, PartitionKey, Phase, RequestId,
    RouteDecided, RouteMode, RouteName, SessionId, Timestamp, TraceId, UnitScore, Usd,
};
use switchyard_providers::{AnyProvider, Catalog, ChatRequest, ModelInfo, estimate_input_tokens};
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
    /// Why this model.
    pub reason: String,
    /// Candidates considered, with why each was or was not chosen.
    pub candidates: Vec<Candidate>,
    /// The route's mode.
    pub mode: RouteMode,
    /// Whether the model was chosen by routing (`auto`); a model the client named is never
    /// replaced by a fallback.
    pub routed: bool,
    /// The request's estimated input tokens (computed once, here).
    pub input_tokens: u64,
}

fn mode_of(mode: switchyard_config::RouteMode) -> RouteMode {
    match mode {
        switchyard_config::RouteMode::Off => RouteMode::Off,
        switchyard_config::RouteMode::Shadow => RouteMode::Shadow,
        switchyard_config::RouteMode::Canary => RouteMode::Canary,
        switchyard_config::RouteMode::Live => RouteMode::Live,
    }
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

    /// Runs the decision path.
    pub fn decide(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        req: &ChatRequest,
    ) -> Result<Decision, ApiError> {
        let route_name = match headers.get(ROUTE_HEADER).and_then(|v| v.to_str().ok()) {
            Some(name) => name.to_owned(),
            None => caller
                .default_route
                .as_ref()
                .map_or_else(|| "default".to_owned(), |r| r.as_str().to_owned()),
        };
        let route = self.routes.get(&route_name).ok_or_else(|| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "Unknown route `{route_name}` (from the {ROUTE_HEADER} header or the API key). Known routes: {}.",
                self.routes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            kind: "invalid_request_error",
            param: Some(ROUTE_HEADER.into()),
            code: Some("unknown_route"),
        })?;
        let tokens = estimate_input_tokens(req);
        let id = DecisionId::new(format!("dec-{}", EventId::now_v7()));
        let mode = mode_of(route.mode);

        if req.model != "auto" {
            let model = self.catalog.get(&req.model).filter(|m| self.providers.contains_key(m.provider())).ok_or_else(|| ApiError {
                status: StatusCode::NOT_FOUND,
                message: format!("The model `{}` does not exist or you do not have access to it. GET /v1/models lists the models.", req.model),
                kind: "invalid_request_error",
                param: Some("model".into()),
                code: Some("model_not_found"),
            })?;
            if let Some(why) = model.cannot_serve(req, tokens) {
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
                baseline: route.baseline.clone(),
                reason: "named model: routing bypassed".into(),
                candidates: Vec::new(),
                mode,
                routed: false,
                input_tokens: tokens,
            });
        }

        let mut candidates = Vec::new();
        let mut chosen: Option<(&ModelInfo, String)> = None;
        for (i, id) in std::iter::once(&route.baseline)
            .chain(&route.candidates)
            .enumerate()
        {
            let info = self.catalog.get(id);
            let filtered = match info {
                None => Some("not in the model catalog".to_owned()),
                Some(m) if !self.providers.contains_key(m.provider()) => {
                    Some(format!("provider `{}` is not configured", m.provider()))
                }
                Some(m) => m.cannot_serve(req, tokens),
            };
            let estimated = info.and_then(|m| {
                let usage = switchyard_providers::types::Usage::new(
                    tokens,
                    req.max_completion_tokens.or(req.max_tokens).unwrap_or(256),
                    0,
                    0,
                );
                m.cost_usd(&usage).and_then(|c| Usd::new(c).ok())
            });
            let reason = match (&filtered, i, &chosen) {
                (Some(why), _, _) => Some(why.clone()),
                (None, _, Some(_)) => {
                    Some("not chosen: routing is not enabled yet, the baseline serves".into())
                }
                (None, 0, None) => None,
                (None, _, None) => None,
            };
            if let (None, Some(m), None) = (&filtered, info, &chosen) {
                let why = if i == 0 {
                    "baseline: the router is not enabled yet".to_owned()
                } else {
                    format!(
                        "the baseline cannot serve this request ({}); first capable candidate",
                        candidates
                            .first()
                            .and_then(|c: &Candidate| c.filtered_reason.clone())
                            .unwrap_or_default()
                    )
                };
                chosen = Some((m, why));
            }
            candidates.push(Candidate {
                model: ModelName::new(id.as_str()),
                score: None,
                success: None,
                feedback: None,
                cost: None,
                filtered_reason: reason,
                estimated_cost_usd: estimated,
            });
        }
        let (model, reason) = chosen.ok_or_else(|| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "No model of route `{route_name}` can serve this request: {}.",
                candidates
                    .iter()
                    .filter_map(|c| c
                        .filtered_reason
                        .as_ref()
                        .map(|r| format!("{}: {r}", c.model)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            kind: "invalid_request_error",
            param: Some("messages".into()),
            code: Some("no_capable_model"),
        })?;
        Ok(Decision {
            id,
            route: RouteName::new(route_name),
            model: model.clone(),
            baseline: route.baseline.clone(),
            reason,
            candidates,
            mode,
            routed: true,
            input_tokens: tokens,
        })
    }

    /// Builds the `RouteDecided` event of a decision.
    pub fn decided_event(
        &self,
        caller: &Caller,
        decision: &Decision,
        request_id: &RequestId,
        session: Option<&SessionId>,
        trace: &TraceId,
    ) -> RouteDecided {
        let explanation = format!(
            "Served by {} on route {}: {}.",
            decision.model.id, decision.route, decision.reason
        );
        RouteDecided {
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
            route: decision.route.clone(),
            mode: decision.mode,
            chosen_model: ModelName::new(decision.model.id.as_str()),
            baseline_model: ModelName::new(decision.baseline.as_str()),
            served_model: ModelName::new(decision.model.id.as_str()),
            reason: decision.reason.clone(),
            phase: Phase::ZERO,
            confidence: UnitScore::MIN,
            routing_table_version: 0,
            seed: 0,
            candidates: decision.candidates.clone(),
            signals: Vec::new(),
            constraints: Vec::new(),
            evidence: Evidence {
                samples: 0,
                score_gap: None,
                variance: None,
                regressions: BTreeMap::new(),
            },
            pin: None,
            reversible: true,
            explanation,
            explanation_language: "en".into(),
            shadow_model: None,
            canary_percent: None,
            // Signing arrives with the router; an unsigned trace says so.
            signature: String::new(),
            signing_key_id: "unsigned".into(),
            features: switchyard_events::RequestFeatures::default(),
            score_weights: switchyard_events::ScoreWeights::default(),
            constraints_hash: String::new(),
            route_version: 0,
            unpriced_models: Vec::new(),
            mirrored: false,
            canary_bucket: None,
        }
    }
}
