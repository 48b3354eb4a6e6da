//! `[sink]`: the Parquet sink (streams/sink) and where its files go, read back by
//! `switchyard sql` and `POST /v1/sql`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// `[sink]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Whether `serve` (and the `sink` role) runs the sink.
    pub enabled: bool,
    /// Where files go: `""` = `<data_dir>/exports`, a path, or `s3://bucket[/prefix]`.
    pub url: String,
    /// S3-compatible endpoint (`""` = AWS for the region).
    pub s3_endpoint: String,
    /// S3 region.
    pub s3_region: String,
    /// S3 access key id (`""` = `AWS_ACCESS_KEY_ID` from the environment).
    pub s3_access_key_id: String,
    /// S3 secret (`""` = `AWS_SECRET_ACCESS_KEY` from the environment).
    pub s3_secret_access_key: String,
    /// Whether a plain-HTTP endpoint is allowed.
    pub s3_allow_http: bool,
    /// A buffer whose oldest row is this much older than now (event time) is closed.
    pub roll_interval_secs: u64,
    /// A buffer with this many rows is closed.
    pub max_rows_per_file: u64,
    /// A buffer with this many bytes of rows is closed.
    pub max_file_bytes: u64,
    /// How often the writer looks for buffers to close, in milliseconds.
    pub flush_check_ms: u64,
    /// Orgs whose prompt and completion text (when captured) is exported.
    pub text_orgs: Vec<String>,
}

/// Where the sink writes.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// A local directory.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
        prefix: String,
        /// Endpoint URL; `None` = AWS.
        endpoint: Option<String>,
        /// Region.
        region: String,
        /// Access key id; `None` = from the environment.
        access_key_id: Option<String>,
        /// Secret; `None` = from the environment.
        secret_access_key: Option<String>,
        /// Whether plain HTTP is allowed.
        allow_http: bool,
    },
}

impl std::fmt::Debug for SinkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkTarget::Local(path) => f.debug_tuple("Local").field(path).finish(),
            SinkTarget::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
            } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("prefix", prefix)
                .field("endpoint", endpoint)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field(
                    "secret_access_key",
                    &secret_access_key.as_ref().map(|_| "<redacted>"),
                )
                .field("allow_http", allow_http)
                .finish(),
        }
    }
}

/// `[sink]`, validated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SinkConfig {
    /// Whether the sink runs.
    pub enabled: bool,
    /// Where files go.
    pub target: SinkTarget,
    /// Close a buffer whose oldest row is this much older than now.
    pub roll_interval: Duration,
    /// Close a buffer at this many rows.
    pub max_rows_per_file: usize,
    /// Close a buffer at this many bytes of rows.
    pub max_file_bytes: u64,
    /// How often the writer looks for buffers to close.
    pub flush_check: Duration,
    /// Orgs whose prompt and completion text is exported.
    pub text_orgs: Vec<String>,
}

impl SinkConfig {
    /// Returns the defaults writing under `dir` (for tests and tools).
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            enabled: true,
            target: SinkTarget::Local(dir.into()),
            roll_interval: Duration::from_secs(300),
            max_rows_per_file: 100_000,
            max_file_bytes: 64 << 20,
            flush_check: Duration::from_secs(1),
            text_orgs: Vec::new(),
        }
    }
}

/// The local export directory under a data directory.
pub fn default_export_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exports")
}

fn nonempty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl RawSink {
    pub(crate) fn validate(self, data_dir: &Path) -> Result<SinkConfig, ConfigError> {
        let target = if let Some(rest) = self.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ConfigError::invalid(
                    "sink.url",
                    "`s3://` needs a bucket: s3://bucket[/prefix]",
                ));
            }
            SinkTarget::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
                endpoint: nonempty(&self.s3_endpoint),
                region: nonempty(&self.s3_region).unwrap_or_else(|| "us-east-1".into()),
                access_key_id: nonempty(&self.s3_access_key_id),
                secret_access_key: nonempty(&self.s3_secret_access_key),
                allow_http: self.s3_allow_http,
            }
        } else if self.url.contains("://") && !self.url.starts_with("file://") {
            return Err(ConfigError::invalid(
                "sink.url",
                format!(
                    "`{}`: use a path, file://path or s3://bucket[/prefix]",
                    self.url
                ),
            ));
        } else {
            let path = self.url.strip_prefix("file://").unwrap_or(&self.url);
            if path.trim().is_empty() {
                SinkTarget::Local(default_export_dir(data_dir))
            } else {
                let path = PathBuf::from(path);
                SinkTarget::Local(if path.is_relative() {
                    data_dir.join(path)
                } else {
                    path
                })
            }
        };
        let in_range = |key: &str, value: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::invalid(
                    key,
                    format!("{value} is out of range {lo}..={hi}"),
                ))
            }
        };
        for org in &self.text_orgs {
            if org.is_empty() {
                return Err(ConfigError::invalid(
                    "sink.text_orgs",
                    "an org name is empty",
                ));
            }
        }
        Ok(SinkConfig {
            enabled: self.enabled,
            target,
            roll_interval: Duration::from_secs(in_range(
                "sink.roll_interval_secs",
                self.roll_interval_secs,
                1,
                7 * 86_400,
            )?),
            max_rows_per_file: usize::try_from(in_range(
                "sink.max_rows_per_file",
                self.max_rows_per_file,
                1,
                100_000_000,
            )?)
            .unwrap_or(usize::MAX),
            max_file_bytes: in_range("sink.max_file_bytes", self.max_file_bytes, 1, 1 << 40)?,
            flush_check: Duration::from_millis(in_range(
                "sink.flush_check_ms",
                self.flush_check_ms,
                10,
                3_600_000,
            )?),
            text_orgs: self.text_orgs,
        })
    }
}
