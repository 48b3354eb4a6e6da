//! Scoring: the phase, the feedback blend, success, cost and confidence of one model.
//!
//! - **Phase** (per route): 0 until the route has `phase1_min_samples` judge-plus-admin
//!   samples, 1 until it has `phase2_min_samples` session-NPS samples, then 2.
//! - **Feedback** (0..=1): the phase's source weights `W`, where an org source with `n` samples
//!   earns `W·n/(n+k)` (`k` = `half_weight_samples`) and hands the rest to the benchmark prior.
//!   The value is the weighted mean of the sources; its variance is
//!   `Σ (wᵢ/Σw)²·max(σᵢ², floor)/nᵢ` over org sources plus `(w_b/Σw)²·prior_sd²`.
//! - **Success** (0..=1): `(successes + a·m)/(requests + a)`, a Beta prior of mean `m` and
//!   strength `a` (defaults 0.95 and 20), so a model is not condemned for one early error.
//! - **Cost** (0..=1): `0.5 + 0.5·(b − c)/max(b, c)` for the request's estimated cost `c` and
//!   the baseline's `b`: 0.5 at parity, 1 for free, 0.25 at twice the baseline. Unknown prices
//!   give 0.5 and are flagged (cost constraints then fail: a missing price is never $0).
//! - **Score**: `(w_s·success + w_f·feedback + w_c·cost)/(w_s + w_f + w_c)`.
//! - **Confidence** of a candidate: the posterior probability that its quality is no worse
//!   than the baseline's minus `max_regression`, under a normal approximation:
//!   `Φ((F_c − F_b + max_regression)/√(var_c + var_b))`.

use switchyard_events::FeedbackSource;
use switchyard_providers::ModelInfo;
use switchyard_providers::types::Usage;

use crate::math::normal_cdf;
use crate::policy::{Learning, SOURCES, ScoreWeights};
use crate::priors::Prior;
use crate::stats::{ModelStats, RouteStats};

/// One source's part in a model's feedback value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The source.
    pub source: FeedbackSource,
    /// Its share of the feedback blend (0..=1; the shares sum to 1).
    pub weight: f64,
    /// Its value (0..=1), when it has one.
    pub value: Option<f64>,
    /// What it added to the final score (score units: share × value × feedback weight).
    pub contribution: f64,
    /// Samples behind the value (0 for priors).
    pub samples: u64,
}

/// Everything the router computed about one model for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    /// Success component.
    pub success: f64,
    /// Feedback (quality) component.
    pub feedback: f64,
    /// Variance of the feedback estimate.
    pub feedback_variance: f64,
    /// Cost component.
    pub cost: f64,
    /// Estimated cost of this request in USD, when the price is known.
    pub estimated_cost_usd: Option<f64>,
    /// The final score.
    pub score: f64,
    /// Per-source parts of the feedback value, in the fixed source order.
    pub signals: [Signal; 5],
    /// Org feedback samples (every source but priors).
    pub org_samples: u64,
    /// Observed error rate, when the model has requests.
    pub error_rate: Option<f64>,
    /// Whether a benchmark prior was found.
    pub has_prior: bool,
}

/// Returns a route's phase: 0 (benchmark priors), 1 (judge and admin), 2 (session NPS).
pub(crate) fn phase(stats: Option<&RouteStats>, learning: &Learning) -> u8 {
    let (judge_admin, nps) = stats.map_or((0, 0), RouteStats::phase_samples);
    if judge_admin >= learning.phase1_min_samples && nps >= learning.phase2_min_samples {
        2
    } else if judge_admin >= learning.phase1_min_samples {
        1
    } else {
        0
    }
}

/// Returns the estimated cost of a request on a model, when its price is known.
pub(crate) fn estimate_cost(
    info: Option<&ModelInfo>,
    input_tokens: u64,
    output_tokens: u64,
) -> Option<f64> {
    let usage = Usage::new(input_tokens, output_tokens, 0, 0);
    info?.cost_usd(&usage)
}

