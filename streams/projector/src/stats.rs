//! Mergeable window statistics, pure arithmetic: no I/O, no clock.
//!
//! Every statistic a window cell keeps is an integer (counts, a nano-USD sum, sparse
//! histograms), so adding, retracting and merging cells is exact, commutative and associative:
//! the merged window does not depend on the order inputs were folded in, nor on how they were
//! split between partitions. Floating point appears only when a snapshot is read out of the
//! merged integers, in a fixed order ([`Moments`] over histogram bins, ascending), so the same
//! inputs give bit-identical snapshots.
//!
//! - Quality scores (normalised `0..=1`) are kept at a resolution of `1/1000`
//!   ([`quality_bin`]); every feedback scale Switchyard accepts (thumbs, 1..5, NPS 0..10,
//!   percent) falls exactly on that grid, and a judge's free-form score moves by at most
//!   0.0005.
//! - Mean and variance come from [`Moments`]: Welford's update for single values, Chan et al.'s
//!   pairwise merge for groups (one group per histogram bin), which stays accurate where the
//!   textbook `Σx² − n·mean²` cancels catastrophically.
//! - Latency is a log-linear histogram ([`latency_bin`]): exact below 1024 ms, then 512 bins per
//!   power of two (relative width 1/512 ≈ 0.2%). The p95 is the nearest-rank p95 of the bins,
//!   reported as its bin's upper bound (never below the exact value, at most 0.2% above).
//! - Cost is summed in nano-USD ([`nano_usd`]), so the mean is exact to a billionth of a dollar.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_events::FeedbackSource;

/// Histogram bins per unit of quality score.
pub const QUALITY_SCALE: f64 = 1000.0;

/// The regression size buckets, in increasing size: the drop of a quality observation below
/// the baseline's window mean, in points of the 0..=1 scale (5% = 0.05).
pub const REGRESSION_BUCKETS: [&str; 4] = ["0-5%", "5-10%", "10-20%", "20%+"];

/// Returns the histogram bin of a normalised quality score (clamped to `0..=1`; non-finite
/// scores count as 0).
pub fn quality_bin(score: f64) -> u16 {
    let clamped = if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // 0..=1000 fits u16; `as` saturates anyway.
    (clamped * QUALITY_SCALE).round() as u16
}

/// Returns the quality score a bin stands for.
pub fn quality_value(bin: u16) -> f64 {
    f64::from(bin) / QUALITY_SCALE
}

/// Returns a USD amount in whole nano-USD (negative and non-finite amounts count as 0).
pub fn nano_usd(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round() as u64
    } else {
        0
    }
}

/// Latencies below this many milliseconds have a bin each.
const LATENCY_EXACT_MS: u64 = 1024;
/// Bins per power of two above [`LATENCY_EXACT_MS`] (the top 10 bits of the value are kept).
const LATENCY_SUB_BINS: u64 = 512;

/// Returns the histogram bin of a latency in milliseconds: the value itself below 1024 ms,
/// then 512 bins per power of two.
pub fn latency_bin(ms: u64) -> u32 {
    if ms < LATENCY_EXACT_MS {
        return ms as u32;
    }
    let exponent = 63 - u64::from(ms.leading_zeros()); // floor(log2 ms), >= 10
    let shift = exponent - 9; // keep the top 10 bits: mantissa in 512..=1023
    let mantissa = ms >> shift;
    let bin = LATENCY_EXACT_MS + (shift - 1) * LATENCY_SUB_BINS + (mantissa - LATENCY_SUB_BINS);
    bin as u32
}

/// Returns the largest latency (ms) that falls in `bin`.
pub fn latency_bin_upper(bin: u32) -> u64 {
    let bin = u64::from(bin);
    if bin < LATENCY_EXACT_MS {
        return bin;
    }
    let above = bin - LATENCY_EXACT_MS;
    let shift = above / LATENCY_SUB_BINS + 1;
    let mantissa = above % LATENCY_SUB_BINS + LATENCY_SUB_BINS;
    // Shifts above 54 would overflow; no latency in an i64 of milliseconds gets there.
    ((mantissa + 1) << shift.min(54)).saturating_sub(1)
}

