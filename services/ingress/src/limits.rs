//! Per-key rate limits: requests per minute and tokens per minute, as OpenAI enforces them.
//!
//! Each key's limits come from its `ApiKeyCreated` event (`switchyard keys create --rpm N
//! --tpm N`). Counting is a sliding window over two fixed one-minute windows (the estimate
//! `previous · (1 − elapsed/60 s) + current`), so a burst at a minute boundary cannot pass twice
//! the limit, in O(1) memory per key.
//!
//! - A request is admitted when one more request and its token reservation fit: the reservation
//!   is the prompt's estimated tokens plus the completion it may produce (`max_tokens`, else the
//!   routing default), as OpenAI reserves them. When the response reports its real usage the
//!   window is corrected by the difference.
//! - A refusal is a 429 in OpenAI's shape (`type` `requests` or `tokens`, `code`
//!   `rate_limit_exceeded`) with `retry-after` and OpenAI's `x-ratelimit-*` headers, and without
//!   `x-should-retry: false`: waiting helps, so the SDKs' own retries are right.
//! - Time is the gateway's injected clock.
//!
//! Across ingress replicas (the distributed mode) each replica counts what it admits; the
//! design that makes the limits hold across replicas, and what is built of it, is in the README
//! ("Rate limits").

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchyard_events::ApiKeyId;

use crate::ApiError;

/// Microseconds in a window.
const MINUTE_MICROS: i64 = 60_000_000;

/// A key's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    pub tokens_per_minute: Option<u64>,
}

impl KeyLimits {
    /// Returns whether the key has any limit.
    pub fn is_limited(&self) -> bool {
        self.requests_per_minute.is_some() || self.tokens_per_minute.is_some()
    }
}

/// One key's two windows.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Index of the current minute (`now / 60 s`).
    minute: i64,
    requests: [u64; 2],
    tokens: [u64; 2],
}

impl Window {
    /// Moves the window to `minute`: the current counts become the previous ones, or both
    /// reset after a gap of more than a minute.
    fn roll(&mut self, minute: i64) {
        if minute == self.minute {
            return;
        }
        if minute == self.minute + 1 {
            self.requests = [self.requests[1], 0];
            self.tokens = [self.tokens[1], 0];
        } else if minute > self.minute {
            self.requests = [0, 0];
            self.tokens = [0, 0];
        }
        self.minute = self.minute.max(minute);
    }

    /// The sliding estimate of `counts` at `now`.
    fn used(counts: [u64; 2], now: i64) -> f64 {
        let elapsed = now.rem_euclid(MINUTE_MICROS) as f64 / MINUTE_MICROS as f64;
        counts[0] as f64 * (1.0 - elapsed) + counts[1] as f64
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
}

/// A refused request: renders as OpenAI's 429.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    key: ApiKeyId,
    kind: LimitKind,
    limit: u64,
    used: u64,
    requested: u64,
    retry_after_s: u64,
    remaining_requests: Option<u64>,
    remaining_tokens: Option<u64>,
    limits: KeyLimits,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let (kind, unit) = match self.kind {
            LimitKind::Requests => ("requests", "requests per min (RPM)"),
            LimitKind::Tokens => ("tokens", "tokens per min (TPM)"),
        };
        let mut response = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Rate limit reached for key {} on {unit}: Limit {}, Used {}, Requested {}. Please try again in {}s.",
                self.key.as_str(),
                self.limit,
                self.used,
                self.requested,
                self.retry_after_s
            ),
            kind,
            param: None,
            code: Some("rate_limit_exceeded"),
        }
        .into_response();
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        set("retry-after", self.retry_after_s.to_string());
        if let Some(limit) = self.limits.requests_per_minute {
            set("x-ratelimit-limit-requests", limit.to_string());
            set(
                "x-ratelimit-remaining-requests",
                self.remaining_requests.unwrap_or(0).to_string(),
            );
            set(
                "x-ratelimit-reset-requests",
                format!("{}s", self.retry_after_s),
            );
        }
        if let Some(limit) = self.limits.tokens_per_minute {
            set("x-ratelimit-limit-tokens", limit.to_string());
            set(
                "x-ratelimit-remaining-tokens",
                self.remaining_tokens.unwrap_or(0).to_string(),
            );
            set(
                "x-ratelimit-reset-tokens",
                format!("{}s", self.retry_after_s),
            );
        }
        response
    }
}

/// The per-key windows of one ingress node.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<ApiKeyId, Window>>,
}

