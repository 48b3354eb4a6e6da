//! The fold: decisions, responses, feedback and judge scores into one record per decision.
//!
//! Pure over its state: no clock, no I/O besides the staged state. Everything that can arrive
//! about a decision is an [`Outcome`] fragment, and merging fragments is commutative,
//! associative and idempotent, so the records do not depend on the order in which the four
//! topics are consumed, nor on redelivery:
//!
//! - a fragment whose decision is known is merged into the decision's record;
//! - otherwise it waits in a pending table (by decision id for responses and judge scores, by
//!   request id for feedback), and the decision, when it arrives, takes the pending fragments
//!   in and deletes them.
//!
//! A parked fragment waits at most [`PENDING_TTL`] of event time (from its first fragment) for
//! its decision; then a sweep drops it, so feedback naming ids that never come (a typo, a
//! client's own id) cannot grow the state forever. The order-independence holds for fragments
//! whose decision arrives within that time, which is every decision the gateway publishes
//! (late only by a broker outage, far shorter).

use switchyard_events::{
    DecisionId, Event, FeedbackSubmitted, JudgeOutcome, JudgeScored, OrgId, RequestId,
    ResponseCompleted, RouteDecided, Target,
};
use switchyard_processor::expiry::Expiry;
use switchyard_processor::{
    Input, Output, ProcessError, Processor, StagedState, Topic, require_nonempty,
};
use switchyard_store::{StateStore, Table};

use crate::record::ResponseOutcome;
use crate::state::{
    BY_REQUEST, Outcome, PENDING_BY_DECISION, PENDING_BY_REQUEST, PENDING_EXPIRY, RECORDS, SWEEP,
    SWEEP_KEY, ScoreEntry, StoredDecision, org_key,
};

/// How long (event time) a fragment waits in a pending table for its decision.
pub const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Most expired pending entries dropped per input.
const SWEEP_LIMIT: usize = 16;

/// The processor's consumer group (and checkpoint namespace).
pub const GROUP: &str = "decisions";

/// The topics the read model consumes.
pub const INPUTS: &[Topic] = &[
    Topic::Decisions,
    Topic::Responses,
    Topic::Feedback,
    Topic::JudgeScores,
];

/// The decisions read model as a [`Processor`]: run it in a
/// [`ProcessorRuntime`](switchyard_processor::ProcessorRuntime). It emits no events.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionsProcessor;

impl Processor for DecisionsProcessor {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn inputs(&self) -> &'static [Topic] {
        INPUTS
    }

    async fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        _out: &mut Output,
    ) -> Result<(), ProcessError> {
        let now = input.event_time().as_micros();
        sweep(state, now).await?;
        match &input.event {
            Event::RouteDecided(decision) => on_decision(decision, state).await,
            Event::ResponseCompleted(response) => on_response(response, state, now).await,
            Event::FeedbackSubmitted(feedback) => on_feedback(feedback, state, now).await,
            Event::JudgeScored(judged) => on_judged(judged, state, now).await,
            // Other kinds never reach these topics; nothing to fold.
            _ => Ok(()),
        }
    }
}

/// Writes a decision's record and its index entries.
fn write_decision<S: StateStore>(
    state: &mut StagedState<'_, S>,
    stored: &StoredDecision,
) -> Result<(), ProcessError> {
    state.put_json(
        RECORDS,
        org_key(&stored.org, stored.decision_id.as_str()),
        stored,
    )?;
    let value = stored.index_value();
    for (table, key) in stored.index_keys() {
        state.put_json(table, key, &value)?;
    }
    Ok(())
}

/// Takes a pending fragment out of its table.
async fn take_pending<S: StateStore>(
    state: &mut StagedState<'_, S>,
    table: Table,
    key: Vec<u8>,
) -> Result<Option<Outcome>, ProcessError> {
    let pending = state.get_json::<Outcome>(table, &key).await?;
    if pending.is_some() {
        state.delete(table, key);
    }
    Ok(pending)
}

