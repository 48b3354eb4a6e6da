//! `[webhooks]`: decision batches POSTed to per-org HTTPS endpoints, HMAC-signed
//! (streams/webhook).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// `[webhooks.orgs.<org>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhookTarget {
    /// `https://...` (or `http://...`) endpoint.
    pub url: String,
    /// The HMAC-SHA256 secret.
    pub secret: String,
}

/// `[webhooks]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    /// Allow targets that resolve to private, loopback or link-local addresses.
    pub allow_private_targets: bool,
    /// Attempts per batch before it goes to the dead-letter topic.
    pub max_attempts: u32,
    /// First retry delay, in milliseconds (doubles per attempt, with jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay (and longest `Retry-After` honoured), in milliseconds.
    pub max_backoff_ms: u64,
    /// Timeout of one POST, in seconds.
    pub timeout_secs: u64,
    /// Most decisions per POST.
    pub batch_size: u32,
    /// Per-org endpoints.
    #[serde(default)]
    pub orgs: BTreeMap<String, RawWebhookTarget>,
}

/// One org's endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The endpoint.
    pub url: String,
    /// The HMAC-SHA256 secret (never logged).
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `[webhooks]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhooksConfig {
    /// Allow private, loopback and link-local targets.
    pub allow_private_targets: bool,
    /// Attempts per batch before dead-lettering.
    pub max_attempts: u32,
    /// First retry delay.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Timeout of one POST.
    pub timeout: Duration,
    /// Most decisions per POST.
    pub batch_size: usize,
    /// Endpoints by org.
    pub orgs: BTreeMap<String, WebhookTarget>,
}

impl WebhooksConfig {
    /// Returns the defaults with the given org endpoints (for tests and tools).
    pub fn with_orgs(orgs: BTreeMap<String, WebhookTarget>) -> Self {
        Self {
            allow_private_targets: false,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            batch_size: 100,
            orgs,
        }
    }
}

impl RawWebhooks {
    pub(crate) fn validate(self) -> Result<WebhooksConfig, ConfigError> {
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::invalid(
                    &format!("webhooks.{key}"),
                    format!("must be between {lo} and {hi}, got {v}"),
                ))
            }
        };
        let max_attempts = range("max_attempts", u64::from(self.max_attempts), 1, 100)?;
        let initial = range("initial_backoff_ms", self.initial_backoff_ms, 1, 3_600_000)?;
        let max = range("max_backoff_ms", self.max_backoff_ms, initial, 86_400_000)?;
        let timeout = range("timeout_secs", self.timeout_secs, 1, 600)?;
        let batch = range("batch_size", u64::from(self.batch_size), 1, 10_000)?;
        let mut orgs = BTreeMap::new();
        for (org, target) in self.orgs {
            let key = format!("webhooks.orgs.{org}");
            let url = target.url.trim();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::invalid(
                    &format!("{key}.url"),
                    format!("must be an http:// or https:// URL, got `{url}`"),
                ));
            }
            if target.secret.len() < 16 {
                return Err(ConfigError::invalid(
                    &format!("{key}.secret"),
                    "must be at least 16 characters (it keys the HMAC-SHA256 signature)",
                ));
            }
            orgs.insert(
                org,
                WebhookTarget {
                    url: url.to_owned(),
                    secret: target.secret,
                },
            );
        }
        Ok(WebhooksConfig {
            allow_private_targets: self.allow_private_targets,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            initial_backoff: Duration::from_millis(initial),
            max_backoff: Duration::from_millis(max),
            timeout: Duration::from_secs(timeout),
            batch_size: usize::try_from(batch).unwrap_or(usize::MAX),
            orgs,
        })
    }
}
