//! Tables, key layouts and stored forms of the projector's state.
//!
//! # Ownership
//!
//! A processor may only write state owned by its input's partition, so that a partition's state
//! moves with it between members and is a function of that partition's inputs alone. The
//! request-path topics (`decisions`, `responses`, `feedback`, `judge-scores`) are keyed by
//! session id, else request id, so every event about a request lands in the same partition
//! number of each topic; the route topics (`pins`, `constraints`, `control`) are keyed by
//! `org/route`. Hence:
//!
//! | table | key | owner | value |
//! | --- | --- | --- | --- |
//! | [`REQUESTS`] | `org, request_id` | the request's partition | `RequestRecord`: the request's facts and what they contribute to the windows |
//! | [`EXPIRY`] | `partition, expires_at, org, request_id` | that partition | empty: when a request's join state is dropped |
//! | [`CELLS`] | `org, route, model, partition, bucket_start` | that partition | [`WindowCell`](crate::stats::WindowCell) |
//! | [`HINTS`] | `org, route, partition` | that partition | `BaselineHint`: the newest decision's baseline |
//! | [`EXPIRY_CURSORS`] | `partition` | that partition | how far [`EXPIRY`] has been swept (i64 BE) |
//! | [`WATERMARKS`] | `partition` | that partition (of every input topic) | newest event time folded (i64 BE) |
//! | [`OFFSETS`] | `topic code, partition` | that partition | no longer written: read once to seed [`PROGRESS`] in a store written before it |
//! | [`PROGRESS`] | (one key) | the merge step | [`Progress`]: newest event time folded and next offset of every input partition |
//! | [`ROUTES`] | `org, route` | the route's partition of the route topics | `RouteControl` |
//! | [`ROLLBACK`] | `org, route` | the merge step | `RollbackState` |
//! | [`ORGS`] | `org` | the merge step | `OrgState` (and the learning pool's, under [`POOL_ORG`]) |
//! | [`POOL`] | `org` | the merge step | `PoolShare`: what a sharing org puts in the learning pool |
//!
//! The window cells of one (org, route, model) are split by partition and merged when a
//! snapshot is built: that *merge step* reads every partition's state and writes the tables it
//! owns, so the projector's consumer group runs as one member (see the crate documentation).
//!
//! # Reads that stay bounded
//!
//! The store is an LSM tree: an overwritten key keeps its older versions, and a deleted key a
//! tombstone, until a flush or a compaction drops them, and a range scan steps over all of them.
//! So no per-input read scans a table that every input rewrites or deletes from:
//! - the snapshot's "now", version and source offsets come from the single [`PROGRESS`] entry
//!   (one point read), not from scanning a key per input partition;
//! - a request's [`EXPIRY`] entry is written once, when its join state is created, at the
//!   request's expiry time then; when it comes due the sweep re-indexes it at its current
//!   expiry time if newer facts arrived, instead of moving it on every fact. The sweep starts
//!   at its partition's [`EXPIRY_CURSORS`] time, so the tombstones it left behind are never
//!   stepped over again, and every entry is indexed at or after the partition's watermark, so
//!   none lands behind the cursor.
//!
//! # Key layout
//!
//! String components are length-prefixed (`u32` big-endian length, then UTF-8), so no id runs
//! into the next and an org's keys are exactly those starting with its encoded id. Times are
//! big-endian with the sign bit flipped, so they sort by time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_events::{
    Constraints, EventId, FeedbackSource, ModelName, OrgId, Percent, PinReason, RouteMode,
    RouteName, Timestamp,
};
use switchyard_store::Table;

use crate::stats::Signal;

/// A request's joined facts and window contributions, by org and request id.
pub const REQUESTS: Table = Table::new("projector.requests");
/// When each request's join state is dropped, by partition and time.
pub const EXPIRY: Table = Table::new("projector.expiry");
/// Window cells by org, route, model, partition and time bucket.
pub const CELLS: Table = Table::new("projector.cells");
/// The baseline of each route's newest decision, by org, route and partition.
pub const HINTS: Table = Table::new("projector.baseline_hints");
/// The newest event time folded, by partition.
pub const WATERMARKS: Table = Table::new("projector.watermarks");
/// The next input offset, by topic and partition: stores written before [`PROGRESS`] only.
pub const OFFSETS: Table = Table::new("projector.offsets");
/// How far each partition's [`EXPIRY`] entries have been swept, by partition.
pub const EXPIRY_CURSORS: Table = Table::new("projector.expiry_cursors");
/// The inputs folded: newest event time and next offset of every input partition (one entry).
pub const PROGRESS: Table = Table::new("projector.progress");
/// Each route's configuration, constraints and pin from its events, by org and route.
pub const ROUTES: Table = Table::new("projector.routes");
/// Each route's auto-rollback state, by org and route.
pub const ROLLBACK: Table = Table::new("projector.rollback");
/// Each org's publishing state.
pub const ORGS: Table = Table::new("projector.orgs");
/// Each sharing org's share of the learning pool.
pub const POOL: Table = Table::new("projector.pool");

