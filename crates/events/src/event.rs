//! The domain types of every event, the closed [`Event`] enum and [`EventKind`].
//!
//! The types follow the latest schema version of each event (`schemas/avro/`). Where the schema
//! has two fields that must agree, the Rust type keeps one and derives the other (a judge result
//! is `Scored { score }` or `Failed { reason }`; `price_known` is `cost_usd.is_some()`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{
    ApiKeyId, DecisionId, EventId, FeedbackId, JudgementId, ModelName, OrgId, PartitionKey,
    ProviderName, RequestId, RouteName, SessionId, Timestamp, TraceId,
};
use crate::score::{Percent, Phase, RawScale, UnitScore, Usd};
use crate::topic::Topic;

/// The envelope every event carries: identity, owner, time and ordering.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7, minted at ingress or derived from the input event's id.
    pub event_id: EventId,
    /// The organisation the event belongs to.
    pub org: OrgId,
    /// When the fact happened.
    pub event_time: Timestamp,
    /// The trace of the originating request.
    pub trace_id: TraceId,
    /// The log partition key (see [`PartitionKey`]'s constructors).
    pub partition_key: PartitionKey,
}

/// Declares a fieldless enum that mirrors an Avro enum: symbols in schema order, serde in snake_case.
macro_rules! symbol_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $symbol:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $symbol)] $variant),+
        }

        impl $name {
            /// Every value, in schema symbol order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Returns the Avro symbol.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $symbol),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

symbol_enum!(
    /// How a request ended.
    ResponseStatus {
        /// A complete answer.
        Ok => "ok",
        /// The provider or the gateway failed.
        Error => "error",
        /// The answer was cut short (length limit).
        Truncated => "truncated",
        /// The model refused or a content filter blocked the answer.
        Refused => "refused",
        /// No answer in time.
        Timeout => "timeout",
        /// The client went away.
        Cancelled => "cancelled",
    }
);

symbol_enum!(
    /// How a route applies the router's choice.
    RouteMode {
        /// The baseline is served; nothing is routed.
        Off => "off",
        /// The baseline is served; the router's choice runs alongside for comparison.
        Shadow => "shadow",
        /// A share of requests is served by the router's choice.
        Canary => "canary",
        /// The router's choice is served.
        Live => "live",
    }
);

symbol_enum!(
    /// Where a quality signal comes from.
    FeedbackSource {
        /// A session NPS answer.
        Nps => "nps",
        /// An LLM judge.
        Judge => "judge",
        /// An admin rating.
        Admin => "admin",
        /// An end user (thumbs, stars).
        User => "user",
        /// A benchmark prior.
        Benchmark => "benchmark",
    }
);

symbol_enum!(
    /// Why a route was pinned.
    PinReason {
        /// An admin pinned it.
        Manual => "manual",
        /// Switchyard rolled back after regressions.
        AutoRollback => "auto_rollback",
        /// Pinned during an incident.
        Incident => "incident",
    }
);

/// The model a client asked for: `"auto"` (let the router choose) or a named model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RequestedModel {
    /// `model: "auto"`.
    Auto,
    /// A specific model.
    Model(ModelName),
}

impl RequestedModel {
    /// The wire text of [`RequestedModel::Auto`].
    pub const AUTO: &'static str = "auto";

    /// Returns the wire text.
    pub fn as_str(&self) -> &str {
        match self {
            RequestedModel::Auto => Self::AUTO,
            RequestedModel::Model(model) => model.as_str(),
        }
    }
}

impl From<String> for RequestedModel {
    fn from(value: String) -> Self {
        if value == Self::AUTO {
            RequestedModel::Auto
        } else {
            RequestedModel::Model(ModelName::new(value))
        }
    }
}

impl From<RequestedModel> for String {
    fn from(value: RequestedModel) -> Self {
        match value {
            RequestedModel::Auto => RequestedModel::AUTO.to_owned(),
            RequestedModel::Model(model) => model.into_string(),
        }
    }
}

