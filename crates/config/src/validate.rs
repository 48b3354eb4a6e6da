//! The validated configuration ([`Config`]) and the checks that produce it from a [`RawConfig`].
//!
//! Validation is pure apart from resolving the platform data directory: it turns strings into
//! typed values (socket addresses, durations, backend enums) and checks ranges, naming the key in
//! every error. Which layer a bad value came from is added by the loader, which knows the layers.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::raw::{
    FsyncMode, LogFormat, RawConfig, RawLog, RawSchemaRegistry, RawServer, RawStore, RawTelemetry,
};
use crate::routing::{RouteConfig, RoutingConfig, validate_routes};

/// The validated configuration, passed down explicitly to whatever needs it (never global).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Resolved data directory (absolute unless configured relative).
    pub data_dir: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[schema_registry]`.
    pub schema_registry: SchemaRegistryConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[gateway]`.
    pub gateway: GatewayConfig,
    /// `[feedback]`.
    pub feedback: FeedbackConfig,
    /// `[routes.*]`, in name order.
    pub routes: Vec<RouteConfig>,
    /// `[routing]`: settings every route shares.
    pub routing: RoutingConfig,
    /// `[judge]`: the LLM-as-judge processor.
    pub judge: crate::JudgeConfig,
    /// `[webhooks]`: decision batches POSTed to per-org endpoints.
    pub webhooks: crate::WebhooksConfig,
    /// `[sink]`: the Parquet sink.
    pub sink: crate::SinkConfig,
    /// `[orgs.<org>]`, by org.
    pub orgs: std::collections::BTreeMap<String, crate::OrgConfig>,
    /// `[learning_pool]`, with its members from `[orgs.*]`.
    pub learning_pool: crate::LearningPoolConfig,
    /// `[providers.<name>]` tables, parsed by the provider crate at start-up.
    pub providers: std::collections::BTreeMap<String, figment::value::Value>,
    /// `[[models]]` operator catalog rows, parsed by the provider crate at start-up.
    pub models: Vec<figment::value::Value>,
}

/// `[feedback]`: how feedback signals are propagated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedbackConfig {
    /// How long after a session's NPS rating (event time) a decision of that session still
    /// receives it; decisions taken before the rating always do.
    pub nps_window: Duration,
    /// How long a decision stays in its session's index for a rating to reach it (and a rating
    /// past its window); then session-NPS propagation forgets it.
    pub session_retention: Duration,
}

/// `[auth]`: who may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Whether every request must carry a valid API key. When false, a request without a key is
    /// served as org `default`; a request with a key must still present a valid one.
    pub required: bool,
}

/// `[gateway]`: the request path's event publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Events queued for publishing before new ones spill to disk.
    pub publish_queue_capacity: usize,
    /// Most events the publisher appends in one call.
    pub publish_batch_max: usize,
    /// How long the publisher waits for an append before it spills the batch (a broker
    /// outage must not hold events in memory).
    pub publish_append_timeout: Duration,
    /// How long the publisher waits for more events once a batch has started (0: never), so
    /// that a light load still batches: one signature, one append and one fsync per batch.
    pub publish_linger: Duration,
    /// How often each replica publishes its per-key usage (cross-replica rate limits).
    pub usage_report_interval: Duration,
    /// Retries of one model on 429, 5xx, timeouts and connection failures.
    pub retries: u32,
    /// First retry delay; doubles per retry (a longer Retry-After wins).
    pub retry_backoff: Duration,
    /// A Retry-After longer than this goes to the fallback instead of sleeping.
    pub max_retry_after: Duration,
    /// A stream with no first chunk by then fails over.
    pub first_token_timeout: Duration,
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long in-flight work may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Upper bound on one request.
    pub request_timeout: Duration,
    /// Threads of the stream processors' own runtime on a node that also serves HTTP; 0 = half
    /// the cores (at least one).
    pub processor_threads: usize,
    /// How long a stream processor's short batch waits for more records before it is folded.
    pub processor_linger: Duration,
    /// Scheduling niceness of the stream processors' threads where the node also serves HTTP
    /// (0 = the same as the request threads).
    pub processor_nice: i32,
}

