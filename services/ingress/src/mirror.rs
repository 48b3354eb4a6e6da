//! Shadow-mode mirroring: the spend cap, and the background call of a request to the router's
//! choice.
//!
//! In `shadow` mode the baseline serves and the router's choice is only recorded. With
//! `mirror_fraction > 0` the router also marks a seeded sample of requests `mirror`; for those,
//! once the primary response has been sent (a streamed one to its end), the gateway sends the
//! same request, non-streaming, to the shadow model in the background: one attempt, no retries,
//! no fallback, the provider's normal timeouts. Its answer is dropped; its `ResponseCompleted`
//! (`shadow = true`, `request_id` = the original's + `#mirror`, the original `decision_id`,
//! `served_model` = the shadow model) goes through the same off-hot-path publisher, so the mirror
//! is billed, judged and shown in the decision's trace (`shadow_response` in the decisions read
//! model).
//!
//! # The spend cap
//!
//! `mirror_daily_cap_usd` caps what a route's mirrors cost per UTC day. [`MirrorSpend`] keeps
//! the spend per (org, route) and day, the day read from the gateway's injected clock:
//!
//! - before a decision, [`MirrorSpend::budget_left`] is `spent < cap` (no cap: always), and is
//!   what the router's `mirror_budget_left` receives; a request decided when the budget is
//!   spent is not mirrored and its trace says `mirrored: false`;
//! - after a mirrored call, [`MirrorSpend::charge`] adds its cost to the day it completes in.
//!   Mirrors are charged when they complete, so the mirrors in flight when the cap is reached
//!   all complete and are all charged: the cap can be overshot by what those cost;
//! - a mirror of a model without a known price cannot be counted, so under a cap it counts as
//!   exceeding it: capped mirroring stops for that route until the next UTC day (at most one
//!   unpriced call per day, plus any in flight). It is never silent: a warning is logged, the
//!   `mirror_unpriced_requests` metric counts it and the trace lists the model under
//!   `unpriced_models`. Without a cap, unpriced mirrors run, with the same warning and metric.
//!
//! The spend is kept in memory, per process. In the distributed mode each ingress replica
//! tracks its own spend, so the effective cap is the configured cap times the number of
//! replicas, unless replicas come to share the figure (for example by folding the `shadow`
//! responses of the `responses` topic); a restart starts the day from zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_events::{OrgId, ResponseStatus};

/// Microseconds in a UTC day (days have no leap seconds in Unix time).
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Returns the UTC day (days since the Unix epoch) of a time in microseconds.
pub fn utc_day(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_DAY)
}

/// What one (org, route) spent on mirrors on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DaySpend {
    day: i64,
    spent_usd: f64,
    /// Whether a mirror of an unpriced model completed that day.
    unpriced: bool,
}

impl DaySpend {
    const fn empty(day: i64) -> Self {
        Self {
            day,
            spent_usd: 0.0,
            unpriced: false,
        }
    }
}

/// The per-(org, route) UTC-day spend on shadow mirrors (see the module documentation).
#[derive(Debug, Default)]
pub struct MirrorSpend {
    days: Mutex<HashMap<(OrgId, String), DaySpend>>,
}

impl MirrorSpend {
    /// Returns the (org, route)'s spend on the day of `now_micros`: nothing if its figure is of
    /// an earlier day.
    fn today(&self, org: &OrgId, route: &str, now_micros: i64) -> DaySpend {
        let day = utc_day(now_micros);
        // A poisoned lock only means a panic elsewhere mid-update of plain numbers: keep going.
        let days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        match days.get(&(org.clone(), route.to_owned())) {
            Some(spend) if spend.day == day => *spend,
            _ => DaySpend::empty(day),
        }
    }

    /// Returns whether the route may mirror another request now: no cap, or today's spend
    /// below `cap_usd` and no unpriced mirror today.
    pub fn budget_left(
        &self,
        org: &OrgId,
        route: &str,
        cap_usd: Option<f64>,
        now_micros: i64,
    ) -> bool {
        let Some(cap) = cap_usd else {
            return true;
        };
        let spend = self.today(org, route, now_micros);
        !spend.unpriced && spend.spent_usd < cap
    }

