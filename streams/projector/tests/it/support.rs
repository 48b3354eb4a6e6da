//! Events built from the frozen schema samples, and a harness that folds events into a real
//! embedded store through the projector, batch by batch, as the runtime would (partitions by
//! Kafka's partitioner, dense offsets per partition), without the log.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures that cannot be built leave no test to run"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use switchyard_events::{
    Codec, Constraints, DecisionId, Event, EventId, FeedbackId, FeedbackSource, FeedbackSubmitted,
    JudgeOutcome, JudgeScored, JudgementId, ModelName, OrgId, PartitionKey, PinReason, RequestId,
    ResponseCompleted, ResponseStatus, RouteDecided, RouteMode, RouteName, RoutePinned,
    RouteUnpinned, RoutingTableUpdated, SessionId, Target, Timestamp, TraceId, UnitScore, Usd,
};
use switchyard_log::partition_for_key;
use switchyard_processor::{Input, Output, Processor, StagedState};
use switchyard_projector::state::TABLES;
use switchyard_projector::{ProjectorConfig, ProjectorProcessor, RouteDefaults};
use switchyard_store::{EmbeddedStore, StateStore};

/// 2025-11-24T00:00:00Z, on an hour boundary so buckets are easy to reason about.
pub const T0: i64 = 1_763_942_400_000_000;
/// One hour in microseconds.
pub const HOUR: i64 = 3_600_000_000;
/// One second in microseconds.
pub const SECOND: i64 = 1_000_000;

pub const BASE: &str = "p/base";
pub const CHEAP: &str = "p/cheap";
pub const MID: &str = "p/mid";

fn sample(hex_text: &str) -> Event {
    let bytes = hex::decode(hex_text.trim()).expect("sample hex");
    Codec::new()
        .expect("codec")
        .decode(&bytes)
        .expect("sample decodes")
}

/// A deterministic event id per label.
pub fn event_id(label: &str) -> EventId {
    let base: EventId = "019ab5d3-6e80-7000-8000-000000000003"
        .parse()
        .expect("event id");
    base.derive(label)
}

fn envelope_for(
    envelope: &mut switchyard_events::Envelope,
    org: &str,
    label: &str,
    time: i64,
    session: Option<&str>,
    request: &str,
) {
    envelope.org = OrgId::new(org);
    envelope.event_id = event_id(label);
    envelope.event_time = Timestamp::from_micros(time);
    envelope.trace_id = TraceId::new(format!("trace-{request}"));
    envelope.partition_key = PartitionKey::session_or_request(
        session.map(SessionId::new).as_ref(),
        &RequestId::new(request),
    );
}

/// Where a request is: org, route, its session and id.
#[derive(Debug, Clone)]
pub struct Req {
    pub org: String,
    pub route: String,
    pub request: String,
    pub session: Option<String>,
}

impl Req {
    pub fn new(org: &str, route: &str, request: &str) -> Self {
        Req {
            org: org.into(),
            route: route.into(),
            request: request.into(),
            session: None,
        }
    }

    pub fn in_session(mut self, session: &str) -> Self {
        self.session = Some(session.into());
        self
    }

    fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The decision: `served` serves, `baseline` is the route's baseline.
    pub fn decision(&self, served: &str, baseline: &str, time: i64) -> Event {
        let Event::RouteDecided(mut event) = sample(include_str!(
            "../../../../schemas/samples/route_decided/v1.bin.hex"
        )) else {
            panic!("not a RouteDecided sample");
        };
        envelope_for(
            &mut event.envelope,
            &self.org,
            &format!("decision/{}/{}", self.org, self.request),
            time,
            self.session(),
            &self.request,
        );
        let event: &mut RouteDecided = &mut event;
        event.decision_id = DecisionId::new(format!("dec-{}", self.request));
        event.request_id = RequestId::new(&*self.request);
        event.session_id = self.session.as_deref().map(SessionId::new);
        event.route = RouteName::new(&*self.route);
        event.mode = RouteMode::Live;
        event.served_model = ModelName::new(served);
        event.chosen_model = ModelName::new(served);
        event.baseline_model = ModelName::new(baseline);
        Event::RouteDecided(event.clone())
    }

    /// The response, served by `served`.
    pub fn response(
        &self,
        served: &str,
        status: ResponseStatus,
        cost_usd: Option<f64>,
        latency_ms: i64,
        time: i64,
    ) -> Event {
        let Event::ResponseCompleted(mut event) = sample(include_str!(
            "../../../../schemas/samples/response_completed/v1.bin.hex"
        )) else {
            panic!("not a ResponseCompleted sample");
        };
        envelope_for(
            &mut event.envelope,
            &self.org,
            &format!("response/{}/{}", self.org, self.request),
            time,
            self.session(),
            &self.request,
        );
        event.decision_id = DecisionId::new(format!("dec-{}", self.request));
        event.request_id = RequestId::new(&*self.request);
        event.session_id = self.session.as_deref().map(SessionId::new);
        event.served_model = ModelName::new(served);
        event.status = status;
        event.cost_usd = cost_usd.map(|c| Usd::new(c).expect("cost"));
        event.latency_ms = latency_ms;
        event.shadow = false;
        Event::ResponseCompleted(event)
    }