/// The gateway accepted an OpenAI-compatible request (topic `requests`, schema v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestReceived {
    /// The envelope.
    pub envelope: Envelope,
    /// The request id.
    pub request_id: RequestId,
    /// The client session, when the client sent one.
    pub session_id: Option<SessionId>,
    /// The named route, when any.
    pub route: Option<RouteName>,
    /// The API key that authenticated the request.
    pub api_key_id: ApiKeyId,
    /// `auto` or a model.
    pub requested_model: RequestedModel,
    /// Whether a streamed response was requested.
    pub stream: bool,
    /// Number of messages.
    pub message_count: i32,
    /// Characters of input across all messages.
    pub input_chars: i64,
    /// Estimated input tokens.
    pub estimated_input_tokens: i64,
    /// Whether tools are declared.
    pub has_tools: bool,
    /// Whether a JSON-schema response format is requested.
    pub wants_json_schema: bool,
    /// Whether any message carries an image.
    pub has_images: bool,
    /// The client's output token limit.
    pub max_tokens: Option<i64>,
    /// Preferred language from Accept-Language.
    pub language: Option<String>,
    /// The prompt, only when the org opted in to capture.
    pub prompt_text: Option<String>,
    /// Client-supplied metadata.
    pub metadata: BTreeMap<String, String>,
    /// The client SDK user agent (added in v2).
    pub client: Option<String>,
}

/// Token usage reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Input tokens served from the provider's cache.
    pub cached_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
}

/// One try against one provider/model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attempt {
    /// The provider tried.
    pub provider: ProviderName,
    /// The model tried.
    pub model: ModelName,
    /// What happened (e.g. `ok`, `http_error`, `timeout`).
    pub outcome: String,
    /// The provider's HTTP status, when one was received.
    pub status_code: Option<i32>,
    /// Latency of this try.
    pub latency_ms: i64,
    /// Detail for a failed try.
    pub reason: Option<String>,
}

/// The gateway finished answering a request (topic `responses`, schema v2), or finished a
/// shadow-mode mirror of one (`shadow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseCompleted {
    /// The envelope.
    pub envelope: Envelope,
    /// The request id.
    pub request_id: RequestId,
    /// The decision this response served.
    pub decision_id: DecisionId,
    /// The client session, when any.
    pub session_id: Option<SessionId>,
    /// The model that produced the response (after fallbacks).
    pub served_model: ModelName,
    /// The provider that produced the response.
    pub provider: ProviderName,
    /// How the request ended.
    pub status: ResponseStatus,
    /// The provider's finish reason.
    pub finish_reason: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// The cost; `None` means no price is known (never a made-up zero). On the wire
    /// `price_known` is written as `cost_usd.is_some()`.
    pub cost_usd: Option<Usd>,
    /// End-to-end latency.
    pub latency_ms: i64,
    /// Time to first token, for streamed responses.
    pub ttft_ms: Option<i64>,
    /// Every try, in order.
    pub attempts: Vec<Attempt>,
    /// Gateway error code when the status is not ok.
    pub error_code: Option<String>,
    /// The completion, only when the org opted in to capture.
    pub completion_text: Option<String>,
    /// Whether this is a shadow-mode mirror: the request sent also to the router's choice, billed
    /// and judged, whose answer never reached the user. A mirror's `request_id` is the original
    /// request id with [`ResponseCompleted::MIRROR_SUFFIX`] appended, its `decision_id` the
    /// original decision's and its `served_model` the decision's shadow model (added in v2).
    pub shadow: bool,
}

impl ResponseCompleted {
    /// Appended to the original request id to form a mirror's `request_id`.
    pub const MIRROR_SUFFIX: &str = "#mirror";

    /// Returns the `request_id` of the mirror of request `original`.
    pub fn mirror_request_id(original: &RequestId) -> RequestId {
        RequestId::new(format!("{}{}", original.as_str(), Self::MIRROR_SUFFIX))
    }

    /// Returns whether a price was known for the served model.
    pub const fn price_known(&self) -> bool {
        self.cost_usd.is_some()
    }
}

/// A model the router considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The model.
    pub model: ModelName,
    /// Final score (none when filtered before scoring).
    pub score: Option<f64>,
    /// Success-rate component.
    pub success: Option<f64>,
    /// Feedback (quality) component.
    pub feedback: Option<f64>,
    /// Cost component.
    pub cost: Option<f64>,
    /// Why the candidate was excluded, when it was.
    pub filtered_reason: Option<String>,
    /// Estimated cost of this request on the model, when a price is known.
    pub estimated_cost_usd: Option<Usd>,
}