/// Returns the label of the regression bucket a quality drop (`> 0`) falls in.
pub fn regression_bucket(drop: f64) -> &'static str {
    if drop < 0.05 {
        REGRESSION_BUCKETS[0]
    } else if drop < 0.10 {
        REGRESSION_BUCKETS[1]
    } else if drop < 0.20 {
        REGRESSION_BUCKETS[2]
    } else {
        REGRESSION_BUCKETS[3]
    }
}

/// Count, mean and sum of squared deviations of a sample (Welford / Chan et al.).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Values seen.
    pub count: u64,
    /// Their mean (0 when none).
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// Returns the moments of `count` copies of `value`.
    pub fn constant(count: u64, value: f64) -> Self {
        if count == 0 {
            return Self::default();
        }
        Self {
            count,
            mean: value,
            m2: 0.0,
        }
    }

    /// Adds one value (Welford's update).
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// Merges another sample into this one (Chan, Golub and LeVeque's pairwise update).
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (n_a, n_b) = (self.count as f64, other.count as f64);
        let n = n_a + n_b;
        let delta = other.mean - self.mean;
        self.mean += delta * (n_b / n);
        self.m2 += other.m2 + delta * delta * (n_a * n_b / n);
        self.count += other.count;
    }

    /// Returns the sample variance (`m2 / (n − 1)`; 0 below two values).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).max(0.0)
        }
    }
}

/// A sparse histogram: count per bin. Adding and retracting are exact; an empty bin is removed,
/// so equal contents have equal representations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counts<K: Ord>(BTreeMap<K, u64>);

impl<K: Ord> Default for Counts<K> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<K: Ord + Copy> Counts<K> {
    /// Adds `n` to `bin`.
    pub fn add(&mut self, bin: K, n: u64) {
        if n > 0 {
            *self.0.entry(bin).or_insert(0) += n;
        }
    }

    /// Takes one out of `bin` (nothing when the bin is empty).
    pub fn retract(&mut self, bin: K) {
        if let Some(count) = self.0.get_mut(&bin) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.0.remove(&bin);
            }
        }
    }

    /// Adds every bin of `other`.
    pub fn merge(&mut self, other: &Counts<K>) {
        for (bin, n) in &other.0 {
            self.add(*bin, *n);
        }
    }

    /// Returns the total count.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Returns whether every bin is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the bins and their counts, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        self.0.iter().map(|(k, n)| (*k, *n))
    }
}

impl Counts<u16> {
    /// Returns the moments of a quality histogram (bins merged in ascending order).
    pub fn moments(&self) -> Moments {
        let mut moments = Moments::default();
        for (bin, n) in self.iter() {
            moments.merge(&Moments::constant(n, quality_value(bin)));
        }
        moments
    }
}

impl Counts<u32> {
    /// Returns the nearest-rank p95 of a latency histogram (the upper bound of the bin holding
    /// the `ceil(0.95·n)`-th smallest value), `None` when empty.
    pub fn p95(&self) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (total * 95).div_ceil(100).max(1);
        let mut seen = 0;
        for (bin, n) in self.iter() {
            seen += n;
            if seen >= rank {
                return Some(latency_bin_upper(bin));
            }
        }
        None
    }
}

/// What one request path signal contributes to a window cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A completed request (a response joined to its decision).
    Request {
        /// Completed without error, truncation or refusal (and without falling back).
        success: bool,
        /// Failed: an error, a timeout, or a fallback to another model.
        error: bool,
        /// Its cost in nano-USD, when priced.
        cost_nano_usd: Option<u64>,
        /// Its latency, when it was served by the model itself.
        latency_ms: Option<u64>,
    },
    /// One quality observation (a feedback id or a judgement id).
    Score {
        /// Where it came from.
        source: FeedbackSource,
        /// Its [`quality_bin`].
        bin: u16,
    },
}

