//! switchyard-sim: the adapter between the routing simulator (`../shared/sim`) and the real
//! router and feedback loop.
//!
//! Every simulator message becomes what production would see: a request becomes a decision of
//! [`switchyard_router::decide`] and its `RouteDecided` trace; usage becomes `ResponseCompleted`;
//! judge scores become `JudgeScored`; NPS ratings and admin ratings become `FeedbackSubmitted`.
//! Those events are folded by the real processors (session-NPS propagation and the projector)
//! through [`switchyard_processor::Inline`], on the message's virtual time `t` (never the wall
//! clock). The projector's `RoutingTableUpdated` snapshots become the routing table the next
//! decision reads, and its automatic rollbacks (`RoutePinned`) pin routes, exactly as ingress
//! folds them.
//!
//! The simulator's route × category pairs become Switchyard routes named `<route>.<category>`
//! (a route per category, so the router learns per category), each with the world's default
//! model as baseline and every other model as a candidate, in `live` mode.

pub mod protocol;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

use anyhow::Context as _;
use switchyard_events::{
    DecisionId, Envelope, Event, EventId, FeedbackId, FeedbackSource, FeedbackSubmitted,
    JudgeOutcome, JudgeScored, JudgementId, ModelName, OrgId, PartitionKey, ProviderName, RawScale,
    RequestId, ResponseCompleted, ResponseStatus, RouteName, SessionId, Target, Timestamp, TraceId,
    UnitScore, Usd,
};
use switchyard_processor::{Inline, Processor};
use switchyard_providers::{ModelInfo, Needs};
use switchyard_router::{
    Context, Lang, Pin, Prior, Priors, Request, RoutePolicy, RoutingTable, TraceIds,
};
use switchyard_store::EmbeddedStore;

use crate::protocol::{Message, SimModel, SimRoute};

/// The org every simulated request belongs to.
pub const ORG: &str = "sim";

/// How the adapter runs the router.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The routes' `min_confidence`.
    pub min_confidence: f64,
    /// The routes' `rollback_threshold`.
    pub rollback_threshold: i64,
    /// `max_regression` when the world sets none.
    pub default_max_regression: f64,
    /// The routes' `explore_fraction`.
    pub explore_fraction: f64,
    /// The routes' `explore_until_samples`.
    pub explore_until_samples: u64,
    /// Print one decision's candidate table on stderr every this many requests (0 = never).
    pub debug_every: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            min_confidence: 0.8,
            rollback_threshold: 3,
            default_max_regression: 0.05,
            explore_fraction: 0.1,
            explore_until_samples: 30,
            debug_every: 0,
        }
    }
}

/// What happened during a run (printed on stderr at the end).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Requests decided.
    pub requests: u64,
    /// Requests served by a model other than the route's default.
    pub routed: u64,
    /// Served requests per model.
    pub served: BTreeMap<String, u64>,
    /// Routing-table snapshots applied.
    pub snapshots: u64,
    /// Automatic rollbacks.
    pub rollbacks: u64,
    /// Inputs the processors found poison.
    pub poisoned: u64,
}

struct Decided {
    decision_id: DecisionId,
    route: String,
    session: SessionId,
    shadow: Option<String>,
}

/// The processors the adapter drives; built by the binary from the stream crates.
#[derive(Debug)]
pub struct Loop<A, B> {
    /// Session-NPS propagation.
    pub session_nps: A,
    /// Rolling windows, regressions, rollbacks and routing-table snapshots.
    pub projector: B,
}

/// The adapter's state.
pub struct Sim<A, B> {
    options: SimOptions,
    processors: Loop<A, B>,
    inline: Inline<EmbeddedStore>,
    models: Vec<ModelInfo>,
    priors: Priors,
    policies: HashMap<String, RoutePolicy>,
    sim_routes: HashMap<String, SimRoute>,
    max_regression: f64,
    table: RoutingTable,
    pins: HashMap<String, (Pin, Option<Timestamp>)>,
    decided: HashMap<String, Decided>,
    announce: Vec<String>,
    route_versions: HashMap<String, i64>,
    sequence: u64,
    summary: Summary,
}