/// Returns the cost component for a request costing `cost` against the baseline's.
pub(crate) fn cost_component(cost: Option<f64>, baseline: Option<f64>) -> f64 {
    match (cost, baseline) {
        (Some(c), Some(b)) => {
            let top = c.max(b);
            if top <= 0.0 {
                0.5
            } else {
                (0.5 + 0.5 * (b - c) / top).clamp(0.0, 1.0)
            }
        }
        _ => 0.5,
    }
}

/// Inputs of [`score_model`].
pub(crate) struct ScoreInputs<'a> {
    pub stats: Option<&'a ModelStats>,
    pub prior: Option<&'a Prior>,
    pub phase: u8,
    pub learning: &'a Learning,
    pub weights: ScoreWeights,
    pub estimated_cost_usd: Option<f64>,
    pub baseline_cost_usd: Option<f64>,
}

/// Scores one model.
pub(crate) fn score_model(inp: &ScoreInputs<'_>) -> ModelScore {
    let learning = inp.learning;
    let blend = learning.blends[usize::from(inp.phase.min(2))];
    let (prior_value, prior_sd) = match inp.prior {
        Some(p) => (p.score, learning.prior_sd),
        None => learning.unknown_prior,
    };

    // Effective weights: the phase's weights, renormalised over the sources this model has
    // (the prior always counts); an org source then earns its share with samples and hands the
    // rest to the prior.
    let mut eff = [0.0f64; 5];
    let mut values = [None::<f64>; 5];
    let mut samples = [0u64; 5];
    let mut present = 0.0;
    for (i, source) in SOURCES.iter().enumerate() {
        let w = blend.of(*source);
        if *source == FeedbackSource::Benchmark {
            eff[i] = w;
            values[i] = Some(prior_value);
            present += w;
        } else if let Some(stat) = inp
            .stats
            .and_then(|s| s.calibrated(*source, learning.calibrate_judge))
            .filter(|s| s.samples > 0 && w > 0.0)
        {
            eff[i] = w;
            values[i] = Some(stat.mean.clamp(0.0, 1.0));
            samples[i] = stat.samples;
            present += w;
        }
    }
    if present <= 0.0 {
        // Only sources this model has no data for carry weight: the prior decides.
        eff = [0.0; 5];
        eff[0] = 1.0;
        present = 1.0;
    }
    let mut residual = 0.0;
    for i in 1..5 {
        if samples[i] > 0 {
            let normalised = eff[i] / present;
            let n = samples[i] as f64;
            eff[i] = normalised * n / (n + learning.half_weight_samples.max(0.0));
            residual += normalised - eff[i];
        } else {
            eff[i] = 0.0;
            values[i] = None;
        }
    }
    eff[0] /= present;
    // Index 0 is the benchmark (SOURCES order).
    eff[0] += residual;
    let total: f64 = eff.iter().sum();
    let mut feedback = 0.0;
    let mut variance = 0.0;
    for i in 0..5 {
        let share = if total > 0.0 { eff[i] / total } else { 0.0 };
        if let Some(v) = values[i] {
            feedback += share * v;
            let var = if i == 0 {
                prior_sd * prior_sd
            } else {
                let stat_var = inp
                    .stats
                    .and_then(|s| s.source(SOURCES[i]))
                    .map_or(0.0, |s| s.variance);
                stat_var.max(learning.min_sample_variance) / samples[i].max(1) as f64
            };
            variance += share * share * var;
        }
    }

    let (requests, successes, errors) = inp
        .stats
        .map_or((0, 0, 0), |s| (s.requests, s.successes, s.errors));
    let (m, a) = learning.success_prior;
    let success = ((successes as f64 + a * m) / (requests as f64 + a)).clamp(0.0, 1.0);
    let error_rate = (requests > 0).then(|| errors as f64 / requests as f64);
    let cost = cost_component(inp.estimated_cost_usd, inp.baseline_cost_usd);

    let w = inp.weights;
    let wsum = w.success + w.feedback + w.cost;
    let score = (w.success * success + w.feedback * feedback + w.cost * cost) / wsum;

    let mut signals = [Signal {
        source: FeedbackSource::Benchmark,
        weight: 0.0,
        value: None,
        contribution: 0.0,
        samples: 0,
    }; 5];
    for i in 0..5 {
        let share = if total > 0.0 { eff[i] / total } else { 0.0 };
        signals[i] = Signal {
            source: SOURCES[i],
            weight: share,
            value: values[i],
            contribution: values[i].map_or(0.0, |v| share * v * w.feedback / wsum),
            samples: samples[i],
        };
    }

    ModelScore {
        success,
        feedback,
        feedback_variance: variance,
        cost,
        estimated_cost_usd: inp.estimated_cost_usd,
        score,
        signals,
        org_samples: inp.stats.map_or(0, ModelStats::org_samples),
        error_rate,
        has_prior: inp.prior.is_some(),
    }
}