/// How one feedback source contributed to the chosen model's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalContribution {
    /// The source.
    pub source: FeedbackSource,
    /// Its weight.
    pub weight: f64,
    /// Its value, when there were samples.
    pub value: Option<f64>,
    /// Weighted contribution to the score.
    pub contribution: f64,
    /// Samples behind the value.
    pub samples: i64,
}

/// One constraint evaluated for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstraintCheck {
    /// The constraint (e.g. `max_cost_per_request`).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The configured limit.
    pub limit: Option<f64>,
    /// The observed value.
    pub observed: Option<f64>,
    /// Detail.
    pub detail: Option<String>,
}

/// The evidence behind a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Samples considered.
    pub samples: i64,
    /// Score gap between the chosen model and the runner-up.
    pub score_gap: Option<f64>,
    /// Variance of the chosen model's quality.
    pub variance: Option<f64>,
    /// Regressions observed per bucket label (e.g. `0-5%`).
    pub regressions: BTreeMap<String, i64>,
}

/// The pin in force when a decision was taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PinInfo {
    /// The pinned model.
    pub model: ModelName,
    /// Why.
    pub reason: PinReason,
    /// Who pinned.
    pub pinned_by: String,
}

/// What the router knew about a request when it chose: the inputs of capability filtering and cost
/// estimation, so a decision can be recomputed from its trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestFeatures {
    /// Estimated input tokens.
    pub input_tokens: i64,
    /// The output token budget used for cost estimation.
    pub max_output_tokens: i64,
    /// Whether tools are declared.
    pub tools: bool,
    /// Whether a JSON-schema response format is requested.
    pub json_schema: bool,
    /// Whether any message carries an image.
    pub vision: bool,
    /// Whether a streamed response is requested.
    pub stream: bool,
}

/// The weights of the score components ([`Candidate`]'s `success`, `feedback` and `cost`) the
/// router combined into each candidate's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreWeights {
    /// Weight of the success-rate component.
    pub success: f64,
    /// Weight of the feedback (quality) component.
    pub feedback: f64,
    /// Weight of the cost component.
    pub cost: f64,
}

impl Default for ScoreWeights {
    /// Returns the schema default: 0.4 success, 0.4 feedback, 0.2 cost.
    fn default() -> Self {
        Self {
            success: 0.4,
            feedback: 0.4,
            cost: 0.2,
        }
    }
}

/// The router decided which model serves a request (topic `decisions`, schema v5), with the full
/// trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecided {
    /// The envelope.
    pub envelope: Envelope,
    /// The decision id.
    pub decision_id: DecisionId,
    /// The request decided.
    pub request_id: RequestId,
    /// The client session, when any.
    pub session_id: Option<SessionId>,
    /// The route.
    pub route: RouteName,
    /// The route's mode.
    pub mode: RouteMode,
    /// What the router chose.
    pub chosen_model: ModelName,
    /// The route's baseline.
    pub baseline_model: ModelName,
    /// What is served.
    pub served_model: ModelName,
    /// Machine-readable reason code.
    pub reason: String,
    /// Learning phase.
    pub phase: Phase,
    /// Confidence in the choice.
    pub confidence: UnitScore,
    /// The routing-table version used.
    pub routing_table_version: i64,
    /// Seed of the deterministic draw.
    pub seed: i64,
    /// Every model considered.
    pub candidates: Vec<Candidate>,
    /// Signal contributions to the chosen model's score.
    pub signals: Vec<SignalContribution>,
    /// Constraints evaluated.
    pub constraints: Vec<ConstraintCheck>,
    /// The evidence.
    pub evidence: Evidence,
    /// The pin in force, when any.
    pub pin: Option<PinInfo>,
    /// Whether the decision can be rolled back automatically.
    pub reversible: bool,
    /// Human-readable explanation.
    pub explanation: String,
    /// BCP 47 language of the explanation.
    pub explanation_language: String,
    /// Model run in shadow.
    pub shadow_model: Option<ModelName>,
    /// Canary share.
    pub canary_percent: Option<Percent>,
    /// Ed25519 signature (standard base64) over [`RouteDecided::signing_payload`].
    pub signature: String,
    /// The key that made the signature.
    pub signing_key_id: String,
    /// The request features the decision was computed from (added in v2).
    pub features: RequestFeatures,
    /// The weights the candidate scores were computed with (added in v2).
    pub score_weights: ScoreWeights,
    /// Head hash of the route's constraints chain in force; `""` for the configured defaults
    /// (added in v2).
    pub constraints_hash: String,
    /// Sequence of the route's configuration in force ([`RouteConfigured::sequence`]; added in
    /// v2).
    pub route_version: i64,
    /// Models considered that have no known price (added in v2).
    pub unpriced_models: Vec<ModelName>,
    /// Whether the request was also mirrored to the shadow model (added in v2).
    pub mirrored: bool,
    /// The request's sticky bucket, within `0..`[`RouteDecided::CANARY_BUCKETS`], in canary mode
    /// (added in v2).
    pub canary_bucket: Option<i32>,
    /// Where the decision sits in the batch its signature covers; `None` when the signature
    /// covers the decision's canonical form directly (added in v3).
    pub signature_proof: Option<SignatureProof>,
    /// Version of the shared learning pool's snapshot (the `routing-table` snapshot of the
    /// pseudo-org `*pool`) blended into the priors the decision used; `None` when the org does
    /// not share or no pool snapshot had arrived (added in v4).
    pub pool_version: Option<i64>,
}

