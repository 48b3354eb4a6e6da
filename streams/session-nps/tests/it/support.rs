//! Events built from the frozen schema samples, and a driver that folds events through the
//! processor into a real embedded store, batch by batch, without the log, collecting outputs.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures that cannot be built leave no test to run"
)]

use std::collections::BTreeMap;

use anyhow::Result;
use switchyard_events::{
    Codec, DecisionId, Event, EventId, FeedbackId, FeedbackSource, FeedbackSubmitted, ModelName,
    Nps, OrgId, PartitionKey, RawScale, RequestId, RouteDecided, RouteName, SessionId, Target,
    Timestamp,
};
use switchyard_processor::{Input, Output, Processor, StagedState};
use switchyard_session_nps::state::TABLES;
use switchyard_session_nps::{SessionNpsConfig, SessionNpsProcessor, derived_feedback_id};
use switchyard_store::{EmbeddedStore, StateStore};

/// 2025-11-24T16:00:00.123456Z, the samples' event time.
pub const T0: i64 = 1_764_000_000_123_456;
/// One hour in microseconds.
pub const HOUR: i64 = 3_600_000_000;

fn sample(hex_text: &str) -> Event {
    let bytes = hex::decode(hex_text.trim()).expect("sample hex");
    Codec::new()
        .expect("codec")
        .decode(&bytes)
        .expect("sample decodes")
}

/// A deterministic event id per label.
pub fn event_id(label: &str) -> EventId {
    let base: EventId = "019ab5d3-6e80-7000-8000-000000000007"
        .parse()
        .expect("event id");
    base.derive(label)
}

/// A decision of `session` (or of no session) at `time`, from the frozen v2 sample.
pub fn decision(org: &str, id: &str, session: Option<&str>, time: i64) -> RouteDecided {
    let Event::RouteDecided(mut event) = sample(include_str!(
        "../../../../schemas/samples/route_decided/v2.bin.hex"
    )) else {
        panic!("not a RouteDecided sample");
    };
    let request = RequestId::new(format!("req-{id}"));
    let session = session.map(SessionId::new);
    event.envelope.org = OrgId::new(org);
    event.envelope.event_id = event_id(&format!("decision/{org}/{id}"));
    event.envelope.event_time = Timestamp::from_micros(time);
    event.envelope.partition_key = PartitionKey::session_or_request(session.as_ref(), &request);
    event.decision_id = DecisionId::new(id);
    event.request_id = request;
    event.session_id = session;
    event.route = RouteName::new("support");
    event.served_model = ModelName::new("demo/small");
    event
}

/// A session NPS rating as `POST /v1/feedback` records it, from the frozen v2 sample.
pub fn rating(org: &str, session: &str, label: &str, nps: u8, time: i64) -> FeedbackSubmitted {
    let Event::FeedbackSubmitted(mut event) = sample(include_str!(
        "../../../../schemas/samples/feedback_submitted/v2.bin.hex"
    )) else {
        panic!("not a FeedbackSubmitted sample");
    };
    event.envelope.org = OrgId::new(org);
    event.envelope.event_id = event_id(&format!("rating/{org}/{session}/{label}"));
    event.envelope.event_time = Timestamp::from_micros(time);
    event.envelope.partition_key = PartitionKey::new(session);
    event.feedback_id = FeedbackId::new(format!("fb-{session}"));
    event.target = Target::Session {
        session_id: SessionId::new(session),
    };
    event.source = FeedbackSource::Nps;
    event.raw_score = f64::from(nps);
    event.raw_scale = RawScale::Nps;
    event.normalized_score = Nps::new(nps).expect("nps").normalized();
    event
}

/// The input the runtime would hand the processor for `event`.
pub fn input_of(event: &Event, offset: u64) -> Input {
    Input {
        event: event.clone(),
        topic: event.topic(),
        partition: 0,
        offset,
        key: event.partition_key().as_str().as_bytes().to_vec(),
        headers: Vec::new(),
    }
}

/// Folds `events` into `store`, `batch_sizes` events per applied batch (cycling; the last
/// batch takes what is left), exactly as the runtime would but without the log; returns the
/// emitted events in order. Poison inputs fail the fold.
pub async fn fold(
    store: &EmbeddedStore,
    config: SessionNpsConfig,
    events: &[Event],
    batch_sizes: &[usize],
) -> Result<Vec<FeedbackSubmitted>> {
    let processor = SessionNpsProcessor::new(config);
    let mut sizes = batch_sizes.iter().copied().cycle();
    let mut offset = 0u64;
    let mut rest = events;
    let mut emitted = Vec::new();
    while !rest.is_empty() {
        let take = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (batch, tail) = rest.split_at(take);
        rest = tail;
        let mut state = StagedState::new(store);
        for event in batch {
            let input = input_of(event, offset);
            offset += 1;
            let mut out = Output::new(processor.group(), input.event_id());
            processor.process(&input, &mut state, &mut out).await?;
            state.commit_record();
            for event in out.into_events() {
                let Event::FeedbackSubmitted(feedback) = event else {
                    anyhow::bail!("emitted something other than feedback: {event:?}");
                };
                emitted.push(feedback);
            }
        }
        store.apply(state.into_write_batch()).await?;
    }
    Ok(emitted)
}

/// What a propagated event says, for comparisons: (decision, normalised score, rating time).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct Effect {
    pub request: String,
    pub score: f64,
    pub rated_at: i64,
}

/// Checks the invariants every propagated event holds, and returns its effect.
pub fn effect(org: &str, session: &str, event: &FeedbackSubmitted) -> Result<Effect> {
    let Target::Request { request_id } = &event.target else {
        anyhow::bail!("propagated feedback targets a session");
    };
    let decision = request_id
        .as_str()
        .strip_prefix("req-")
        .ok_or_else(|| anyhow::anyhow!("unexpected request id {request_id}"))?;
    anyhow::ensure!(event.source == FeedbackSource::Nps);
    anyhow::ensure!(event.envelope.org.as_str() == org);
    anyhow::ensure!(
        event.envelope.partition_key.as_str() == session,
        "keyed by session"
    );
    anyhow::ensure!(
        event.feedback_id
            == derived_feedback_id(
                &OrgId::new(org),
                &SessionId::new(session),
                &DecisionId::new(decision)
            ),
        "feedback id derived from the decision"
    );
    anyhow::ensure!(event.derived_from.is_some());
    anyhow::ensure!(event.raw_scale == RawScale::Nps);
    Ok(Effect {
        request: request_id.as_str().to_owned(),
        score: event.raw_score,
        rated_at: event.envelope.event_time.as_micros(),
    })
}

/// The latest effect per feedback id, as a consumer that keeps the latest entry per feedback
/// id by `(event_time, event_id)` sees it.
pub fn latest_per_feedback_id(
    org: &str,
    session: &str,
    events: &[FeedbackSubmitted],
) -> Result<BTreeMap<String, Effect>> {
    let mut latest: BTreeMap<String, (Timestamp, EventId, Effect)> = BTreeMap::new();
    for event in events {
        let effect = effect(org, session, event)?;
        let version = (event.envelope.event_time, event.envelope.event_id);
        let key = event.feedback_id.as_str().to_owned();
        match latest.get(&key) {
            Some((time, id, _)) if (*time, *id) >= version => {}
            _ => {
                latest.insert(key, (version.0, version.1, effect));
            }
        }
    }
    Ok(latest.into_iter().map(|(k, (_, _, e))| (k, e)).collect())
}

/// Every entry of every table of the processor.
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
