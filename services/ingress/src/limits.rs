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
use switchyard_events::{
    ApiKeyId, Envelope, EventId, KeyUsageReported, OrgId, PartitionKey, Timestamp, TraceId,
};

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
    /// The org's daily budget (`orgs.<org>.daily_budget_usd`); `limit` and `used` in micro-USD.
    Budget,
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
            LimitKind::Budget => return over_budget(&self),
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

/// OpenAI's quota refusal: 429 `insufficient_quota` (with `x-should-retry: false`, see
/// [`ApiError`]), since retrying cannot help before the next UTC day.
fn over_budget(refusal: &Limited) -> Response {
    let usd = |micros: u64| micros as f64 / 1e6;
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!(
            "You exceeded your organization's daily budget: ${:.2} spent of ${:.2} today (UTC). Requests are refused until 00:00 UTC, in {}s; an operator can raise the org's `daily_budget_usd`.",
            usd(refusal.used),
            usd(refusal.limit),
            refusal.retry_after_s
        ),
        kind: "insufficient_quota",
        param: None,
        code: Some("insufficient_quota"),
    }
    .into_response()
}

/// Microseconds in a UTC day.
const DAY_MICROS: i64 = 86_400_000_000;

/// A spend in micro-USD on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DaySpend {
    day: i64,
    micros: u64,
}

impl DaySpend {
    /// The spend on `day` (0 for any other day).
    fn on(self, day: i64) -> u64 {
        if self.day == day { self.micros } else { 0 }
    }

    fn add(&mut self, day: i64, micros: u64) {
        if day > self.day {
            *self = DaySpend { day, micros: 0 };
        }
        if day == self.day {
            self.micros = self.micros.saturating_add(micros);
        }
    }
}

/// One key's usage as a replica reports it (see [`RateLimiter::drain_reports`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    /// The key.
    pub key: ApiKeyId,
    /// The key's org.
    pub org: OrgId,
    /// The minute (`now / 60 s`) the counts are for.
    pub minute: i64,
    /// Requests admitted in the previous and the current minute.
    pub requests: [u64; 2],
    /// Tokens counted in the previous and the current minute.
    pub tokens: [u64; 2],
    /// The UTC day (`now / 24 h`) `spend_micro_usd` is for.
    pub day: i64,
    /// What the key's completed requests cost on this replica that day, in micro-USD.
    pub spend_micro_usd: u64,
}

impl UsageReport {
    /// Returns the report as the `KeyUsageReported` event `replica` publishes at `now` (µs).
    pub fn into_event(self, replica: &str, event_id: EventId, now: i64) -> KeyUsageReported {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        KeyUsageReported {
            envelope: Envelope {
                event_id,
                partition_key: PartitionKey::usage(replica, &self.key),
                org: self.org,
                event_time: Timestamp::from_micros(now),
                trace_id: TraceId::new(event_id.to_string()),
            },
            replica: replica.to_owned(),
            key_id: self.key,
            minute: self.minute,
            requests: count(self.requests[1]),
            tokens: count(self.tokens[1]),
            previous_requests: count(self.requests[0]),
            previous_tokens: count(self.tokens[0]),
            day: self.day,
            spend_micro_usd: count(self.spend_micro_usd),
        }
    }
}

/// A key this replica has admitted requests for.
#[derive(Debug)]
struct Local {
    org: OrgId,
    window: Window,
    /// Today's spend, for orgs with a budget.
    spend: DaySpend,
    /// Changed since the last report.
    dirty: bool,
}

impl Local {
    /// A key of `org` first seen in `minute`.
    fn fresh(org: &OrgId, minute: i64) -> Self {
        Local {
            org: org.clone(),
            window: Window {
                minute,
                ..Window::default()
            },
            spend: DaySpend::default(),
            dirty: false,
        }
    }
}

#[derive(Debug, Default)]
struct Windows {
    /// What this replica admitted.
    local: HashMap<ApiKeyId, Local>,
    /// The other replicas' latest reports, per key and replica.
    remote: HashMap<ApiKeyId, HashMap<String, Window>>,
    /// The other replicas' latest spends, per org, replica and key.
    remote_spend: HashMap<OrgId, HashMap<(String, ApiKeyId), DaySpend>>,
    /// This replica's spend per org: the sum of its keys' [`Local::spend`], kept so that an
    /// admission reads one entry instead of walking every key.
    local_spend: HashMap<OrgId, DaySpend>,
}