    /// The shadow mirror's response, served by `model`.
    pub fn mirror(&self, model: &str, cost_usd: Option<f64>, latency_ms: i64, time: i64) -> Event {
        let Event::ResponseCompleted(mut event) =
            self.response(model, ResponseStatus::Ok, cost_usd, latency_ms, time)
        else {
            panic!("not a response");
        };
        event.envelope.event_id = event_id(&format!("mirror/{}/{}", self.org, self.request));
        event.request_id = ResponseCompleted::mirror_request_id(&RequestId::new(&*self.request));
        event.shadow = true;
        Event::ResponseCompleted(event)
    }

    /// Feedback `feedback_id` on the request; `version` tells replacements apart.
    pub fn feedback(
        &self,
        feedback_id: &str,
        version: u32,
        source: FeedbackSource,
        score: f64,
        time: i64,
    ) -> Event {
        let Event::FeedbackSubmitted(mut event) = sample(include_str!(
            "../../../../schemas/samples/feedback_submitted/v2.bin.hex"
        )) else {
            panic!("not a FeedbackSubmitted sample");
        };
        envelope_for(
            &mut event.envelope,
            &self.org,
            &format!("feedback/{}/{feedback_id}/{version}", self.org),
            time,
            self.session(),
            &self.request,
        );
        let event: &mut FeedbackSubmitted = &mut event;
        event.feedback_id = FeedbackId::new(feedback_id);
        event.target = Target::Request {
            request_id: RequestId::new(&*self.request),
        };
        event.source = source;
        event.normalized_score = UnitScore::new(score).expect("score in 0..=1");
        Event::FeedbackSubmitted(event.clone())
    }

    /// A judge score of `model`'s answer (`None`: the judge failed).
    pub fn judged(&self, judgement: &str, model: &str, score: Option<f64>, time: i64) -> Event {
        let Event::JudgeScored(mut event) = sample(include_str!(
            "../../../../schemas/samples/judge_scored/v1.bin.hex"
        )) else {
            panic!("not a JudgeScored sample");
        };
        envelope_for(
            &mut event.envelope,
            &self.org,
            &format!("judge/{}/{judgement}", self.org),
            time,
            self.session(),
            &self.request,
        );
        let event: &mut JudgeScored = &mut event;
        event.judgement_id = JudgementId::new(judgement);
        event.decision_id = DecisionId::new(format!("dec-{}", self.request));
        event.request_id = RequestId::new(&*self.request);
        event.route = RouteName::new(&*self.route);
        event.model = ModelName::new(model);
        event.outcome = match score {
            Some(score) => JudgeOutcome::Scored {
                score: UnitScore::new(score).expect("score in 0..=1"),
            },
            None => JudgeOutcome::Failed {
                reason: Some("judge timed out".into()),
            },
        };
        Event::JudgeScored(event.clone())
    }
}

fn route_envelope(org: &str, route: &str, label: &str, time: i64) -> switchyard_events::Envelope {
    let org_id = OrgId::new(org);
    switchyard_events::Envelope {
        event_id: event_id(label),
        org: org_id.clone(),
        event_time: Timestamp::from_micros(time),
        trace_id: TraceId::new("admin"),
        partition_key: PartitionKey::route(&org_id, &RouteName::new(route)),
    }
}

/// An admin's pin of `route` to `model`.
pub fn pinned(org: &str, route: &str, model: &str, label: &str, time: i64) -> Event {
    Event::RoutePinned(RoutePinned {
        envelope: route_envelope(org, route, &format!("pin/{label}"), time),
        route: RouteName::new(route),
        model: ModelName::new(model),
        reason: PinReason::Manual,
        pinned_by: "admin".into(),
        expires_at: None,
        note: None,
    })
}

/// The override: `DELETE /v1/routes/{route}/pin`.
pub fn unpinned(org: &str, route: &str, label: &str, time: i64) -> Event {
    Event::RouteUnpinned(RouteUnpinned {
        envelope: route_envelope(org, route, &format!("unpin/{label}"), time),
        route: RouteName::new(route),
        unpinned_by: "admin".into(),
        reason: Some("checked".into()),
    })
}

/// A route of the configuration file: baseline `p/base`, candidates `p/cheap` and `p/mid`.
pub fn route_defaults(mode: RouteMode, constraints: Constraints) -> RouteDefaults {
    RouteDefaults {
        baseline: ModelName::new(BASE),
        candidates: vec![ModelName::new(CHEAP), ModelName::new(MID)],
        mode,
        canary_percent: None,
        constraints,
    }
}

/// Settings with a short window (6 h in 1 h buckets), no throttle, and route `r1` configured.
pub fn test_config(constraints: Constraints) -> ProjectorConfig {
    ProjectorConfig {
        window: Duration::from_secs(6 * 3600),
        bucket: Duration::from_secs(3600),
        publish_interval: Duration::ZERO,
        routes: BTreeMap::from([(
            "r1".to_owned(),
            route_defaults(RouteMode::Live, constraints),
        )]),
        min_baseline_samples: 3,
        // Single scores test the rollback mechanics; the default (3) guards production.
        min_bucket_samples: 1,
        ..ProjectorConfig::default()
    }
}

