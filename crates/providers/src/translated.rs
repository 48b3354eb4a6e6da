//! Plumbing shared by the translating adapters (Gemini, Vertex AI, Bedrock): sending a call with
//! the house timeouts, reading error bodies, and turning a streamed body into [`ChatChunk`]s
//! through a wire-format [`Decoder`].
//!
//! The stream guarantees are those of the OpenAI-compatible adapter:
//! - `stream` returns once the first chunk exists, so a failure before the first token (HTTP
//!   error, error event, timeout) is an `Err` of `stream` itself and the router can fail over;
//! - the first chunk must come within `first_byte`, later pieces of the body within `idle`;
//! - a body that ends before the decoder saw the end of the answer, a malformed frame and an
//!   error event end the stream with one `Err` item; nothing follows an `Err`;
//! - usage comes out once, as a final chunk with empty `choices` (the decoders emit it).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use crate::http::{ERROR_BODY_LIMIT, Timeouts, stream_timeout, transport_error, truncate};
use crate::types::ChatChunk;
use crate::{ChunkStream, ProviderError, ProviderErrorKind};

/// Translates an upstream HTTP error (status, headers, at most [`ERROR_BODY_LIMIT`] bytes of
/// body) into a [`ProviderError`]; each wire format has its own error body.
pub(crate) type ErrorMapper = fn(&str, StatusCode, &HeaderMap, &[u8]) -> ProviderError;

/// What the decoders produce and the pump hands out.
pub(crate) type Item = Result<ChatChunk, ProviderError>;

/// A wire format's stream decoder: bytes in, chunks out.
pub(crate) trait Decoder: Send + 'static {
    /// Consumes a piece of the body (cut anywhere) and appends what it completes to `out`.
    fn push(&mut self, piece: &[u8], out: &mut VecDeque<Item>);

    /// Called at the clean end of the body: appends the last items, or the `Err` of a body that
    /// ended before the answer did.
    fn finish(&mut self, out: &mut VecDeque<Item>);

    /// Returns whether the answer is complete (nothing more is read once it is, or once an
    /// `Err` came out).
    fn done(&self) -> bool;
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Reads a body through a decoder, with the first-token and idle timeouts.
pub(crate) struct Pump<D> {
    provider: String,
    body: ByteStream,
    decoder: D,
    pending: VecDeque<Item>,
    /// Until the first item: when the first-token budget runs out.
    first_deadline: Option<Instant>,
    first_byte: Duration,
    idle: Duration,
    finished: bool,
}

impl<D: Decoder> Pump<D> {
    /// Returns the next item, `None` at the end.
    pub(crate) async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    self.pending.clear();
                    self.finished = true;
                }
                self.first_deadline = None;
                return Some(item);
            }
            if self.finished {
                return None;
            }
            if self.decoder.done() {
                self.finished = true;
                continue;
            }
            let deadline = self
                .first_deadline
                .unwrap_or_else(|| Instant::now() + self.idle);
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => {
                    let first_token = self.first_deadline.is_some();
                    self.fail(stream_timeout(
                        &self.provider,
                        first_token,
                        self.first_byte,
                        self.idle,
                    ));
                }
                Ok(Some(Ok(bytes))) => self.decoder.push(&bytes, &mut self.pending),
                Ok(Some(Err(e))) => {
                    let mut err = transport_error(&self.provider, &e);
                    err.message = format!("the stream broke off: {}", err.message);
                    self.fail(err);
                }
                Ok(None) => {
                    self.decoder.finish(&mut self.pending);
                    self.finished = true;
                }
            }
        }
    }

    fn fail(&mut self, err: ProviderError) {
        self.pending.push_back(Err(err));
        self.finished = true;
    }
}

/// Sends a non-streaming call within `timeouts.request` and returns the body of a successful
/// answer.
pub(crate) async fn call(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
    map_error: ErrorMapper,
) -> Result<Bytes, ProviderError> {
    let response = request
        .timeout(timeouts.request)
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    if !status.is_success() {
        let body = &bytes[..bytes.len().min(ERROR_BODY_LIMIT)];
        return Err(map_error(provider, status, &headers, body));
    }
    Ok(bytes)
}