/// A decision's place in a signed batch: the leaf index, the batch size and the RFC 9162
/// inclusion proof that links the decision's canonical form to the batch root the `signature`
/// covers. See `switchyard_router::sign` for the exact construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureProof {
    /// The decision's leaf, 0-based.
    pub leaf_index: i64,
    /// Leaves in the batch.
    pub tree_size: i64,
    /// Sibling hashes from the leaf up (lowercase hex SHA-256).
    pub path: Vec<String>,
    /// The [`PayloadFormat`] the leaf hashes, as its number: 1 (canonical JSON) or 2 (binary);
    /// 1 for proofs written before it existed (added in v5).
    #[serde(default = "PayloadFormat::v1_number")]
    pub payload_format: i32,
}

impl Default for SignatureProof {
    fn default() -> Self {
        Self {
            leaf_index: 0,
            tree_size: 0,
            path: Vec::new(),
            payload_format: PayloadFormat::V1.number(),
        }
    }
}

/// Which bytes of a decision its signature covers (see [`RouteDecided::signing_payload_as`]).
/// A signed batch names its format in its signed context, so a signature over one format never
/// verifies as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// v1: canonical JSON (RFC 8785). Every trace without a `signature_proof`, and every proof
    /// without `payload_format`.
    V1,
    /// v2: the same members, typed and length-prefixed binary: what traces are signed with
    /// since schema v5.
    V2,
}

impl PayloadFormat {
    /// The format new traces are signed with.
    pub const CURRENT: Self = Self::V2;

    /// Returns the format's number (`payload_format` in a proof).
    pub fn number(self) -> i32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// Returns the format a number names, `None` for one this code does not know.
    pub fn from_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }

    fn v1_number() -> i32 {
        Self::V1.number()
    }
}

impl RouteDecided {
    /// The number of canary buckets: a request's `canary_bucket` is within `0..CANARY_BUCKETS`.
    pub const CANARY_BUCKETS: i32 = 10_000;
}

/// What a piece of feedback is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// One request.
    Request {
        /// The request.
        request_id: RequestId,
    },
    /// A whole session.
    Session {
        /// The session.
        session_id: SessionId,
    },
    /// A model on a route as a whole: an admin rating of the pair, not of one request (added in
    /// v3; on the wire the `pair` field, with a request target no request has).
    Pair {
        /// The route.
        route: RouteName,
        /// The model.
        model: ModelName,
    },
}

/// Feedback about a request, a session or a (route, model) pair was accepted (topic
/// `feedback`, schema v3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSubmitted {
    /// The envelope.
    pub envelope: Envelope,
    /// The feedback id.
    pub feedback_id: FeedbackId,
    /// What the feedback is about.
    pub target: Target,
    /// Where it comes from.
    pub source: FeedbackSource,
    /// The score as given.
    pub raw_score: f64,
    /// The scale of `raw_score`.
    pub raw_scale: RawScale,
    /// `raw_score` normalised (see [`crate::normalize`]).
    pub normalized_score: UnitScore,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// For propagated feedback: the input feedback event.
    pub derived_from: Option<EventId>,
    /// The route, when known.
    pub route: Option<RouteName>,
    /// The model, when known.
    pub model: Option<ModelName>,
    /// Free-form labels (added in v2).
    pub labels: BTreeMap<String, String>,
}