/// Folds events into a real embedded store through the projector, as the runtime would.
pub struct Harness {
    pub store: EmbeddedStore,
    pub processor: ProjectorProcessor,
    pub partitions: u32,
    offsets: HashMap<(switchyard_events::Topic, u32), u64>,
    /// Every event emitted so far, in order.
    pub outputs: Vec<Event>,
}

impl Harness {
    pub fn open(dir: &Path, config: ProjectorConfig, partitions: u32) -> Result<Self> {
        Ok(Harness {
            store: EmbeddedStore::open_dir(dir)?,
            processor: switchyard_projector::processor(config)?,
            partitions,
            offsets: HashMap::new(),
            outputs: Vec::new(),
        })
    }

    /// Returns the input the log would deliver for `event` appended now.
    pub fn place(&mut self, event: &Event) -> Input {
        let topic = event.topic();
        let key = event.partition_key().as_str().as_bytes().to_vec();
        let partition = partition_for_key(&key, self.partitions);
        let next = self.offsets.entry((topic, partition)).or_insert(0);
        let offset = *next;
        *next += 1;
        Input {
            event: event.clone(),
            topic,
            partition,
            offset,
            key,
            headers: Vec::new(),
        }
    }

    /// Processes inputs as one batch and applies it; returns what the batch emitted.
    pub async fn process(&mut self, inputs: &[Input]) -> Result<Vec<Event>> {
        let mut state = StagedState::new(&self.store);
        let mut emitted = Vec::new();
        for input in inputs {
            let mut out = Output::new(self.processor.group(), input.event_id());
            self.processor.process(input, &mut state, &mut out).await?;
            state.commit_record();
            emitted.extend(out.into_events());
        }
        self.store.apply(state.into_write_batch()).await?;
        self.outputs.extend(emitted.iter().cloned());
        Ok(emitted)
    }

    /// Appends and folds `events`, `batch_sizes` events per applied batch (cycling); returns
    /// what they emitted.
    pub async fn fold(&mut self, events: &[Event], batch_sizes: &[usize]) -> Result<Vec<Event>> {
        let mut sizes = batch_sizes.iter().copied().cycle();
        let mut rest = events;
        let mut emitted = Vec::new();
        while !rest.is_empty() {
            let take = sizes.next().unwrap_or(1).clamp(1, rest.len());
            let (batch, tail) = rest.split_at(take);
            rest = tail;
            let inputs: Vec<Input> = batch.iter().map(|e| self.place(e)).collect();
            emitted.extend(self.process(&inputs).await?);
        }
        Ok(emitted)
    }

    /// The newest snapshot emitted for `org`.
    pub fn last_snapshot(&self, org: &str) -> Option<&RoutingTableUpdated> {
        self.outputs.iter().rev().find_map(|e| match e {
            Event::RoutingTableUpdated(s) if s.envelope.org.as_str() == org => Some(s),
            _ => None,
        })
    }

    /// Every `RoutePinned` emitted so far.
    pub fn rollbacks(&self) -> Vec<&RoutePinned> {
        self.outputs
            .iter()
            .filter_map(|e| match e {
                Event::RoutePinned(p) => Some(p),
                _ => None,
            })
            .collect()
    }
}

/// Every entry of every table of the projector.
pub async fn dump(store: &EmbeddedStore) -> Result<BTreeMap<String, Vec<(Vec<u8>, Vec<u8>)>>> {
    let mut out = BTreeMap::new();
    for table in TABLES {
        out.insert(
            table.name().to_owned(),
            store.scan_prefix(table, b"", None, usize::MAX).await?,
        );
    }
    Ok(out)
}

/// Returns one model's statistics in a snapshot.
pub fn model<'a>(
    snapshot: &'a RoutingTableUpdated,
    route: &str,
    model: &str,
) -> Option<&'a switchyard_events::ModelStats> {
    snapshot
        .routes
        .iter()
        .find(|r| r.route.as_str() == route)?
        .models
        .iter()
        .find(|m| m.model.as_str() == model)
}

/// Returns a source's (samples, mean) in a model's statistics.
pub fn source(stats: &switchyard_events::ModelStats, source: FeedbackSource) -> (i64, f64) {
    stats
        .sources
        .iter()
        .find(|s| s.source == source)
        .map_or((0, 0.0), |s| (s.samples, s.mean))
}

/// Returns an event in a canonical text form, for equality: its JSON (maps in key order, NaN
/// as null). Avro bytes cannot serve: the codec writes maps through a `HashMap`, so their
/// entries come out in a different order from one encoding to the next.
pub fn canonical(event: &Event) -> Result<String> {
    let text = serde_json::to_string(event)?;
    ensure!(!text.is_empty(), "empty encoding");
    Ok(text)
}
