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
    pub routes: std::collections::BTreeMap<String, RawRoute>,
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

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub publish_queue_capacity: u64,
    pub publish_batch_max: u64,
    pub retries: u64,
    pub retry_backoff_ms: u64,
    pub max_retry_after_ms: u64,
    pub first_token_timeout_ms: u64,
}

/// `[routes.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub baseline: String,
    pub candidates: Vec<String>,
    pub mode: RouteMode,
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
    /// Retention check period, in seconds.
    pub retention_check_interval_secs: u64,
    /// Kafka physical topic name prefix.
    pub topic_prefix: String,
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