/// Every table of the projector.
pub const TABLES: [Table; 12] = [
    REQUESTS,
    EXPIRY,
    EXPIRY_CURSORS,
    CELLS,
    HINTS,
    WATERMARKS,
    OFFSETS,
    PROGRESS,
    ROUTES,
    ROLLBACK,
    ORGS,
    POOL,
];

/// The key of the [`PROGRESS`] entry.
pub(crate) const PROGRESS_KEY: &[u8] = b"";

/// The inputs folded so far, over every partition: what a snapshot's window time, `version`
/// and `source_offsets` are computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The newest event time folded on any partition.
    pub(crate) watermark: Option<i64>,
    /// The next offset of every input (topic code, partition).
    pub(crate) next: BTreeMap<(u8, u32), u64>,
}

impl Progress {
    /// Records an input at `offset` with event time `time`.
    pub(crate) fn fold(&mut self, topic_code: u8, partition: u32, offset: u64, time: i64) {
        self.watermark = Some(self.watermark.map_or(time, |w| w.max(time)));
        let next = self.next.entry((topic_code, partition)).or_insert(0);
        *next = (*next).max(offset.saturating_add(1));
    }

    /// `[watermark i64 BE, i64::MIN for none]` then `[topic code][partition u32 BE][next u64 BE]`
    /// per input partition, in order.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 13 * self.next.len());
        out.extend_from_slice(&self.watermark.unwrap_or(i64::MIN).to_be_bytes());
        for ((code, partition), next) in &self.next {
            out.push(*code);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&next.to_be_bytes());
        }
        out
    }

    /// Inverts [`Progress::encode`].
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (watermark, mut rest) = bytes.split_first_chunk::<8>()?;
        let watermark = i64::from_be_bytes(*watermark);
        let mut next = BTreeMap::new();
        while !rest.is_empty() {
            let (code, tail) = rest.split_first()?;
            let (partition, tail) = tail.split_first_chunk::<4>()?;
            let (offset, tail) = tail.split_first_chunk::<8>()?;
            next.insert(
                (*code, u32::from_be_bytes(*partition)),
                u64::from_be_bytes(*offset),
            );
            rest = tail;
        }
        Some(Progress {
            watermark: (watermark != i64::MIN).then_some(watermark),
            next,
        })
    }
}

/// The org the learning pool's snapshots are published as on the `routing-table` topic: not a
/// valid org id (`switchyard keys create --org` allows `a-z 0-9 - _`), so no org's table.
pub const POOL_ORG: &str = "*pool";

/// Appends a length-prefixed string component.
pub(crate) fn push_str(key: &mut Vec<u8>, value: &str) {
    // Ids come from events, far below 4 GiB; saturating keeps the function total.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(value.as_bytes());
}

/// Splits a length-prefixed string component off the front of `bytes`.
pub(crate) fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((std::str::from_utf8(value).ok()?, rest))
}