impl Windows {
    /// What `org` spent on `day` (micro-USD), on this replica and on the others.
    fn spent(&self, org: &OrgId, day: i64) -> u64 {
        let local = self.local_spend.get(org).map_or(0, |s| s.on(day));
        let remote: u64 = self
            .remote_spend
            .get(org)
            .into_iter()
            .flat_map(HashMap::values)
            .map(|s| s.on(day))
            .sum();
        local.saturating_add(remote)
    }

    /// The other replicas' counts of `key` at `minute` (previous, current).
    fn remote(&self, key: &ApiKeyId, minute: i64) -> ([u64; 2], [u64; 2]) {
        let mut requests = [0, 0];
        let mut tokens = [0, 0];
        for w in self.remote.get(key).into_iter().flat_map(HashMap::values) {
            let mut w = *w;
            w.roll(minute);
            if w.minute != minute {
                continue; // a report from the future (clock skew) counts once it is current
            }
            for i in 0..2 {
                requests[i] += w.requests[i];
                tokens[i] += w.tokens[i];
            }
        }
        (requests, tokens)
    }
}

/// The per-key windows of one ingress replica, plus what the other replicas report.
///
/// Each replica counts what it admits ([`RateLimiter::admit`]), publishes the counts of the keys
/// that changed every `gateway.usage_report_interval_ms` ([`RateLimiter::drain_reports`], as
/// `KeyUsageReported` on the compacted `usage` topic) and folds the other replicas' reports
/// ([`RateLimiter::observe`]). A request is admitted against the sum, so N replicas overshoot a
/// key's limit by at most what they admit between two reports. With one replica (single node)
/// the count is exact.
#[derive(Debug)]
pub struct RateLimiter {
    replica: String,
    windows: Mutex<Windows>,
    /// Daily budgets in micro-USD, by org.
    budgets: HashMap<OrgId, u64>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new("local")
    }
}

impl RateLimiter {
    /// Returns the limiter of the replica named `replica` (its node id).
    pub fn new(replica: impl Into<String>) -> Self {
        Self {
            replica: replica.into(),
            windows: Mutex::default(),
            budgets: HashMap::new(),
        }
    }

    /// Returns the limiter with orgs' daily budgets (micro-USD): past its budget, an org's
    /// requests are refused until the next UTC day, counting every replica's spend.
    #[must_use]
    pub fn with_budgets(mut self, budgets: impl IntoIterator<Item = (OrgId, u64)>) -> Self {
        self.budgets = budgets.into_iter().collect();
        self
    }

    /// Counts what a completed request of `key` (of `org`) cost, at `now` (µs), towards the
    /// org's daily budget. Orgs without a budget are not tracked.
    pub fn spend(&self, key: &ApiKeyId, org: &OrgId, usd: f64, now: i64) {
        if !(self.budgets.contains_key(org) && usd.is_finite() && usd > 0.0) {
            return;
        }
        let micros = (usd * 1e6).round() as u64;
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let day = now.div_euclid(DAY_MICROS);
        let local = windows
            .local
            .entry(key.clone())
            .or_insert_with(|| Local::fresh(org, now.div_euclid(MINUTE_MICROS)));
        local.spend.add(day, micros);
        local.dirty = true;
        windows
            .local_spend
            .entry(org.clone())
            .or_default()
            .add(day, micros);
    }

