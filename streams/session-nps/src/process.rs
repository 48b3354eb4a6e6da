//! The fold: decisions into the session index, ratings into the session's current rating, and
//! one propagated feedback event per (current rating, covered decision).
//!
//! Pure over its state and inputs: no clock, no I/O besides the staged state. See the crate
//! documentation for the rules; this module is their implementation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use switchyard_events::{
    DecisionId, Envelope, Event, FeedbackId, FeedbackSource, FeedbackSubmitted, OrgId,
    PartitionKey, RouteDecided, SessionId, Target, Timestamp,
};
use switchyard_processor::expiry::Expiry;
use switchyard_processor::{
    Input, Output, ProcessError, Processor, StagedState, Topic, require_nonempty,
};
use switchyard_store::{StateStore, Table};

use crate::state::{
    DECISIONS, EXPIRY_INDEX, IndexedDecision, RATINGS, SWEEP, StoredRating, decision_key,
    session_key,
};

/// When index entries are forgotten: items `[0][decision key]` and `[1][session key]`.
const EXPIRY: Expiry = Expiry::new(EXPIRY_INDEX, SWEEP, b"sweep");

/// Most expired entries dropped per input.
const SWEEP_LIMIT: usize = 16;

/// The processor's consumer group (and checkpoint namespace).
pub const GROUP: &str = "session-nps";

/// The topics the processor consumes.
pub const INPUTS: &[Topic] = &[Topic::Decisions, Topic::Feedback];

/// Index entries read per store scan when a rating walks its session's decisions.
const SCAN_PAGE: usize = 512;

/// The label of a propagated event naming the rating's feedback id.
pub const SESSION_FEEDBACK_LABEL: &str = "session_feedback_id";

/// Settings of session-NPS propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionNpsConfig {
    /// How long after a rating (in event time) a decision of the session still receives it.
    /// Decisions taken before the rating always do.
    pub window: Duration,
    /// How long (event time) a decision stays in its session's index for a rating to reach
    /// it, and a rating stays past its window; then both are forgotten, so the index does not
    /// grow forever.
    pub retention: Duration,
}

impl SessionNpsConfig {
    /// The default window: 24 hours.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
    /// The default retention: 7 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
}

impl Default for SessionNpsConfig {
    fn default() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
            retention: Self::DEFAULT_RETENTION,
        }
    }
}

/// Session-NPS propagation as a [`Processor`]: run it in a
/// [`ProcessorRuntime`](switchyard_processor::ProcessorRuntime).
#[derive(Debug, Clone, Copy)]
pub struct SessionNpsProcessor {
    /// The window in microseconds of event time.
    window_micros: i64,
    /// The retention in microseconds of event time.
    retention_micros: i64,
}