/// `[log]`: the event log backend and its knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogConfig {
    /// Which backend, picked by the URL scheme.
    pub backend: LogBackend,
    /// Default partitions per topic (embedded log).
    pub partitions: u32,
    /// Embedded log durability.
    pub fsync: FsyncMode,
    /// Group commit limits (embedded log).
    pub group_commit: GroupCommitConfig,
    /// Age after which records in delete-policy topics are removed (embedded log).
    pub retention: Duration,
    /// How often compacted topics are compacted (embedded log).
    pub compaction_interval: Duration,
    /// The audit horizon: compacted topics keep every record that was in force this recently
    /// (the embedded log removes a superseded record once its successor is older; Kafka topics
    /// get it as `min.compaction.lag.ms`), so `switchyard audit` can rebuild the inputs of any
    /// decision this recent.
    pub audit_horizon: Duration,
    /// How often expired records are looked for (embedded log).
    pub retention_check_interval: Duration,
    /// Prefix of physical topic names (Kafka).
    pub topic_prefix: String,
    /// `[log.kafka]`: the Kafka client (used when `log.url` names Kafka).
    pub kafka: KafkaConfig,
}

/// `[log.kafka]`: how the Kafka backend talks to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// Prefix of every consumer-group id (deployments sharing a cluster keep groups apart).
    pub group_prefix: String,
    /// Partitions of the topics Switchyard creates (provisioned topics keep theirs).
    pub partitions: u32,
    /// Replication factor of the topics Switchyard creates.
    pub replication_factor: u16,
    /// Create missing topics at start (off where infra/terraform provisions them).
    pub create_topics: bool,
    /// `session.timeout.ms` of consumer-group members.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` of consumer-group members.
    pub heartbeat_interval: Duration,
    /// Timeout of one request to the cluster.
    pub request_timeout: Duration,
    /// Work around Tansu 0.6's watermark and offset-for-time answers (the test broker only).
    pub tansu_workarounds: bool,
    /// Extra librdkafka properties, applied last (TLS, SASL, `linger.ms`, ...).
    pub client: std::collections::BTreeMap<String, String>,
}

/// When the embedded log closes a group commit: at whichever limit comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Most records in one group.
    pub max_records: usize,
    /// Most payload bytes in one group.
    pub max_bytes: usize,
    /// How long to wait for more appends before committing a group that is not full.
    pub linger: Duration,
}

/// The event log backend (`log.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogBackend {
    /// The durable embedded log, in this directory (`embedded` = `<data_dir>/log`, or the path
    /// of a `file://` URL).
    Embedded(PathBuf),
    /// In-process, lost on exit (`memory://`, tests).
    Memory,
    /// Kafka, by bootstrap brokers (`kafka://host:port[,host:port]`).
    Kafka {
        /// `host:port` bootstrap servers, in the order given.
        brokers: Vec<String>,
    },
}

impl LogBackend {
    /// The URL schemes `log.url` accepts, for messages.
    pub const ACCEPTED: &'static str =
        "\"embedded\", \"file:///absolute/path\", \"memory://\", \"kafka://host:port[,host:port]\"";
}

/// `[store]`: the state store backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Which backend, picked by the URL scheme.
    pub backend: StoreBackend,
}

/// The state store backend (`store.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// The durable embedded store, in this directory (`<data_dir>/store`).
    Embedded(PathBuf),
    /// In-process, lost on exit (`memory://`, tests).
    Memory,
    /// ScyllaDB (`scylla://host:port[,host:port]/keyspace`).
    Scylla {
        /// `host:port` contact points, in the order given.
        nodes: Vec<String>,
        /// Keyspace holding Switchyard's tables.
        keyspace: String,
    },
}

impl StoreBackend {
    /// The URL schemes `store.url` accepts, for messages.
    pub const ACCEPTED: &'static str =
        "\"embedded\", \"memory://\", \"scylla://host:port[,host:port]/keyspace\"";
}

/// `[telemetry]`: log output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// Text or JSON lines on stderr.
    pub log_format: LogFormat,
    /// A `tracing` filter: a level, optionally with `target=level` directives.
    pub log_level: String,
}