/// Returns the order-preserving encoding of a signed time.
pub(crate) fn sortable(micros: i64) -> [u8; 8] {
    ((micros as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverts [`sortable`].
pub(crate) fn unsortable(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// Returns `[org]`.
pub(crate) fn org_key(org: &OrgId) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + org.as_str().len());
    push_str(&mut key, org.as_str());
    key
}

/// Returns `[org][id]`: keys of [`REQUESTS`], [`ROUTES`], [`ROLLBACK`].
pub(crate) fn org_id_key(org: &OrgId, id: &str) -> Vec<u8> {
    let mut key = org_key(org);
    push_str(&mut key, id);
    key
}

/// Returns the [`EXPIRY`] key of a request.
pub(crate) fn expiry_key(partition: u32, at: i64, org: &OrgId, request: &str) -> Vec<u8> {
    let mut key = partition.to_be_bytes().to_vec();
    key.extend_from_slice(&sortable(at));
    push_str(&mut key, org.as_str());
    push_str(&mut key, request);
    key
}

/// Splits an [`EXPIRY`] key into its time, org and request id.
pub(crate) fn parse_expiry_key(key: &[u8]) -> Option<(i64, OrgId, String)> {
    let (_partition, rest) = key.split_first_chunk::<4>()?;
    let (at, rest) = rest.split_first_chunk::<8>()?;
    let (org, rest) = take_str(rest)?;
    let (request, rest) = take_str(rest)?;
    rest.is_empty()
        .then(|| (unsortable(*at), OrgId::new(org), request.to_owned()))
}

/// Returns the [`CELLS`] prefix of one (org, route, model, partition).
pub(crate) fn cell_prefix(org: &OrgId, route: &str, model: &str, partition: u32) -> Vec<u8> {
    let mut key = org_key(org);
    push_str(&mut key, route);
    push_str(&mut key, model);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// Returns a [`CELLS`] key.
pub(crate) fn cell_key(
    org: &OrgId,
    route: &str,
    model: &str,
    partition: u32,
    bucket: i64,
) -> Vec<u8> {
    let mut key = cell_prefix(org, route, model, partition);
    key.extend_from_slice(&sortable(bucket));
    key
}

/// The parts of a [`CELLS`] key after the org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CellKey {
    pub(crate) route: String,
    pub(crate) model: String,
    pub(crate) partition: u32,
    pub(crate) bucket: i64,
}

/// Parses a [`CELLS`] key of the org whose [`org_key`] is `prefix`.
pub(crate) fn parse_cell_key(prefix: &[u8], key: &[u8]) -> Option<CellKey> {
    let rest = key.strip_prefix(prefix)?;
    let (route, rest) = take_str(rest)?;
    let (model, rest) = take_str(rest)?;
    let (partition, rest) = rest.split_first_chunk::<4>()?;
    let (bucket, rest) = rest.split_first_chunk::<8>()?;
    rest.is_empty().then(|| CellKey {
        route: route.to_owned(),
        model: model.to_owned(),
        partition: u32::from_be_bytes(*partition),
        bucket: unsortable(*bucket),
    })
}

/// Returns a [`HINTS`] key.
pub(crate) fn hint_key(org: &OrgId, route: &str, partition: u32) -> Vec<u8> {
    let mut key = org_id_key(org, route);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// One contribution of a request to the windows: a signal in the cell of (route, model,
/// bucket). A request's contributions are a pure function of its facts
/// ([`RequestRecord::contributions`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Contribution {
    pub(crate) route: RouteName,
    pub(crate) model: ModelName,
    /// Start of the time bucket, microseconds.
    pub(crate) bucket: i64,
    pub(crate) signal: Signal,
}

/// The facts of a request's `RouteDecided`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DecisionFacts {
    pub(crate) route: RouteName,
    pub(crate) served_model: ModelName,
    pub(crate) baseline_model: ModelName,
    pub(crate) at: Timestamp,
    pub(crate) event_id: EventId,
}

/// How a request ended, as the windows count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Ending {
    /// A complete answer.
    Success,
    /// An error or a timeout.
    Error,
    /// Truncated or refused: a completed request that is neither.
    Neither,
    /// The client went away: not counted.
    Cancelled,
}

/// The facts of a request's `ResponseCompleted` (or of its shadow mirror).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResponseFacts {
    pub(crate) ending: Ending,
    pub(crate) served_model: ModelName,
    pub(crate) cost_nano_usd: Option<u64>,
    pub(crate) latency_ms: u64,
    pub(crate) at: Timestamp,
    pub(crate) event_id: EventId,
}

/// One quality observation about a request (a feedback id or a judgement id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScoreFacts {
    pub(crate) source: FeedbackSource,
    /// The score's quality bin; `None` for a judge run that produced no score.
    pub(crate) bin: Option<u16>,
    /// The route and model the observation is about when it names them itself: a judge score
    /// (a mirror's judgement names the shadow model) or a rating of a (route, model) pair;
    /// other feedback is attributed through the decision.
    pub(crate) judged: Option<(RouteName, ModelName)>,
    pub(crate) at: Timestamp,
    pub(crate) event_id: EventId,
}

/// Keeps the newer of two versions of a fact: by event time, then event id.
pub(crate) trait Versioned {
    fn version(&self) -> (Timestamp, EventId);
}

impl Versioned for DecisionFacts {
    fn version(&self) -> (Timestamp, EventId) {
        (self.at, self.event_id)
    }
}

impl Versioned for ResponseFacts {
    fn version(&self) -> (Timestamp, EventId) {
        (self.at, self.event_id)
    }
}

impl Versioned for ScoreFacts {
    fn version(&self) -> (Timestamp, EventId) {
        (self.at, self.event_id)
    }
}