/// The catalog id of a simulated model: `<provider>/<name>`, as Switchyard names models
/// (`sim/<name>` when the simulator names no provider). Judge calibration pools by provider.
fn model_id_of(provider: &str, name: &str) -> String {
    let provider = provider.trim();
    if provider.is_empty() || provider.contains('/') {
        format!("sim/{name}")
    } else {
        format!("{provider}/{name}")
    }
}

/// The simulator's name of a catalog id (everything after the provider).
fn model_name(id: &str) -> &str {
    id.split_once('/').map_or(id, |(_, name)| name)
}

fn model_info(m: &SimModel) -> ModelInfo {
    ModelInfo {
        id: model_id_of(&m.provider, &m.name),
        input_per_mtok: Some(m.price_in_per_mtok),
        cached_input_per_mtok: None,
        output_per_mtok: Some(m.price_out_per_mtok),
        source: format!("routing simulator ({})", m.provider),
        as_of: "simulated".into(),
        context_window: 1_000_000,
        max_output: 1_000_000,
        tools: true,
        json_schema: true,
        vision: true,
        embeddings: false,
    }
}

fn micros(t: f64) -> Timestamp {
    Timestamp::from_micros((t.max(0.0) * 1e6) as i64)
}

impl<A: Processor, B: Processor> Sim<A, B> {
    /// Returns an adapter over a fresh temporary store.
    pub fn new(options: SimOptions, processors: Loop<A, B>) -> anyhow::Result<Self> {
        Ok(Sim {
            options,
            processors,
            inline: Inline::new(EmbeddedStore::temporary().context("a temporary state store")?),
            models: Vec::new(),
            priors: Priors::default(),
            policies: HashMap::new(),
            sim_routes: HashMap::new(),
            max_regression: 0.05,
            table: RoutingTable::new(0),
            pins: HashMap::new(),
            decided: HashMap::new(),
            announce: Vec::new(),
            route_versions: HashMap::new(),
            sequence: 0,
            summary: Summary::default(),
        })
    }

    /// Returns the catalog id of a model the simulator names.
    fn model_id(&self, name: &str) -> String {
        self.models
            .iter()
            .find(|m| model_name(&m.id) == name)
            .map_or_else(|| model_id_of("", name), |m| m.id.clone())
    }

    /// Returns what happened so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Returns the route policies (for the projector's configuration).
    pub fn policies(&self) -> impl Iterator<Item = &RoutePolicy> {
        self.policies.values()
    }

    /// A UUIDv7 at virtual time `t`, unique within the run and the same on every run.
    fn event_id(&mut self, t: f64) -> EventId {
        self.sequence += 1;
        let millis = (t.max(0.0) * 1e3) as u64;
        let mut rand = [0u8; 10];
        rand[2..].copy_from_slice(&self.sequence.to_be_bytes());
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid();
        EventId::from_uuid(uuid).unwrap_or_else(|_| EventId::now_v7())
    }

    fn envelope(&mut self, t: f64, key: PartitionKey, trace: &str) -> Envelope {
        Envelope {
            event_id: self.event_id(t),
            org: OrgId::new(ORG),
            event_time: micros(t),
            trace_id: TraceId::new(trace),
            partition_key: key,
        }
    }

    fn route_name(route: &str, category: Option<&str>) -> String {
        match category {
            Some(c) => format!("{route}.{c}"),
            None => route.to_owned(),
        }
    }

    fn policy_for(&mut self, route: &str, category: Option<&str>) -> Option<&RoutePolicy> {
        let name = Self::route_name(route, category);
        if !self.policies.contains_key(&name) {
            let sim = self.sim_routes.get(route)?;
            let baseline = self.model_id(&sim.default);
            let candidates = self
                .models
                .iter()
                .map(|m| m.id.clone())
                .filter(|id| id != &baseline)
                .collect();
            let mut policy = RoutePolicy::new(name.clone(), baseline, candidates);
            policy.category = category.unwrap_or("general").to_owned();
            policy.constraints.max_regression = Some(self.max_regression);
            policy.constraints.min_confidence = Some(self.options.min_confidence);
            policy.constraints.rollback_threshold = Some(self.options.rollback_threshold);
            policy.explore_fraction = self.options.explore_fraction;
            policy.explore_until_samples = self.options.explore_until_samples;
            self.policies.insert(name.clone(), policy);
            self.announce.push(name.clone());
        }
        self.policies.get(&name)
    }

