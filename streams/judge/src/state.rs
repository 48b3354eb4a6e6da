//! Tables, key layout and stored forms of the judge.
//!
//! String components of keys are length-prefixed (`u32` big-endian length, then the UTF-8
//! bytes), so no id runs into the next one and a request's waiting responses are exactly the
//! keys that start with its encoded `[org][request]`.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | [`PROMPTS`] | `org, request_id` | [`StoredPrompt`]: a sampled request's route and prompt |
//! | [`WAITING`] | `org, request_id, response request_id` | [`StoredResponse`]: a response read before its request |
//! | [`JUDGED`] | `org, response request_id` | [`JudgedMark`]: the response was handled |
//! | [`DAYS`] | `org, day` (`i64` big-endian, days since the epoch) | [`DayUsage`]: spend and counts |
//! | [`EXPIRY`] | `expires_at` (sortable `i64`), table tag, row key | empty: what to drop when |
//! | [`SWEEP`] | `sweep` | how far [`EXPIRY`] has been swept (`switchyard_processor::expiry`) |
//!
//! Rows of [`PROMPTS`], [`WAITING`] and [`JUDGED`] expire by event time: each carries its
//! `expires_at`, and an [`EXPIRY`] entry points at it. Every input sweeps the entries due at its
//! event time (a bounded number per input), deleting a row only when its `expires_at` still
//! matches (a row written again later has a later entry of its own). [`DAYS`] rows are kept.

use serde::{Deserialize, Serialize};
use switchyard_events::{
    DecisionId, EventId, ModelName, OrgId, PartitionKey, RequestId, RouteName, SessionId,
    Timestamp, TraceId,
};
use switchyard_store::Table;

/// Sampled requests waiting for their responses.
pub const PROMPTS: Table = Table::new("judge.prompts");
/// Sampled responses read before their requests.
pub const WAITING: Table = Table::new("judge.waiting");
/// Responses already handled (judged, failed or skipped): a redelivery does nothing.
pub const JUDGED: Table = Table::new("judge.judged");
/// Spend and counts per org and UTC day of event time.
pub const DAYS: Table = Table::new("judge.days");
/// When rows of the other tables expire.
pub const EXPIRY: Table = Table::new("judge.expiry");
/// How far [`EXPIRY`] has been swept (`switchyard_processor::expiry`; bookkeeping that depends
/// on when sweeps ran, so not in [`TABLES`]).
pub const SWEEP: Table = Table::new("judge.sweep");

/// Every table of the processor.
pub const TABLES: [Table; 5] = [PROMPTS, WAITING, JUDGED, DAYS, EXPIRY];

/// The tables whose rows expire, by their tag in [`EXPIRY`] keys.
pub(crate) const EXPIRING: [(u8, Table); 3] = [(1, PROMPTS), (2, WAITING), (3, JUDGED)];

/// Appends a length-prefixed string component.
fn push_component(key: &mut Vec<u8>, value: &str) {
    // Ids come from events, far below 4 GiB; saturating keeps the function total.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(value.as_bytes());
}

/// Returns `[org][request]`: the key of [`PROMPTS`] and of [`JUDGED`] (with the response's
/// request id), the prefix of a request's responses in [`WAITING`].
pub fn request_key(org: &OrgId, request: &RequestId) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + org.as_str().len() + request.as_str().len());
    push_component(&mut key, org.as_str());
    push_component(&mut key, request.as_str());
    key
}

/// Returns `[org][request][response request]`, the key of [`WAITING`].
pub fn waiting_key(org: &OrgId, request: &RequestId, response: &RequestId) -> Vec<u8> {
    let mut key = request_key(org, request);
    push_component(&mut key, response.as_str());
    key
}

/// Returns `[org][day]`, the key of [`DAYS`].
pub fn day_key(org: &OrgId, day: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(12 + org.as_str().len());
    push_component(&mut key, org.as_str());
    key.extend_from_slice(&day.to_be_bytes());
    key
}