/// Sends a streaming call and returns the stream once its first chunk has arrived (see the
/// module documentation). `content_type` is the media type a successful answer must have.
pub(crate) async fn stream<D: Decoder>(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
    content_type: &str,
    map_error: ErrorMapper,
    decoder: D,
) -> Result<ChunkStream, ProviderError> {
    let deadline = Instant::now() + timeouts.first_byte;
    let response = match tokio::time::timeout_at(deadline, request.send()).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Err(transport_error(provider, &e)),
        Err(_) => {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::Timeout,
                format!("no response within {} ms", timeouts.first_byte.as_millis()),
            ));
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    if !status.is_success() {
        let body = error_body(response, deadline).await;
        return Err(map_error(provider, status, &headers, &body));
    }
    let got = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !got.trim_start().starts_with(content_type) {
        let body = error_body(response, deadline).await;
        return Err(ProviderError::new(
            provider,
            ProviderErrorKind::InvalidResponse,
            format!(
                "expected {content_type}, got {got:?}: {}",
                truncate(&String::from_utf8_lossy(&body), 300)
            ),
        ));
    }
    let mut pump = Pump {
        provider: provider.to_owned(),
        body: Box::pin(response.bytes_stream()),
        decoder,
        pending: VecDeque::new(),
        first_deadline: Some(deadline),
        first_byte: timeouts.first_byte,
        idle: timeouts.idle,
        finished: false,
    };
    let first = match pump.next_item().await {
        None => return Ok(Box::pin(futures::stream::empty())),
        Some(Err(e)) => return Err(e),
        Some(Ok(chunk)) => chunk,
    };
    let rest = futures::stream::unfold(pump, |mut pump| async move {
        pump.next_item().await.map(|item| (item, pump))
    });
    Ok(Box::pin(
        futures::stream::once(async move { Ok(first) }).chain(rest),
    ))
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of an error body, before `deadline`.
pub(crate) async fn error_body(response: reqwest::Response, deadline: Instant) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(bytes))) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    body
}

/// Returns the wall-clock time in Unix seconds, for the `created` field of translated answers
/// (the translated upstreams report none).
#[expect(
    clippy::disallowed_methods,
    reason = "`created` is wall-clock time by definition; adapters are not processors and have no injected clock"
)]
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Returns a fresh identifier with a prefix (`chatcmpl-…`, `call_…`): unique within the
/// process and unpredictable enough across processes, without a random number generator
/// (std's `RandomState` is randomly seeded per process).
pub(crate) fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = SEED.get_or_init(Default::default).build_hasher();
    hasher.write_u64(n);
    hasher.write_i64(unix_now());
    let a = hasher.finish();
    hasher.write_u64(a);
    format!("{prefix}{a:016x}{:08x}", hasher.finish() as u32)
}

/// Returns an `InvalidResponse` error.
pub(crate) fn invalid(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::InvalidResponse, message)
}

/// Returns an `Unsupported` error (the request uses something the upstream cannot do).
pub(crate) fn unsupported(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::Unsupported, message)
}

/// Returns a `BadRequest` error (the request cannot be translated as it is).
pub(crate) fn bad_request(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::BadRequest, message)
}

/// Splits a `data:` URL into its media type and base64 payload.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((
        if media.is_empty() {
            "application/octet-stream"
        } else {
            media
        },
        data,
    ))
}

/// Parses a configured base URL: absolute http(s), trailing slashes dropped.
pub(crate) fn base_url(
    provider: &str,
    url: &str,
) -> Result<reqwest::Url, crate::ProviderConfigError> {
    reqwest::Url::parse(url.trim_end_matches('/'))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
        .ok_or_else(|| crate::ProviderConfigError::InvalidUrl {
            provider: provider.to_owned(),
            url: url.to_owned(),
        })
}

/// Builds the pooled HTTP client of a provider.
pub(crate) fn client(
    provider: &str,
    timeouts: &Timeouts,
) -> Result<reqwest::Client, crate::ProviderConfigError> {
    crate::http::build_client(timeouts).map_err(|reason| crate::ProviderConfigError::Client {
        provider: provider.to_owned(),
        reason,
    })
}

/// Returns `url` with path segments appended (each percent-encoded as one segment).
pub(crate) fn join(url: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = url.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id("call_")).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.starts_with("call_") && i.len() == 29));
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(parse_data_url("data:image/png,AAAA"), None, "not base64");
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }
}
