//! Events built from the frozen schema samples, and a driver that folds events into a real
//! embedded store through the processor, batch by batch, without the log.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures that cannot be built leave no test to run"
)]

use std::collections::BTreeMap;

use anyhow::Result;
use switchyard_decisions::DecisionsProcessor;
use switchyard_decisions::state::TABLES;
use switchyard_events::{
    Codec, DecisionId, Event, EventId, FeedbackId, FeedbackSource, FeedbackSubmitted, JudgeOutcome,
    JudgeScored, JudgementId, ModelName, OrgId, PartitionKey, RequestId, ResponseCompleted,
    RouteDecided, RouteName, SessionId, Target, Timestamp, UnitScore,
};
use switchyard_processor::{Input, Output, Processor, StagedState};
use switchyard_store::{EmbeddedStore, StateStore};

/// 2025-11-24T16:00:00.123456Z, the samples' event time.
pub const T0: i64 = 1_764_000_000_123_456;

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
    envelope.partition_key = PartitionKey::session_or_request(
        session.map(SessionId::new).as_ref(),
        &RequestId::new(request),
    );
}

/// What a test sets on a decision; everything else comes from the frozen v1 sample, decoded
/// with today's codec, so fields added by later schema versions take their defaults and never
/// need touching here. This is the one place a `RouteDecided` is built.
#[derive(Debug, Clone)]
pub struct DecisionSpec<'a> {
    pub org: &'a str,
    pub decision: &'a str,
    pub request: &'a str,
    pub session: Option<&'a str>,
    pub route: &'a str,
    pub time: i64,
}

pub fn decision(spec: &DecisionSpec<'_>) -> RouteDecided {
    let Event::RouteDecided(mut event) = sample(include_str!(
        "../../../../schemas/samples/route_decided/v1.bin.hex"
    )) else {
        panic!("not a RouteDecided sample");
    };
    envelope_for(
        &mut event.envelope,
        spec.org,
        &format!("decision/{}/{}", spec.org, spec.decision),
        spec.time,
        spec.session,
        spec.request,
    );
    event.decision_id = DecisionId::new(spec.decision);
    event.request_id = RequestId::new(spec.request);
    event.session_id = spec.session.map(SessionId::new);
    event.route = RouteName::new(spec.route);
    event
}

pub fn response(
    org: &str,
    decision: &str,
    request: &str,
    session: Option<&str>,
    latency_ms: i64,
    time: i64,
) -> ResponseCompleted {
    let Event::ResponseCompleted(mut event) = sample(include_str!(
        "../../../../schemas/samples/response_completed/v1.bin.hex"
    )) else {
        panic!("not a ResponseCompleted sample");
    };
    envelope_for(
        &mut event.envelope,
        org,
        &format!("response/{org}/{decision}"),
        time,
        session,
        request,
    );
    event.decision_id = DecisionId::new(decision);
    event.request_id = RequestId::new(request);
    event.session_id = session.map(SessionId::new);
    event.latency_ms = latency_ms;
    event
}

/// The shadow mirror of `request`: `shadow` set, request id `<request>#mirror`, served by
/// `model`, with its own event id.
pub fn shadow_response(
    org: &str,
    decision: &str,
    request: &str,
    session: Option<&str>,
    model: &str,
    time: i64,
) -> ResponseCompleted {
    let mut event = response(org, decision, request, session, 50, time);
    event.envelope.event_id = event_id(&format!("shadow-response/{org}/{decision}"));
    event.request_id = ResponseCompleted::mirror_request_id(&RequestId::new(request));
    event.served_model = ModelName::new(model);
    event.shadow = true;
    event
}

pub fn feedback(
    org: &str,
    feedback_id: &str,
    request: &str,
    session: Option<&str>,
    source: FeedbackSource,
    score: f64,
    time: i64,
) -> FeedbackSubmitted {
    let Event::FeedbackSubmitted(mut event) = sample(include_str!(
        "../../../../schemas/samples/feedback_submitted/v2.bin.hex"
    )) else {
        panic!("not a FeedbackSubmitted sample");
    };
    envelope_for(
        &mut event.envelope,
        org,
        &format!("feedback/{org}/{feedback_id}"),
        time,
        session,
        request,
    );
    event.feedback_id = FeedbackId::new(feedback_id);
    event.target = Target::Request {
        request_id: RequestId::new(request),
    };
    event.source = source;
    event.normalized_score = UnitScore::new(score).expect("score in 0..=1");
    event
}

pub fn judged(
    org: &str,
    judgement: &str,
    decision: &str,
    request: &str,
    session: Option<&str>,
    score: Option<f64>,
    time: i64,
) -> JudgeScored {
    let Event::JudgeScored(mut event) = sample(include_str!(
        "../../../../schemas/samples/judge_scored/v1.bin.hex"
    )) else {
        panic!("not a JudgeScored sample");
    };
    envelope_for(
        &mut event.envelope,
        org,
        &format!("judge/{org}/{judgement}"),
        time,
        session,
        request,
    );
    event.judgement_id = JudgementId::new(judgement);
    event.decision_id = DecisionId::new(decision);
    event.request_id = RequestId::new(request);
    event.outcome = match score {
        Some(score) => JudgeOutcome::Scored {
            score: UnitScore::new(score).expect("score in 0..=1"),
        },
        None => JudgeOutcome::Failed {
            reason: Some("judge timed out".into()),
        },
    };
    event
}

/// Folds `events` into `store`, `batch_sizes` events per applied batch (cycling; the last
/// batch takes what is left), exactly as the runtime would but without the log.
pub async fn fold(store: &EmbeddedStore, events: &[Event], batch_sizes: &[usize]) -> Result<()> {
    let processor = DecisionsProcessor;
    let mut sizes = batch_sizes.iter().copied().cycle();
    let mut offset = 0u64;
    let mut rest = events;
    while !rest.is_empty() {
        let take = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (batch, tail) = rest.split_at(take);
        rest = tail;
        let mut state = StagedState::new(store);
        for event in batch {
            let input = Input {
                event: event.clone(),
                topic: event.topic(),
                partition: 0,
                offset,
                key: event.partition_key().as_str().as_bytes().to_vec(),
                headers: Vec::new(),
            };
            offset += 1;
            let mut out = Output::new(processor.group(), input.event_id());
            processor.process(&input, &mut state, &mut out).await?;
            state.commit_record();
            anyhow::ensure!(out.events().is_empty(), "the read model emits nothing");
        }
        store.apply(state.into_write_batch()).await?;
    }
    Ok(())
}

/// Every entry of every table of the read model.
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