/// Sets `slot` to `fact` when the slot is empty or holds an older version; returns whether it
/// changed. Redelivering a fact, or delivering an older one late, changes nothing.
pub(crate) fn keep_newer<T: Versioned>(slot: &mut Option<T>, fact: T) -> bool {
    match slot {
        Some(current) if current.version() >= fact.version() => false,
        _ => {
            *slot = Some(fact);
            true
        }
    }
}

/// Everything known about one request, and what it currently contributes to the windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RequestRecord {
    /// The partition the request's events arrive on.
    pub(crate) partition: u32,
    #[serde(default)]
    pub(crate) decision: Option<DecisionFacts>,
    #[serde(default)]
    pub(crate) response: Option<ResponseFacts>,
    /// The shadow mirror's response (`ResponseCompleted` with `shadow` set).
    #[serde(default)]
    pub(crate) mirror: Option<ResponseFacts>,
    /// Quality observations by `feedback:<id>` / `judge:<id>`; the newest version of each id
    /// wins, so a replaced rating retracts the old one.
    #[serde(default)]
    pub(crate) scores: BTreeMap<String, ScoreFacts>,
    /// The contributions applied to the window cells, sorted.
    #[serde(default)]
    pub(crate) folded: Vec<Contribution>,
    /// The [`EXPIRY`] time indexed for this record.
    #[serde(default)]
    pub(crate) expires_at: Option<i64>,
}

impl RequestRecord {
    /// Returns the newest event time among the request's facts.
    pub(crate) fn last_fact_at(&self) -> Option<Timestamp> {
        let decision = self.decision.as_ref().map(|d| d.at);
        let response = self.response.as_ref().map(|r| r.at);
        let mirror = self.mirror.as_ref().map(|r| r.at);
        let scores = self.scores.values().map(|s| s.at);
        [decision, response, mirror]
            .into_iter()
            .flatten()
            .chain(scores)
            .max()
    }

    /// Returns what the request contributes to the windows, sorted: a pure function of its
    /// facts, so the windows do not depend on the order the facts arrived in.
    ///
    /// - The request itself (once decision and response are both known), in the bucket of the
    ///   response's time, on the decision's route and served model: a success, an error, or
    ///   neither (truncated, refused); a cancelled request counts nothing. A response served
    ///   by another model than the decision's (a fallback) is an error of the decision's model,
    ///   and its cost and latency, which are the fallback's, are not counted.
    /// - The shadow mirror, likewise, on the mirror's model.
    /// - Each feedback observation, in the bucket of its own time, on the decision's route and
    ///   the model that answered (the response's, else the decision's served model).
    /// - Each judge score on the route and model the judge names (no decision needed: a
    ///   mirror's judgement names the shadow model), and a pair rating on the pair it names.
    pub(crate) fn contributions(&self, bucket_micros: i64) -> Vec<Contribution> {
        let bucket = |at: Timestamp| at.as_micros().div_euclid(bucket_micros) * bucket_micros;
        let mut out = Vec::new();
        if let Some(decision) = &self.decision {
            if let Some(response) = &self.response
                && let Some(signal) = request_signal(response, &decision.served_model)
            {
                out.push(Contribution {
                    route: decision.route.clone(),
                    model: decision.served_model.clone(),
                    bucket: bucket(response.at),
                    signal,
                });
            }
            if let Some(mirror) = &self.mirror
                && let Some(signal) = request_signal(mirror, &mirror.served_model)
            {
                out.push(Contribution {
                    route: decision.route.clone(),
                    model: mirror.served_model.clone(),
                    bucket: bucket(mirror.at),
                    signal,
                });
            }
            let answered_by = self
                .response
                .as_ref()
                .map_or(&decision.served_model, |r| &r.served_model);
            for score in self.scores.values() {
                if score.judged.is_none()
                    && let Some(bin) = score.bin
                {
                    out.push(Contribution {
                        route: decision.route.clone(),
                        model: answered_by.clone(),
                        bucket: bucket(score.at),
                        signal: Signal::Score {
                            source: score.source,
                            bin,
                        },
                    });
                }
            }
        }
        for score in self.scores.values() {
            if let (Some((route, model)), Some(bin)) = (&score.judged, score.bin) {
                out.push(Contribution {
                    route: route.clone(),
                    model: model.clone(),
                    bucket: bucket(score.at),
                    signal: Signal::Score {
                        source: score.source,
                        bin,
                    },
                });
            }
        }
        out.sort();
        out
    }
}