/// The result of a judge run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum JudgeOutcome {
    /// The judge produced a score.
    Scored {
        /// The score.
        score: UnitScore,
    },
    /// The judge did not produce a score.
    Failed {
        /// Why.
        reason: Option<String>,
    },
}

/// An LLM judge scored, or failed to score, a response (topic `judge-scores`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeScored {
    /// The envelope.
    pub envelope: Envelope,
    /// The judgement id.
    pub judgement_id: JudgementId,
    /// The judged request.
    pub request_id: RequestId,
    /// Its decision.
    pub decision_id: DecisionId,
    /// Its route.
    pub route: RouteName,
    /// The judged model.
    pub model: ModelName,
    /// The judge model.
    pub judge_model: ModelName,
    /// Score or failure (wire fields `outcome`, `score`, `failure_reason`).
    pub outcome: JudgeOutcome,
    /// The rubric version.
    pub rubric_version: String,
    /// Judge calls made.
    pub attempts: i32,
    /// Cost of judging; `None` when no price is known.
    pub cost_usd: Option<Usd>,
}

/// A route was pinned to one model (topic `pins`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoutePinned {
    /// The envelope.
    pub envelope: Envelope,
    /// The route.
    pub route: RouteName,
    /// The pinned model.
    pub model: ModelName,
    /// Why.
    pub reason: PinReason,
    /// Who (`switchyard` for automatic rollbacks).
    pub pinned_by: String,
    /// When the pin lapses; `None` pins until unpinned.
    pub expires_at: Option<Timestamp>,
    /// A note.
    pub note: Option<String>,
}

/// A route's pin was removed (topic `pins`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteUnpinned {
    /// The envelope.
    pub envelope: Envelope,
    /// The route.
    pub route: RouteName,
    /// Who.
    pub unpinned_by: String,
    /// Why.
    pub reason: Option<String>,
}

/// The nine route constraints; `None` means not set. Floating-point values must be finite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Largest allowed quality drop versus the baseline, as a fraction.
    pub max_regression: Option<f64>,
    /// Minimum quality score.
    pub min_quality: Option<f64>,
    /// Maximum error rate.
    pub max_error_rate: Option<f64>,
    /// Largest allowed cost increase versus the baseline, as a fraction.
    pub max_cost_increase: Option<f64>,
    /// USD per request.
    pub max_cost_per_request: Option<f64>,
    /// p95 latency limit.
    pub max_p95_latency_ms: Option<i64>,
    /// Minimum confidence.
    pub min_confidence: Option<f64>,
    /// Minimum samples before routing away from the baseline.
    pub min_samples: Option<i64>,
    /// Regressions that trigger an automatic rollback.
    pub rollback_threshold: Option<i64>,
}

/// A route's constraints were replaced (topic `constraints`); a route's changes form a hash chain
/// (see [`ConstraintsChanged::compute_hash`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstraintsChanged {
    /// The envelope.
    pub envelope: Envelope,
    /// The route.
    pub route: RouteName,
    /// Position in the route's chain, from 0.
    pub sequence: i64,
    /// The new constraints (the whole set, not a diff).
    pub constraints: Constraints,
    /// Who changed them.
    pub changed_by: String,
    /// `hash` of the previous change of this route, `""` for the first.
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of this change (see [`ConstraintsChanged::compute_hash`]).
    pub hash: String,
}

/// Sufficient statistics of one feedback source's normalised scores for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// The source.
    pub source: FeedbackSource,
    /// Scores seen.
    pub samples: i64,
    /// Their mean.
    pub mean: f64,
    /// Their variance.
    pub variance: f64,
}

/// Aggregates for one model on one route (schema v2 of `RoutingTableUpdated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// The model.
    pub model: ModelName,
    /// Samples.
    pub samples: i64,
    /// Success rate.
    pub success_rate: f64,
    /// Mean quality.
    pub quality_mean: f64,
    /// Quality variance.
    pub quality_variance: f64,
    /// Mean cost per request.
    pub cost_mean_usd: f64,
    /// p95 latency.
    pub p95_latency_ms: i64,
    /// Error rate.
    pub error_rate: f64,
    /// Mean value per feedback source.
    pub signals: BTreeMap<String, f64>,
    /// Samples, mean and variance per feedback source (added in v2).
    pub sources: Vec<SourceStats>,
    /// Successful requests behind `success_rate` (added in v2).
    pub successes: i64,
    /// Failed requests behind `error_rate` (added in v2).
    pub errors: i64,
    /// Regressions in the rolling window per bucket label, e.g. `0-5%` (added in v2).
    pub regressions: BTreeMap<String, i64>,
    /// Latency observations behind `p95_latency_ms` (added in v2).
    pub latency_samples: i64,
}