/// What a candidate's evidence says about its quality relative to the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Relative {
    /// The estimated quality difference, candidate minus baseline.
    pub difference: f64,
    /// Its variance.
    pub variance: f64,
    /// Per source (in [`SOURCES`] order): its share of the paired blend, and the difference of
    /// the two models' values in that source (`None` when one of them has no data).
    pub parts: [(f64, Option<f64>); 5],
}

/// Compares a candidate with the baseline source by source, on the same weights.
///
/// Sources measure quality on different scales: a session's NPS is its whole session's
/// mean (every category and model of it), an LLM judge compresses and shifts the scale, an
/// admin rates directly. A candidate that has only judge scores (from mirrors) set against a
/// baseline whose blend is mostly NPS would be compared across scales, so the comparison uses
/// only the sources both models have, and the difference within each:
///
/// `Δ = σ₀·(p_c − p_b) + Σₛ σₛ·(m_c,s − m_b,s)`, with the phase's weights renormalised over
/// the prior and the shared sources, a shared source earning `W·n/(n+k)` of its weight for
/// the pair's effective samples `n = n_c·n_b/(n_c + n_b)` (the rest goes to the prior), and
/// `var Δ = Σₛ σₛ²·(v_c,s/n_c,s + v_b,s/n_b,s) + σ₀²·(sd_c² + sd_b²)`, over the sources both
/// models have. While the baseline has no org data at all, each source of the candidate is
/// compared with the baseline's blended quality, its prior (`n = n_c`, its variance standing
/// in for `v_b,s/n_b,s`).
pub(crate) fn relative(
    candidate: (Option<&ModelStats>, Option<&Prior>),
    baseline: (Option<&ModelStats>, Option<&Prior>),
    baseline_score: &ModelScore,
    phase: u8,
    learning: &Learning,
) -> Relative {
    let blend = learning.blends[usize::from(phase.min(2))];
    let prior_of = |p: Option<&Prior>| match p {
        Some(p) => (p.score, learning.prior_sd),
        None => learning.unknown_prior,
    };
    let (pc, sdc) = prior_of(candidate.1);
    let (pb, sdb) = prior_of(baseline.1);
    let source = |stats: Option<&ModelStats>, s: FeedbackSource| {
        stats
            .and_then(|m| m.calibrated(s, learning.calibrate_judge))
            .filter(|x| x.samples > 0)
    };
    // Without any org data on the baseline, the candidate's evidence is measured against the
    // baseline's prior; otherwise only within the sources both have.
    let baseline_known = SOURCES
        .iter()
        .any(|s| source(baseline.0, *s).is_some() && blend.of(*s) > 0.0);
    let mut eff = [0.0f64; 5];
    let mut pairs = [None; 5];
    let mut present = 0.0;
    for (i, s) in SOURCES.iter().enumerate() {
        let w = blend.of(*s);
        if *s == FeedbackSource::Benchmark {
            eff[i] = w;
            present += w;
        } else if w > 0.0
            && let Some(c) = source(candidate.0, *s)
            && (!baseline_known || source(baseline.0, *s).is_some())
        {
            eff[i] = w;
            pairs[i] = Some((c, source(baseline.0, *s)));
            present += w;
        }
    }
    if present <= 0.0 {
        eff = [0.0; 5];
        eff[0] = 1.0;
        present = 1.0;
    }
    let mut residual = 0.0;
    for i in 1..5 {
        match pairs[i] {
            Some((c, b)) => {
                let nc = c.samples as f64;
                let n = b.map_or(nc, |b| nc * b.samples as f64 / (nc + b.samples as f64));
                let normalised = eff[i] / present;
                eff[i] = normalised * n / (n + learning.half_weight_samples.max(0.0));
                residual += normalised - eff[i];
            }
            None => eff[i] = 0.0,
        }
    }
    eff[0] = eff[0] / present + residual;
    let total: f64 = eff.iter().sum();
    let floor = learning.min_sample_variance;
    let mut parts = [(0.0, None); 5];
    let mut difference = 0.0;
    let mut variance = 0.0;
    for i in 0..5 {
        let share = if total > 0.0 { eff[i] / total } else { 0.0 };
        let (d, v) = if i == 0 {
            (Some(pc - pb), sdc * sdc + sdb * sdb)
        } else {
            match pairs[i] {
                Some((c, b)) => {
                    // Without any org data on the baseline, its blended quality (its prior)
                    // stands in (what the comparison would have been without pairing).
                    let (bm, bv) = b.map_or(
                        (baseline_score.feedback, baseline_score.feedback_variance),
                        |b| {
                            (
                                b.mean.clamp(0.0, 1.0),
                                b.variance.max(floor) / b.samples as f64,
                            )
                        },
                    );
                    (
                        Some(c.mean.clamp(0.0, 1.0) - bm),
                        c.variance.max(floor) / c.samples as f64 + bv,
                    )
                }
                None => (None, 0.0),
            }
        };
        parts[i] = (share, d);
        if let Some(d) = d {
            difference += share * d;
            variance += share * share * v;
        }
    }
    Relative {
        difference,
        variance,
        parts,
    }
}

