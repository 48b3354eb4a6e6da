//! switchyard-webhook: the webhook export.
//!
//! Place in the pipeline: consumes the `decisions` topic (consumer group `webhook`, from the
//! earliest record) and POSTs every `RouteDecided` of an org that has an endpoint
//! (`[webhooks.orgs.<org>]`) to it, in JSON batches of at most `webhooks.batch_size`:
//!
//! ```json
//! {"delivery_id": "…", "org": "acme", "count": 2, "decisions": [{…trace…}, {…trace…}]}
//! ```
//!
//! Each decision is the trace as `GET /v1/decisions/{id}` shows it under `decision` (serde JSON
//! of the event, its Ed25519 signature included). Headers: `x-switchyard-signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` ([`sign`]) and `x-switchyard-delivery`.
//!
//! Delivery is at least once: offsets are committed only after every batch of a poll was
//! delivered or dead-lettered, so a crash re-sends. The delivery id is derived from the batch's
//! event ids (SHA-256 of the org and the ids), so a re-sent batch carries the same id and a
//! receiver dedupes on it (or on each decision's `envelope.event_id`). A batch that cannot be
//! delivered ([`deliver`]: retries with backoff and jitter on 408/429/5xx and network errors,
//! none on other 4xx) goes to the `dead-letter` topic, one record per decision with the source
//! position, the failure and the delivery id in headers. Targets that are or resolve to private,
//! loopback or link-local addresses are refused ([`target`]) unless
//! `webhooks.allow_private_targets` is set.

pub mod deliver;
pub mod sign;
pub mod target;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchyard_config::WebhooksConfig;
use switchyard_events::{Codec, Event, Topic};
use switchyard_log::{EventLog, GroupId, LogError, Record, StartFrom, StoredRecord, Subscription};
use switchyard_processor::dead_letter;
use tokio_util::sync::CancellationToken;

pub use deliver::{DeliveryError, backoff};

/// The consumer group of the webhook export.
pub const GROUP: &str = "webhook";

/// The dead-letter header naming the delivery id of a failed batch.
pub const HEADER_DELIVERY: &str = "switchyard.webhook.delivery";