impl ModelStats {
    /// Returns the stats of a model with no observations: every count, rate and mean zero, every
    /// collection empty. Fill in what is known with struct update syntax.
    pub fn empty(model: ModelName) -> Self {
        Self {
            model,
            samples: 0,
            success_rate: 0.0,
            quality_mean: 0.0,
            quality_variance: 0.0,
            cost_mean_usd: 0.0,
            p95_latency_ms: 0,
            error_rate: 0.0,
            signals: BTreeMap::new(),
            sources: Vec::new(),
            successes: 0,
            errors: 0,
            regressions: BTreeMap::new(),
            latency_samples: 0,
        }
    }
}

/// One route of the routing table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The route.
    pub route: RouteName,
    /// Its baseline.
    pub baseline_model: ModelName,
    /// Its mode.
    pub mode: RouteMode,
    /// Canary share, in canary mode.
    pub canary_percent: Option<Percent>,
    /// The pinned model, when pinned.
    pub pinned_model: Option<ModelName>,
    /// Learning phase.
    pub phase: Phase,
    /// Per-model aggregates.
    pub models: Vec<ModelStats>,
    /// Head hash of the route's constraints chain; `""` for the configured defaults (added in v2).
    pub constraints_hash: String,
    /// Sequence of the route's configuration in force ([`RouteConfigured::sequence`]; added in
    /// v2).
    pub route_version: i64,
}

/// The projector published a routing-table snapshot for an org (topic `routing-table`, schema v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingTableUpdated {
    /// The envelope.
    pub envelope: Envelope,
    /// Monotonic table version.
    pub version: i64,
    /// When the snapshot was computed.
    pub generated_at: Timestamp,
    /// Every route.
    pub routes: Vec<RouteEntry>,
    /// Input offsets included, keyed `topic/partition`.
    pub source_offsets: BTreeMap<String, i64>,
}

/// The lowercase hex SHA-256 of an API key secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyHash(String);

/// The error for a key hash that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key hash must be 64 lowercase hex digits, got {0} characters")]
pub struct KeyHashError(pub usize);

impl KeyHash {
    /// Returns the hash of a secret.
    pub fn of_secret(secret: &str) -> Self {
        use sha2::{Digest, Sha256};
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Returns the hash as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyHash {
    type Error = KeyHashError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(value))
        } else {
            Err(KeyHashError(value.chars().count()))
        }
    }
}

impl From<KeyHash> for String {
    fn from(value: KeyHash) -> Self {
        value.0
    }
}

/// An API key was created (topic `control`). The secret itself never appears in an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    /// The envelope.
    pub envelope: Envelope,
    /// The key id.
    pub key_id: ApiKeyId,
    /// SHA-256 of the secret.
    pub key_hash: KeyHash,
    /// Whether the key may use the admin API.
    pub admin: bool,
    /// The route used when a request names none.
    pub default_route: Option<RouteName>,
    /// A label.
    pub label: Option<String>,
    /// Requests per minute the key may make; `None` = unlimited (added in v2).
    pub requests_per_minute: Option<i64>,
    /// Tokens per minute the key may use; `None` = unlimited (added in v2).
    pub tokens_per_minute: Option<i64>,
}

/// An API key was revoked (topic `control`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    /// The envelope.
    pub envelope: Envelope,
    /// The key id.
    pub key_id: ApiKeyId,
    /// Why.
    pub reason: Option<String>,
}

