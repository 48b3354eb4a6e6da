//! Tables, key layouts and stored forms of the decisions read model.
//!
//! # Key layout
//!
//! Every string component is length-prefixed (`u32` big-endian length, then the UTF-8 bytes),
//! so no id can run into the next component and an org's keys are exactly those starting with
//! its encoded id. Times are stored *newest first*: `!(micros as u64 ^ 1 << 63)` big-endian,
//! which sorts descending by time, so a forward prefix scan lists the newest decisions first.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | [`RECORDS`] | `org, decision_id` | the record (JSON): the decision's facts, the `RouteDecided` as JSON, the outcome |
//! | [`BY_REQUEST`] | `org, request_id` | decision id (UTF-8) |
//! | [`BY_TIME`] | `org, newest_first(decided_at), decision_id` | index facts (JSON): `route`, `latency_ms`, `quality_mean` |
//! | [`BY_ROUTE`] | `org, route, newest_first(decided_at), decision_id` | index facts |
//! | [`BY_SESSION`] | `org, session, newest_first(decided_at), decision_id` | index facts |
//! | [`PENDING_BY_DECISION`] | `org, decision_id` | outcome (JSON): a response or judge scores that arrived before their decision |
//! | [`PENDING_BY_REQUEST`] | `org, request_id` | outcome (JSON): feedback that arrived before its decision |
//! | [`PENDING_EXPIRY`] | `expires_at (sortable), table tag, pending key` | empty: when a parked fragment is dropped (`PENDING_TTL`; `switchyard_processor::expiry`) |
//! | [`SWEEP`] | [`SWEEP_KEY`] | how far [`PENDING_EXPIRY`] has been swept (cursor, next due; i64 BE each) |
//!
//! An outcome holds the response (if any), the shadow mirror's response (if any), the scores
//! keyed `feedback:<feedback id>` / `judge:<judgement id>`, and the ids of failed judge runs;
//! the record's summary is computed from it, so a redelivered score replaces itself instead of
//! counting twice.
//!
//! Index values carry what the unindexed filters test (route, latency, quality), so a filtered
//! scan reads records only for the entries it returns. They are rewritten, in the same batch as
//! the record, whenever the record's outcome changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use switchyard_events::{
    DecisionId, EventId, FeedbackSource, OrgId, RequestId, RouteName, SessionId, Timestamp,
};
use switchyard_store::Table;

use crate::record::{DecisionRecord, FeedbackSummary, ResponseOutcome, SourceSummary};

/// One record per decision.
pub const RECORDS: Table = Table::new("decisions.records");
/// Request id → decision id.
pub const BY_REQUEST: Table = Table::new("decisions.by_request");
/// Decisions of an org, newest first.
pub const BY_TIME: Table = Table::new("decisions.by_time");
/// Decisions of an org's route, newest first.
pub const BY_ROUTE: Table = Table::new("decisions.by_route");
/// Decisions of an org's session, newest first.
pub const BY_SESSION: Table = Table::new("decisions.by_session");
/// Outcomes (response, judge scores) waiting for their decision, by decision id.
pub const PENDING_BY_DECISION: Table = Table::new("decisions.pending_by_decision");
/// Feedback waiting for its decision, by request id.
pub const PENDING_BY_REQUEST: Table = Table::new("decisions.pending_by_request");

/// When each parked fragment is dropped (bookkeeping, not part of [`TABLES`]: which fragment
/// parked first, and so the time, depends on the order the topics are read in).
pub const PENDING_EXPIRY: Table = Table::new("decisions.pending_expiry");
/// The sweep of [`PENDING_EXPIRY`] (bookkeeping, not part of [`TABLES`]).
pub const SWEEP: Table = Table::new("decisions.sweep");
/// The one key of [`SWEEP`].
pub const SWEEP_KEY: &[u8] = b"sweep";

/// Every table of the read model.
pub const TABLES: [Table; 7] = [
    RECORDS,
    BY_REQUEST,
    BY_TIME,
    BY_ROUTE,
    BY_SESSION,
    PENDING_BY_DECISION,
    PENDING_BY_REQUEST,
];

/// Appends a length-prefixed string component.
pub(crate) fn push_component(key: &mut Vec<u8>, value: &str) {
    // Ids come from events, far below 4 GiB; saturating keeps the function total.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(value.as_bytes());
}

/// Splits a length-prefixed string component off the front of `bytes`.
pub(crate) fn take_component(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((std::str::from_utf8(value).ok()?, rest))
}