/// The integer aggregates of one (org, route, model, partition, time bucket): see the module
/// documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCell {
    /// Completed requests.
    #[serde(default)]
    pub requests: u64,
    /// Of which succeeded.
    #[serde(default)]
    pub successes: u64,
    /// Of which failed.
    #[serde(default)]
    pub errors: u64,
    /// Of which had a known price.
    #[serde(default)]
    pub priced: u64,
    /// Their summed cost in nano-USD.
    #[serde(default)]
    pub cost_nano_usd: u64,
    /// Latency histogram ([`latency_bin`]).
    #[serde(default)]
    pub latency: Counts<u32>,
    /// Quality histograms ([`quality_bin`]) per source.
    #[serde(default)]
    pub quality: BTreeMap<FeedbackSource, Counts<u16>>,
}

impl WindowCell {
    /// Adds a signal.
    pub fn add(&mut self, signal: &Signal) {
        match *signal {
            Signal::Request {
                success,
                error,
                cost_nano_usd,
                latency_ms,
            } => {
                self.requests += 1;
                self.successes += u64::from(success);
                self.errors += u64::from(error);
                if let Some(cost) = cost_nano_usd {
                    self.priced += 1;
                    self.cost_nano_usd = self.cost_nano_usd.saturating_add(cost);
                }
                if let Some(ms) = latency_ms {
                    self.latency.add(latency_bin(ms), 1);
                }
            }
            Signal::Score { source, bin } => {
                self.quality.entry(source).or_default().add(bin, 1);
            }
        }
    }

    /// Retracts a signal added before.
    pub fn retract(&mut self, signal: &Signal) {
        match *signal {
            Signal::Request {
                success,
                error,
                cost_nano_usd,
                latency_ms,
            } => {
                self.requests = self.requests.saturating_sub(1);
                self.successes = self.successes.saturating_sub(u64::from(success));
                self.errors = self.errors.saturating_sub(u64::from(error));
                if let Some(cost) = cost_nano_usd {
                    self.priced = self.priced.saturating_sub(1);
                    self.cost_nano_usd = self.cost_nano_usd.saturating_sub(cost);
                }
                if let Some(ms) = latency_ms {
                    self.latency.retract(latency_bin(ms));
                }
            }
            Signal::Score { source, bin } => {
                if let Some(counts) = self.quality.get_mut(&source) {
                    counts.retract(bin);
                    if counts.is_empty() {
                        self.quality.remove(&source);
                    }
                }
            }
        }
    }

    /// Returns whether the cell holds nothing.
    pub fn is_empty(&self) -> bool {
        self.requests == 0
            && self.priced == 0
            && self.cost_nano_usd == 0
            && self.latency.is_empty()
            && self.quality.is_empty()
    }
}

/// A model's window: the sum of its cells in the window, over every partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelWindow {
    /// Completed requests.
    pub requests: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which failed.
    pub errors: u64,
    /// Of which priced.
    pub priced: u64,
    /// Summed cost in nano-USD (u128: a window of many cells cannot overflow).
    pub cost_nano_usd: u128,
    /// Latency histogram.
    pub latency: Counts<u32>,
    /// Quality histograms per source.
    pub quality: BTreeMap<FeedbackSource, Counts<u16>>,
}

impl ModelWindow {
    /// Adds a cell.
    pub fn merge_cell(&mut self, cell: &WindowCell) {
        self.requests += cell.requests;
        self.successes += cell.successes;
        self.errors += cell.errors;
        self.priced += cell.priced;
        self.cost_nano_usd += u128::from(cell.cost_nano_usd);
        self.latency.merge(&cell.latency);
        for (source, counts) in &cell.quality {
            self.quality.entry(*source).or_default().merge(counts);
        }
    }

    /// Returns the moments of one source's quality observations.
    pub fn source_moments(&self, source: FeedbackSource) -> Moments {
        self.quality
            .get(&source)
            .map(Counts::moments)
            .unwrap_or_default()
    }

    /// Returns the mean cost in USD: `None` without priced requests.
    pub fn cost_mean_usd(&self) -> Option<f64> {
        (self.priced > 0).then(|| self.cost_nano_usd as f64 / 1e9 / self.priced as f64)
    }
}