impl RateLimiter {
    /// Admits one request of `key` reserving `tokens` at `now` (µs), or says which limit it
    /// would break. Unlimited keys are not tracked.
    pub fn admit(
        &self,
        key: &ApiKeyId,
        limits: KeyLimits,
        tokens: u64,
        now: i64,
    ) -> Result<(), Box<Limited>> {
        if !limits.is_limited() {
            return Ok(());
        }
        let minute = now.div_euclid(MINUTE_MICROS);
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; failing open keeps serving.
            return Ok(());
        };
        let w = windows.entry(key.clone()).or_insert(Window {
            minute,
            ..Window::default()
        });
        w.roll(minute);
        let used_requests = Window::used(w.requests, now);
        let used_tokens = Window::used(w.tokens, now);
        let remaining = |limit: Option<u64>, used: f64| {
            limit.map(|l| (l as f64 - used).floor().max(0.0) as u64)
        };
        let retry_after_s =
            ((MINUTE_MICROS - now.rem_euclid(MINUTE_MICROS)) / 1_000_000 + 1) as u64;
        let refuse = |kind, limit: u64, used: f64, requested| {
            Box::new(Limited {
                key: key.clone(),
                kind,
                limit,
                used: used.ceil() as u64,
                requested,
                retry_after_s,
                remaining_requests: remaining(limits.requests_per_minute, used_requests),
                remaining_tokens: remaining(limits.tokens_per_minute, used_tokens),
                limits,
            })
        };
        if let Some(limit) = limits.requests_per_minute
            && used_requests + 1.0 > limit as f64
        {
            return Err(refuse(LimitKind::Requests, limit, used_requests, 1));
        }
        if let Some(limit) = limits.tokens_per_minute
            && used_tokens + tokens as f64 > limit as f64
        {
            return Err(refuse(LimitKind::Tokens, limit, used_tokens, tokens));
        }
        w.requests[1] += 1;
        w.tokens[1] += tokens;
        Ok(())
    }

    /// Corrects a key's token count once a response reports its real usage: `reserved` is
    /// what [`RateLimiter::admit`] counted at `admitted` (µs), `used` the real total. Only a
    /// reservation made in the current or previous window is corrected.
    pub fn settle(&self, key: &ApiKeyId, reserved: u64, used: u64, admitted: i64) {
        if reserved == used {
            return;
        }
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let Some(w) = windows.get_mut(key) else {
            return;
        };
        let slot = match w.minute - admitted.div_euclid(MINUTE_MICROS) {
            0 => 1,
            1 => 0,
            _ => return,
        };
        w.tokens[slot] = (w.tokens[slot] + used).saturating_sub(reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_000_000_000_000 - 1_764_000_000_000_000 % MINUTE_MICROS;

    fn key() -> ApiKeyId {
        ApiKeyId::new("key_a")
    }

    fn rpm(n: u64) -> KeyLimits {
        KeyLimits {
            requests_per_minute: Some(n),
            tokens_per_minute: None,
        }
    }

    #[test]
    fn requests_beyond_the_limit_are_refused_until_the_window_slides() {
        let l = RateLimiter::default();
        for i in 0..3 {
            assert!(l.admit(&key(), rpm(3), 10, T0 + i).is_ok());
        }
        let refused = l.admit(&key(), rpm(3), 10, T0 + 10).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Requests);
        assert_eq!((refused.limit, refused.used), (3, 3));
        assert_eq!(refused.retry_after_s, 60);
        // Halfway through the next minute the previous minute still weighs 1.5 requests.
        let half = T0 + MINUTE_MICROS + MINUTE_MICROS / 2;
        assert!(l.admit(&key(), rpm(3), 10, half).is_ok());
        assert!(l.admit(&key(), rpm(3), 10, half + 1).is_err());
        // Two minutes later the key starts afresh.
        for i in 0..3 {
            assert!(
                l.admit(&key(), rpm(3), 10, T0 + 3 * MINUTE_MICROS + i)
                    .is_ok()
            );
        }
    }

    #[test]
    fn a_burst_across_a_minute_boundary_cannot_pass_twice_the_limit() {
        let l = RateLimiter::default();
        let limits = rpm(10);
        let admitted = (0..40)
            .filter(|i| {
                l.admit(
                    &key(),
                    limits,
                    0,
                    T0 + MINUTE_MICROS - 1_000_000 + i * 50_000,
                )
                .is_ok()
            })
            .count();
        assert!(admitted <= 11, "admitted {admitted} within two seconds");
    }

    #[test]
    fn tokens_reserve_then_settle_to_real_usage() {
        let l = RateLimiter::default();
        let limits = KeyLimits {
            requests_per_minute: None,
            tokens_per_minute: Some(1_000),
        };
        assert!(l.admit(&key(), limits, 600, T0).is_ok());
        let refused = l.admit(&key(), limits, 600, T0 + 1).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Tokens);
        // The first response used 100 tokens, not 600: the second now fits.
        l.settle(&key(), 600, 100, T0);
        assert!(l.admit(&key(), limits, 600, T0 + 2).is_ok());
    }

    #[test]
    fn keys_are_counted_apart_and_unlimited_keys_not_at_all() {
        let l = RateLimiter::default();
        assert!(l.admit(&key(), rpm(1), 0, T0).is_ok());
        assert!(l.admit(&key(), rpm(1), 0, T0).is_err());
        assert!(l.admit(&ApiKeyId::new("key_b"), rpm(1), 0, T0).is_ok());
        for _ in 0..100 {
            assert!(l.admit(&key(), KeyLimits::default(), 0, T0).is_ok());
        }
    }

    #[test]
    fn a_refusal_renders_as_openais_429() {
        let l = RateLimiter::default();
        let limits = KeyLimits {
            requests_per_minute: Some(1),
            tokens_per_minute: Some(50),
        };
        assert!(l.admit(&key(), limits, 10, T0 + 30 * 1_000_000).is_ok());
        let response = l
            .admit(&key(), limits, 10, T0 + 30 * 1_000_000)
            .unwrap_err();
        let response = (*response).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = response.headers();
        assert_eq!(h["retry-after"], "31");
        assert_eq!(h["x-ratelimit-limit-requests"], "1");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-remaining-tokens"], "40");
        assert!(h.get("x-should-retry").is_none());
    }
}