/// Returns the newest-first encoding of a time.
pub(crate) fn newest_first(time: Timestamp) -> [u8; 8] {
    let ordered = (time.as_micros() as u64) ^ (1 << 63);
    (!ordered).to_be_bytes()
}

/// Inverts [`newest_first`].
pub(crate) fn time_of_newest_first(bytes: [u8; 8]) -> Timestamp {
    let ordered = !u64::from_be_bytes(bytes);
    Timestamp::from_micros((ordered ^ (1 << 63)) as i64)
}

/// Returns `[org]`.
pub(crate) fn org_prefix(org: &OrgId) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + org.as_str().len());
    push_component(&mut key, org.as_str());
    key
}

/// Returns `[org][id]`, the key of [`RECORDS`], [`BY_REQUEST`] and the pending tables.
pub(crate) fn org_key(org: &OrgId, id: &str) -> Vec<u8> {
    let mut key = org_prefix(org);
    push_component(&mut key, id);
    key
}

/// Which index a scan uses; also the tag of its cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    Time,
    Route,
    Session,
}

impl Index {
    pub(crate) const fn table(self) -> Table {
        match self {
            Index::Time => BY_TIME,
            Index::Route => BY_ROUTE,
            Index::Session => BY_SESSION,
        }
    }

    pub(crate) const fn tag(self) -> u8 {
        match self {
            Index::Time => 0,
            Index::Route => 1,
            Index::Session => 2,
        }
    }
}

/// Returns the key prefix of an index scan: `[org]`, `[org][route]` or `[org][session]`.
pub(crate) fn index_prefix(org: &OrgId, qualifier: Option<&str>) -> Vec<u8> {
    let mut key = org_prefix(org);
    if let Some(qualifier) = qualifier {
        push_component(&mut key, qualifier);
    }
    key
}

/// Returns an index key: `prefix, newest_first(time), decision_id`.
pub(crate) fn index_key(prefix: &[u8], time: Timestamp, decision: &DecisionId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&newest_first(time));
    push_component(&mut key, decision.as_str());
    key
}

/// Splits the time and decision id off an index key, given its scan prefix.
pub(crate) fn parse_index_key(prefix: &[u8], key: &[u8]) -> Option<(Timestamp, DecisionId)> {
    let rest = key.strip_prefix(prefix)?;
    let (time, rest) = rest.split_first_chunk::<8>()?;
    let (decision, rest) = take_component(rest)?;
    rest.is_empty()
        .then(|| (time_of_newest_first(*time), DecisionId::new(decision)))
}

/// What an index entry says about its decision, for filtering without reading the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexValue {
    pub(crate) route: RouteName,
    pub(crate) latency_ms: Option<i64>,
    pub(crate) quality_mean: Option<f64>,
}

/// One normalised score, kept per id so a redelivery does not count twice and the mean does not
/// depend on arrival order (it is summed in id order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScoreEntry {
    pub(crate) source: FeedbackSource,
    pub(crate) score: f64,
    pub(crate) at: Timestamp,
    pub(crate) event_id: EventId,
}

impl ScoreEntry {
    fn version(&self) -> (Timestamp, EventId) {
        (self.at, self.event_id)
    }
}

/// What can arrive about a decision besides the decision itself. Merging is commutative,
/// associative and idempotent, so the result does not depend on arrival order or redelivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    /// The response; of two (which the gateway never sends), the later `(time, event id)`.
    #[serde(default)]
    pub(crate) response: Option<ResponseOutcome>,
    /// The shadow mirror's response (`ResponseCompleted` with `shadow` set), by the same rule.
    /// Kept apart so that a mirror never stands in for the response the client got.
    #[serde(default)]
    pub(crate) shadow_response: Option<ResponseOutcome>,
    /// Scores by `feedback:<feedback id>` / `judge:<judgement id>`.
    #[serde(default)]
    pub(crate) scores: BTreeMap<String, ScoreEntry>,
    /// Judgement ids of judge runs that produced no score.
    #[serde(default)]
    pub(crate) judge_failures: BTreeSet<String>,
}

impl Outcome {
    /// Merges `other` into `self`.
    pub(crate) fn merge(&mut self, other: Outcome) {
        if let Some(response) = other.response {
            Self::merge_newer(&mut self.response, response);
        }
        if let Some(response) = other.shadow_response {
            Self::merge_newer(&mut self.shadow_response, response);
        }
        for (key, entry) in other.scores {
            self.merge_score(key, entry);
        }
        self.judge_failures.extend(other.judge_failures);
    }

