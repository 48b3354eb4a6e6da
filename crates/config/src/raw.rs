//! The configuration as written: what figment deserialises from `default.toml`, the `--config`
//! files and the environment, before any value is checked.
//!
//! Every struct denies unknown fields, so a typo is an error naming the key instead of a silent
//! default. No field has a serde default: the compiled-in `default.toml` is always the first
//! layer, so every key is present, and the defaults live in exactly one place (that file).
//!
//! Adding a section: add a `Raw*` struct here, a field on [`RawConfig`], the commented section in
//! `default.toml`, and its validation in `validate.rs`.

use std::path::PathBuf;

use serde::Deserialize;

/// The whole configuration as written, before validation. Call [`RawConfig::validate`] to get
/// a [`Config`](crate::Config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Data directory; `None` or empty = the platform default.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `[server]`.
    pub server: RawServer,
    /// `[log]`.
    pub log: RawLog,
    /// `[store]`.
    pub store: RawStore,
    /// `[telemetry]`.
    pub telemetry: RawTelemetry,
    /// `[schema_registry]`.
    pub schema_registry: RawSchemaRegistry,
    pub auth: RawAuth,
    pub gateway: RawGateway,
    /// `[feedback]`.
    pub feedback: RawFeedback,
    /// `[routes.<name>]`.
    pub routes: std::collections::BTreeMap<String, RawRoute>,
    /// `[routing]`: settings shared by every route.
    pub routing: RawRouting,
    /// `[judge]`: the LLM-as-judge processor.
    pub judge: crate::judge::RawJudge,
    /// `[webhooks]`: decision batches POSTed to per-org endpoints.
    pub webhooks: crate::webhooks::RawWebhooks,
    /// `[sink]`: the Parquet sink.
    pub sink: crate::sink::RawSink,
    /// `[orgs.<org>]`: per-org settings.
    pub orgs: std::collections::BTreeMap<String, crate::orgs::RawOrg>,
    /// `[learning_pool]`: the shared learning pool.
    pub learning_pool: crate::orgs::RawLearningPool,
    /// `[providers.<name>]`: kept raw here; the provider crate parses each table (its `kind`
    /// selects the adapter) so this crate does not depend on every adapter's options.
    pub providers: std::collections::BTreeMap<String, figment::value::Value>,
    /// `[[models]]`: operator rows added to (or replacing rows of) the shipped model catalog.
    #[serde(default)]
    pub models: Vec<figment::value::Value>,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub required: bool,
}

/// `[feedback]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    pub nps_window_hours: u64,
    pub session_retention_hours: u64,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub publish_queue_capacity: u64,
    pub publish_batch_max: u64,
    pub publish_append_timeout_ms: u64,
    pub publish_linger_ms: u64,
    pub usage_report_interval_ms: u64,
    pub retries: u64,
    pub retry_backoff_ms: u64,
    pub max_retry_after_ms: u64,
    pub first_token_timeout_ms: u64,
}

/// `[routes.<name>]`.
///
/// A route added by an operator's file gets no keys from `default.toml`, so the keys after
/// `mode` are optional here; their defaults are documented in `default.toml` and applied by
/// validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The model served when in doubt.
    pub baseline: String,
    /// Models the router may choose instead.
    pub candidates: Vec<String>,
    /// Rollout mode.
    pub mode: RouteMode,
    /// Share of sessions (0..=100) the router's choice serves in canary mode; default 0.
    #[serde(default)]
    pub canary_percent: Option<i64>,
    /// Share of shadow-mode requests (0..=1) also sent to the router's choice; default 0.
    #[serde(default)]
    pub mirror_fraction: Option<f64>,
    /// Most spent on mirrored requests per UTC day, in USD; absent = no cap.
    #[serde(default)]
    pub mirror_daily_cap_usd: Option<f64>,
    /// Share of requests (0..=1) mirrored to a model the router lacks evidence on; default 0.
    #[serde(default)]
    pub explore_fraction: Option<f64>,
    /// Org samples after which a model is no longer explored; default 30.
    #[serde(default)]
    pub explore_until_samples: Option<u64>,
    /// Category that picks the benchmark priors; default `general`.
    #[serde(default)]
    pub category: Option<String>,
    /// The route's own constraints; absent = `[routing.default_constraints]`.
    #[serde(default)]
    pub constraints: Option<RawConstraints>,
}

/// The nine route constraints as written; an absent key is not enforced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConstraints {
    /// Largest quality drop versus the baseline, as a fraction (0..=1).
    #[serde(default)]
    pub max_regression: Option<f64>,
    /// Minimum quality score (0..=1).
    #[serde(default)]
    pub min_quality: Option<f64>,
    /// Maximum error rate (0..=1).
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    /// Largest cost increase versus the baseline, as a fraction (>= -1).
    #[serde(default)]
    pub max_cost_increase: Option<f64>,
    /// Most USD per request (>= 0).
    #[serde(default)]
    pub max_cost_per_request: Option<f64>,
    /// p95 latency limit in milliseconds (>= 1).
    #[serde(default)]
    pub max_p95_latency_ms: Option<i64>,
    /// Minimum confidence (0..=1).
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// Samples needed before routing away from the baseline (>= 0).
    #[serde(default)]
    pub min_samples: Option<i64>,
    /// Regressions that trigger an automatic rollback (>= 1).
    #[serde(default)]
    pub rollback_threshold: Option<i64>,
}

