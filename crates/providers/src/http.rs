//! HTTP plumbing shared by the adapters: the pooled client, timeouts, and the translation of
//! upstream failures (status, error body, `Retry-After`) into [`ProviderError`]s.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{ProviderError, ProviderErrorKind};

/// How long an adapter waits, per phase of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connection establishment.
    pub connect: Duration,
    /// A whole non-streaming call (request sent to body read), `complete` and `embed`.
    pub request: Duration,
    /// A stream: from sending the request to the first event (the first token, usually).
    pub first_byte: Duration,
    /// A stream: the longest silence between two pieces of the body once it has started.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(600),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(120),
        }
    }
}

/// Returns a pooled HTTP client: TCP_NODELAY (small SSE writes must not wait for Nagle), HTTP/2
/// when the server offers it over TLS, rustls on `ring` with the platform's certificate
/// verifier.
pub(crate) fn build_client(timeouts: &Timeouts) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("failed to load the platform certificate verifier: {e}"))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("failed to configure TLS: {e}"))?
        .dangerous() // not dangerous: the platform verifier checks certificates and names
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // reqwest leaves ALPN to a preconfigured TLS config: offer HTTP/2 first.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .connect_timeout(timeouts.connect)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .http2_adaptive_window(true)
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("failed to build the HTTP client: {e}"))
}

/// Returns the error of a stream that went quiet: before its first token (`first_token` set,
/// the `first_byte` budget) or between chunks (the `idle` budget).
pub(crate) fn stream_timeout(
    provider: &str,
    first_token: bool,
    first_byte: std::time::Duration,
    idle: std::time::Duration,
) -> ProviderError {
    let message = if first_token {
        format!("no first token within {} ms", first_byte.as_millis())
    } else {
        format!("the stream stalled: nothing for {} ms", idle.as_millis())
    };
    ProviderError::new(provider, crate::ProviderErrorKind::Timeout, message)
}

/// Classifies a transport-level failure (no HTTP status).
pub(crate) fn transport_error(provider: &str, err: &reqwest::Error) -> ProviderError {
    let kind = if err.is_timeout() {
        ProviderErrorKind::Timeout
    } else {
        ProviderErrorKind::Transport
    };
    // The error's Display names the URL (never a credential: keys travel in headers).
    ProviderError::new(provider, kind, error_chain(err))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Most bytes of an error body worth reading.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Translates an upstream HTTP error (status, headers, body) into a [`ProviderError`] carrying
/// the upstream's own message and its `Retry-After`.
pub(crate) fn status_error(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let message = upstream_message(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_owned()
        } else {
            truncate(text, 2000)
        }
    });
    let mut err =
        ProviderError::from_status(provider, status.as_u16(), message, retry_after(headers));
    if err.kind == ProviderErrorKind::BadRequest && mentions_context_length(body) {
        err.kind = ProviderErrorKind::ContextLength;
    }
    if err.kind == ProviderErrorKind::RateLimited && is_insufficient_quota(body) {
        err.kind = ProviderErrorKind::QuotaExceeded;
    }
    err
}

/// Returns whether an error body is OpenAI's quota refusal (`"code"` or `"type"`
/// `insufficient_quota`), as opposed to a rate limit that waiting clears.
pub(crate) fn is_insufficient_quota(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = value.get("error").unwrap_or(&value);
    ["code", "type"]
        .iter()
        .any(|k| error.get(*k).and_then(serde_json::Value::as_str) == Some("insufficient_quota"))
}

/// Returns the message of an OpenAI-style error body: `{"error": {"message": ..}}`,
/// `{"error": ".."}`, `{"message": ..}` or `{"detail": ..}` (FastAPI / pydantic servers).
pub(crate) fn upstream_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    error_value_message(&value)
}

/// Returns the message of an error object as found in an error body or a mid-stream event.
pub(crate) fn error_value_message(value: &Value) -> Option<String> {
    let candidate = match value {
        Value::Object(map) => map
            .get("error")
            .map(|e| match e {
                Value::Object(inner) => inner
                    .get("message")
                    .or_else(|| inner.get("detail"))
                    .unwrap_or(e),
                other => other,
            })
            .or_else(|| map.get("message"))
            .or_else(|| map.get("detail"))?,
        _ => return None,
    };
    let text = match candidate {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    Some(truncate(&text, 2000))
}

fn mentions_context_length(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    [
        "context_length_exceeded",
        "context length",
        "context window",
        "maximum context",
        "too many tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Parses how long the upstream asks to wait: `retry-after-ms` (OpenAI), then `Retry-After` as
/// delay-seconds or as an HTTP date. A date is measured against the response's own `Date`
/// header when present, so the local clock's skew does not matter.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(wall_clock_now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[expect(
    clippy::disallowed_methods,
    reason = "an HTTP-date Retry-After is wall-clock time by definition; used only when the response has no Date header to measure it against"
)]
fn wall_clock_now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_milliseconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
                ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ])),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ("date", "Wed, 21 Oct 2015 07:29:00 GMT"),
            ])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_bodies_of_every_shape_give_the_upstream_message() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
                "Rate limit reached",
            ),
            (r#"{"error":"model overloaded"}"#, "model overloaded"),
            (r#"{"message":"bad key","type":"auth"}"#, "bad key"),
            (
                r#"{"detail":[{"msg":"Extra inputs are not permitted"}]}"#,
                r#"[{"msg":"Extra inputs are not permitted"}]"#,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(upstream_message(body.as_bytes()).as_deref(), Some(*want));
        }
        let err = status_error(
            "p",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert_eq!(err.kind, ProviderErrorKind::Server);
        assert_eq!(err.message, "<html>bad gateway</html>");
        let err = status_error("p", StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
        assert_eq!(err.message, "Service Unavailable");
    }

    #[test]
    fn context_length_errors_are_classified() {
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#;
        let err = status_error("p", StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(err.kind, ProviderErrorKind::ContextLength);
        assert_eq!(err.status, Some(400));
    }
}
