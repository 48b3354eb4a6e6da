//! The nine hard constraints of a route, checked for one candidate.
//!
//! A candidate that fails any configured constraint is never chosen, whatever its score. The
//! baseline is not checked: it is what serves when nothing else qualifies. An unset constraint
//! is not checked and does not appear in the trace.

use switchyard_events::Constraints;

use crate::score::ModelScore;
use crate::stats::ModelStats;

/// The constraint names, in the order they are checked and reported.
pub const CONSTRAINT_NAMES: [&str; 9] = [
    "max_regression",
    "min_quality",
    "max_error_rate",
    "max_cost_increase",
    "max_cost_per_request",
    "max_p95_latency_ms",
    "min_confidence",
    "min_samples",
    "rollback_threshold",
];

/// One constraint checked for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The constraint (one of [`CONSTRAINT_NAMES`]).
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// The configured limit.
    pub limit: f64,
    /// The observed value, when there is one.
    pub observed: Option<f64>,
    /// Why it failed or passed without an observation.
    pub detail: Option<&'static str>,
}

/// What the checks need about the candidate.
pub(crate) struct Subject<'a> {
    pub score: &'a ModelScore,
    pub baseline: &'a ModelScore,
    pub stats: Option<&'a ModelStats>,
    pub confidence: f64,
}

/// Checks every configured constraint, in [`CONSTRAINT_NAMES`] order.
pub(crate) fn check_all(c: &Constraints, s: &Subject<'_>, out: &mut Vec<Check>) {
    let check = |name, passed, limit, observed, detail| Check {
        name,
        passed,
        limit,
        observed,
        detail,
    };
    if let Some(limit) = c.max_regression {
        let drop = s.baseline.feedback - s.score.feedback;
        out.push(check(
            "max_regression",
            drop <= limit,
            limit,
            Some(drop),
            None,
        ));
    }
    if let Some(limit) = c.min_quality {
        let q = s.score.feedback;
        out.push(check("min_quality", q >= limit, limit, Some(q), None));
    }
    if let Some(limit) = c.max_error_rate {
        out.push(match s.score.error_rate {
            Some(rate) => check("max_error_rate", rate <= limit, limit, Some(rate), None),
            None => check(
                "max_error_rate",
                true,
                limit,
                None,
                Some("no requests in the window yet"),
            ),
        });
    }
    if let Some(limit) = c.max_cost_increase {
        out.push(
            match (s.score.estimated_cost_usd, s.baseline.estimated_cost_usd) {
                (Some(cost), Some(base)) if base > 0.0 => {
                    let increase = cost / base - 1.0;
                    check(
                        "max_cost_increase",
                        increase <= limit,
                        limit,
                        Some(increase),
                        None,
                    )
                }
                (Some(cost), Some(_)) => check(
                    "max_cost_increase",
                    cost <= 0.0,
                    limit,
                    None,
                    Some("the baseline is free"),
                ),
                _ => check(
                    "max_cost_increase",
                    false,
                    limit,
                    None,
                    Some("price unknown"),
                ),
            },
        );
    }
    if let Some(limit) = c.max_cost_per_request {
        out.push(match s.score.estimated_cost_usd {
            Some(cost) => check(
                "max_cost_per_request",
                cost <= limit,
                limit,
                Some(cost),
                None,
            ),
            None => check(
                "max_cost_per_request",
                false,
                limit,
                None,
                Some("price unknown"),
            ),
        });
    }
    if let Some(limit) = c.max_p95_latency_ms {
        let limit = limit as f64;
        out.push(
            match s
                .stats
                .filter(|m| m.latency_samples > 0)
                .and_then(|m| m.p95_latency_ms)
            {
                Some(p95) => check(
                    "max_p95_latency_ms",
                    p95 as f64 <= limit,
                    limit,
                    Some(p95 as f64),
                    None,
                ),
                None => check(
                    "max_p95_latency_ms",
                    true,
                    limit,
                    None,
                    Some("no latency samples yet"),
                ),
            },
        );
    }
    if let Some(limit) = c.min_confidence {
        out.push(check(
            "min_confidence",
            s.confidence >= limit,
            limit,
            Some(s.confidence),
            None,
        ));
    }
    if let Some(limit) = c.min_samples {
        let n = s.score.org_samples as f64;
        out.push(check(
            "min_samples",
            n >= limit as f64,
            limit as f64,
            Some(n),
            None,
        ));
    }
    if let Some(limit) = c.rollback_threshold {
        let n = s.stats.map_or(0, ModelStats::regression_count) as f64;
        out.push(check(
            "rollback_threshold",
            n < limit as f64,
            limit as f64,
            Some(n),
            None,
        ));
    }
}