    /// Publishes a route's configuration and constraints, as the admin API would: the projector
    /// learns routes (baseline, candidates, constraints) from these events.
    async fn announce_route(&mut self, t: f64, name: &str, sequence: i64) -> anyhow::Result<()> {
        let Some(policy) = self.policies.get(name).cloned() else {
            return Ok(());
        };
        let org = OrgId::new(ORG);
        let route = RouteName::new(name);
        let key = PartitionKey::route(&org, &route);
        let envelope = self.envelope(t, key.clone(), name);
        let configured = switchyard_events::RouteConfigured {
            envelope,
            route: route.clone(),
            baseline_model: ModelName::new(policy.baseline.as_str()),
            candidates: policy
                .candidates
                .iter()
                .map(|c| ModelName::new(c.as_str()))
                .collect(),
            mode: policy.mode,
            canary_percent: None,
            mirror_fraction: None,
            mirror_spend_cap_usd: None,
            category: Some(policy.category.clone()),
            changed_by: "sim".into(),
            deleted: false,
            sequence,
        };
        self.feed(Event::RouteConfigured(configured)).await?;
        if sequence == 0 {
            let envelope = self.envelope(t, key, name);
            let hash = switchyard_events::ConstraintsChanged::compute_hash(
                "",
                &policy.constraints,
                &route,
                0,
            );
            let changed = switchyard_events::ConstraintsChanged {
                envelope,
                route,
                sequence: 0,
                constraints: policy.constraints,
                changed_by: "sim".into(),
                prev_hash: String::new(),
                hash: hash.clone(),
            };
            self.feed(Event::ConstraintsChanged(changed)).await?;
            if let Some(p) = self.policies.get_mut(name) {
                p.constraints_hash = hash;
            }
        }
        Ok(())
    }

    /// Folds an event through the processors, and their outputs through the rest of the loop.
    async fn feed(&mut self, event: Event) -> anyhow::Result<()> {
        let mut queue = vec![event];
        while let Some(event) = queue.pop() {
            match &event {
                Event::RoutingTableUpdated(snapshot) => {
                    self.table.version = self.table.version.max(snapshot.version);
                    self.table.replace_org(
                        snapshot.envelope.org.as_str(),
                        switchyard_router::stats_of(snapshot),
                    );
                    self.summary.snapshots += 1;
                }
                Event::RoutePinned(pin) => {
                    if pin.reason == switchyard_events::PinReason::AutoRollback {
                        self.summary.rollbacks += 1;
                    }
                    self.pins.insert(
                        pin.route.as_str().to_owned(),
                        (
                            Pin {
                                model: pin.model.as_str().to_owned(),
                                reason: pin.reason,
                                pinned_by: pin.pinned_by.clone(),
                            },
                            pin.expires_at,
                        ),
                    );
                }
                Event::RouteUnpinned(unpin) => {
                    self.pins.remove(unpin.route.as_str());
                }
                _ => {}
            }
            let a = self
                .inline
                .step(&self.processors.session_nps, &event)
                .await?;
            let b = self.inline.step(&self.processors.projector, &event).await?;
            queue.extend(a);
            queue.extend(b);
        }
        self.summary.poisoned = self.inline.poisoned();
        Ok(())
    }

