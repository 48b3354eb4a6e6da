//! Judge calibration: how far an LLM judge scores the models of each provider above (or below)
//! what the org's users say of the same models.
//!
//! LLM judges prefer answers of their own family (self-preference): a judge that adds a few
//! points to every answer of its provider's models makes a cheaper model of another provider
//! look worse than the baseline by those points, more than a typical `max_regression`, so the
//! router never moves and the regression test reports false regressions. Session NPS is slow
//! and noisy but rates every model alike, so it is the reference.
//!
//! Every (route, model) of an org's window with at least `min_samples` judge scores and
//! `min_samples` NPS samples is an observation `d = mean_judge − mean_nps` with variance
//! `v = max(s_j², floor)/n_j + max(s_n², floor)·design/n_n` (`design`: the NPS samples of one
//! session are one rating, so they count as fewer independent ones). A session's NPS rates its
//! whole session (every category and model of it), so `d` also carries a term common to every
//! model of the route; only differences *within* a route say something about the judge. Hence a
//! two-way model, fitted by weighted least squares with a ridge prior on the offsets:
//!
//! `d(route, model) = a_route + o_provider(model) + noise`,
//! minimising `Σ (d − a_r − o_p)²/v + Σ_p o_p²/spread²`
//!
//! by alternating the exact updates `a_r = Σ_r (d − o_p)/v / Σ_r 1/v` and
//! `o_p = Σ_p (d − a_r)/v / (Σ_p 1/v + 1/spread²)` (coordinate descent on a convex quadratic:
//! it converges; a fixed number of sweeps keeps it deterministic). A route with a single
//! provider says nothing about the offsets and is left out. A provider without observations
//! gets 0, the prior's centre. Only differences between models matter (a calibrated judge score
//! is `judge − o_p`, compared with another calibrated judge score), so a judge that shifts every
//! model alike changes nothing, and neither does the NPS scale.

use std::collections::BTreeMap;

use crate::stats::SourceStat;

/// How judge offsets are estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationSettings {
    /// Judge scores and NPS samples a (route, model) observation needs to count.
    pub min_samples: u64,
    /// Floor on a source's per-sample variance.
    pub variance_floor: f64,
    /// Decisions per independent NPS rating (NPS samples of a session are one rating).
    pub design: f64,
    /// Standard deviation of the ridge prior on the providers' offsets (the shrinkage).
    pub spread: f64,
    /// Sweeps of the alternating updates.
    pub sweeps: u32,
}

impl Default for CalibrationSettings {
    fn default() -> Self {
        CalibrationSettings {
            min_samples: 5,
            variance_floor: 0.01,
            design: 3.0,
            spread: 0.05,
            sweeps: 60,
        }
    }
}

/// The judge's offset per provider of the judged model, for one org.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeOffsets {
    /// Provider → its offset.
    by_provider: BTreeMap<String, f64>,
}

/// Returns the provider of a model id (`provider/model`); the whole id without a `/`.
pub fn provider_of(model: &str) -> &str {
    model.split_once('/').map_or(model, |(p, _)| p)
}