/// A route was created, reconfigured or deleted (topic `control`, keyed
/// [`PartitionKey::route`]). Routes are event-sourced: a route's configuration is its latest
/// `RouteConfigured`, and its history is the sequence of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteConfigured {
    /// The envelope.
    pub envelope: Envelope,
    /// The route.
    pub route: RouteName,
    /// What the route serves without the router.
    pub baseline_model: ModelName,
    /// Models the router may choose from.
    pub candidates: Vec<ModelName>,
    /// How the route applies the router's choice.
    pub mode: RouteMode,
    /// Canary share, in canary mode.
    pub canary_percent: Option<Percent>,
    /// Share `0..=1` of shadow-mode requests also sent to the shadow model, when set.
    pub mirror_fraction: Option<UnitScore>,
    /// Most spent on mirrored requests per UTC day, when set.
    pub mirror_spend_cap_usd: Option<Usd>,
    /// Route category used for benchmark priors (e.g. `general`, `code`, `math`, `reasoning`).
    pub category: Option<String>,
    /// Who made the change.
    pub changed_by: String,
    /// Whether this change deleted the route.
    pub deleted: bool,
    /// Position of this change in the route's history, from 0.
    pub sequence: i64,
}

/// What one ingress replica admitted for one API key in the current and the previous minute,
/// and what it spent today (topic `usage`, keyed `<replica>/<key id>`, compacted). Every replica publishes its counts of
/// limited keys a few times a second and adds the other replicas' latest counts to its own when
/// it admits a request, so a key's per-minute limits hold across replicas. Minutes are UTC
/// minutes since the Unix epoch (`event time / 60 s`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyUsageReported {
    /// The envelope (`org` is the key's org).
    pub envelope: Envelope,
    /// The reporting replica's node id.
    pub replica: String,
    /// The key.
    pub key_id: ApiKeyId,
    /// The minute the counts are for.
    pub minute: i64,
    /// Requests admitted in `minute`.
    pub requests: i64,
    /// Tokens counted in `minute` (reservations, corrected to real usage).
    pub tokens: i64,
    /// Requests admitted in the minute before `minute`.
    pub previous_requests: i64,
    /// Tokens counted in the minute before `minute`.
    pub previous_tokens: i64,
    /// The UTC day (days since the Unix epoch) `spend_micro_usd` is for.
    pub day: i64,
    /// What the key's completed requests cost on this replica in `day`, in micro-USD (for
    /// the org's daily budget).
    pub spend_micro_usd: i64,
}

/// Declares [`Event`], [`EventKind`] and their per-kind tables in one place so they cannot drift.
macro_rules! events {
    ($($kind:ident => { topic: $topic:ident, latest: $latest:literal, snake: $snake:literal }),+ $(,)?) => {
        /// Every event Switchyard writes to its log: past-tense facts, one closed set.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[expect(
            clippy::large_enum_variant,
            reason = "the decision trace is 744 bytes against 400 for the next variant; boxing it would burden every match for little gain"
        )]
        #[serde(tag = "type")]
        pub enum Event {
            $(
                #[doc = concat!("A [`", stringify!($kind), "`].")]
                $kind($kind)
            ),+
        }

        /// The kind of an [`Event`], without its payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventKind {
            $(
                #[doc = concat!("[`", stringify!($kind), "`].")]
                $kind
            ),+
        }

        impl EventKind {
            /// Every kind, in a stable order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind),+];

            /// Returns the Avro record name (`RequestReceived`).
            pub const fn name(self) -> &'static str {
                match self { $(EventKind::$kind => stringify!($kind)),+ }
            }

            /// Returns the snake_case name used for directories (`request_received`).
            pub const fn snake_name(self) -> &'static str {
                match self { $(EventKind::$kind => $snake),+ }
            }

            /// Returns the topic events of this kind are written to.
            pub const fn topic(self) -> Topic {
                match self { $(EventKind::$kind => Topic::$topic),+ }
            }

            /// Returns the schema version the Rust types follow (the latest `.avsc`).
            pub const fn latest_version(self) -> u32 {
                match self { $(EventKind::$kind => $latest),+ }
            }
        }

        impl Event {
            /// Returns the event's kind.
            pub const fn kind(&self) -> EventKind {
                match self { $(Event::$kind(_) => EventKind::$kind),+ }
            }

            /// Returns the envelope.
            pub const fn envelope(&self) -> &Envelope {
                match self { $(Event::$kind(e) => &e.envelope),+ }
            }

            /// Returns the envelope, mutably.
            pub fn envelope_mut(&mut self) -> &mut Envelope {
                match self { $(Event::$kind(e) => &mut e.envelope),+ }
            }
        }

        $(
            impl From<$kind> for Event {
                fn from(value: $kind) -> Self {
                    Event::$kind(value)
                }
            }
        )+
    };
}