/// How a quality observation is recognised as a regression.
///
/// An observation of a non-baseline model is compared with the baseline's window mean for the
/// same source: it regresses when it is more than `margin` (the route's `max_regression`)
/// below. Single observations are noisy (a judge's or a user's score spreads far more than any
/// useful margin: a model exactly as good as the baseline has about half its observations below
/// the baseline's mean), so an observation only counts when its time bucket as a whole falls
/// below the baseline's mean minus the margin by more than `z` standard errors:
///
/// `μ_b − margin − μ_k > z · √(max(s_k², σ_b²)/n_k + σ_b²/n_b)`
///
/// with `μ_k, s_k², n_k` the model's mean, variance and count for the source in bucket `k`,
/// and `μ_b, σ_b², n_b` the baseline's over the whole window (the baseline's spread stands in
/// for a bucket with too few observations to have its own). Noise alone then almost never
/// counts (about 1% of buckets at the default `z` of 2.33), while a systematic drop counts
/// every affected observation, sized by its own drop.
///
/// A degradation that starts now shows in one bucket only once that bucket has enough
/// observations, which on a quiet route takes several buckets. So the same test also runs on
/// every run of recent buckets (bucket `j` to the newest, pooled), and the run that falls
/// furthest below (the largest statistic above `z`: the likeliest change point) counts every
/// low observation from `j` on. A sustained drop is then found as soon as the pooled
/// observations since it began clear the test, whatever the bucket width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionRule {
    /// The route's `max_regression`: the largest tolerated drop below the baseline's mean.
    pub margin: f64,
    /// Observations the baseline needs, per source, before its mean is a reference.
    pub min_baseline_samples: u64,
    /// Observations a bucket needs, per source, before it is tested: one or two scores say
    /// little about a model (a judge that reads a pass as a fail once is enough to sink a
    /// lone score), however the standard error is estimated.
    pub min_bucket_samples: u64,
    /// Standard errors a bucket's mean must fall below the tolerated level by (0 counts every
    /// bucket whose mean is below it).
    pub z: f64,
    /// Added to the baseline's judge mean before the comparison: the model's judge offset
    /// minus the baseline's (`switchyard_router::calibration`), so judge scores are compared
    /// on one scale; 0 without calibration.
    pub judge_shift: f64,
}