/// A sampled request, kept until its responses are judged or it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPrompt {
    /// The request's route (`default` when it named none).
    pub route: RouteName,
    /// The conversation as ingress recorded it; `None` when the route does not capture text
    /// or the request is not sampled.
    pub prompt_text: Option<String>,
    /// Whether the request is sampled on its route. An unsampled request is kept (without
    /// text) when it is sampled at the largest rate of any route, so that its responses, which
    /// do not name the route, are dropped on arrival instead of waiting for it.
    pub sampled: bool,
    /// When the request was received.
    pub requested_at: Timestamp,
    /// When the row expires (event time, microseconds).
    pub expires_at: i64,
}

/// What the judge needs of a response: kept while it waits for its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The `ResponseCompleted` event id.
    pub event_id: EventId,
    /// Its event time: the judgement's event time and the day its spend counts on.
    pub responded_at: Timestamp,
    /// The trace of the request.
    pub trace_id: TraceId,
    /// The response's partition key, which the judgement reuses.
    pub partition_key: PartitionKey,
    /// The response's request id (the original's with `#mirror` for a mirror).
    pub request_id: RequestId,
    /// The decision it served.
    pub decision_id: DecisionId,
    /// The client session, if any.
    pub session_id: Option<SessionId>,
    /// The model that answered (the shadow model for a mirror): the judged model.
    pub served_model: ModelName,
    /// Whether it is a shadow mirror.
    pub shadow: bool,
    /// Whether the answer was cut short (status `truncated`).
    pub truncated: bool,
    /// The answer as ingress recorded it; `None` when the route does not capture text.
    pub completion_text: Option<String>,
    /// When the row expires (event time, microseconds), while waiting.
    pub expires_at: i64,
}

/// How a response was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    /// A `JudgeScored` with a score was emitted.
    Scored,
    /// A `JudgeScored` with a failure was emitted.
    Failed,
    /// Not judged: the day's spend cap was reached.
    SkippedOverCap,
    /// Not judged: the judge model is of the judged model's family.
    SkippedSelf,
    /// Not judged: the prompt or the completion text was not recorded.
    SkippedNoText,
}

/// A response the judge has handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedMark {
    /// How.
    pub handled: Handled,
    /// When the row expires (event time, microseconds).
    pub expires_at: i64,
}

/// The judge's spend and counts for one org on one UTC day of event time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayUsage {
    /// USD spent on judge calls with a known price.
    pub spent_usd: f64,
    /// Judge calls whose price is unknown (the cap counts as reached after one).
    pub unpriced_calls: u64,
    /// Judge calls made.
    pub calls: u64,
    /// Responses scored.
    pub scored: u64,
    /// Responses whose judging failed (recorded as a failure).
    pub failed: u64,
    /// Sampled responses not judged because the cap was reached.
    pub skipped_over_cap: u64,
    /// Sampled responses not judged because of self-preference (`self_preference = "skip"`).
    pub skipped_self: u64,
    /// Sampled responses not judged because a text was not recorded.
    pub skipped_no_text: u64,
}

impl DayUsage {
    /// Returns whether judging has to stop for the day under `cap_usd`.
    pub fn cap_reached(&self, cap_usd: f64) -> bool {
        self.spent_usd >= cap_usd || self.unpriced_calls > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_run_into_each_other_and_nest() {
        let org = OrgId::new("acme");
        assert_ne!(
            request_key(&"a".into(), &"bc".into()),
            request_key(&"ab".into(), &"c".into())
        );
        let request = RequestId::new("r1");
        assert!(
            waiting_key(&org, &request, &RequestId::new("r1#mirror"))
                .starts_with(&request_key(&org, &request))
        );
        assert!(
            !waiting_key(&org, &RequestId::new("r12"), &RequestId::new("r12"))
                .starts_with(&request_key(&org, &request))
        );
    }
}