impl JudgeOffsets {
    /// Estimates the offsets from an org's observations: `(route, model id, judge, nps)` per
    /// (route, model).
    pub fn estimate<'a>(
        cells: impl IntoIterator<Item = (&'a str, &'a str, SourceStat, SourceStat)>,
        settings: &CalibrationSettings,
    ) -> Self {
        let min = settings.min_samples.max(1);
        let floor = settings.variance_floor.max(1e-9);
        // route → [(provider, d, weight)]
        let mut routes: BTreeMap<&str, Vec<(&str, f64, f64)>> = BTreeMap::new();
        for (route, model, judge, nps) in cells {
            if judge.samples < min || nps.samples < min {
                continue;
            }
            let d = judge.mean - nps.mean;
            let v = judge.variance.max(floor) / judge.samples as f64
                + nps.variance.max(floor) * settings.design.max(1.0) / nps.samples as f64;
            if !(d.is_finite() && v.is_finite() && v > 0.0) {
                continue;
            }
            routes
                .entry(route)
                .or_default()
                .push((provider_of(model), d, 1.0 / v));
        }
        routes.retain(|_, rows| rows.iter().any(|r| r.0 != rows[0].0));
        if routes.is_empty() {
            return JudgeOffsets::default();
        }
        let mut offsets: BTreeMap<&str, f64> = routes
            .values()
            .flatten()
            .map(|(p, _, _)| (*p, 0.0))
            .collect();
        let ridge = 1.0 / settings.spread.max(1e-6).powi(2);
        let mut levels: Vec<f64> = vec![0.0; routes.len()];
        for _ in 0..settings.sweeps.max(1) {
            for (level, rows) in levels.iter_mut().zip(routes.values()) {
                let (num, den) = rows.iter().fold((0.0, 0.0), |(n, d), (p, x, w)| {
                    (n + w * (x - offsets.get(p).copied().unwrap_or(0.0)), d + w)
                });
                *level = num / den;
            }
            let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
            for (level, rows) in levels.iter().zip(routes.values()) {
                for (p, x, w) in rows {
                    let e = sums.entry(p).or_insert((0.0, 0.0));
                    e.0 += w * (x - level);
                    e.1 += w;
                }
            }
            for (p, (num, den)) in sums {
                offsets.insert(p, num / (den + ridge));
            }
        }
        JudgeOffsets {
            by_provider: offsets
                .into_iter()
                .map(|(p, o)| (p.to_owned(), o))
                .collect(),
        }
    }

    /// Returns the offset of a model's judge scores: its provider's, else 0.
    pub fn of(&self, model: &str) -> f64 {
        self.by_provider
            .get(provider_of(model))
            .copied()
            .unwrap_or(0.0)
    }

    /// Returns whether no provider was calibrated (every offset is 0).
    pub fn is_empty(&self) -> bool {
        self.by_provider.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stat(samples: u64, mean: f64, variance: f64) -> SourceStat {
        SourceStat {
            samples,
            mean,
            variance,
        }
    }

    /// A route's observations: the judge adds `bias` per model to its quality, the NPS of every
    /// model on the route is the route's session-wide level.
    fn route<'a>(
        name: &'a str,
        level: f64,
        models: &[(&'a str, f64, f64)],
    ) -> Vec<(&'a str, &'a str, SourceStat, SourceStat)> {
        models
            .iter()
            .map(|(m, quality, bias)| {
                (
                    name,
                    *m,
                    stat(400, quality + bias, 0.1),
                    stat(300, level, 0.04),
                )
            })
            .collect()
    }

    #[test]
    fn a_self_preferring_judge_is_measured_per_provider() {
        // The judge adds 0.07 to openai models; each route's NPS is its sessions' level, far
        // from the judge's scale on a hard category (0.25 against 0.6).
        let mut cells = route(
            "news",
            0.85,
            &[
                ("openai/gpt-4o", 0.88, 0.07),
                ("google/flash", 0.88, 0.0),
                ("anthropic/claude", 0.9, 0.0),
            ],
        );
        cells.extend(route(
            "finance.coqa",
            0.6,
            &[
                ("openai/gpt-4-turbo", 0.28, 0.07),
                ("together/gemma", 0.27, 0.0),
            ],
        ));
        cells.extend(route(
            "legal",
            0.9,
            &[
                ("anthropic/claude", 0.95, 0.0),
                ("together/gemma", 0.95, 0.0),
            ],
        ));
        let o = JudgeOffsets::estimate(cells, &CalibrationSettings::default());
        let gap = o.of("openai/gpt-4o") - o.of("google/flash-8b");
        // Most of the 0.07, a little shrunk by the ridge prior.
        assert!(gap > 0.05 && gap <= 0.075, "gap {gap}");
        assert!((o.of("openai/mini") - o.of("openai/gpt-4o")).abs() < 1e-12);
        // The hard category's low judge scores against its session-wide NPS are the route's
        // level, not the providers' offsets: gemma is no more flattered than flash or claude.
        let gemma = o.of("together/gemma");
        assert!(
            (gemma - o.of("anthropic/claude")).abs() < 0.01,
            "gemma {gemma}"
        );
        assert!(
            (gemma - o.of("google/flash")).abs() < 0.015,
            "gemma {gemma}"
        );
        // A provider without observations sits at the prior's centre.
        assert_eq!(o.of("ai21/jamba"), 0.0);
    }

    #[test]
    fn too_few_samples_or_one_provider_calibrate_nothing() {
        let few = vec![
            (
                "r",
                "openai/gpt-4o",
                stat(4, 0.9, 0.1),
                stat(400, 0.5, 0.04),
            ),
            (
                "r",
                "google/flash",
                stat(400, 0.8, 0.1),
                stat(400, 0.5, 0.04),
            ),
        ];
        let o = JudgeOffsets::estimate(few, &CalibrationSettings::default());
        assert!(o.is_empty());
        assert_eq!(o.of("openai/gpt-4o"), 0.0);
        let alone = vec![
            (
                "r",
                "openai/gpt-4o",
                stat(400, 0.9, 0.1),
                stat(400, 0.5, 0.04),
            ),
            (
                "r",
                "openai/mini",
                stat(400, 0.8, 0.1),
                stat(400, 0.5, 0.04),
            ),
        ];
        assert!(JudgeOffsets::estimate(alone, &CalibrationSettings::default()).is_empty());
    }

    #[test]
    fn weak_evidence_shrinks_towards_zero() {
        let strong = vec![
            ("r", "a/x", stat(2000, 0.9, 0.01), stat(2000, 0.8, 0.01)),
            ("r", "b/y", stat(2000, 0.8, 0.01), stat(2000, 0.8, 0.01)),
        ];
        let weak = vec![
            ("r", "a/x", stat(5, 0.9, 0.1), stat(5, 0.8, 0.1)),
            ("r", "b/y", stat(2000, 0.8, 0.01), stat(2000, 0.8, 0.01)),
        ];
        let s = CalibrationSettings::default();
        let strong = JudgeOffsets::estimate(strong, &s);
        let weak = JudgeOffsets::estimate(weak, &s);
        let strong_gap = strong.of("a/x") - strong.of("b/y");
        assert!(strong_gap > 0.09, "strong gap {strong_gap}");
        let gap = weak.of("a/x") - weak.of("b/y");
        assert!(gap > 0.0 && gap < strong_gap - 0.03, "gap {gap}");
    }

    type Cell = (usize, usize, f64, f64, u64, u64);

    fn cells_of(
        cells: &[Cell],
        shift: impl Fn(usize) -> f64,
    ) -> Vec<(&'static str, &'static str, SourceStat, SourceStat)> {
        const ROUTES: [&str; 3] = ["r0", "r1", "r2"];
        const MODELS: [&str; 4] = ["a/m", "b/m", "c/m", "d/m"];
        cells
            .iter()
            .map(|(r, p, j, n, nj, nn)| {
                (
                    ROUTES[*r],
                    MODELS[*p],
                    stat(*nj, *j, 0.05),
                    stat(*nn, n + shift(*r), 0.05),
                )
            })
            .collect()
    }

    proptest! {
        /// A judge that adds the same offset to every model is no bias at all: every provider
        /// gets the same offset, so calibrated differences equal raw ones.
        #[test]
        fn a_common_offset_cancels(
            shift in -0.3f64..0.3,
            cells in proptest::collection::vec((0usize..3, 0usize..4, 0.0f64..1.0, 5u64..500, 5u64..500), 1..16),
        ) {
            let list: Vec<Cell> = cells.iter().map(|(r, p, q, nj, nn)| (*r, *p, q + shift, *q, *nj, *nn)).collect();
            let o = JudgeOffsets::estimate(cells_of(&list, |_| 0.0), &CalibrationSettings::default());
            for p in ["a/m", "b/m", "c/m", "d/m"] {
                prop_assert!(o.of(p).abs() < 1e-6, "{} {}", p, o.of(p));
            }
        }

        /// A route's NPS level (its sessions' mix of categories and models) does not move the
        /// offsets: only differences within a route count.
        #[test]
        fn a_route_level_changes_nothing(
            levels in proptest::collection::vec(-0.4f64..0.4, 3),
            cells in proptest::collection::vec((0usize..3, 0usize..4, 0.0f64..1.0, 0.0f64..1.0, 0u64..300, 0u64..300), 0..16),
        ) {
            let s = CalibrationSettings::default();
            let plain = JudgeOffsets::estimate(cells_of(&cells, |_| 0.0), &s);
            let moved = JudgeOffsets::estimate(cells_of(&cells, |r| levels[r]), &s);
            for p in ["a/m", "b/m", "c/m", "d/m"] {
                let (x, y) = (plain.of(p), moved.of(p));
                prop_assert!(x.is_finite() && y.is_finite());
                prop_assert!((x - y).abs() < 1e-6, "{} {} vs {}", p, x, y);
            }
        }
    }
}