/// `[schema_registry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaRegistryConfig {
    /// Base URL of a Confluent-compatible registry; `None` = use the `schemas/` manifest ids.
    pub url: Option<String>,
}

/// The platform locations `data_dir` falls back to, passed in so resolution is testable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformDirs {
    /// `dirs::data_dir()`.
    pub data_dir: Option<PathBuf>,
    /// `$HOME`.
    pub home_dir: Option<PathBuf>,
}

impl PlatformDirs {
    /// Returns this machine's directories.
    pub fn current() -> Self {
        Self {
            data_dir: dirs::data_dir(),
            home_dir: dirs::home_dir(),
        }
    }
}

/// Returns the data directory: the configured one unless empty, else
/// `<platform data dir>/switchyard`, else `$HOME/.local/share/switchyard`.
pub fn resolve_data_dir(
    configured: Option<&Path>,
    platform: &PlatformDirs,
) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = configured.filter(|dir| !dir.as_os_str().is_empty()) {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = &platform.data_dir {
        return Ok(dir.join("switchyard"));
    }
    if let Some(home) = &platform.home_dir {
        return Ok(home.join(".local").join("share").join("switchyard"));
    }
    Err(ConfigError::invalid(
        "data_dir",
        "is empty and no platform data directory or $HOME is known; set it or pass --data-dir",
    ))
}

impl RawConfig {
    /// Checks every value and converts it into a [`Config`], resolving an empty `data_dir`
    /// against this machine's directories.
    pub fn validate(self) -> Result<Config, ConfigError> {
        self.validate_with(&PlatformDirs::current())
    }

    /// Like [`validate`](RawConfig::validate), with explicit platform directories.
    pub fn validate_with(self, platform: &PlatformDirs) -> Result<Config, ConfigError> {
        let data_dir = resolve_data_dir(self.data_dir.as_deref(), platform)?;
        let routing = self.routing.validate(&data_dir)?;
        let judge = self.judge.validate()?;
        let webhooks = self.webhooks.validate()?;
        let sink = self.sink.validate(&data_dir)?;
        let (orgs, learning_pool) = crate::orgs::validate(self.orgs, self.learning_pool)?;
        Ok(Config {
            server: self.server.validate()?,
            log: self.log.validate(&data_dir)?,
            store: self.store.validate(&data_dir)?,
            telemetry: self.telemetry.validate()?,
            schema_registry: self.schema_registry.validate()?,
            auth: AuthConfig {
                required: self.auth.required,
            },
            gateway: GatewayConfig {
                publish_queue_capacity: to_usize(
                    "gateway.publish_queue_capacity",
                    in_range(
                        "gateway.publish_queue_capacity",
                        self.gateway.publish_queue_capacity,
                        16..=10_000_000,
                    )?,
                )?,
                publish_batch_max: to_usize(
                    "gateway.publish_batch_max",
                    in_range(
                        "gateway.publish_batch_max",
                        self.gateway.publish_batch_max,
                        1..=100_000,
                    )?,
                )?,
                publish_append_timeout: Duration::from_millis(in_range(
                    "gateway.publish_append_timeout_ms",
                    self.gateway.publish_append_timeout_ms,
                    100..=600_000,
                )?),
                publish_linger: Duration::from_millis(in_range(
                    "gateway.publish_linger_ms",
                    self.gateway.publish_linger_ms,
                    0..=1000,
                )?),
                usage_report_interval: Duration::from_millis(in_range(
                    "gateway.usage_report_interval_ms",
                    self.gateway.usage_report_interval_ms,
                    10..=60_000,
                )?),
                retries: u32::try_from(in_range("gateway.retries", self.gateway.retries, 0..=10)?)
                    .unwrap_or(10),
                retry_backoff: Duration::from_millis(in_range(
                    "gateway.retry_backoff_ms",
                    self.gateway.retry_backoff_ms,
                    0..=60_000,
                )?),
                max_retry_after: Duration::from_millis(in_range(
                    "gateway.max_retry_after_ms",
                    self.gateway.max_retry_after_ms,
                    0..=600_000,
                )?),
                first_token_timeout: Duration::from_millis(in_range(
                    "gateway.first_token_timeout_ms",
                    self.gateway.first_token_timeout_ms,
                    1..=3_600_000,
                )?),
            },
            feedback: FeedbackConfig {
                nps_window: Duration::from_secs(
                    in_range(
                        "feedback.nps_window_hours",
                        self.feedback.nps_window_hours,
                        0..=24 * 365,
                    )? * 3600,
                ),
                session_retention: Duration::from_secs(
                    in_range(
                        "feedback.session_retention_hours",
                        self.feedback.session_retention_hours,
                        1..=24 * 3650,
                    )? * 3600,
                ),
            },
            routes: {
                let mut routes = validate_routes(self.routes, &routing)?;
                let is_demo = |name: &str| {
                    self.providers
                        .get(name)
                        .is_some_and(crate::judge::is_demo_table)
                };
                for route in &mut routes {
                    route.text_capture = judge.text_capture(route, &is_demo);
                }
                routes
            },
            judge,
            webhooks,
            sink,
            orgs,
            learning_pool,
            routing,
            providers: self.providers,
            models: self.models,
            data_dir,
        })
    }
}

