use std::time::Duration;

/// What went wrong with a provider call, classified for retries, fallback and the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// 429 from the upstream.
    RateLimited,
    /// 5xx / overloaded.
    Server,
    /// No answer (or no first token) in time.
    Timeout,
    /// Connection failure.
    Transport,
    /// The upstream rejected the request (4xx other than auth/limits).
    BadRequest,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// Credentials rejected.
    Unauthorized,
    /// The upstream does not know the model.
    NotFound,
    /// The upstream's answer could not be understood.
    InvalidResponse,
    /// The model cannot serve this request (capability mismatch).
    Unsupported,
    /// The account's quota or credit is exhausted (OpenAI's 429 `insufficient_quota`): a retry
    /// cannot help, another model (the fallback) may.
    QuotaExceeded,
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} {kind:?}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    /// The provider that failed.
    pub provider: String,
    /// The class of failure.
    pub kind: ProviderErrorKind,
    /// Upstream HTTP status, if any.
    pub status: Option<u16>,
    /// What the upstream said.
    pub message: String,
    /// Upstream `Retry-After`, if any.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// Returns an error of a kind.
    pub fn new(
        provider: impl Into<String>,
        kind: ProviderErrorKind,
        message: impl Into<String>,
    ) -> Self {
        ProviderError {
            provider: provider.into(),
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Classifies an upstream HTTP status.
    pub fn from_status(
        provider: impl Into<String>,
        status: u16,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let kind = match status {
            429 => ProviderErrorKind::RateLimited,
            401 | 403 => ProviderErrorKind::Unauthorized,
            404 => ProviderErrorKind::NotFound,
            408 => ProviderErrorKind::Timeout,
            413 => ProviderErrorKind::ContextLength,
            400..=499 => ProviderErrorKind::BadRequest,
            _ => ProviderErrorKind::Server,
        };
        ProviderError {
            provider: provider.into(),
            kind,
            status: Some(status),
            message: message.into(),
            retry_after,
        }
    }

    /// Returns whether the same call may succeed when retried (429, 5xx, timeouts, transport).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Server
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Transport
        )
    }

    /// Returns a low-cardinality label for metrics and traces.
    pub fn metric_label(&self) -> &'static str {
        match self.kind {
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::Server => "server",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::Transport => "transport",
            ProviderErrorKind::BadRequest => "bad_request",
            ProviderErrorKind::ContextLength => "context_length",
            ProviderErrorKind::Unauthorized => "unauthorized",
            ProviderErrorKind::NotFound => "not_found",
            ProviderErrorKind::InvalidResponse => "invalid_response",
            ProviderErrorKind::Unsupported => "unsupported",
            ProviderErrorKind::QuotaExceeded => "quota_exceeded",
        }
    }
}