    /// Adds a completed mirror's cost to the day of `now_micros`; `None` = the model has no
    /// known price, which counts as exceeding any cap for the rest of the day.
    pub fn charge(&self, org: &OrgId, route: &str, cost_usd: Option<f64>, now_micros: i64) {
        let day = utc_day(now_micros);
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let spend = days
            .entry((org.clone(), route.to_owned()))
            .or_insert(DaySpend::empty(day));
        if spend.day != day {
            // A mirror that completes on a later day starts that day's figure; one that
            // completes after midnight but races an older figure never moves it back.
            if spend.day > day {
                return;
            }
            *spend = DaySpend::empty(day);
        }
        match cost_usd {
            Some(cost) if cost.is_finite() && cost >= 0.0 => spend.spent_usd += cost,
            Some(_) => {}
            None => spend.unpriced = true,
        }
    }

    /// Returns what the (org, route) spent on mirrors on the day of `now_micros`.
    pub fn spent_usd(&self, org: &OrgId, route: &str, now_micros: i64) -> f64 {
        self.today(org, route, now_micros).spent_usd
    }
}

/// The gateway's mirroring state: the spend tracker and where its metrics go.
#[derive(Debug, Clone)]
pub struct Mirrors {
    /// Spend per (org, route) and UTC day.
    pub spend: Arc<MirrorSpend>,
    metrics: switchyard_runtime::Metrics,
    /// The mirrors in flight: a drain waits for them, so their billed calls' events are
    /// published before the publisher stops.
    tasks: tokio_util::task::TaskTracker,
}