async fn on_decision<S: StateStore>(
    decision: &RouteDecided,
    state: &mut StagedState<'_, S>,
) -> Result<(), ProcessError> {
    let org = &decision.envelope.org;
    require_nonempty("org", org.as_str())?;
    require_nonempty("decision_id", decision.decision_id.as_str())?;
    require_nonempty("request_id", decision.request_id.as_str())?;
    let record_key = org_key(org, decision.decision_id.as_str());
    let version = (decision.envelope.event_time, decision.envelope.event_id);

    let mut outcome = Outcome::default();
    if let Some(existing) = state
        .get_json::<StoredDecision>(RECORDS, &record_key)
        .await?
    {
        if (existing.decided_at, existing.decision_event_id) >= version {
            // A redelivery, or an older event with the same decision id: keep what we have.
            return Ok(());
        }
        for (table, key) in existing.index_keys() {
            state.delete(table, key);
        }
        outcome = existing.outcome;
    }
    let decision_json = serde_json::to_value(decision)
        .map_err(|e| ProcessError::poison(format!("decision does not serialise to JSON: {e}")))?;

    if let Some(pending) = take_pending(state, PENDING_BY_DECISION, record_key.clone()).await? {
        outcome.merge(pending);
    }
    let request_key = org_key(org, decision.request_id.as_str());
    if let Some(pending) = take_pending(state, PENDING_BY_REQUEST, request_key.clone()).await? {
        outcome.merge(pending);
    }

    let stored = StoredDecision {
        org: org.clone(),
        decision_id: decision.decision_id.clone(),
        request_id: decision.request_id.clone(),
        session_id: decision.session_id.clone(),
        route: decision.route.clone(),
        decided_at: decision.envelope.event_time,
        decision_event_id: decision.envelope.event_id,
        decision: decision_json,
        outcome,
    };
    write_decision(state, &stored)?;

    // One decision per request is the gateway's rule; should two ever share a request id, the
    // greater decision id keeps the mapping whatever the order they arrive in.
    let mapped = state.get(BY_REQUEST, &request_key).await?;
    let keep_existing = mapped
        .as_deref()
        .is_some_and(|current| current >= decision.decision_id.as_str().as_bytes());
    if !keep_existing {
        state.put(
            BY_REQUEST,
            request_key,
            decision.decision_id.as_str().as_bytes().to_vec(),
        );
    }
    Ok(())
}

/// Merges a fragment into the record of `decision`, or parks it until the decision arrives.
async fn merge_by_decision<S: StateStore>(
    state: &mut StagedState<'_, S>,
    org: &OrgId,
    decision: &DecisionId,
    fragment: Outcome,
    now: i64,
) -> Result<(), ProcessError> {
    let key = org_key(org, decision.as_str());
    if let Some(mut stored) = state.get_json::<StoredDecision>(RECORDS, &key).await? {
        let before = stored.outcome.clone();
        stored.outcome.merge(fragment);
        if stored.outcome != before {
            write_decision(state, &stored)?;
        }
        return Ok(());
    }
    park(state, PENDING_BY_DECISION, key, fragment, now).await
}

/// Merges a fragment into the record of the decision of `request`, or parks it.
async fn merge_by_request<S: StateStore>(
    state: &mut StagedState<'_, S>,
    org: &OrgId,
    request: &RequestId,
    fragment: Outcome,
    now: i64,
) -> Result<(), ProcessError> {
    let request_key = org_key(org, request.as_str());
    if let Some(decision) = state.get(BY_REQUEST, &request_key).await? {
        let decision = String::from_utf8(decision)
            .map_err(|_| ProcessError::fatal("stored decision id is not UTF-8"))?;
        return merge_by_decision(state, org, &DecisionId::new(decision), fragment, now).await;
    }
    park(state, PENDING_BY_REQUEST, request_key, fragment, now).await
}

async fn park<S: StateStore>(
    state: &mut StagedState<'_, S>,
    table: Table,
    key: Vec<u8>,
    fragment: Outcome,
    now: i64,
) -> Result<(), ProcessError> {
    let parked = state.get_json::<Outcome>(table, &key).await?;
    if parked.is_none() {
        let ttl = i64::try_from(PENDING_TTL.as_micros()).unwrap_or(i64::MAX);
        EXPIRY
            .schedule(state, now.saturating_add(ttl), &expiry_item(table, &key))
            .await?;
    }
    let mut pending = parked.unwrap_or_default();
    let before = pending.clone();
    pending.merge(fragment);
    if pending != before {
        state.put_json(table, key, &pending)?;
    }
    Ok(())
}