    /// Returns this replica's name, as its reports carry it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Admits one request of `key` (of `org`) reserving `tokens` at `now` (µs), or says which
    /// limit it would break, counting what every replica admitted. Unlimited keys are not tracked.
    pub fn admit(
        &self,
        key: &ApiKeyId,
        org: &OrgId,
        limits: KeyLimits,
        tokens: u64,
        now: i64,
    ) -> Result<(), Box<Limited>> {
        let budget = self.budgets.get(org).copied();
        if !limits.is_limited() && budget.is_none() {
            return Ok(());
        }
        let minute = now.div_euclid(MINUTE_MICROS);
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; failing open keeps serving.
            return Ok(());
        };
        if let Some(budget) = budget {
            let spent = windows.spent(org, now.div_euclid(DAY_MICROS));
            if spent >= budget {
                let to_midnight = DAY_MICROS - now.rem_euclid(DAY_MICROS);
                return Err(Box::new(Limited {
                    key: key.clone(),
                    kind: LimitKind::Budget,
                    limit: budget,
                    used: spent,
                    requested: 0,
                    retry_after_s: (to_midnight / 1_000_000 + 1) as u64,
                    remaining_requests: None,
                    remaining_tokens: None,
                    limits,
                }));
            }
            if !limits.is_limited() {
                return Ok(());
            }
        }
        let (remote_requests, remote_tokens) = windows.remote(key, minute);
        let local = windows
            .local
            .entry(key.clone())
            .or_insert_with(|| Local::fresh(org, minute));
        let w = &mut local.window;
        w.roll(minute);
        let add = |a: [u64; 2], b: [u64; 2]| [a[0] + b[0], a[1] + b[1]];
        let used_requests = Window::used(add(w.requests, remote_requests), now);
        let used_tokens = Window::used(add(w.tokens, remote_tokens), now);
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
        local.dirty = true;
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
        let Some(local) = windows.local.get_mut(key) else {
            return;
        };
        let w = &mut local.window;
        let slot = match w.minute - admitted.div_euclid(MINUTE_MICROS) {
            0 => 1,
            1 => 0,
            _ => return,
        };
        w.tokens[slot] = (w.tokens[slot] + used).saturating_sub(reserved);
        local.dirty = true;
    }

    /// Folds one replica's report. Another replica's report replaces its previous one for that
    /// key. This replica's own reports (read back after a restart, under the same node id) seed
    /// the counts of keys it has not counted since it started, so a restart does not reset them.
    pub fn observe(&self, report: &KeyUsageReported) {
        let clamp = |n: i64| u64::try_from(n).unwrap_or(0);
        let window = Window {
            minute: report.minute,
            requests: [clamp(report.previous_requests), clamp(report.requests)],
            tokens: [clamp(report.previous_tokens), clamp(report.tokens)],
        };
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let spend = DaySpend {
            day: report.day,
            micros: clamp(report.spend_micro_usd),
        };
        if report.replica == self.replica {
            if let std::collections::hash_map::Entry::Vacant(entry) =
                windows.local.entry(report.key_id.clone())
            {
                entry.insert(Local {
                    org: report.envelope.org.clone(),
                    window,
                    spend,
                    dirty: false,
                });
                windows
                    .local_spend
                    .entry(report.envelope.org.clone())
                    .or_default()
                    .add(spend.day, spend.micros);
            }
            return;
        }
        if self.budgets.contains_key(&report.envelope.org) {
            let latest = windows
                .remote_spend
                .entry(report.envelope.org.clone())
                .or_default()
                .entry((report.replica.clone(), report.key_id.clone()))
                .or_default();
            if spend.day >= latest.day {
                *latest = spend;
            }
        }
        let by_replica = windows.remote.entry(report.key_id.clone()).or_default();
        match by_replica.get_mut(&report.replica) {
            Some(latest) if latest.minute > window.minute => {}
            Some(latest) => *latest = window,
            None => {
                by_replica.insert(report.replica.clone(), window);
            }
        }
    }

    /// Returns the counts of the keys that changed since the last call, as of `now` (µs), and
    /// forgets windows that no longer weigh anything (older than the previous minute).
    pub fn drain_reports(&self, now: i64) -> Vec<UsageReport> {
        let minute = now.div_euclid(MINUTE_MICROS);
        let day = now.div_euclid(DAY_MICROS);
        let Ok(mut windows) = self.windows.lock() else {
            return Vec::new();
        };
        let mut reports = Vec::new();
        windows.local.retain(|key, local| {
            local.window.roll(minute);
            if local.dirty {
                local.dirty = false;
                reports.push(UsageReport {
                    key: key.clone(),
                    org: local.org.clone(),
                    minute,
                    requests: local.window.requests,
                    tokens: local.window.tokens,
                    day,
                    spend_micro_usd: local.spend.on(day),
                });
            }
            local.window.requests != [0, 0]
                || local.window.tokens != [0, 0]
                || local.spend.on(day) > 0
        });
        windows.remote.retain(|_, by_replica| {
            by_replica.retain(|_, w| w.minute >= minute - 1);
            !by_replica.is_empty()
        });
        windows.local_spend.retain(|_, s| s.day >= day);
        windows.remote_spend.retain(|_, by_key| {
            by_key.retain(|_, s| s.day >= day);
            !by_key.is_empty()
        });
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_000_000_000_000 - 1_764_000_000_000_000 % MINUTE_MICROS;

    fn key() -> ApiKeyId {
        ApiKeyId::new("key_a")
    }

    fn org() -> OrgId {
        OrgId::new("acme")
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
            assert!(l.admit(&key(), &org(), rpm(3), 10, T0 + i).is_ok());
        }
        let refused = l.admit(&key(), &org(), rpm(3), 10, T0 + 10).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Requests);
        assert_eq!((refused.limit, refused.used), (3, 3));
        assert_eq!(refused.retry_after_s, 60);
        // Halfway through the next minute the previous minute still weighs 1.5 requests.
        let half = T0 + MINUTE_MICROS + MINUTE_MICROS / 2;
        assert!(l.admit(&key(), &org(), rpm(3), 10, half).is_ok());
        assert!(l.admit(&key(), &org(), rpm(3), 10, half + 1).is_err());
        // Two minutes later the key starts afresh.
        for i in 0..3 {
            assert!(
                l.admit(&key(), &org(), rpm(3), 10, T0 + 3 * MINUTE_MICROS + i)
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
                    &org(),
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
        assert!(l.admit(&key(), &org(), limits, 600, T0).is_ok());
        let refused = l.admit(&key(), &org(), limits, 600, T0 + 1).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Tokens);
        // The first response used 100 tokens, not 600: the second now fits.
        l.settle(&key(), 600, 100, T0);
        assert!(l.admit(&key(), &org(), limits, 600, T0 + 2).is_ok());
    }

    #[test]
    fn keys_are_counted_apart_and_unlimited_keys_not_at_all() {
        let l = RateLimiter::default();
        assert!(l.admit(&key(), &org(), rpm(1), 0, T0).is_ok());
        assert!(l.admit(&key(), &org(), rpm(1), 0, T0).is_err());
        assert!(
            l.admit(&ApiKeyId::new("key_b"), &org(), rpm(1), 0, T0)
                .is_ok()
        );
        for _ in 0..100 {
            assert!(l.admit(&key(), &org(), KeyLimits::default(), 0, T0).is_ok());
        }
    }

    /// Sends `from`'s pending reports to `to`, as the `usage` topic would.
    fn gossip(from: &RateLimiter, to: &RateLimiter, now: i64) -> usize {
        let reports = from.drain_reports(now);
        let n = reports.len();
        for r in reports {
            to.observe(&r.into_event(from.replica(), EventId::now_v7(), now));
        }
        n
    }

    #[test]
    fn replicas_add_each_others_reported_counts() {
        let (a, b) = (RateLimiter::new("a"), RateLimiter::new("b"));
        for i in 0..6 {
            assert!(a.admit(&key(), &org(), rpm(10), 0, T0 + i).is_ok());
        }
        // Before the report, b knows nothing of a's six requests.
        assert_eq!(gossip(&a, &b, T0 + 10), 1);
        let admitted = (0..10)
            .filter(|i| b.admit(&key(), &org(), rpm(10), 0, T0 + 20 + i).is_ok())
            .count();
        assert_eq!(admitted, 4, "a admitted 6 of the key's 10 this minute");
        // And a learns of b's four: the key is exhausted on both.
        assert_eq!(gossip(&b, &a, T0 + 40), 1);
        assert!(a.admit(&key(), &org(), rpm(10), 0, T0 + 50).is_err());
        // Nothing changed since: no report.
        assert_eq!(gossip(&a, &b, T0 + 60), 0);
    }

    #[test]
    fn reported_counts_slide_out_with_the_window() {
        let (a, b) = (RateLimiter::new("a"), RateLimiter::new("b"));
        for i in 0..10 {
            assert!(a.admit(&key(), &org(), rpm(10), 0, T0 + i).is_ok());
        }
        gossip(&a, &b, T0 + 10);
        assert!(b.admit(&key(), &org(), rpm(10), 0, T0 + 20).is_err());
        // Half-way through the next minute a's ten weigh five.
        let half = T0 + MINUTE_MICROS + MINUTE_MICROS / 2;
        let admitted = (0..10)
            .filter(|i| b.admit(&key(), &org(), rpm(10), 0, half + i).is_ok())
            .count();
        assert_eq!(admitted, 5);
        // Two minutes on, a's report weighs nothing and is forgotten.
        let later = T0 + 3 * MINUTE_MICROS;
        b.drain_reports(later);
        assert!(b.windows.lock().is_ok_and(|w| w.remote.is_empty()));
    }

    #[test]
    fn a_stale_report_does_not_replace_a_newer_one() {
        let (a, b) = (RateLimiter::new("a"), RateLimiter::new("b"));
        assert!(a.admit(&key(), &org(), rpm(5), 0, T0).is_ok());
        let old = a.drain_reports(T0 + 1).remove(0);
        for i in 0..4 {
            assert!(
                a.admit(&key(), &org(), rpm(5), 0, T0 + MINUTE_MICROS + i)
                    .is_ok()
            );
        }
        gossip(&a, &b, T0 + MINUTE_MICROS + 10);
        b.observe(&old.into_event("a", EventId::now_v7(), T0 + 1));
        // Early in the second minute: a's 1 (previous) and 4 (current) still count.
        assert!(
            b.admit(&key(), &org(), rpm(5), 0, T0 + MINUTE_MICROS + 20)
                .is_err()
        );
    }

    #[test]
    fn a_restarted_replica_resumes_its_own_counts_from_its_reports() {
        let a = RateLimiter::new("a");
        for i in 0..3 {
            assert!(a.admit(&key(), &org(), rpm(3), 0, T0 + i).is_ok());
        }
        let restarted = RateLimiter::new("a");
        gossip(&a, &restarted, T0 + 10);
        assert!(restarted.admit(&key(), &org(), rpm(3), 0, T0 + 20).is_err());
        // Its own later echo does not overwrite what it has counted since.
        let fresh = RateLimiter::new("a");
        assert!(fresh.admit(&key(), &org(), rpm(3), 0, T0 + 30).is_ok());
        gossip(&a, &fresh, T0 + 40);
        assert!(fresh.admit(&key(), &org(), rpm(3), 0, T0 + 50).is_ok());
    }

    #[test]
    fn settled_tokens_are_reported() {
        let (a, b) = (RateLimiter::new("a"), RateLimiter::new("b"));
        let limits = KeyLimits {
            requests_per_minute: None,
            tokens_per_minute: Some(1_000),
        };
        assert!(a.admit(&key(), &org(), limits, 900, T0).is_ok());
        gossip(&a, &b, T0 + 1);
        assert!(b.admit(&key(), &org(), limits, 200, T0 + 2).is_err());
        a.settle(&key(), 900, 100, T0);
        assert_eq!(gossip(&a, &b, T0 + 3), 1);
        assert!(b.admit(&key(), &org(), limits, 200, T0 + 4).is_ok());
    }

    const DOLLAR: u64 = 1_000_000;

    fn budgeted(replica: &str) -> RateLimiter {
        RateLimiter::new(replica).with_budgets([(org(), DOLLAR)])
    }

    #[test]
    fn an_org_past_its_daily_budget_is_refused_until_the_next_utc_day() {
        let l = budgeted("a");
        let free = KeyLimits::default();
        assert!(l.admit(&key(), &org(), free, 0, T0).is_ok());
        l.spend(&key(), &org(), 0.6, T0);
        assert!(l.admit(&key(), &org(), free, 0, T0 + 1).is_ok());
        // Another key of the same org spends the rest.
        l.spend(&ApiKeyId::new("key_b"), &org(), 0.4, T0 + 2);
        let refused = l.admit(&key(), &org(), free, 0, T0 + 3).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Budget);
        assert_eq!((refused.limit, refused.used), (DOLLAR, DOLLAR));
        let response = (*refused).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        // Another org, and the next UTC day, are not refused.
        assert!(
            l.admit(&key(), &OrgId::new("globex"), free, 0, T0 + 4)
                .is_ok()
        );
        let tomorrow = (T0 / DAY_MICROS + 1) * DAY_MICROS;
        assert!(l.admit(&key(), &org(), free, 0, tomorrow).is_ok());
    }

    #[test]
    fn a_restarted_replica_resumes_its_orgs_spend_from_its_reports() {
        let a = budgeted("a");
        a.spend(&key(), &org(), 1.0, T0);
        let restarted = budgeted("a");
        assert_eq!(gossip(&a, &restarted, T0 + 1), 1);
        let refused = restarted
            .admit(&key(), &org(), KeyLimits::default(), 0, T0 + 2)
            .unwrap_err();
        assert_eq!((refused.kind, refused.used), (LimitKind::Budget, DOLLAR));
    }

    #[test]
    fn replicas_add_each_others_spend() {
        let (a, b) = (budgeted("a"), budgeted("b"));
        let free = KeyLimits::default();
        a.spend(&key(), &org(), 0.7, T0);
        b.spend(&key(), &org(), 0.4, T0 + 1);
        // Alone, each is under the dollar.
        assert!(b.admit(&key(), &org(), free, 0, T0 + 2).is_ok());
        assert_eq!(gossip(&a, &b, T0 + 3), 1);
        assert!(b.admit(&key(), &org(), free, 0, T0 + 4).is_err());
        // Orgs without a budget are neither tracked nor reported.
        let unbudgeted = OrgId::new("globex");
        a.spend(&key(), &unbudgeted, 5.0, T0 + 5);
        assert_eq!(gossip(&a, &b, T0 + 6), 0);
    }

    #[test]
    fn a_refusal_renders_as_openais_429() {
        let l = RateLimiter::default();
        let limits = KeyLimits {
            requests_per_minute: Some(1),
            tokens_per_minute: Some(50),
        };
        assert!(
            l.admit(&key(), &org(), limits, 10, T0 + 30 * 1_000_000)
                .is_ok()
        );
        let response = l
            .admit(&key(), &org(), limits, 10, T0 + 30 * 1_000_000)
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