    /// Keeps the later `(time, event id)` of `slot` and `response`.
    fn merge_newer(slot: &mut Option<ResponseOutcome>, response: ResponseOutcome) {
        let newer = slot.as_ref().is_none_or(|current| {
            (response.completed_at, response.event_id) > (current.completed_at, current.event_id)
        });
        if newer {
            *slot = Some(response);
        }
    }

    pub(crate) fn merge_score(&mut self, key: String, entry: ScoreEntry) {
        match self.scores.get(&key) {
            Some(current) if current.version() >= entry.version() => {}
            _ => {
                self.scores.insert(key, entry);
            }
        }
    }

    /// Returns count and mean overall and per source, summed in key order.
    pub(crate) fn summary(&self) -> FeedbackSummary {
        let mut total = (0u64, 0f64);
        let mut by_source: BTreeMap<FeedbackSource, (u64, f64)> = BTreeMap::new();
        for entry in self.scores.values() {
            total.0 += 1;
            total.1 += entry.score;
            let source = by_source.entry(entry.source).or_default();
            source.0 += 1;
            source.1 += entry.score;
        }
        FeedbackSummary {
            count: total.0,
            mean: (total.0 > 0).then(|| total.1 / total.0 as f64),
            by_source: by_source
                .into_iter()
                .map(|(source, (count, sum))| {
                    (
                        source,
                        SourceSummary {
                            count,
                            mean: sum / count as f64,
                        },
                    )
                })
                .collect(),
            judge_failures: self.judge_failures.len() as u64,
        }
    }
}

/// The stored form of a decision: the record's facts plus the per-id scores behind its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredDecision {
    pub(crate) org: OrgId,
    pub(crate) decision_id: DecisionId,
    pub(crate) request_id: RequestId,
    pub(crate) session_id: Option<SessionId>,
    pub(crate) route: RouteName,
    pub(crate) decided_at: Timestamp,
    /// The `RouteDecided` event id: of two decisions with one id, the later `(time, id)` wins.
    pub(crate) decision_event_id: EventId,
    pub(crate) decision: serde_json::Value,
    pub(crate) outcome: Outcome,
}

impl StoredDecision {
    pub(crate) fn to_record(&self) -> DecisionRecord {
        DecisionRecord {
            org: self.org.clone(),
            decision_id: self.decision_id.clone(),
            request_id: self.request_id.clone(),
            session_id: self.session_id.clone(),
            route: self.route.clone(),
            decided_at: self.decided_at,
            decision: self.decision.clone(),
            response: self.outcome.response.clone(),
            shadow_response: self.outcome.shadow_response.clone(),
            feedback: self.outcome.summary(),
        }
    }

    pub(crate) fn index_value(&self) -> IndexValue {
        IndexValue {
            route: self.route.clone(),
            latency_ms: self.outcome.response.as_ref().map(|r| r.latency_ms),
            quality_mean: self.outcome.summary().mean,
        }
    }

    /// Returns the index entries of this decision.
    pub(crate) fn index_keys(&self) -> Vec<(Table, Vec<u8>)> {
        let mut keys = vec![
            (
                BY_TIME,
                index_key(
                    &index_prefix(&self.org, None),
                    self.decided_at,
                    &self.decision_id,
                ),
            ),
            (
                BY_ROUTE,
                index_key(
                    &index_prefix(&self.org, Some(self.route.as_str())),
                    self.decided_at,
                    &self.decision_id,
                ),
            ),
        ];
        if let Some(session) = &self.session_id {
            keys.push((
                BY_SESSION,
                index_key(
                    &index_prefix(&self.org, Some(session.as_str())),
                    self.decided_at,
                    &self.decision_id,
                ),
            ));
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_sorts_descending_and_round_trips() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_764_000_000_123_456, i64::MAX];
        for pair in times.windows(2) {
            let (older, newer) = (
                Timestamp::from_micros(pair[0]),
                Timestamp::from_micros(pair[1]),
            );
            assert!(newest_first(newer) < newest_first(older));
        }
        for t in times {
            let t = Timestamp::from_micros(t);
            assert_eq!(time_of_newest_first(newest_first(t)), t);
        }
    }

    #[test]
    fn components_do_not_run_into_each_other() {
        assert_ne!(org_key(&"a".into(), "bc"), org_key(&"ab".into(), "c"));
        let key = index_key(
            &index_prefix(&"acme".into(), Some("support")),
            Timestamp::from_micros(42),
            &DecisionId::new("dec-1"),
        );
        let prefix = index_prefix(&"acme".into(), Some("support"));
        assert_eq!(
            parse_index_key(&prefix, &key),
            Some((Timestamp::from_micros(42), DecisionId::new("dec-1")))
        );
    }
}
