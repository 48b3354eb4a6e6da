//! The read model's public types: a decision trace joined with its outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_events::{
    Attempt, DecisionId, EventId, FeedbackSource, ModelName, OrgId, ProviderName, RequestId,
    ResponseCompleted, ResponseStatus, RouteName, SessionId, Timestamp, Usage, Usd,
};

/// One routing decision with everything known about how it turned out.
///
/// Serialises to JSON as returned by `GET /v1/decisions/{id}`; times are microseconds since the
/// Unix epoch (UTC), like every event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The organisation that owns the decision.
    pub org: OrgId,
    /// The decision id (`x-switchyard-decision-id`).
    pub decision_id: DecisionId,
    /// The request id (`x-request-id`, and the `id` of the chat completion).
    pub request_id: RequestId,
    /// The client session, when the client sent one.
    pub session_id: Option<SessionId>,
    /// The route.
    pub route: RouteName,
    /// When the decision was taken (the `RouteDecided` event time).
    pub decided_at: Timestamp,
    /// The whole `RouteDecided` event as serde JSON (the trace: candidates, signals,
    /// constraints, evidence, explanation, signature, ...). Kept as JSON rather than the typed
    /// event so that records written before a schema version added fields stay readable.
    pub decision: serde_json::Value,
    /// How the request ended; `None` until its `ResponseCompleted` arrives.
    pub response: Option<ResponseOutcome>,
    /// How the shadow-mode mirror of the request ended (its `ResponseCompleted` with `shadow`
    /// set: the router's choice, called in the background, whose answer never reached the
    /// client); `None` when the request was not mirrored or the mirror has not completed. It
    /// never replaces `response`.
    #[serde(default)]
    pub shadow_response: Option<ResponseOutcome>,
    /// Feedback and judge scores about the request.
    pub feedback: FeedbackSummary,
}

/// The facts of the `ResponseCompleted` that served a decision (or of its shadow mirror).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseOutcome {
    /// The response event's id.
    pub event_id: EventId,
    /// When the response completed.
    pub completed_at: Timestamp,
    /// The model that produced the response (after fallbacks).
    pub served_model: ModelName,
    /// The provider that produced it.
    pub provider: ProviderName,
    /// How the request ended.
    pub status: ResponseStatus,
    /// The gateway's error code when the status is not `ok`.
    pub error_code: Option<String>,
    /// The provider's finish reason.
    pub finish_reason: Option<String>,
    /// End-to-end latency in milliseconds.
    pub latency_ms: i64,
    /// Time to first token, for streamed responses.
    pub ttft_ms: Option<i64>,
    /// Token usage.
    pub usage: Usage,
    /// The cost; `None` when no price is known.
    pub cost_usd: Option<Usd>,
    /// Every try, in order.
    pub attempts: Vec<Attempt>,
}

impl ResponseOutcome {
    /// Returns the outcome facts of a response event.
    pub fn from_event(response: &ResponseCompleted) -> Self {
        Self {
            event_id: response.envelope.event_id,
            completed_at: response.envelope.event_time,
            served_model: response.served_model.clone(),
            provider: response.provider.clone(),
            status: response.status,
            error_code: response.error_code.clone(),
            finish_reason: response.finish_reason.clone(),
            latency_ms: response.latency_ms,
            ttft_ms: response.ttft_ms,
            usage: response.usage,
            cost_usd: response.cost_usd,
            attempts: response.attempts.clone(),
        }
    }
}

/// Normalised quality scores (`0..=1`) received for a request: feedback of every source and
/// LLM-judge scores (source `judge`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSummary {
    /// Scores received, all sources.
    pub count: u64,
    /// Mean of all scores; `None` without any.
    pub mean: Option<f64>,
    /// Count and mean per source.
    pub by_source: BTreeMap<FeedbackSource, SourceSummary>,
    /// Judge runs that produced no score.
    pub judge_failures: u64,
}

/// Count and mean of one source's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// Scores received.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
}
