//! Judge calibration: how far an LLM judge scores the models of each provider above (or below)
//! what the org's users say of the same models.
//!
//! LLM judges prefer answers of their own family (self-preference): a judge that adds a few
//! points to every answer of its provider's models makes a cheaper model of another provider
//! look worse than the baseline by those points, more than a typical `max_regression`, so the
//! router never moves and the regression test reports false regressions. Session NPS is slow
//! and noisy but rates every model alike, so it is the reference.
//!
//! For every (route, model) of an org's window with at least `min_samples` judge scores and
//! `min_samples` NPS samples, the cell's offset is `d = mean_judge − mean_nps`, with variance
//! `v = max(s_j², floor)/n_j + max(s_n², floor)·design/n_n` (`design`: NPS samples of one
//! session are one rating, so they count as fewer independent ones). Cells pool per provider
//! (the part of the model id before `/`) by inverse variance: `d_P = Σ d/v / Σ 1/v`, variance
//! `1/Σ 1/v`. The org's reference is the mean of the providers' `d_P`, one vote each, and each
//! provider's offset shrinks towards it with a normal prior of standard deviation `spread`:
//!
//! `o_P = (d_P/var_P + d_org/spread²) / (1/var_P + 1/spread²)`.
//!
//! A provider without calibrated cells gets `d_org`. Only differences between models matter
//! (a calibrated judge score is `judge − o_P`, compared with another calibrated judge score),
//! so the NPS scale (a 0..10 rating is not a 0..1 judge score) cancels out.

use std::collections::BTreeMap;

use crate::stats::SourceStat;

/// How judge offsets are estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationSettings {
    /// Judge scores and NPS samples a (route, model) cell needs to count.
    pub min_samples: u64,
    /// Floor on a source's per-sample variance.
    pub variance_floor: f64,
    /// Decisions per independent NPS rating (NPS samples of a session are one rating).
    pub design: f64,
    /// Standard deviation of the providers' offsets around the org's mean (the shrinkage).
    pub spread: f64,
}

impl Default for CalibrationSettings {
    fn default() -> Self {
        CalibrationSettings {
            min_samples: 5,
            variance_floor: 0.01,
            design: 3.0,
            spread: 0.05,
        }
    }
}

/// The judge's offset per provider of the judged model, for one org.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeOffsets {
    /// Provider → its shrunk offset and the cells behind it.
    by_provider: BTreeMap<String, (f64, u64)>,
    /// The org's reference offset (for providers without calibrated cells).
    org: f64,
}

/// Returns the provider of a model id (`provider/model`); the whole id without a `/`.
pub fn provider_of(model: &str) -> &str {
    model.split_once('/').map_or(model, |(p, _)| p)
}

impl JudgeOffsets {
    /// Estimates the offsets from an org's cells: `(model id, judge, nps)` per (route, model).
    pub fn estimate<'a>(
        cells: impl IntoIterator<Item = (&'a str, SourceStat, SourceStat)>,
        settings: &CalibrationSettings,
    ) -> Self {
        // provider → (Σ d/v, Σ 1/v, cells)
        let mut sums: BTreeMap<&str, (f64, f64, u64)> = BTreeMap::new();
        let min = settings.min_samples.max(1);
        let floor = settings.variance_floor.max(1e-9);
        for (model, judge, nps) in cells {
            if judge.samples < min || nps.samples < min {
                continue;
            }
            let d = judge.mean - nps.mean;
            let v = judge.variance.max(floor) / judge.samples as f64
                + nps.variance.max(floor) * settings.design.max(1.0) / nps.samples as f64;
            if !(d.is_finite() && v.is_finite() && v > 0.0) {
                continue;
            }
            let e = sums.entry(provider_of(model)).or_insert((0.0, 0.0, 0));
            e.0 += d / v;
            e.1 += 1.0 / v;
            e.2 += 1;
        }
        if sums.is_empty() {
            return JudgeOffsets::default();
        }
        let raw: Vec<(&str, f64, f64, u64)> = sums
            .into_iter()
            .map(|(p, (dv, w, n))| (p, dv / w, 1.0 / w, n))
            .collect();
        let org = raw.iter().map(|r| r.1).sum::<f64>() / raw.len() as f64;
        let prior_precision = 1.0 / settings.spread.max(1e-6).powi(2);
        let by_provider = raw
            .into_iter()
            .map(|(p, d, var, n)| {
                let w = 1.0 / var;
                let o = (d * w + org * prior_precision) / (w + prior_precision);
                (p.to_owned(), (o, n))
            })
            .collect();
        JudgeOffsets { by_provider, org }
    }

    /// Returns the offset of a model's judge scores (its provider's, else the org's).
    pub fn of(&self, model: &str) -> f64 {
        self.by_provider
            .get(provider_of(model))
            .map_or(self.org, |(o, _)| *o)
    }

    /// Returns whether no cell was calibrated (every offset is 0).
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