/// Re-expresses a candidate's score on the baseline's scale: its quality becomes the
/// baseline's plus the paired difference ([`relative`]), with the variance of that
/// difference, and the score follows. Its signals keep their values (the candidate's own
/// means) and take the paired shares; each contributes its share of the difference from the
/// baseline, and the benchmark row also carries the baseline's quality (the anchor), so the
/// contributions still add up to the feedback term.
pub(crate) fn anchor(
    score: &mut ModelScore,
    baseline: &ModelScore,
    rel: &Relative,
    weights: ScoreWeights,
) {
    let wsum = weights.success + weights.feedback + weights.cost;
    let unit = if wsum > 0.0 {
        weights.feedback / wsum
    } else {
        0.0
    };
    score.feedback = baseline.feedback + rel.difference;
    score.feedback_variance = rel.variance;
    if wsum > 0.0 {
        score.score = (weights.success * score.success
            + weights.feedback * score.feedback
            + weights.cost * score.cost)
            / wsum;
    }
    for (i, signal) in score.signals.iter_mut().enumerate() {
        let (share, d) = rel.parts[i];
        signal.weight = share;
        signal.contribution = d.map_or(0.0, |d| share * d * unit);
        if i == 0 {
            signal.contribution += baseline.feedback * unit;
        }
    }
}

/// Returns the probability that a candidate's quality is no worse than the baseline's minus
/// `max_regression`, from their paired difference: `Φ((Δ + max_regression)/√var Δ)`.
pub(crate) fn relative_confidence(rel: &Relative, max_regression: f64) -> f64 {
    let gap = rel.difference + max_regression;
    let sd = rel.variance.sqrt();
    if sd < 1e-12 {
        return if gap >= 0.0 { 1.0 } else { 0.0 };
    }
    normal_cdf(gap / sd)
}