events! {
    RequestReceived => { topic: Requests, latest: 2, snake: "request_received" },
    ResponseCompleted => { topic: Responses, latest: 2, snake: "response_completed" },
    RouteDecided => { topic: Decisions, latest: 5, snake: "route_decided" },
    FeedbackSubmitted => { topic: Feedback, latest: 3, snake: "feedback_submitted" },
    JudgeScored => { topic: JudgeScores, latest: 1, snake: "judge_scored" },
    RoutePinned => { topic: Pins, latest: 1, snake: "route_pinned" },
    RouteUnpinned => { topic: Pins, latest: 1, snake: "route_unpinned" },
    ConstraintsChanged => { topic: Constraints, latest: 1, snake: "constraints_changed" },
    RoutingTableUpdated => { topic: RoutingTable, latest: 2, snake: "routing_table_updated" },
    ApiKeyCreated => { topic: Control, latest: 2, snake: "api_key_created" },
    ApiKeyRevoked => { topic: Control, latest: 1, snake: "api_key_revoked" },
    RouteConfigured => { topic: Control, latest: 1, snake: "route_configured" },
    KeyUsageReported => { topic: Usage, latest: 1, snake: "key_usage_reported" },
}

impl EventKind {
    /// Returns the schema subject (the Avro full name, Confluent `RecordNameStrategy`),
    /// e.g. `io.switchyard.events.RequestReceived`.
    pub fn subject(self) -> String {
        format!("{}.{}", crate::NAMESPACE, self.name())
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is not an [`EventKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind `{0}`")]
pub struct UnknownEventKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownEventKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s || k.snake_name() == s)
            .ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

impl Event {
    /// Returns the topic the event is written to.
    pub const fn topic(&self) -> Topic {
        self.kind().topic()
    }

    /// Returns the partition key (from the envelope).
    pub fn partition_key(&self) -> &PartitionKey {
        &self.envelope().partition_key
    }

    /// Returns the event id (from the envelope).
    pub fn event_id(&self) -> EventId {
        self.envelope().event_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_topics() {
        assert_eq!(EventKind::RoutePinned.topic(), Topic::Pins);
        assert_eq!(EventKind::RouteUnpinned.topic(), Topic::Pins);
        assert_eq!(EventKind::ApiKeyRevoked.topic(), Topic::Control);
        assert_eq!(EventKind::RoutingTableUpdated.topic(), Topic::RoutingTable);
        assert_eq!(EventKind::RouteConfigured.topic(), Topic::Control);
        assert_eq!(EventKind::KeyUsageReported.topic(), Topic::Usage);
        assert_eq!(EventKind::ALL.len(), 13);
        for kind in EventKind::ALL {
            assert_eq!(kind.name().parse::<EventKind>().ok(), Some(*kind));
            assert_eq!(kind.snake_name().parse::<EventKind>().ok(), Some(*kind));
        }
    }

    #[test]
    fn empty_model_stats_have_no_observations() {
        let stats = ModelStats::empty(ModelName::new("m"));
        assert_eq!(stats.model.as_str(), "m");
        assert_eq!(stats.samples + stats.successes + stats.errors, 0);
        assert_eq!(stats.latency_samples, 0);
        assert!(stats.sources.is_empty() && stats.regressions.is_empty());
        assert!(stats.signals.is_empty());
    }

    #[test]
    fn score_weights_default_to_the_schema_default() {
        assert_eq!(
            ScoreWeights::default(),
            ScoreWeights {
                success: 0.4,
                feedback: 0.4,
                cost: 0.2
            }
        );
    }

    #[test]
    fn a_mirror_request_id_is_the_original_with_the_suffix() {
        assert_eq!(
            ResponseCompleted::mirror_request_id(&RequestId::new("chatcmpl-1")).as_str(),
            "chatcmpl-1#mirror"
        );
    }

    #[test]
    fn requested_model_auto() {
        assert_eq!(
            RequestedModel::from("auto".to_owned()),
            RequestedModel::Auto
        );
        assert_eq!(
            RequestedModel::from("gpt-x".to_owned()),
            RequestedModel::Model(ModelName::new("gpt-x"))
        );
    }

    #[test]
    fn key_hash_validates() {
        let hash = KeyHash::of_secret("sk-test");
        assert_eq!(hash.as_str().len(), 64);
        assert!(KeyHash::try_from("ABC".to_owned()).is_err());
        assert!(KeyHash::try_from("G".repeat(64)).is_err());
    }
}