/// Returns the delivery id of a batch: hex SHA-256 of the org and the events' ids (32 digits).
pub fn delivery_id(org: &str, event_ids: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"switchyard/webhook/v1\n");
    h.update(org.as_bytes());
    for id in event_ids {
        h.update(b"\n");
        h.update(id.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Builds the HTTP client: rustls on ring with the platform's verifier, no redirects, and a
/// resolver that refuses private addresses (unless allowed).
pub fn client(config: &WebhooksConfig) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("failed to load the platform certificate verifier: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("failed to configure TLS: {e}"))?
        .dangerous() // not dangerous: the platform verifier checks certificates and names
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(target::resolver(config.allow_private_targets))
        .connect_timeout(config.timeout)
        .user_agent(concat!("switchyard-webhook/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("failed to build the HTTP client: {e}"))
}

/// What one poll delivered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Batches accepted by their endpoint.
    pub batches: u64,
    /// Decisions in them.
    pub decisions: u64,
    /// Decisions sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// Why the export stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The log failed.
    #[error("the event log: {0}")]
    Log(#[from] LogError),
    /// The HTTP client could not be built.
    #[error("webhook client: {0}")]
    Client(String),
    /// A configured URL does not parse.
    #[error("webhooks.orgs.{org}.url: {reason}")]
    Url {
        /// The org.
        org: String,
        /// Why.
        reason: String,
    },
}

/// The export's state: endpoints, client and the log.
pub struct WebhookExport<L: EventLog> {
    log: L,
    codec: Arc<Codec>,
    config: WebhooksConfig,
    client: reqwest::Client,
    urls: BTreeMap<String, reqwest::Url>,
    now_unix: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl<L: EventLog> std::fmt::Debug for WebhookExport<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookExport")
            .field("orgs", &self.urls.keys())
            .finish_non_exhaustive()
    }
}

impl<L: EventLog> WebhookExport<L> {
    /// Returns the export; `now_unix` stamps signatures (seconds since the epoch).
    pub fn new(
        log: L,
        codec: Arc<Codec>,
        config: WebhooksConfig,
        now_unix: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Self, WebhookError> {
        let client = client(&config).map_err(WebhookError::Client)?;
        let mut urls = BTreeMap::new();
        for (org, target) in &config.orgs {
            let url = reqwest::Url::parse(&target.url).map_err(|e| WebhookError::Url {
                org: org.clone(),
                reason: e.to_string(),
            })?;
            urls.insert(org.clone(), url);
        }
        Ok(Self {
            log,
            codec,
            config,
            client,
            urls,
            now_unix,
        })
    }

    /// Runs until `shutdown`: poll, deliver or dead-letter, commit.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WebhookError> {
        if self.urls.is_empty() {
            shutdown.cancelled().await;
            return Ok(());
        }
        let group = GroupId::new(GROUP)?;
        let mut sub = self
            .log
            .subscribe(&group, &[Topic::Decisions], StartFrom::Earliest)
            .await?;
        loop {
            let records = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = sub.poll(self.config.batch_size * 4, Duration::from_millis(200)) => r?,
            };
            if records.is_empty() {
                continue;
            }
            let mut offsets: HashMap<(Topic, u32), u64> = HashMap::new();
            for r in &records {
                let next = offsets.entry((r.topic, r.partition)).or_insert(0);
                *next = (*next).max(r.offset + 1);
            }
            match self.handle(&records, &shutdown).await {
                Ok(_) => {}
                // Not committed: delivered again after the restart, with the same ids.
                Err(DeliveryError::Cancelled) => return Ok(()),
                Err(e) => tracing::warn!(error = %e, "webhook batch not handled"),
            }
            let commits: Vec<(Topic, u32, u64)> =
                offsets.into_iter().map(|((t, p), o)| (t, p, o)).collect();
            sub.commit(&commits).await?;
        }
    }

    /// Delivers (or dead-letters) the decisions among `records`; returns what happened.
    pub async fn handle(
        &self,
        records: &[StoredRecord],
        shutdown: &CancellationToken,
    ) -> Result<Delivered, DeliveryError> {
        let mut by_org: BTreeMap<String, Vec<(&StoredRecord, serde_json::Value, String)>> =
            BTreeMap::new();
        for r in records {
            let Ok(Event::RouteDecided(d)) = self.codec.decode(&r.value) else {
                continue;
            };
            let org = d.envelope.org.as_str().to_owned();
            if !self.urls.contains_key(&org) {
                continue;
            }
            let id = d.envelope.event_id.to_string();
            let json = serde_json::to_value(&d).unwrap_or_default();
            by_org.entry(org).or_default().push((r, json, id));
        }
        let mut done = Delivered::default();
        for (org, items) in by_org {
            let (Some(url), Some(target)) = (self.urls.get(&org), self.config.orgs.get(&org))
            else {
                continue;
            };
            for chunk in items.chunks(self.config.batch_size) {
                let ids: Vec<String> = chunk.iter().map(|(_, _, id)| id.clone()).collect();
                let delivery = delivery_id(&org, &ids);
                let body = serde_json::json!({
                    "delivery_id": delivery,
                    "org": org,
                    "count": chunk.len(),
                    "decisions": chunk.iter().map(|(_, json, _)| json).collect::<Vec<_>>(),
                });
                let body = serde_json::to_vec(&body).unwrap_or_default();
                let outcome = deliver::deliver(
                    &self.client,
                    &self.config,
                    url,
                    target.secret.as_bytes(),
                    &delivery,
                    &body,
                    self.now_unix.as_ref(),
                    shutdown,
                )
                .await;
                match outcome {
                    Ok(attempts) => {
                        tracing::debug!(%org, %delivery, attempts, count = chunk.len(), "webhook batch delivered");
                        done.batches += 1;
                        done.decisions += chunk.len() as u64;
                    }
                    Err(DeliveryError::Cancelled) => return Err(DeliveryError::Cancelled),
                    Err(e) => {
                        tracing::warn!(%org, %delivery, error = %e, "webhook batch failed; dead-lettering its decisions");
                        let letters: Vec<Record> = chunk
                            .iter()
                            .map(|(r, _, _)| dead_letter_of(r, &e.to_string(), &delivery))
                            .collect();
                        // Durable before the offsets are committed; a log failure here is
                        // retried by the caller's next poll (nothing committed).
                        let mut wait = Duration::from_millis(100);
                        loop {
                            match self.log.append(Topic::DeadLetter, letters.clone()).await {
                                Ok(_) => break,
                                Err(err) => {
                                    tracing::warn!(error = %err, "cannot append webhook dead letters; retrying");
                                    tokio::select! {
                                        () = shutdown.cancelled() => return Err(DeliveryError::Cancelled),
                                        () = tokio::time::sleep(wait) => {}
                                    }
                                    wait = (wait * 2).min(Duration::from_secs(10));
                                }
                            }
                        }
                        done.dead_lettered += chunk.len() as u64;
                    }
                }
            }
        }
        Ok(done)
    }
}

fn dead_letter_of(r: &StoredRecord, reason: &str, delivery: &str) -> Record {
    Record::new(r.key.clone(), r.value.clone())
        .at(r.timestamp_ms)
        .header(dead_letter::HEADER_GROUP, GROUP)
        .header(dead_letter::HEADER_SOURCE_TOPIC, r.topic.name())
        .header(
            dead_letter::HEADER_SOURCE_PARTITION,
            r.partition.to_string(),
        )
        .header(dead_letter::HEADER_SOURCE_OFFSET, r.offset.to_string())
        .header(dead_letter::HEADER_KIND, "delivery")
        .header(dead_letter::HEADER_REASON, reason)
        .header(HEADER_DELIVERY, delivery)
}

/// Runs the webhook export over `log` until `shutdown` (the role `serve` runs).
pub async fn run<L: EventLog>(
    log: L,
    codec: Arc<Codec>,
    config: WebhooksConfig,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    let now = Arc::new(|| {
        use switchyard_runtime::Clock as _;
        switchyard_runtime::SystemClock
            .now_micros()
            .div_euclid(1_000_000)
    });
    WebhookExport::new(log, codec, config, now)?
        .run(shutdown)
        .await
}