/// Returns the probability that `candidate`'s quality is no worse than `baseline`'s minus
/// `max_regression`, each from its own blend (the comparison before pairing; see
/// [`relative_confidence`]).
#[cfg(test)]
pub(crate) fn confidence(
    candidate: &ModelScore,
    baseline: &ModelScore,
    max_regression: f64,
) -> f64 {
    let gap = candidate.feedback - baseline.feedback + max_regression;
    let sd = (candidate.feedback_variance + baseline.feedback_variance).sqrt();
    if sd < 1e-12 {
        return if gap >= 0.0 { 1.0 } else { 0.0 };
    }
    normal_cdf(gap / sd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SourceStat;

    fn prior(score: f64) -> Prior {
        Prior {
            model: "m".into(),
            category: "general".into(),
            score,
            source: "test".into(),
            as_of: "2026-11-24".into(),
        }
    }

    fn inputs<'a>(
        stats: Option<&'a ModelStats>,
        prior: Option<&'a Prior>,
        phase: u8,
        learning: &'a Learning,
    ) -> ScoreInputs<'a> {
        ScoreInputs {
            stats,
            prior,
            phase,
            learning,
            weights: ScoreWeights::default(),
            estimated_cost_usd: Some(1.0),
            baseline_cost_usd: Some(1.0),
        }
    }

    #[test]
    fn phase_zero_is_the_prior() {
        let learning = Learning::default();
        let p = prior(0.8);
        let s = score_model(&inputs(None, Some(&p), 0, &learning));
        assert!((s.feedback - 0.8).abs() < 1e-12);
        assert!((s.feedback_variance - 0.04f64.powi(2)).abs() < 1e-12);
        // 0.4·0.95 + 0.4·0.8 + 0.2·0.5
        assert!((s.score - (0.38 + 0.32 + 0.1)).abs() < 1e-12, "{}", s.score);
        let shares: f64 = s.signals.iter().map(|x| x.weight).sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }

    #[test]
    fn org_sources_earn_weight_with_samples() {
        let learning = Learning::default();
        let p = prior(0.8);
        let few = ModelStats {
            judge: SourceStat {
                samples: 2,
                mean: 0.2,
                variance: 0.01,
            },
            ..ModelStats::default()
        };
        let many = ModelStats {
            judge: SourceStat {
                samples: 2000,
                mean: 0.2,
                variance: 0.01,
            },
            ..ModelStats::default()
        };
        let a = score_model(&inputs(Some(&few), Some(&p), 1, &learning));
        let b = score_model(&inputs(Some(&many), Some(&p), 1, &learning));
        assert!(a.feedback > b.feedback, "{} vs {}", a.feedback, b.feedback);
        assert!(b.feedback < 0.5);
        // Phase 0 ignores org samples entirely.
        let c = score_model(&inputs(Some(&many), Some(&p), 0, &learning));
        assert!((c.feedback - 0.8).abs() < 1e-12);
        let contributions: f64 = b.signals.iter().map(|s| s.contribution).sum();
        assert!((contributions - 0.4 * b.feedback).abs() < 1e-12);
    }

    #[test]
    fn cost_component_is_relative_to_the_baseline() {
        assert_eq!(cost_component(Some(1.0), Some(1.0)), 0.5);
        assert_eq!(cost_component(Some(0.0), Some(1.0)), 1.0);
        assert_eq!(cost_component(Some(2.0), Some(1.0)), 0.25);
        assert_eq!(cost_component(None, Some(1.0)), 0.5);
        assert_eq!(cost_component(Some(0.0), Some(0.0)), 0.5);
    }

    fn judge(samples: u64, mean: f64) -> SourceStat {
        SourceStat {
            samples,
            mean,
            variance: 0.1,
        }
    }

    #[test]
    fn a_candidate_is_compared_with_the_baseline_within_each_source() {
        let learning = Learning::default();
        let p = prior(0.3);
        // A low-scoring category: the judge says 0.3 for both models, but the baseline's
        // session NPS (the whole session's mean) says 0.7.
        let base_stats = ModelStats {
            judge: judge(200, 0.3),
            nps: judge(200, 0.7),
            ..ModelStats::default()
        };
        let cand_stats = ModelStats {
            judge: judge(200, 0.3),
            ..ModelStats::default()
        };
        let base = score_model(&inputs(Some(&base_stats), Some(&p), 2, &learning));
        let mut cand = score_model(&inputs(Some(&cand_stats), Some(&p), 2, &learning));
        // Each on its own blend, the candidate looks far worse: a scale artefact.
        assert!(base.feedback - cand.feedback > 0.15, "{base:?} {cand:?}");
        assert!(confidence(&cand, &base, 0.02) < 0.01);
        let rel = relative(
            (Some(&cand_stats), Some(&p)),
            (Some(&base_stats), Some(&p)),
            &base,
            2,
            &learning,
        );
        assert!(rel.difference.abs() < 1e-12, "{rel:?}");
        assert!(relative_confidence(&rel, 0.02) > 0.7);
        // The anchored score: the baseline's quality, and contributions that add up.
        let weights = ScoreWeights::default();
        anchor(&mut cand, &base, &rel, weights);
        assert!((cand.feedback - base.feedback).abs() < 1e-12);
        let contributions: f64 = cand.signals.iter().map(|s| s.contribution).sum();
        assert!((contributions - 0.4 * cand.feedback).abs() < 1e-12);
        let shares: f64 = cand.signals.iter().map(|s| s.weight).sum();
        assert!((shares - 1.0).abs() < 1e-12);
        // A real gap within the shared source still shows, whatever the NPS says.
        let worse = ModelStats {
            judge: judge(200, 0.15),
            ..ModelStats::default()
        };
        let rel = relative(
            (Some(&worse), Some(&p)),
            (Some(&base_stats), Some(&p)),
            &base,
            2,
            &learning,
        );
        assert!(rel.difference < -0.05, "{rel:?}");
        assert!(relative_confidence(&rel, 0.02) < 0.1);
        // A source only the candidate has (it served, so it has NPS; the baseline has only
        // judge scores) is not set against another source's scale.
        let judged_only = ModelStats {
            judge: judge(200, 0.3),
            ..ModelStats::default()
        };
        let served = ModelStats {
            judge: judge(200, 0.3),
            nps: judge(200, 0.7),
            ..ModelStats::default()
        };
        let judged_base = score_model(&inputs(Some(&judged_only), Some(&p), 2, &learning));
        let rel = relative(
            (Some(&served), Some(&p)),
            (Some(&judged_only), Some(&p)),
            &judged_base,
            2,
            &learning,
        );
        assert!(rel.difference.abs() < 1e-12, "{rel:?}");
        assert_eq!(rel.parts[3], (0.0, None));
    }

    #[test]
    fn without_baseline_data_a_candidate_is_compared_with_the_baselines_blend() {
        let learning = Learning::default();
        let (pb, pc) = (prior(0.8), prior(0.8));
        let base = score_model(&inputs(None, Some(&pb), 1, &learning));
        let good = ModelStats {
            judge: judge(500, 0.85),
            ..ModelStats::default()
        };
        let rel = relative(
            (Some(&good), Some(&pc)),
            (None, Some(&pb)),
            &base,
            1,
            &learning,
        );
        assert!(rel.difference > 0.02, "{rel:?}");
        // Priors only: the difference of the priors, each with its spread.
        let rel = relative((None, Some(&pc)), (None, Some(&pb)), &base, 1, &learning);
        assert!(rel.difference.abs() < 1e-12);
        assert!((rel.variance - 2.0 * 0.04f64.powi(2)).abs() < 1e-12);
    }

    #[test]
    fn confidence_grows_with_evidence() {
        let learning = Learning::default();
        let p = prior(0.8);
        let base = score_model(&inputs(None, Some(&p), 0, &learning));
        let stats = |n| ModelStats {
            judge: SourceStat {
                samples: n,
                mean: 0.8,
                variance: 0.02,
            },
            ..ModelStats::default()
        };
        let (s10, s1000) = (stats(10), stats(1000));
        let c10 = score_model(&inputs(Some(&s10), Some(&p), 1, &learning));
        let c1000 = score_model(&inputs(Some(&s1000), Some(&p), 1, &learning));
        assert!(confidence(&c1000, &base, 0.05) > confidence(&c10, &base, 0.05));
        assert!(confidence(&c1000, &base, 0.05) > 0.85);
    }
}