impl Mirrors {
    /// Returns an empty tracker recording into `metrics` (the process's registry).
    pub fn new(metrics: switchyard_runtime::Metrics) -> Self {
        Self {
            spend: Arc::default(),
            metrics,
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Runs a mirror in the background, tracked for [`Mirrors::drain`].
    pub fn spawn<F>(&self, mirror: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(mirror);
    }

    /// Stops accepting mirrors and waits up to `limit` for those in flight; returns how many
    /// were still running when the wait gave up (their events are then lost with them).
    pub async fn drain(&self, limit: std::time::Duration) -> usize {
        self.tasks.close();
        match tokio::time::timeout(limit, self.tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tasks.len(),
        }
    }

    /// Settles a completed mirror of `model` on `route`: charges its cost (`None`: no known
    /// price) to the day of `now_micros`, records the metrics, and warns when the spend is
    /// unknown. Call it before publishing the mirror's event, so that whoever sees the mirror
    /// sees a spend figure that includes it.
    pub fn settle(
        &self,
        org: &OrgId,
        route: &str,
        model: &str,
        status: ResponseStatus,
        cost_usd: Option<f64>,
        now_micros: i64,
    ) {
        if cost_usd.is_none() {
            tracing::warn!(
                %org,
                route,
                model,
                "mirrored a model without a known price: its spend is unknown and, under a cap, closes the route's mirroring until the next UTC day"
            );
        }
        self.spend.charge(org, route, cost_usd, now_micros);
        self.metrics
            .mirror()
            .record_mirror(status.as_str(), cost_usd);
    }
}

#[cfg(test)]
mod tests {
    use switchyard_runtime::{Clock, ManualClock};

    use super::*;

    /// 2026-11-24T23:59:59.5Z.
    const JUST_BEFORE_MIDNIGHT: i64 = 1_795_564_799_500_000;

    #[test]
    fn utc_days_turn_at_midnight_also_before_1970() {
        assert_eq!(
            utc_day(JUST_BEFORE_MIDNIGHT) + 1,
            utc_day(JUST_BEFORE_MIDNIGHT + 500_000)
        );
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(-1), -1);
        assert_eq!(utc_day(MICROS_PER_DAY - 1), 0);
    }

    #[test]
    fn the_cap_closes_mirroring_for_the_rest_of_the_utc_day_and_reopens_at_midnight() {
        let clock = ManualClock::at_micros(JUST_BEFORE_MIDNIGHT - 3_600_000_000);
        let spend = MirrorSpend::default();
        let (acme, globex) = (OrgId::new("acme"), OrgId::new("globex"));
        let cap = Some(0.01);
        assert!(spend.budget_left(&acme, "support", cap, clock.now_micros()));
        spend.charge(&acme, "support", Some(0.004), clock.now_micros());
        assert!(spend.budget_left(&acme, "support", cap, clock.now_micros()));
        spend.charge(&acme, "support", Some(0.006), clock.now_micros());
        assert!((spend.spent_usd(&acme, "support", clock.now_micros()) - 0.01).abs() < 1e-12);
        // Spent == cap: no room left.
        assert!(!spend.budget_left(&acme, "support", cap, clock.now_micros()));
        // Other routes and orgs have their own budget; no cap means no limit.
        assert!(spend.budget_left(&acme, "sales", cap, clock.now_micros()));
        assert!(spend.budget_left(&globex, "support", cap, clock.now_micros()));
        assert!(spend.budget_left(&acme, "support", None, clock.now_micros()));

        clock.set_micros(JUST_BEFORE_MIDNIGHT);
        assert!(!spend.budget_left(&acme, "support", cap, clock.now_micros()));
        clock.advance(std::time::Duration::from_millis(500));
        assert!(spend.budget_left(&acme, "support", cap, clock.now_micros()));
        assert_eq!(spend.spent_usd(&acme, "support", clock.now_micros()), 0.0);

        // A mirror that completes after midnight counts on the new day only.
        spend.charge(&acme, "support", Some(0.02), clock.now_micros());
        assert!(!spend.budget_left(&acme, "support", cap, clock.now_micros()));
        // One that completes with an older time (a clock set back) does not rewind the day.
        spend.charge(&acme, "support", Some(1.0), JUST_BEFORE_MIDNIGHT);
        assert!((spend.spent_usd(&acme, "support", clock.now_micros()) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn an_unpriced_mirror_exceeds_any_cap_until_the_next_day() {
        let clock = ManualClock::at_micros(JUST_BEFORE_MIDNIGHT);
        let spend = MirrorSpend::default();
        let acme = OrgId::new("acme");
        spend.charge(&acme, "support", None, clock.now_micros());
        assert!(!spend.budget_left(&acme, "support", Some(1_000.0), clock.now_micros()));
        assert!(spend.budget_left(&acme, "support", None, clock.now_micros()));
        clock.advance(std::time::Duration::from_secs(1));
        assert!(spend.budget_left(&acme, "support", Some(1_000.0), clock.now_micros()));
    }

    #[test]
    fn settling_a_mirror_charges_the_day_and_records_the_metrics() {
        let metrics = switchyard_runtime::Metrics::new();
        let mirrors = Mirrors::new(metrics.clone());
        let acme = OrgId::new("acme");
        mirrors.settle(
            &acme,
            "support",
            "demo/small",
            ResponseStatus::Ok,
            Some(0.5),
            JUST_BEFORE_MIDNIGHT,
        );
        mirrors.settle(
            &acme,
            "support",
            "unpriced/model",
            ResponseStatus::Error,
            None,
            JUST_BEFORE_MIDNIGHT,
        );
        assert_eq!(
            mirrors
                .spend
                .spent_usd(&acme, "support", JUST_BEFORE_MIDNIGHT),
            0.5
        );
        assert!(
            !mirrors
                .spend
                .budget_left(&acme, "support", Some(10.0), JUST_BEFORE_MIDNIGHT)
        );
        let text = metrics.encode();
        for line in [
            "mirror_requests_total{status=\"ok\"} 1",
            "mirror_requests_total{status=\"error\"} 1",
            "mirror_spend_usd_total 0.5",
            "mirror_unpriced_requests_total 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
