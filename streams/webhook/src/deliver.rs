//! One batch to one endpoint: POST, with retries.
//!
//! Retried: 408, 429, 5xx, timeouts and connection failures, up to `max_attempts` attempts,
//! sleeping an exponential backoff with full jitter (`rand(0, min(max, initial * 2^n))`), or
//! the endpoint's `Retry-After` (seconds) when it sends one, capped at `max_backoff`. Not
//! retried: any other 4xx (the endpoint refuses the batch) and a refused target. Either way
//! the caller dead-letters the batch.

use std::time::Duration;

use rand::Rng;
use switchyard_config::WebhooksConfig;
use tokio_util::sync::CancellationToken;

use crate::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, signature};
use crate::target::{TargetError, check};

/// Why a batch was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The target is refused (private address) or unresolvable.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The endpoint answered a status that is not retried.
    #[error("the endpoint answered {0}")]
    Rejected(u16),
    /// Every attempt failed.
    #[error("{attempts} attempts failed; the last: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Shutdown interrupted the retries (the batch is delivered again after the restart).
    #[error("shutting down")]
    Cancelled,
}

/// Returns the delay before retry `n` (0-based): full jitter over the doubled backoff.
pub fn backoff(config: &WebhooksConfig, n: u32) -> Duration {
    let cap = config
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(n.min(30)))
        .min(config.max_backoff);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// POSTs `body` to `url` until it is accepted (2xx) or the attempts run out. `now_unix` stamps
/// each attempt's signature.
#[expect(clippy::too_many_arguments, reason = "one delivery, every input named")]
pub async fn deliver(
    client: &reqwest::Client,
    config: &WebhooksConfig,
    url: &reqwest::Url,
    secret: &[u8],
    delivery_id: &str,
    body: &[u8],
    now_unix: &(dyn Fn() -> i64 + Send + Sync),
    shutdown: &CancellationToken,
) -> Result<u32, DeliveryError> {
    let mut last = String::new();
    for attempt in 0..config.max_attempts {
        if attempt > 0 {
            let wait = match last.strip_prefix("retry-after:") {
                Some(secs) => {
                    Duration::from_secs(secs.parse().unwrap_or(0)).min(config.max_backoff)
                }
                None => backoff(config, attempt - 1),
            };
            tokio::select! {
                () = shutdown.cancelled() => return Err(DeliveryError::Cancelled),
                () = tokio::time::sleep(wait) => {}
            }
        }
        // Checked before every attempt: a name may re-resolve elsewhere between attempts.
        check(url, config.allow_private_targets).await?;
        let t = now_unix();
        let sent = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery_id)
            .header(SIGNATURE_HEADER, signature(secret, t, body))
            .timeout(config.timeout)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return Ok(attempt + 1),
            Ok(response) => {
                let status = response.status().as_u16();
                if !(status == 408 || status == 429 || status >= 500) {
                    return Err(DeliveryError::Rejected(status));
                }
                last = match retry_after(&response) {
                    Some(wait) => format!("retry-after:{}", wait.as_secs()),
                    None => format!("HTTP {status}"),
                };
                tracing::debug!(%url, status, attempt, "webhook delivery failed; retrying");
            }
            Err(e) => {
                last = format!("{e}");
                tracing::debug!(%url, error = %e, attempt, "webhook delivery failed; retrying");
            }
        }
    }
    Err(DeliveryError::Exhausted {
        attempts: config.max_attempts,
        last,
    })
}