impl RegressionRule {
    /// Returns a model's regressions against `baseline`, by size label: `buckets` are the
    /// model's windows of each time bucket in the window, `baseline` the baseline's whole window.
    pub fn regressions<'a>(
        &self,
        buckets: impl IntoIterator<Item = &'a ModelWindow>,
        baseline: &ModelWindow,
    ) -> BTreeMap<String, u64> {
        let references: BTreeMap<FeedbackSource, Moments> = baseline
            .quality
            .iter()
            .map(|(source, counts)| {
                let mut m = counts.moments();
                if *source == FeedbackSource::Judge && m.count > 0 {
                    m.mean += self.judge_shift;
                }
                (*source, m)
            })
            .filter(|(_, m)| m.count > 0 && m.count >= self.min_baseline_samples)
            .collect();
        let buckets: Vec<&ModelWindow> = buckets.into_iter().collect();
        let mut out = BTreeMap::new();
        for (source, reference) in &references {
            // Session NPS is one rating spread over every decision of a session: its
            // observations are not independent, so one unhappy session would look like a
            // bucket of regressions. Regressions come from per-request scores.
            if matches!(source, FeedbackSource::Nps) {
                continue;
            }
            let moments: Vec<Moments> = buckets
                .iter()
                .map(|b| {
                    b.quality
                        .get(source)
                        .map(Counts::moments)
                        .unwrap_or_default()
                })
                .collect();
            // The change point: the start of the recent run of buckets that falls furthest
            // below the tolerated level (a one-sided CUSUM-style scan over the suffixes).
            let mut recent = Moments::default();
            let mut change: Option<(usize, f64)> = None;
            for (k, m) in moments.iter().enumerate().rev() {
                recent.merge(m);
                if m.count == 0 {
                    continue;
                }
                if let Some(t) = self.statistic(&recent, reference)
                    && t > self.z
                    && change.is_none_or(|(_, best)| t > best)
                {
                    change = Some((k, t));
                }
            }
            for (k, bucket) in buckets.iter().enumerate() {
                let Some(counts) = bucket.quality.get(source) else {
                    continue;
                };
                let since_change = change.is_some_and(|(start, _)| k >= start);
                let alone = self
                    .statistic(&moments[k], reference)
                    .is_some_and(|t| t > self.z);
                if !since_change && !alone {
                    continue;
                }
                for (bin, n) in counts.iter() {
                    let drop = reference.mean - quality_value(bin);
                    if drop > self.margin {
                        *out.entry(regression_bucket(drop).to_owned()).or_insert(0) += n;
                    }
                }
            }
        }
        out
    }

    /// Returns by how many standard errors observations of `here` fall below the tolerated
    /// level `reference.mean − margin`, when there are enough of them to test.
    fn statistic(&self, here: &Moments, reference: &Moments) -> Option<f64> {
        if here.count == 0 || here.count < self.min_bucket_samples || reference.count == 0 {
            return None;
        }
        let spread = reference.variance();
        let error = (here.variance().max(spread) / here.count as f64
            + spread / reference.count as f64)
            .sqrt();
        let gap = reference.mean - self.margin - here.mean;
        if error <= 0.0 {
            return Some(if gap > 0.0 { f64::INFINITY } else { 0.0 });
        }
        Some(gap / error)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn latency_bins_are_contiguous_and_monotonic() {
        let mut previous = 0;
        for ms in 0..200_000u64 {
            let bin = latency_bin(ms);
            assert!(
                bin == previous || bin == previous + 1,
                "{ms}: {bin} after {previous}"
            );
            assert!(latency_bin_upper(bin) >= ms);
            previous = bin;
        }
        assert_eq!(latency_bin(1023), 1023);
        assert_eq!(latency_bin(1024), 1024);
        assert_eq!(latency_bin_upper(1024), 1025);
        assert!(latency_bin(u64::MAX) > latency_bin(1 << 40));
    }

    proptest! {
        #[test]
        fn a_latency_bin_is_within_a_fifth_of_a_percent(ms in 0u64..(1 << 40)) {
            let upper = latency_bin_upper(latency_bin(ms));
            prop_assert!(upper >= ms);
            prop_assert!((upper - ms) as f64 <= ms as f64 / 512.0 + 1.0);
            prop_assert_eq!(latency_bin(upper), latency_bin(ms));
        }

        #[test]
        fn chan_merge_agrees_with_welford_and_two_pass(
            a in proptest::collection::vec(0.0f64..1.0, 0..60),
            b in proptest::collection::vec(0.0f64..1.0, 0..60),
        ) {
            let mut left = Moments::default();
            a.iter().for_each(|x| left.push(*x));
            let mut right = Moments::default();
            b.iter().for_each(|x| right.push(*x));
            let mut merged = left;
            merged.merge(&right);
            let mut sequential = Moments::default();
            a.iter().chain(&b).for_each(|x| sequential.push(*x));
            let all: Vec<f64> = a.iter().chain(&b).copied().collect();
            let n = all.len() as f64;
            let mean = if all.is_empty() { 0.0 } else { all.iter().sum::<f64>() / n };
            let var = if all.len() < 2 { 0.0 } else { all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) };
            prop_assert_eq!(merged.count, all.len() as u64);
            prop_assert!((merged.mean - mean).abs() < 1e-12);
            prop_assert!((sequential.mean - mean).abs() < 1e-12);
            prop_assert!((merged.variance() - var).abs() < 1e-12);
            prop_assert!((sequential.variance() - var).abs() < 1e-12);
        }
    }

    #[test]
    fn moments_stay_accurate_far_from_zero() {
        // The naive Σx² − n·mean² loses every digit here; Welford and Chan keep them.
        let mut moments = Moments::default();
        let mut other = Moments::default();
        for i in 0..1000 {
            let x = 1e9 + f64::from(i % 2);
            if i < 500 {
                moments.push(x);
            } else {
                other.push(x);
            }
        }
        moments.merge(&other);
        assert!(
            (moments.variance() - 0.25025).abs() < 1e-6,
            "{}",
            moments.variance()
        );
    }

    #[test]
    fn p95_is_nearest_rank() {
        let mut counts = Counts::<u32>::default();
        for ms in 1..=100u64 {
            counts.add(latency_bin(ms), 1);
        }
        assert_eq!(counts.p95(), Some(95));
        counts.add(latency_bin(5000), 1);
        assert_eq!(counts.p95(), Some(96));
        assert_eq!(Counts::<u32>::default().p95(), None);
        let mut one = Counts::<u32>::default();
        one.add(latency_bin(7), 1);
        assert_eq!(one.p95(), Some(7));
    }

    #[test]
    fn feedback_scales_fall_on_the_quality_grid() {
        for nps in 0..=10u8 {
            let score = f64::from(nps) / 10.0;
            assert_eq!(quality_value(quality_bin(score)), score);
        }
        for stars in [0.0, 0.25, 0.5, 0.75, 1.0] {
            assert_eq!(quality_value(quality_bin(stars)), stars);
        }
        assert_eq!(quality_bin(f64::NAN), 0);
        assert_eq!(quality_bin(1.5), 1000);
    }

    #[test]
    fn cells_retract_exactly() {
        let signals = [
            Signal::Request {
                success: true,
                error: false,
                cost_nano_usd: Some(1_500),
                latency_ms: Some(120),
            },
            Signal::Request {
                success: false,
                error: true,
                cost_nano_usd: None,
                latency_ms: None,
            },
            Signal::Score {
                source: FeedbackSource::Judge,
                bin: 800,
            },
        ];
        let mut cell = WindowCell::default();
        for signal in &signals {
            cell.add(signal);
        }
        assert_eq!((cell.requests, cell.successes, cell.errors), (2, 1, 1));
        for signal in signals.iter().rev() {
            cell.retract(signal);
        }
        assert!(cell.is_empty());
        assert_eq!(cell, WindowCell::default());
    }

    fn judged(bins: &[(u16, u64)]) -> ModelWindow {
        let mut window = ModelWindow::default();
        for (bin, n) in bins {
            window
                .quality
                .entry(FeedbackSource::Judge)
                .or_default()
                .add(*bin, *n);
        }
        window
    }

    #[test]
    fn regressions_are_bucketed_by_drop() {
        let rule = RegressionRule {
            margin: 0.02,
            min_baseline_samples: 5,
            min_bucket_samples: 1,
            z: 0.0,
            judge_shift: 0.0,
        };
        let baseline = judged(&[(800, 10)]);
        // Drops of 0.01 (within the margin), 0.04, 0.08, 0.15, 0.5: the bucket's mean is far
        // below the baseline's, so each observation beyond the margin counts.
        let candidate = judged(&[(790, 1), (760, 1), (720, 1), (650, 1), (300, 1)]);
        let regressions = rule.regressions([&candidate], &baseline);
        let expected: BTreeMap<String, u64> =
            [("0-5%", 1), ("5-10%", 1), ("10-20%", 1), ("20%+", 1)]
                .map(|(k, v)| (k.to_owned(), v))
                .into_iter()
                .collect();
        assert_eq!(regressions, expected);
        // No reference yet: nothing counts.
        let strict = RegressionRule {
            min_baseline_samples: 11,
            min_bucket_samples: 1,
            ..rule
        };
        assert!(strict.regressions([&candidate], &baseline).is_empty());
        // Another source has no baseline observations.
        let mut nps_only = ModelWindow::default();
        nps_only
            .quality
            .entry(FeedbackSource::Nps)
            .or_default()
            .add(0, 3);
        assert!(rule.regressions([&nps_only], &baseline).is_empty());
    }

    #[test]
    fn a_drop_spread_over_quiet_buckets_is_found_pooled() {
        let rule = RegressionRule {
            margin: 0.02,
            min_baseline_samples: 5,
            min_bucket_samples: 3,
            z: 2.33,
            judge_shift: 0.0,
        };
        // A binary-ish baseline: 85% good.
        let baseline = judged(&[(1000, 85), (0, 15)]);
        let good = judged(&[(1000, 4), (0, 1)]);
        // After the change every quiet bucket is 2 good, 2 bad: no bucket alone clears the
        // test (four scores are too few), but the run since the change does.
        let bad = judged(&[(1000, 2), (0, 2)]);
        assert!(rule.regressions([&bad], &baseline).is_empty());
        // Three such buckets are not yet enough (t ≈ 2.1), four are (t ≈ 2.5).
        let found = rule.regressions([&good, &good, &bad, &bad, &bad], &baseline);
        assert!(found.is_empty(), "{found:?}");
        let found = rule.regressions([&good, &good, &bad, &bad, &bad, &bad], &baseline);
        // Every low score since the change counts, none before it.
        assert_eq!(found.values().sum::<u64>(), 8, "{found:?}");
        // The same buckets before the good ones are not a recent run: each alone is noise,
        // and pooled with the good ones they do not clear the test.
        let recovered = rule.regressions([&bad, &good, &good, &good, &good], &baseline);
        assert!(recovered.is_empty(), "{recovered:?}");
        // Noise alone: runs of buckets as good as the baseline never count.
        let alike = judged(&[(1000, 17), (0, 3)]);
        assert!(
            rule.regressions([&alike, &good, &alike, &good], &baseline)
                .is_empty()
        );
    }

    #[test]
    fn noise_around_the_baseline_is_no_regression() {
        let rule = RegressionRule {
            margin: 0.05,
            min_baseline_samples: 5,
            min_bucket_samples: 1,
            z: 2.33,
            judge_shift: 0.0,
        };
        // Both models judged 0.8 and 0.9 alike: half of each model's scores are 0.05 below the
        // baseline's mean, yet nothing regressed.
        let baseline = judged(&[(800, 100), (900, 100)]);
        let alike = judged(&[(800, 10), (900, 10)]);
        assert!(rule.regressions([&alike, &alike], &baseline).is_empty());
        // One bad score in a bucket of good ones is noise too.
        let one_bad = judged(&[(800, 10), (900, 10), (300, 1)]);
        assert!(rule.regressions([&one_bad], &baseline).is_empty());
        // A bucket that dropped as a whole counts each of its low scores.
        let dropped = judged(&[(400, 4), (900, 1)]);
        let regressions = rule.regressions([&alike, &dropped], &baseline);
        assert_eq!(regressions.get("20%+"), Some(&4));
        assert_eq!(regressions.values().sum::<u64>(), 4);
    }

    #[test]
    fn a_judge_shift_compares_judge_scores_on_one_scale() {
        let rule = RegressionRule {
            margin: 0.02,
            min_baseline_samples: 5,
            min_bucket_samples: 3,
            z: 2.33,
            judge_shift: 0.0,
        };
        // The judge scores the baseline's provider 0.07 higher than the candidate's, for the
        // same quality: uncalibrated, every bucket of the candidate reads as a regression.
        let baseline = judged(&[(900, 300), (800, 300)]);
        let candidate = judged(&[(830, 60), (730, 60)]);
        let raw = rule.regressions([&candidate, &candidate, &candidate], &baseline);
        assert!(raw.values().sum::<u64>() > 0, "{raw:?}");
        // Calibrated (the candidate's offset minus the baseline's: -0.07), nothing regressed.
        let calibrated = RegressionRule {
            judge_shift: -0.07,
            ..rule
        };
        let none = calibrated.regressions([&candidate, &candidate, &candidate], &baseline);
        assert!(none.is_empty(), "{none:?}");
        // A real drop still counts after the shift.
        let dropped = judged(&[(530, 60), (430, 60)]);
        let found = calibrated.regressions([&candidate, &dropped], &baseline);
        assert!(found.values().sum::<u64>() >= 60, "{found:?}");
        // The shift applies to the judge only: admin ratings keep their own scale.
        let mut admin_base = ModelWindow::default();
        admin_base
            .quality
            .entry(FeedbackSource::Admin)
            .or_default()
            .add(900, 50);
        let mut admin_low = ModelWindow::default();
        admin_low
            .quality
            .entry(FeedbackSource::Admin)
            .or_default()
            .add(830, 50);
        let shifted = RegressionRule {
            judge_shift: -0.1,
            ..rule
        };
        assert_eq!(
            shifted.regressions([&admin_low], &admin_base),
            rule.regressions([&admin_low], &admin_base)
        );
        assert!(!rule.regressions([&admin_low], &admin_base).is_empty());
    }
}