async fn on_response<S: StateStore>(
    response: &ResponseCompleted,
    state: &mut StagedState<'_, S>,
    now: i64,
) -> Result<(), ProcessError> {
    let org = &response.envelope.org;
    require_nonempty("org", org.as_str())?;
    require_nonempty("decision_id", response.decision_id.as_str())?;
    // A shadow mirror carries the decision id of the request it mirrors; it is kept beside the
    // response the client got, never in its place.
    let outcome = Some(ResponseOutcome::from_event(response));
    let fragment = if response.shadow {
        Outcome {
            shadow_response: outcome,
            ..Outcome::default()
        }
    } else {
        Outcome {
            response: outcome,
            ..Outcome::default()
        }
    };
    merge_by_decision(state, org, &response.decision_id, fragment, now).await
}

async fn on_feedback<S: StateStore>(
    feedback: &FeedbackSubmitted,
    state: &mut StagedState<'_, S>,
    now: i64,
) -> Result<(), ProcessError> {
    // Session feedback is about many requests; session-NPS propagation turns it into
    // per-request feedback (`derived_from` set), which arrives here as request feedback.
    let Target::Request { request_id } = &feedback.target else {
        return Ok(());
    };
    let org = &feedback.envelope.org;
    require_nonempty("org", org.as_str())?;
    require_nonempty("request_id", request_id.as_str())?;
    let mut fragment = Outcome::default();
    fragment.scores.insert(
        format!("feedback:{}", feedback.feedback_id),
        ScoreEntry {
            source: feedback.source,
            score: feedback.normalized_score.get(),
            at: feedback.envelope.event_time,
            event_id: feedback.envelope.event_id,
        },
    );
    merge_by_request(state, org, request_id, fragment, now).await
}

async fn on_judged<S: StateStore>(
    judged: &JudgeScored,
    state: &mut StagedState<'_, S>,
    now: i64,
) -> Result<(), ProcessError> {
    let org = &judged.envelope.org;
    require_nonempty("org", org.as_str())?;
    require_nonempty("decision_id", judged.decision_id.as_str())?;
    let mut fragment = Outcome::default();
    match &judged.outcome {
        JudgeOutcome::Scored { score } => {
            fragment.scores.insert(
                format!("judge:{}", judged.judgement_id),
                ScoreEntry {
                    source: switchyard_events::FeedbackSource::Judge,
                    score: score.get(),
                    at: judged.envelope.event_time,
                    event_id: judged.envelope.event_id,
                },
            );
        }
        JudgeOutcome::Failed { .. } => {
            fragment
                .judge_failures
                .insert(judged.judgement_id.as_str().to_owned());
        }
    }
    merge_by_decision(state, org, &judged.decision_id, fragment, now).await
}

/// When parked fragments are dropped: items `[table tag][pending key]`.
const EXPIRY: Expiry = Expiry::new(PENDING_EXPIRY, SWEEP, SWEEP_KEY);

/// Returns the expiry item of a parked fragment: `[table tag][key]`.
fn expiry_item(table: Table, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(u8::from(table == PENDING_BY_REQUEST));
    out.extend_from_slice(key);
    out
}

/// Drops the parked fragments whose wait has run out at event time `now` (at most
/// [`SWEEP_LIMIT`] per input). Nothing is read while nothing is due.
async fn sweep<S: StateStore>(
    state: &mut StagedState<'_, S>,
    now: i64,
) -> Result<(), ProcessError> {
    for (_, item) in EXPIRY.due(state, now, SWEEP_LIMIT).await? {
        let table = match item.first() {
            Some(0) => PENDING_BY_DECISION,
            Some(1) => PENDING_BY_REQUEST,
            _ => continue,
        };
        // A decision never parks again once recorded, so a due item's row is the one it
        // scheduled (or already taken in by its decision).
        state.delete(table, item.get(1..).unwrap_or_default().to_vec());
    }
    Ok(())
}