    /// Handles one message; returns the reply.
    pub async fn handle(&mut self, message: Message) -> anyhow::Result<serde_json::Value> {
        match message {
            Message::Hello {
                routes,
                models,
                constraints,
            } => {
                self.models = models.iter().map(model_info).collect();
                self.max_regression = constraints
                    .max_regression
                    .unwrap_or(self.options.default_max_regression);
                self.sim_routes = routes.into_iter().map(|r| (r.name.clone(), r)).collect();
                Ok(serde_json::json!({}))
            }
            Message::Prior {
                model,
                category,
                score,
                ..
            } => {
                self.priors.extend([Prior {
                    model: self.model_id(&model),
                    category,
                    score: score.clamp(0.0, 1.0),
                    source: "routing simulator benchmark prior".into(),
                    as_of: "simulated".into(),
                }]);
                Ok(serde_json::json!({}))
            }
            Message::Catalog { t, models } => {
                self.models = models.iter().map(model_info).collect();
                // New models join every route as candidates; prices update in place.
                let ids: Vec<String> = self.models.iter().map(|m| m.id.clone()).collect();
                let mut names = Vec::new();
                for policy in self.policies.values_mut() {
                    policy.candidates = ids
                        .iter()
                        .filter(|id| **id != policy.baseline)
                        .cloned()
                        .collect();
                    policy.version += 1;
                    names.push((policy.name.clone(), policy.version));
                }
                names.sort();
                for (name, version) in names {
                    self.route_versions.insert(name.clone(), version);
                    self.announce_route(t, &name, version).await?;
                }
                Ok(serde_json::json!({}))
            }
            Message::Request {
                t,
                request_id,
                session_id,
                route,
                category,
                prompt_tokens,
                expected_output_tokens,
                ..
            } => {
                self.request(
                    t,
                    request_id,
                    session_id,
                    &route,
                    category.as_deref(),
                    prompt_tokens,
                    expected_output_tokens,
                )
                .await
            }
            Message::Usage {
                t,
                request_id,
                model,
                cost_usd,
                shadow_cost_usd,
            } => {
                if let Some(d) = self.decided.get(&request_id) {
                    let (decision_id, session) = (d.decision_id.clone(), d.session.clone());
                    let shadow_model = d.shadow.clone();
                    let served = self.model_id(&model);
                    let request = RequestId::new(request_id.as_str());
                    let envelope = self.envelope(
                        t,
                        PartitionKey::session_or_request(Some(&session), &request),
                        &request_id,
                    );
                    let response = ResponseCompleted {
                        envelope,
                        request_id: request,
                        decision_id,
                        session_id: Some(session),
                        served_model: ModelName::new(served.as_str()),
                        provider: ProviderName::new("sim"),
                        status: ResponseStatus::Ok,
                        finish_reason: Some("stop".into()),
                        usage: switchyard_events::Usage {
                            prompt_tokens: 0,
                            completion_tokens: 0,
                            cached_tokens: 0,
                            reasoning_tokens: 0,
                            total_tokens: 0,
                        },
                        cost_usd: Usd::new(cost_usd.max(0.0)).ok(),
                        latency_ms: 0,
                        ttft_ms: None,
                        attempts: Vec::new(),
                        error_code: None,
                        completion_text: None,
                        shadow: false,
                    };
                    let mirror = shadow_model.map(|shadow| {
                        let mut m = response.clone();
                        m.request_id = RequestId::new(format!(
                            "{request_id}{}",
                            ResponseCompleted::MIRROR_SUFFIX
                        ));
                        m.served_model = ModelName::new(shadow.as_str());
                        m.cost_usd = Usd::new(shadow_cost_usd.max(0.0)).ok();
                        m.shadow = true;
                        m
                    });
                    self.feed(Event::ResponseCompleted(response)).await?;
                    if let Some(mut m) = mirror {
                        m.envelope.event_id = self.event_id(t);
                        self.feed(Event::ResponseCompleted(m)).await?;
                    }
                }
                Ok(serde_json::json!({}))
            }
            Message::Judge {
                t,
                request_id,
                model,
                score,
                ..
            } => {
                if let Some(d) = self.decided.get(&request_id) {
                    let (decision_id, route, session) =
                        (d.decision_id.clone(), d.route.clone(), d.session.clone());
                    let request = RequestId::new(request_id.as_str());
                    let envelope = self.envelope(
                        t,
                        PartitionKey::session_or_request(Some(&session), &request),
                        &request_id,
                    );
                    let judged = JudgeScored {
                        judgement_id: JudgementId::new(format!("judge-{}", envelope.event_id)),
                        envelope,
                        request_id: request,
                        decision_id,
                        route: RouteName::new(route.as_str()),
                        model: ModelName::new(self.model_id(&model).as_str()),
                        judge_model: ModelName::new("sim/judge"),
                        outcome: JudgeOutcome::Scored {
                            score: UnitScore::saturating(score),
                        },
                        rubric_version: "sim".into(),
                        attempts: 1,
                        cost_usd: None,
                    };
                    self.feed(Event::JudgeScored(judged)).await?;
                }
                Ok(serde_json::json!({}))
            }
            Message::Nps {
                t,
                session_id,
                score,
            } => {
                let session = SessionId::new(session_id.as_str());
                let envelope = self.envelope(
                    t,
                    PartitionKey::session_or_request(
                        Some(&session),
                        &RequestId::new(session_id.as_str()),
                    ),
                    &session_id,
                );
                let raw = score.clamp(0.0, 10.0).round();
                let feedback = FeedbackSubmitted {
                    feedback_id: FeedbackId::new(format!("nps-{session_id}")),
                    envelope,
                    target: Target::Session {
                        session_id: session,
                    },
                    source: FeedbackSource::Nps,
                    raw_score: raw,
                    raw_scale: RawScale::Nps,
                    normalized_score: UnitScore::saturating(raw / 10.0),
                    idempotency_key: None,
                    comment: None,
                    derived_from: None,
                    route: None,
                    model: None,
                    labels: BTreeMap::new(),
                };
                self.feed(Event::FeedbackSubmitted(feedback)).await?;
                Ok(serde_json::json!({}))
            }
            Message::Admin {
                t,
                request_id,
                model,
                score,
            } => {
                if let Some(d) = self.decided.get(&request_id) {
                    let (route, session) = (d.route.clone(), d.session.clone());
                    let request = RequestId::new(request_id.as_str());
                    let envelope = self.envelope(
                        t,
                        PartitionKey::session_or_request(Some(&session), &request),
                        &request_id,
                    );
                    let raw = score.clamp(1.0, 5.0).round();
                    let feedback = FeedbackSubmitted {
                        feedback_id: FeedbackId::new(format!("admin-{request_id}")),
                        envelope,
                        target: Target::Request {
                            request_id: request,
                        },
                        source: FeedbackSource::Admin,
                        raw_score: raw,
                        raw_scale: RawScale::FivePoint,
                        normalized_score: UnitScore::saturating((raw - 1.0) / 4.0),
                        idempotency_key: None,
                        comment: None,
                        derived_from: None,
                        route: Some(RouteName::new(route.as_str())),
                        model: Some(ModelName::new(self.model_id(&model).as_str())),
                        labels: BTreeMap::new(),
                    };
                    self.feed(Event::FeedbackSubmitted(feedback)).await?;
                }
                Ok(serde_json::json!({}))
            }
            Message::End => Ok(serde_json::json!({})),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the request message's fields")]
    async fn request(
        &mut self,
        t: f64,
        request_id: String,
        session_id: String,
        route: &str,
        category: Option<&str>,
        prompt_tokens: u64,
        expected_output_tokens: u64,
    ) -> anyhow::Result<serde_json::Value> {
        let Some(mut policy) = self.policy_for(route, category).cloned() else {
            anyhow::bail!(
                "request {request_id} names route `{route}`, which hello did not declare"
            );
        };
        for name in std::mem::take(&mut self.announce) {
            self.announce_route(t, &name, 0).await?;
            if let Some(p) = self.policies.get(&name)
                && p.name == policy.name
            {
                policy = p.clone();
            }
        }
        let needs = Needs {
            input_tokens: prompt_tokens,
            max_output_tokens: expected_output_tokens,
            ..Needs::default()
        };
        let session = SessionId::new(session_id.as_str());
        let request = RequestId::new(request_id.as_str());
        let decision_id = DecisionId::new(format!("dec-{request_id}"));
        // Minted before the table is borrowed, so the trace reads the route's statistics in
        // place instead of a copy per request.
        let envelope = self.envelope(
            t,
            PartitionKey::session_or_request(Some(&session), &request),
            &request_id,
        );
        let stats = self.table.route(ORG, &policy.name);
        let ctx = Context {
            policy: &policy,
            stats,
            table_version: self.table.version,
            priors: &self.priors,
            models: &self.models,
            pin: self
                .pins
                .get(&policy.name)
                .filter(|(_, expires)| expires.is_none_or(|e| e > micros(t)))
                .map(|(pin, _)| pin),
            mirror_budget_left: true,
        };
        let req = Request {
            org: ORG,
            needs,
            seed: Request::seed_of(decision_id.as_str()),
            canary_bucket: Request::bucket_of(ORG, &policy.name, &session_id),
        };
        let outcome = switchyard_router::decide(&ctx, &req)
            .map_err(|e| anyhow::anyhow!("request {request_id}: {e}"))?;
        let trace = switchyard_router::build_trace(
            TraceIds {
                envelope,
                decision_id: decision_id.clone(),
                request_id: request,
                session_id: Some(session.clone()),
            },
            &policy,
            stats,
            &needs,
            &outcome,
            Lang::En,
        );
        self.summary.requests += 1;
        if self.options.debug_every > 0
            && self
                .summary
                .requests
                .is_multiple_of(self.options.debug_every)
        {
            let mut lines = format!(
                "t={:.1}h route={} phase={} served={} reason={} conf={:.2}\n",
                t / 3600.0,
                policy.name,
                outcome.phase,
                outcome.served,
                outcome.reason.as_str(),
                outcome.confidence
            );
            for c in &outcome.candidates {
                if let Some(sc) = &c.score {
                    lines.push_str(&format!(
                        "  {:<40} score={:.3} q={:.3}±{:.3} n={:<4} conf={:<5} cost={:.5} failed={:?}\n",
                        c.model,
                        sc.score,
                        sc.feedback,
                        sc.feedback_variance.sqrt(),
                        sc.org_samples,
                        c.confidence.map_or("-".into(), |x| format!("{x:.2}")),
                        sc.estimated_cost_usd.unwrap_or(f64::NAN),
                        c.failed
                    ));
                }
            }
            eprint!("{lines}");
        }
        if outcome.served != policy.baseline {
            self.summary.routed += 1;
        }
        *self
            .summary
            .served
            .entry(model_name(&outcome.served).to_owned())
            .or_default() += 1;
        self.decided.insert(
            request_id,
            Decided {
                decision_id,
                route: policy.name.clone(),
                session,
                shadow: outcome.shadow.clone().filter(|_| outcome.mirror),
            },
        );
        self.feed(Event::RouteDecided(trace)).await?;
        let shadow: Vec<&str> = outcome
            .shadow
            .as_deref()
            .filter(|_| outcome.mirror)
            .map(model_name)
            .into_iter()
            .collect();
        Ok(serde_json::json!({ "model": model_name(&outcome.served), "shadow": shadow }))
    }

    /// Serves the protocol: one reply line per message line, until `end` or end of input.
    pub async fn serve(
        &mut self,
        input: impl BufRead,
        mut output: impl Write,
    ) -> anyhow::Result<()> {
        for line in input.lines() {
            let line = line.context("read a simulator message")?;
            if line.trim().is_empty() {
                continue;
            }
            let message: Message = serde_json::from_str(&line)
                .with_context(|| format!("not a simulator message: {line}"))?;
            let end = matches!(message, Message::End);
            let reply = self.handle(message).await?;
            writeln!(output, "{reply}")?;
            output.flush()?;
            if end {
                break;
            }
        }
        Ok(())
    }
}

impl<A, B> std::fmt::Debug for Sim<A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated models get `<provider>/<name>` ids (judge calibration pools by provider), and
    /// replies name them as the simulator does.
    #[test]
    fn model_ids_carry_the_provider_and_round_trip() {
        assert_eq!(
            model_id_of("google", "gemini-1.5-flash"),
            "google/gemini-1.5-flash"
        );
        assert_eq!(model_id_of("", "m"), "sim/m");
        assert_eq!(model_id_of("a/b", "m"), "sim/m");
        for (provider, name) in [
            ("openaichat", "gpt-4o-mini"),
            ("", "x"),
            ("together", "a-b.c"),
        ] {
            assert_eq!(model_name(&model_id_of(provider, name)), name);
        }
        let info = model_info(&SimModel {
            name: "claude".into(),
            provider: "anthropic".into(),
            price_in_per_mtok: 3.0,
            price_out_per_mtok: 15.0,
        });
        assert_eq!(info.id, "anthropic/claude");
        assert_eq!(
            switchyard_router::calibration::provider_of(&info.id),
            "anthropic"
        );
    }
}