impl RawServer {
    fn validate(self) -> Result<ServerConfig, ConfigError> {
        let listen = self.listen.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "server.listen",
                format!(
                    "invalid socket address {:?} (expected ip:port, e.g. \"127.0.0.1:8080\")",
                    self.listen
                ),
            )
        })?;
        let max_body_bytes = in_range("server.max_body_bytes", self.max_body_bytes, 1..=1 << 30)?;
        let shutdown_grace = in_range(
            "server.shutdown_grace_ms",
            self.shutdown_grace_ms,
            0..=3_600_000,
        )?;
        let request_timeout = in_range(
            "server.request_timeout_ms",
            self.request_timeout_ms,
            1..=86_400_000,
        )?;
        Ok(ServerConfig {
            listen,
            max_body_bytes: to_usize("server.max_body_bytes", max_body_bytes)?,
            shutdown_grace: Duration::from_millis(shutdown_grace),
            request_timeout: Duration::from_millis(request_timeout),
            processor_threads: to_usize(
                "server.processor_threads",
                in_range("server.processor_threads", self.processor_threads, 0..=1024)?,
            )?,
            processor_linger: Duration::from_millis(in_range(
                "server.processor_linger_ms",
                self.processor_linger_ms,
                0..=10_000,
            )?),
            processor_nice: i32::try_from(in_range(
                "server.processor_nice",
                self.processor_nice,
                0..=19,
            )?)
            .unwrap_or(0),
        })
    }
}

impl RawLog {
    fn validate(self, data_dir: &Path) -> Result<LogConfig, ConfigError> {
        let backend = parse_log_url(&self.url, data_dir)?;
        let partitions = in_range("log.partitions", self.partitions, 1..=1024)?;
        let max_records = in_range(
            "log.group_commit_max_records",
            self.group_commit_max_records,
            1..=1_000_000,
        )?;
        let max_bytes = in_range(
            "log.group_commit_max_bytes",
            self.group_commit_max_bytes,
            1024..=1 << 30,
        )?;
        let linger_us = in_range(
            "log.group_commit_linger_us",
            self.group_commit_linger_us,
            0..=1_000_000,
        )?;
        let retention_hours = in_range(
            "log.retention_hours",
            self.retention_hours,
            1..=24 * 365 * 100,
        )?;
        let compaction_secs = in_range(
            "log.compaction_interval_secs",
            self.compaction_interval_secs,
            1..=86_400,
        )?;
        let audit_horizon_days = in_range(
            "log.audit_horizon_days",
            self.audit_horizon_days,
            0..=365 * 100,
        )?;
        let retention_check_secs = in_range(
            "log.retention_check_interval_secs",
            self.retention_check_interval_secs,
            1..=86_400,
        )?;
        validate_topic_prefix(&self.topic_prefix)?;
        let kafka = self.kafka.validate()?;
        Ok(LogConfig {
            backend,
            partitions,
            fsync: self.fsync,
            group_commit: GroupCommitConfig {
                max_records: to_usize("log.group_commit_max_records", max_records)?,
                max_bytes: to_usize("log.group_commit_max_bytes", max_bytes)?,
                linger: Duration::from_micros(linger_us),
            },
            retention: Duration::from_secs(retention_hours * 3600),
            compaction_interval: Duration::from_secs(compaction_secs),
            audit_horizon: Duration::from_secs(audit_horizon_days * 86_400),
            retention_check_interval: Duration::from_secs(retention_check_secs),
            topic_prefix: self.topic_prefix,
            kafka,
        })
    }
}