    #[test]
    fn a_self_preferring_judge_is_measured_per_provider() {
        // The judge adds 0.07 to openai models; NPS is unbiased. Several routes per provider.
        let cells = vec![
            ("openai/gpt-4o", stat(400, 0.87, 0.1), stat(300, 0.80, 0.04)),
            ("openai/mini", stat(300, 0.82, 0.1), stat(200, 0.75, 0.04)),
            ("google/flash", stat(300, 0.75, 0.1), stat(200, 0.75, 0.04)),
            (
                "anthropic/claude",
                stat(400, 0.80, 0.1),
                stat(300, 0.80, 0.04),
            ),
        ];
        let o = JudgeOffsets::estimate(cells, &CalibrationSettings::default());
        // Most of the 0.07, a little shrunk towards the org's mean.
        let gap = o.of("openai/gpt-4o") - o.of("google/flash-8b");
        assert!(gap > 0.05 && gap <= 0.07, "gap {gap}");
        assert!((o.of("openai/x") - o.of("openai/gpt-4o")).abs() < 1e-12);
        // A provider without cells gets the org's reference, between the others.
        let unknown = o.of("ai21/jamba");
        assert!(unknown > o.of("google/flash") && unknown < o.of("openai/gpt-4o"));
    }

    #[test]
    fn too_few_samples_calibrate_nothing() {
        let cells = vec![("openai/gpt-4o", stat(4, 0.9, 0.1), stat(400, 0.5, 0.04))];
        let o = JudgeOffsets::estimate(cells, &CalibrationSettings::default());
        assert!(o.is_empty());
        assert_eq!(o.of("openai/gpt-4o"), 0.0);
    }

    #[test]
    fn weak_evidence_shrinks_towards_the_org() {
        let strong = vec![
            ("a/x", stat(2000, 0.9, 0.01), stat(2000, 0.8, 0.01)),
            ("b/y", stat(2000, 0.8, 0.01), stat(2000, 0.8, 0.01)),
        ];
        let weak = vec![
            ("a/x", stat(5, 0.9, 0.1), stat(5, 0.8, 0.1)),
            ("b/y", stat(2000, 0.8, 0.01), stat(2000, 0.8, 0.01)),
        ];
        let s = CalibrationSettings::default();
        let strong = JudgeOffsets::estimate(strong, &s);
        let weak = JudgeOffsets::estimate(weak, &s);
        let strong_gap = strong.of("a/x") - strong.of("b/y");
        assert!(strong_gap > 0.09, "strong gap {strong_gap}");
        let gap = weak.of("a/x") - weak.of("b/y");
        assert!(gap > 0.0 && gap < strong_gap - 0.03, "gap {gap}");
    }

    proptest! {
        /// A judge that adds the same offset to every model is no bias at all: every provider
        /// gets the same offset, so calibrated differences equal raw ones.
        #[test]
        fn a_common_offset_cancels(
            shift in -0.3f64..0.3,
            cells in proptest::collection::vec((0usize..4, 0.0f64..1.0, 5u64..500, 5u64..500), 1..12),
        ) {
            let providers = ["a/m", "b/m", "c/m", "d/m"];
            let list: Vec<(&str, SourceStat, SourceStat)> = cells
                .iter()
                .map(|(p, q, nj, nn)| {
                    (providers[*p], stat(*nj, q + shift, 0.05), stat(*nn, *q, 0.05))
                })
                .collect();
            let o = JudgeOffsets::estimate(list, &CalibrationSettings::default());
            for p in providers {
                prop_assert!((o.of(p) - shift).abs() < 1e-9, "{} {}", p, o.of(p));
            }
        }

        /// Offsets are finite and stay within the range of the cells' raw differences.
        #[test]
        fn offsets_stay_within_the_observed_range(
            cells in proptest::collection::vec((0usize..4, 0.0f64..1.0, 0.0f64..1.0, 0u64..300, 0u64..300, 0.0f64..0.3), 0..16),
        ) {
            let providers = ["a/m", "b/m", "c/m", "d/m"];
            let list: Vec<(&str, SourceStat, SourceStat)> = cells
                .iter()
                .map(|(p, j, n, nj, nn, v)| (providers[*p], stat(*nj, *j, *v), stat(*nn, *n, *v)))
                .collect();
            let counted: Vec<f64> = list
                .iter()
                .filter(|(_, j, n)| j.samples >= 5 && n.samples >= 5)
                .map(|(_, j, n)| j.mean - n.mean)
                .collect();
            let o = JudgeOffsets::estimate(list, &CalibrationSettings::default());
            let lo = counted.iter().copied().fold(0.0f64, f64::min);
            let hi = counted.iter().copied().fold(0.0f64, f64::max);
            for p in providers {
                let x = o.of(p);
                prop_assert!(x.is_finite());
                prop_assert!(x >= lo - 1e-9 && x <= hi + 1e-9, "{} not in [{}, {}]", x, lo, hi);
            }
        }
    }
}