/// `[routing]`: what every route shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// `[routing.score_weights]`.
    pub score_weights: RawScoreWeights,
    /// `[routing.default_constraints]`.
    pub default_constraints: RawConstraints,
    /// `[routing.learning]`.
    pub learning: RawLearning,
    /// Ed25519 PKCS#8 key that signs decisions; empty = `<data_dir>/keys/decision-signing.pk8`.
    pub signing_key_file: String,
    /// Language of decision explanations when the request does not ask for one.
    pub default_language: String,
    /// Operator benchmark priors (the format of `crates/router/priors.toml`); empty = none.
    pub priors_file: String,
    /// `[[routing.rules]]`: routes chosen from request metadata.
    #[serde(default)]
    pub rules: Vec<RawRouteRule>,
}

/// `[[routing.rules]]`: requests whose metadata matches go to `route`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteRule {
    /// The route.
    pub route: String,
    /// Every pair must equal the request's `metadata` entry.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The request's `user` must equal this, when set.
    #[serde(default)]
    pub user: Option<String>,
}

/// `[routing.score_weights]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScoreWeights {
    /// Weight of the success rate.
    pub success: f64,
    /// Weight of the blended feedback.
    pub feedback: f64,
    /// Weight of the cost relative to the baseline.
    pub cost: f64,
}

/// `[routing.learning]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLearning {
    /// Judge plus admin samples that move a route to phase 1.
    pub phase1_min_samples: i64,
    /// Session-NPS samples that move a route to phase 2.
    pub phase2_min_samples: i64,
    /// Samples at which an org source earns half of its phase weight.
    pub half_weight_samples: f64,
    /// Standard deviation of a benchmark prior as an estimate of org quality.
    pub prior_sd: f64,
    /// Calibrate judge scores against session NPS, per provider of the judged model.
    pub calibrate_judge: bool,
}

/// A route's rollout mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// Always the baseline.
    Off,
    /// Decide, serve the baseline, record the choice.
    Shadow,
    /// Serve the choice to a sticky share of sessions.
    Canary,
    /// Serve the choice.
    Live,
}

impl From<RouteMode> for switchyard_events::RouteMode {
    fn from(mode: RouteMode) -> Self {
        match mode {
            RouteMode::Off => Self::Off,
            RouteMode::Shadow => Self::Shadow,
            RouteMode::Canary => Self::Canary,
            RouteMode::Live => Self::Live,
        }
    }
}

/// `[server]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Socket address to bind, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// Drain time after SIGTERM, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Upper bound on one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Threads of the stream processors' own runtime; 0 = half the cores.
    pub processor_threads: u64,
    /// How long a processor's short batch waits for more records, in milliseconds.
    pub processor_linger_ms: u64,
    /// Niceness of the stream processors' threads (0..=19) where the node also serves HTTP.
    pub processor_nice: u64,
}

/// `[log]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// Backend URL: `embedded`, `file:///abs/path`, `memory://` or `kafka://host:port[,...]`.
    pub url: String,
    /// Default partitions per topic.
    pub partitions: u32,
    /// Embedded log durability.
    pub fsync: FsyncMode,
    /// Most records in one group commit.
    pub group_commit_max_records: u64,
    /// Most payload bytes in one group commit.
    pub group_commit_max_bytes: u64,
    /// Wait for more appends before committing a group, in microseconds.
    pub group_commit_linger_us: u64,
    /// Retention of delete-policy topics, in hours.
    pub retention_hours: u64,
    /// Compaction period of compacted topics, in seconds.
    pub compaction_interval_secs: u64,
    /// Audit horizon: compacted topics keep a superseded record until its successor is this
    /// many days old (Kafka: `min.compaction.lag.ms`).
    pub audit_horizon_days: u64,
    /// Retention check period, in seconds.
    pub retention_check_interval_secs: u64,
    /// Kafka physical topic name prefix.
    pub topic_prefix: String,
    /// `[log.kafka]`: the Kafka client.
    pub kafka: RawKafka,
}

/// `[log.kafka]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Prefix of consumer-group ids.
    pub group_prefix: String,
    /// Partitions of topics Switchyard creates.
    pub partitions: u64,
    /// Replication factor of topics Switchyard creates.
    pub replication_factor: u64,
    /// Create missing topics at start.
    pub create_topics: bool,
    /// `session.timeout.ms` of consumer-group members.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms` of consumer-group members.
    pub heartbeat_interval_ms: u64,
    /// Timeout of one request to the cluster, in milliseconds.
    pub request_timeout_ms: u64,
    /// Work around Tansu 0.6's watermark and offset-for-time answers (the test broker).
    pub tansu_workarounds: bool,
    /// Extra librdkafka properties (TLS, SASL, linger.ms, ...).
    pub client: std::collections::BTreeMap<String, String>,
}

/// `[store]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Backend URL: `embedded`, `memory://` or `scylla://host:port[,...]/keyspace`.
    pub url: String,
}

/// `[telemetry]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A level or `tracing` filter directives.
    pub log_level: String,
}

/// `[schema_registry]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchemaRegistry {
    /// Registry base URL; empty = none.
    pub url: String,
}

/// How the embedded log makes appends durable (`log.fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncMode {
    /// One `fdatasync` per group commit, before the group's appends are acknowledged.
    Group,
    /// No explicit sync: the OS flushes when it likes. A crash can lose acknowledged records.
    None,
}

/// Format of log lines on stderr (`telemetry.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