/// The request signal of a response attributed to `model`, `None` when it counts nothing.
fn request_signal(response: &ResponseFacts, model: &ModelName) -> Option<Signal> {
    let fell_back = response.served_model != *model;
    let (success, error) = match response.ending {
        Ending::Cancelled => return None,
        _ if fell_back => (false, true),
        Ending::Success => (true, false),
        Ending::Error => (false, true),
        Ending::Neither => (false, false),
    };
    Some(Signal::Request {
        success,
        error,
        cost_nano_usd: if fell_back {
            None
        } else {
            response.cost_nano_usd
        },
        latency_ms: (!fell_back).then_some(response.latency_ms),
    })
}

/// The baseline named by a route's newest decision on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BaselineHint {
    pub(crate) at: Timestamp,
    pub(crate) baseline: ModelName,
}

/// A route's configuration from its newest `RouteConfigured`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ConfiguredFacts {
    pub(crate) baseline: ModelName,
    pub(crate) candidates: Vec<ModelName>,
    pub(crate) mode: RouteMode,
    pub(crate) canary_percent: Option<Percent>,
    pub(crate) deleted: bool,
    pub(crate) sequence: i64,
    /// The route's category, when the event names one.
    #[serde(default)]
    pub(crate) category: Option<String>,
}

/// The head of a route's verified constraints chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ConstraintsHead {
    pub(crate) sequence: i64,
    pub(crate) hash: String,
    pub(crate) constraints: Constraints,
}

/// A route's pin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PinFacts {
    pub(crate) model: ModelName,
    pub(crate) reason: PinReason,
    pub(crate) pinned_by: String,
    pub(crate) expires_at: Option<Timestamp>,
}

impl PinFacts {
    /// Returns whether the pin holds at `now` (event time).
    pub(crate) fn in_force(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// What a route's events say, for one org.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RouteControl {
    #[serde(default)]
    pub(crate) configured: Option<ConfiguredFacts>,
    #[serde(default)]
    pub(crate) constraints: Option<ConstraintsHead>,
    #[serde(default)]
    pub(crate) pin: Option<PinFacts>,
    /// Offset of the last `pins` record applied (the topic is ordered per route).
    #[serde(default)]
    pub(crate) pins_offset: Option<u64>,
    /// Event id of the last `pins` record applied.
    #[serde(default)]
    pub(crate) pins_event: Option<EventId>,
}

/// A route's automatic rollback.
///
/// `offsets` hold, per model, the regressions already accounted for: a rollback fires when a
/// model's regressions in the window *beyond its offset* reach `rollback_threshold`. The offset
/// is taken at an unpin (the regressions that caused the last rollback, or happened while
/// pinned, do not fire it again) and follows the count down as regressions leave the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RollbackState {
    /// A rollback fired and no unpin followed yet.
    #[serde(default)]
    pub(crate) fired: bool,
    /// An unpin arrived: take the offsets at the next evaluation.
    #[serde(default)]
    pub(crate) rearm_pending: bool,
    /// The pin this projector emitted and has not read back from the `pins` topic yet.
    #[serde(default)]
    pub(crate) emitted: Option<ModelName>,
    #[serde(default)]
    pub(crate) offsets: BTreeMap<String, u64>,
}

/// An org's publishing state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrgState {
    /// Event time of the last snapshot published.
    pub(crate) published_at: Option<i64>,
    /// Its version.
    pub(crate) version: i64,
    /// For the learning pool: a share changed since the last pool snapshot.
    #[serde(default)]
    pub(crate) dirty: bool,
}

/// What a sharing org puts in the learning pool: its window's quality observations (every
/// org source merged), per route category and model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PoolShare {
    /// Category → model → quality histogram.
    pub(crate) observations: BTreeMap<String, BTreeMap<String, crate::stats::Counts<u16>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_time() {
        let org = OrgId::new("acme");
        let prefix = org_key(&org);
        let key = cell_key(&org, "support", "p/m", 3, -3_600_000_000);
        assert_eq!(
            parse_cell_key(&prefix, &key),
            Some(CellKey {
                route: "support".into(),
                model: "p/m".into(),
                partition: 3,
                bucket: -3_600_000_000
            })
        );
        assert!(cell_key(&org, "r", "m", 0, -5) < cell_key(&org, "r", "m", 0, 7));
        assert!(expiry_key(1, 10, &org, "z") < expiry_key(1, 11, &org, "a"));
        assert_eq!(
            parse_expiry_key(&expiry_key(2, 99, &org, "req")),
            Some((99, org.clone(), "req".into()))
        );
        assert_eq!(unsortable(sortable(i64::MIN)), i64::MIN);
        assert_eq!(unsortable(sortable(i64::MAX)), i64::MAX);
    }
}