impl crate::raw::RawKafka {
    fn validate(self) -> Result<KafkaConfig, ConfigError> {
        let partitions = in_range("log.kafka.partitions", self.partitions, 1..=10_000)?;
        let replication = in_range(
            "log.kafka.replication_factor",
            self.replication_factor,
            1..=32,
        )?;
        let session = in_range(
            "log.kafka.session_timeout_ms",
            self.session_timeout_ms,
            1000..=3_600_000,
        )?;
        let heartbeat = in_range(
            "log.kafka.heartbeat_interval_ms",
            self.heartbeat_interval_ms,
            100..=3_600_000,
        )?;
        if heartbeat * 3 > session {
            return Err(ConfigError::invalid(
                "log.kafka.heartbeat_interval_ms",
                format!("must be at most a third of log.kafka.session_timeout_ms ({session})"),
            ));
        }
        let request = in_range(
            "log.kafka.request_timeout_ms",
            self.request_timeout_ms,
            100..=3_600_000,
        )?;
        validate_topic_prefix_key("log.kafka.group_prefix", &self.group_prefix)?;
        Ok(KafkaConfig {
            group_prefix: self.group_prefix,
            partitions: u32::try_from(partitions).unwrap_or(u32::MAX),
            replication_factor: u16::try_from(replication).unwrap_or(u16::MAX),
            create_topics: self.create_topics,
            session_timeout: Duration::from_millis(session),
            heartbeat_interval: Duration::from_millis(heartbeat),
            request_timeout: Duration::from_millis(request),
            tansu_workarounds: self.tansu_workarounds,
            client: self.client,
        })
    }
}

impl RawStore {
    fn validate(self, data_dir: &Path) -> Result<StoreConfig, ConfigError> {
        Ok(StoreConfig {
            backend: parse_store_url(&self.url, data_dir)?,
        })
    }
}

impl RawTelemetry {
    fn validate(self) -> Result<TelemetryConfig, ConfigError> {
        validate_log_filter(&self.log_level)?;
        Ok(TelemetryConfig {
            log_format: self.log_format,
            log_level: self.log_level.trim().to_owned(),
        })
    }
}

impl RawSchemaRegistry {
    fn validate(self) -> Result<SchemaRegistryConfig, ConfigError> {
        const KEY: &str = "schema_registry.url";
        let url = self.url.trim();
        if url.is_empty() {
            return Ok(SchemaRegistryConfig { url: None });
        }
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                ConfigError::invalid(
                    KEY,
                    format!("unsupported URL {url:?}; accepted: \"\" (no registry), \"http://host:port\", \"https://host:port\""),
                )
            })?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(ConfigError::invalid(
                KEY,
                format!("URL {url:?} has no host"),
            ));
        }
        Ok(SchemaRegistryConfig {
            url: Some(url.trim_end_matches('/').to_owned()),
        })
    }
}

/// Splits `scheme://rest` (case-insensitive scheme).
fn split_scheme(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    Some((scheme.to_ascii_lowercase(), rest))
}

