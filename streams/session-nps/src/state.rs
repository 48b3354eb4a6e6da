//! Tables, key layout and stored forms of session-NPS propagation.
//!
//! Every string component of a key is length-prefixed (`u32` big-endian length, then the UTF-8
//! bytes), so no id can run into the next one and a session's decisions are exactly the keys
//! that start with its encoded `[org][session]`.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | [`DECISIONS`] | `org, session, decision_id` | [`IndexedDecision`] (JSON) |
//! | [`RATINGS`] | `org, session` | [`StoredRating`] (JSON): the session's current rating |
//! | [`EXPIRY_INDEX`] | `due (sortable), 0 + decision key or 1 + session key` | empty: when an entry is forgotten (`switchyard_processor::expiry`) |
//! | [`SWEEP`] | `sweep` | how far [`EXPIRY_INDEX`] has been swept |
//!
//! A decision is forgotten `retention` after it was taken, a rating `retention` after its
//! window closed (both event time). The expiry tables are bookkeeping, not in [`TABLES`].

use serde::{Deserialize, Serialize};
use switchyard_events::{
    DecisionId, EventId, FeedbackId, ModelName, OrgId, RawScale, RequestId, RouteName, SessionId,
    Timestamp, TraceId, UnitScore,
};
use switchyard_store::Table;

/// The decisions of each session.
pub const DECISIONS: Table = Table::new("session_nps.decisions");
/// The current rating of each rated session.
pub const RATINGS: Table = Table::new("session_nps.ratings");

/// When entries of [`DECISIONS`] and [`RATINGS`] are forgotten.
pub const EXPIRY_INDEX: Table = Table::new("session_nps.expiry");
/// The sweep position of [`EXPIRY_INDEX`].
pub const SWEEP: Table = Table::new("session_nps.sweep");

/// Every table of the processor.
pub const TABLES: [Table; 2] = [DECISIONS, RATINGS];

/// Appends a length-prefixed string component.
fn push_component(key: &mut Vec<u8>, value: &str) {
    // Ids come from events, far below 4 GiB; saturating keeps the function total.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(value.as_bytes());
}

/// Returns `[org][session]`: the key of [`RATINGS`], the prefix of a session in [`DECISIONS`].
pub fn session_key(org: &OrgId, session: &SessionId) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + org.as_str().len() + session.as_str().len());
    push_component(&mut key, org.as_str());
    push_component(&mut key, session.as_str());
    key
}

/// Returns `[org][session][decision]`, the key of [`DECISIONS`].
pub fn decision_key(org: &OrgId, session: &SessionId, decision: &DecisionId) -> Vec<u8> {
    let mut key = session_key(org, session);
    push_component(&mut key, decision.as_str());
    key
}

/// What the index keeps of a decision: enough to address feedback to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedDecision {
    /// The decision id.
    pub decision_id: DecisionId,
    /// The request decided (the target of the propagated feedback).
    pub request_id: RequestId,
    /// When the decision was taken.
    pub decided_at: Timestamp,
    /// The `RouteDecided` event id: of two events with one decision id (which the gateway
    /// never sends), the greater `(decided_at, event_id)` is kept.
    pub event_id: EventId,
    /// The trace of the request.
    pub trace_id: TraceId,
    /// The route.
    pub route: RouteName,
    /// The model served.
    pub served_model: ModelName,
}

impl IndexedDecision {
    /// Returns the version that orders two events with one decision id.
    pub fn version(&self) -> (Timestamp, EventId) {
        (self.decided_at, self.event_id)
    }
}

/// A session's current rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRating {
    /// The rating's feedback id (as recorded by ingress).
    pub feedback_id: FeedbackId,
    /// The rating's event id: `derived_from` of every emission.
    pub event_id: EventId,
    /// When the session was rated: the event time of every emission.
    pub rated_at: Timestamp,
    /// The score as given.
    pub raw_score: f64,
    /// Its scale.
    pub raw_scale: RawScale,
    /// The normalised score.
    pub normalized_score: UnitScore,
}

impl StoredRating {
    /// Returns the version that orders two ratings of one session (the greater is current).
    pub fn version(&self) -> (Timestamp, EventId) {
        (self.rated_at, self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_do_not_run_into_each_other() {
        assert_ne!(
            session_key(&"a".into(), &"bc".into()),
            session_key(&"ab".into(), &"c".into())
        );
        let org = OrgId::new("acme");
        let session = SessionId::new("s");
        assert!(
            decision_key(&org, &session, &DecisionId::new("dec-1"))
                .starts_with(&session_key(&org, &session))
        );
        // A session whose id extends another's is not inside its prefix.
        assert!(
            !decision_key(&org, &SessionId::new("s2"), &DecisionId::new("dec-1"))
                .starts_with(&session_key(&org, &session))
        );
    }
}