impl SessionNpsProcessor {
    /// Returns the processor for `config`.
    pub fn new(config: SessionNpsConfig) -> Self {
        Self {
            window_micros: i64::try_from(config.window.as_micros()).unwrap_or(i64::MAX),
            retention_micros: i64::try_from(config.retention.as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// When an indexed decision is forgotten.
    fn decision_expires(&self, decision: &IndexedDecision) -> i64 {
        decision
            .decided_at
            .as_micros()
            .saturating_add(self.retention_micros)
    }

    /// When a rating is forgotten: the retention after its window closes.
    fn rating_expires(&self, rating: &StoredRating) -> i64 {
        rating
            .rated_at
            .as_micros()
            .saturating_add(self.window_micros)
            .saturating_add(self.retention_micros)
    }

    /// Forgets the entries due at event time `now`: each is dropped only if it is still the
    /// entry that was scheduled (a newer version of a decision, or a newer rating, scheduled
    /// its own time).
    async fn sweep<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        now: i64,
    ) -> Result<(), ProcessError> {
        for (at, item) in EXPIRY.due(state, now, SWEEP_LIMIT).await? {
            let key = item.get(1..).unwrap_or_default();
            match item.first() {
                Some(0) => {
                    if let Some(d) = state.get_json::<IndexedDecision>(DECISIONS, key).await?
                        && self.decision_expires(&d) == at
                    {
                        state.delete(DECISIONS, key.to_vec());
                    }
                }
                Some(1) => {
                    if let Some(r) = state.get_json::<StoredRating>(RATINGS, key).await?
                        && self.rating_expires(&r) == at
                    {
                        state.delete(RATINGS, key.to_vec());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Returns whether `rating` applies to a decision taken at `decided_at`: the decision is
    /// not later than the rating plus the window.
    pub fn covers(&self, rating: &StoredRating, decided_at: Timestamp) -> bool {
        decided_at.as_micros()
            <= rating
                .rated_at
                .as_micros()
                .saturating_add(self.window_micros)
    }
}

impl Default for SessionNpsProcessor {
    fn default() -> Self {
        Self::new(SessionNpsConfig::default())
    }
}

impl Processor for SessionNpsProcessor {
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
        out: &mut Output,
    ) -> Result<(), ProcessError> {
        self.sweep(state, input.event_time().as_micros()).await?;
        match &input.event {
            Event::RouteDecided(decision) => self.on_decision(input, decision, state, out).await,
            Event::FeedbackSubmitted(feedback) => {
                self.on_feedback(input, feedback, state, out).await
            }
            // Other kinds never reach these topics; nothing to fold.
            _ => Ok(()),
        }
    }
}

/// Returns the feedback id of the NPS feedback propagated to decision `decision` of `session`
/// of `org`: the same whichever rating of the session it carries, so a later rating replaces
/// an earlier one downstream (latest wins per feedback id).
///
/// `nps-` and 32 hex digits: the first 128 bits of SHA-256 over a version tag and the three
/// ids, length-prefixed.
pub fn derived_feedback_id(org: &OrgId, session: &SessionId, decision: &DecisionId) -> FeedbackId {
    let mut hasher = Sha256::new();
    for part in [
        "switchyard/session-nps/v1",
        org.as_str(),
        session.as_str(),
        decision.as_str(),
    ] {
        let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let prefix = digest.get(..16).unwrap_or_default();
    FeedbackId::new(format!("nps-{}", hex::encode(prefix)))
}

/// Checks that a session's event was keyed by its session id, so that it sits in the partition
/// of the member that owns the session's state.
fn require_session_key(input: &Input, session: &SessionId) -> Result<(), ProcessError> {
    if input.key == session.as_str().as_bytes() {
        Ok(())
    } else {
        Err(ProcessError::poison(format!(
            "{} of session `{session}` is keyed `{}`, not by its session: it is outside the \
             session's partition",
            input.event.kind(),
            String::from_utf8_lossy(&input.key)
        )))
    }
}

fn parse_json<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T, ProcessError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ProcessError::fatal(format!("stored {table} entry does not parse: {e}")))
}

/// Builds the NPS feedback about one decision carried by `rating`. The event id is set by
/// [`Output::emit`].
fn propagated(
    org: &OrgId,
    session: &SessionId,
    rating: &StoredRating,
    decision: &IndexedDecision,
) -> FeedbackSubmitted {
    FeedbackSubmitted {
        envelope: Envelope {
            event_id: rating.event_id,
            org: org.clone(),
            // The rating's time, not the decision's: downstream keeps the latest entry per
            // feedback id by event time, which must order ratings, not arrivals.
            event_time: rating.rated_at,
            trace_id: decision.trace_id.clone(),
            partition_key: PartitionKey::session_or_request(Some(session), &decision.request_id),
        },
        feedback_id: derived_feedback_id(org, session, &decision.decision_id),
        target: Target::Request {
            request_id: decision.request_id.clone(),
        },
        source: FeedbackSource::Nps,
        raw_score: rating.raw_score,
        raw_scale: rating.raw_scale,
        normalized_score: rating.normalized_score,
        idempotency_key: None,
        comment: None,
        derived_from: Some(rating.event_id),
        route: Some(decision.route.clone()),
        model: Some(decision.served_model.clone()),
        // One label only: the codec encodes Avro maps in hash order, so two entries would
        // make a re-emission differ in bytes (not in content). The session is the partition key.
        labels: BTreeMap::from([(
            SESSION_FEEDBACK_LABEL.to_owned(),
            rating.feedback_id.as_str().to_owned(),
        )]),
    }
}

impl SessionNpsProcessor {
    async fn on_decision<S: StateStore>(
        &self,
        input: &Input,
        decision: &RouteDecided,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> Result<(), ProcessError> {
        // A decision outside any session can never receive a session rating.
        let Some(session) = &decision.session_id else {
            return Ok(());
        };
        let org = &decision.envelope.org;
        require_nonempty("org", org.as_str())?;
        require_nonempty("session_id", session.as_str())?;
        require_nonempty("decision_id", decision.decision_id.as_str())?;
        require_nonempty("request_id", decision.request_id.as_str())?;
        require_session_key(input, session)?;

        let indexed = IndexedDecision {
            decision_id: decision.decision_id.clone(),
            request_id: decision.request_id.clone(),
            decided_at: decision.envelope.event_time,
            event_id: decision.envelope.event_id,
            trace_id: decision.envelope.trace_id.clone(),
            route: decision.route.clone(),
            served_model: decision.served_model.clone(),
        };
        let key = decision_key(org, session, &decision.decision_id);
        if let Some(existing) = state.get_json::<IndexedDecision>(DECISIONS, &key).await?
            && existing.version() >= indexed.version()
        {
            // A redelivery (or the older of two events with one decision id): already done.
            return Ok(());
        }
        let mut item = vec![0];
        item.extend_from_slice(&key);
        EXPIRY
            .schedule(state, self.decision_expires(&indexed), &item)
            .await?;
        state.put_json(DECISIONS, key, &indexed)?;

        let rating = state
            .get_json::<StoredRating>(RATINGS, &session_key(org, session))
            .await?;
        if let Some(rating) = rating
            && self.covers(&rating, indexed.decided_at)
        {
            // The purpose names the rating: the same decision event may be processed again
            // after a crash under a newer rating, and must then get another event id.
            out.emit(
                &format!("nps/{}", rating.event_id),
                propagated(org, session, &rating, &indexed),
            );
        }
        Ok(())
    }

    async fn on_feedback<S: StateStore>(
        &self,
        input: &Input,
        feedback: &FeedbackSubmitted,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> Result<(), ProcessError> {
        // Request feedback (this processor's own outputs among it) is not a session rating.
        let Target::Session {
            session_id: session,
        } = &feedback.target
        else {
            return Ok(());
        };
        if feedback.source != FeedbackSource::Nps {
            return Ok(());
        }
        let org = &feedback.envelope.org;
        require_nonempty("org", org.as_str())?;
        require_nonempty("session_id", session.as_str())?;
        require_session_key(input, session)?;

        let rating = StoredRating {
            feedback_id: feedback.feedback_id.clone(),
            event_id: feedback.envelope.event_id,
            rated_at: feedback.envelope.event_time,
            raw_score: feedback.raw_score,
            raw_scale: feedback.raw_scale,
            normalized_score: feedback.normalized_score,
        };
        let prefix = session_key(org, session);
        if let Some(current) = state.get_json::<StoredRating>(RATINGS, &prefix).await?
            && current.version() >= rating.version()
        {
            // A redelivery, or an older rating delivered late: the current one stands.
            return Ok(());
        }
        state.put_json(RATINGS, prefix.clone(), &rating)?;
        let mut item = vec![1];
        item.extend_from_slice(&prefix);
        EXPIRY
            .schedule(state, self.rating_expires(&rating), &item)
            .await?;

        // Every indexed decision of the session the rating covers, in key order.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = state
                .scan_prefix(DECISIONS, &prefix, after.as_deref(), SCAN_PAGE)
                .await?;
            for (_, value) in &page {
                let decision: IndexedDecision = parse_json(DECISIONS, value)?;
                if self.covers(&rating, decision.decided_at) {
                    // The purpose names the decision event: one output per decision, and
                    // the id covers everything the output is built from.
                    out.emit(
                        &format!("nps/{}", decision.event_id),
                        propagated(org, session, &rating, &decision),
                    );
                }
            }
            if page.len() < SCAN_PAGE {
                return Ok(());
            }
            after = page.last().map(|(key, _)| key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_events::{EventId, RawScale, UnitScore};

    use super::*;

    fn rating_at(micros: i64) -> StoredRating {
        StoredRating {
            feedback_id: FeedbackId::new("fb"),
            event_id: EventId::now_v7(),
            rated_at: Timestamp::from_micros(micros),
            raw_score: 9.0,
            raw_scale: RawScale::Nps,
            normalized_score: UnitScore::MAX,
        }
    }

    #[test]
    fn the_window_is_inclusive_and_covers_everything_before() {
        let processor = SessionNpsProcessor::new(SessionNpsConfig {
            window: Duration::from_secs(10),
            ..SessionNpsConfig::default()
        });
        let rating = rating_at(1_000_000_000);
        assert!(processor.covers(&rating, Timestamp::from_micros(i64::MIN)));
        assert!(processor.covers(&rating, Timestamp::from_micros(1_000_000_000)));
        assert!(processor.covers(&rating, Timestamp::from_micros(1_010_000_000)));
        assert!(!processor.covers(&rating, Timestamp::from_micros(1_010_000_001)));
        // No overflow at the end of time, nor with a huge window.
        let huge = SessionNpsProcessor::new(SessionNpsConfig {
            window: Duration::MAX,
            ..SessionNpsConfig::default()
        });
        assert!(huge.covers(&rating_at(i64::MAX), Timestamp::from_micros(i64::MAX)));
    }

    #[test]
    fn derived_feedback_ids_depend_on_org_session_and_decision_only() {
        let id = |o: &str, s: &str, d: &str| {
            derived_feedback_id(&OrgId::new(o), &SessionId::new(s), &DecisionId::new(d))
        };
        assert_eq!(id("acme", "s1", "dec-1"), id("acme", "s1", "dec-1"));
        assert_ne!(id("acme", "s1", "dec-1"), id("acme", "s1", "dec-2"));
        assert_ne!(id("acme", "s1", "dec-1"), id("globex", "s1", "dec-1"));
        assert_ne!(id("acme", "s1", "dec-1"), id("acme", "s2", "dec-1"));
        // Components cannot run into each other.
        assert_ne!(id("acme", "s1d", "ec-1"), id("acme", "s1", "dec-1"));
        let text = id("acme", "s1", "dec-1").into_string();
        assert!(text.starts_with("nps-") && text.len() == 36, "{text}");
    }
}