fn parse_log_url(url: &str, data_dir: &Path) -> Result<LogBackend, ConfigError> {
    const KEY: &str = "log.url";
    let url = url.trim();
    if url.eq_ignore_ascii_case("embedded") {
        return Ok(LogBackend::Embedded(data_dir.join("log")));
    }
    match split_scheme(url) {
        Some((scheme, rest)) if scheme == "file" => {
            if !rest.starts_with('/') {
                return Err(ConfigError::invalid(
                    KEY,
                    format!(
                        "{url:?} must name an absolute path, e.g. \"file:///var/lib/switchyard/log\""
                    ),
                ));
            }
            Ok(LogBackend::Embedded(PathBuf::from(rest)))
        }
        Some((scheme, "")) if scheme == "memory" => Ok(LogBackend::Memory),
        Some((scheme, rest)) if scheme == "kafka" => Ok(LogBackend::Kafka {
            brokers: parse_host_ports(KEY, url, rest)?,
        }),
        _ => Err(ConfigError::invalid(
            KEY,
            format!(
                "unsupported URL {url:?}; accepted: {}",
                LogBackend::ACCEPTED
            ),
        )),
    }
}

fn parse_store_url(url: &str, data_dir: &Path) -> Result<StoreBackend, ConfigError> {
    const KEY: &str = "store.url";
    let url = url.trim();
    if url.eq_ignore_ascii_case("embedded") {
        return Ok(StoreBackend::Embedded(data_dir.join("store")));
    }
    match split_scheme(url) {
        Some((scheme, "")) if scheme == "memory" => Ok(StoreBackend::Memory),
        Some((scheme, rest)) if scheme == "scylla" => {
            let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| {
                ConfigError::invalid(
                    KEY,
                    format!("{url:?} names no keyspace, e.g. \"scylla://scylla:9042/switchyard\""),
                )
            })?;
            let nodes = parse_host_ports(KEY, url, hosts)?;
            let valid_keyspace = !keyspace.is_empty()
                && keyspace.len() <= 48
                && keyspace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_keyspace {
                return Err(ConfigError::invalid(
                    KEY,
                    format!(
                        "invalid keyspace {keyspace:?} in {url:?} (1 to 48 letters, digits or `_`)"
                    ),
                ));
            }
            Ok(StoreBackend::Scylla {
                nodes,
                keyspace: keyspace.to_owned(),
            })
        }
        _ => Err(ConfigError::invalid(
            KEY,
            format!(
                "unsupported URL {url:?}; accepted: {}",
                StoreBackend::ACCEPTED
            ),
        )),
    }
}

/// Parses `host:port[,host:port...]`. Hosts are not resolved here: that is the client's job,
/// and a name may only resolve once the cluster is up.
fn parse_host_ports(key: &str, url: &str, list: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        let entry = entry.trim();
        let port_ok = entry
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p != 0));
        if !port_ok {
            return Err(ConfigError::invalid(
                key,
                format!("invalid address {entry:?} in {url:?} (expected host:port)"),
            ));
        }
        out.push(entry.to_owned());
    }
    Ok(out)
}

fn validate_topic_prefix(prefix: &str) -> Result<(), ConfigError> {
    validate_topic_prefix_key("log.topic_prefix", prefix)
}

fn validate_topic_prefix_key(key: &str, prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.len() <= 100
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("invalid prefix {prefix:?} (at most 100 letters, digits, `.`, `_` or `-`)"),
        ))
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks the level part of each comma-separated directive (`info`, `switchyard_log=debug`);
/// target and span syntax are left to `tracing-subscriber`, which parses the whole filter.
fn validate_log_filter(filter: &str) -> Result<(), ConfigError> {
    const KEY: &str = "telemetry.log_level";
    if filter.trim().is_empty() {
        return Err(ConfigError::invalid(
            KEY,
            format!("must not be empty (one of: {})", LEVELS.join(", ")),
        ));
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            // A bare word is either a level or a target enabled at every level.
            None if directive.contains(['[', ':']) => continue,
            None => directive,
        };
        if !LEVELS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(level.trim()))
        {
            return Err(ConfigError::invalid(
                KEY,
                format!(
                    "unknown level {level:?} in {filter:?} (levels: {}; per target: target=level)",
                    LEVELS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn in_range<T>(key: &str, value: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            key,
            format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn to_usize(key: &str, value: u64) -> Result<usize, ConfigError> {
    usize::try_from(value).map_err(|_| {
        ConfigError::invalid(key, format!("{value} does not fit this platform's usize"))
    })
}
