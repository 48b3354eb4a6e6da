//! A route's policy: what it may serve, how it rolls out, its constraints and its scoring.

use switchyard_events::{Constraints, FeedbackSource, RouteMode};

/// The weights of a candidate's score. Published defaults: 40% success, 40% feedback, 20% cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Weight of the success rate (completions without error, truncation or refusal).
    pub success: f64,
    /// Weight of the blended feedback (quality).
    pub feedback: f64,
    /// Weight of the cost relative to the baseline.
    pub cost: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            success: 0.4,
            feedback: 0.4,
            cost: 0.2,
        }
    }
}

/// How much each feedback source counts in one learning phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceWeights {
    /// Public benchmark priors.
    pub benchmark: f64,
    /// LLM-as-judge scores.
    pub judge: f64,
    /// Admin ratings.
    pub admin: f64,
    /// Session NPS, propagated to every decision of the session.
    pub nps: f64,
    /// End-user ratings (thumbs, stars) on one request.
    pub user: f64,
}

impl SourceWeights {
    /// Returns the weight of one source.
    pub fn of(&self, source: FeedbackSource) -> f64 {
        match source {
            FeedbackSource::Benchmark => self.benchmark,
            FeedbackSource::Judge => self.judge,
            FeedbackSource::Admin => self.admin,
            FeedbackSource::Nps => self.nps,
            FeedbackSource::User => self.user,
        }
    }

    fn total(&self) -> f64 {
        self.benchmark + self.judge + self.admin + self.nps + self.user
    }
}

/// The sources, in the fixed order traces list them.
pub(crate) const SOURCES: [FeedbackSource; 5] = [
    FeedbackSource::Benchmark,
    FeedbackSource::Judge,
    FeedbackSource::Admin,
    FeedbackSource::Nps,
    FeedbackSource::User,
];

/// How the feedback blend learns: phase thresholds, per-phase weights and the priors' strength.
#[derive(Debug, Clone, PartialEq)]
pub struct Learning {
    /// Judge plus admin samples on the route that move it from phase 0 to phase 1.
    pub phase1_min_samples: u64,
    /// Session-NPS samples on the route that move it to phase 2.
    pub phase2_min_samples: u64,
    /// Source weights of phases 0, 1 and 2.
    pub blends: [SourceWeights; 3],
    /// Samples at which an org source earns half of its phase weight; the rest stays with the
    /// benchmark prior (so a model with three judge scores is not judged on those alone).
    pub half_weight_samples: f64,
    /// Standard deviation of a benchmark prior as an estimate of org quality.
    pub prior_sd: f64,
    /// Quality assumed for a model without a benchmark prior, and its standard deviation.
    pub unknown_prior: (f64, f64),
    /// Floor on a source's per-sample variance (a few identical scores are not certainty).
    pub min_sample_variance: f64,
    /// Beta prior of the success rate: mean and strength in pseudo-requests.
    pub success_prior: (f64, f64),
    /// Output tokens assumed for the cost estimate when the request sets no maximum.
    pub default_output_tokens: u64,
    /// Whether judge scores are calibrated against session NPS before models are compared
    /// (each model's judge mean minus its provider's offset, [`crate::calibration`]): an LLM
    /// judge that prefers its own family's answers otherwise hides cheaper models of other
    /// providers behind its bias.
    pub calibrate_judge: bool,
}

impl Default for Learning {
    fn default() -> Self {
        Learning {
            phase1_min_samples: 20,
            phase2_min_samples: 10,
            blends: [
                SourceWeights {
                    benchmark: 1.0,
                    judge: 0.0,
                    admin: 0.0,
                    nps: 0.0,
                    user: 0.0,
                },
                SourceWeights {
                    benchmark: 0.3,
                    judge: 0.4,
                    admin: 0.2,
                    nps: 0.0,
                    user: 0.1,
                },
                SourceWeights {
                    benchmark: 0.15,
                    judge: 0.2,
                    admin: 0.1,
                    nps: 0.45,
                    user: 0.1,
                },
            ],
            half_weight_samples: 10.0,
            prior_sd: 0.04,
            unknown_prior: (0.5, 0.25),
            min_sample_variance: 0.01,
            success_prior: (0.95, 20.0),
            default_output_tokens: 256,
            calibrate_judge: true,
        }
    }
}

impl Learning {
    /// Returns the output tokens a request is costed at: what it asks for, else
    /// `default_output_tokens`.
    pub fn output_tokens(&self, needs: &switchyard_providers::Needs) -> u64 {
        if needs.max_output_tokens > 0 {
            needs.max_output_tokens
        } else {
            self.default_output_tokens
        }
    }

    /// Returns a request's estimated cost on a model, `None` when its price is unknown.
    pub fn estimated_cost(
        &self,
        model: &switchyard_providers::ModelInfo,
        needs: &switchyard_providers::Needs,
    ) -> Option<f64> {
        crate::score::estimate_cost(Some(model), needs.input_tokens, self.output_tokens(needs))
    }
}

/// The error for a policy that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("route `{route}`: {message}")]
pub struct PolicyError {
    /// The route.
    pub route: String,
    /// What is wrong.
    pub message: String,
}

/// Everything the router needs to know about one route.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePolicy {
    /// The route's name.
    pub name: String,
    /// The default model (`provider/model`): what serves when the router does not move.
    pub baseline: String,
    /// The models the router may pick instead.
    pub candidates: Vec<String>,
    /// How the router's choice is applied.
    pub mode: RouteMode,
    /// In canary mode, the share of sessions (0..=100 percent) served by the router's choice.
    pub canary_percent: u8,
    /// In shadow mode, the share of requests (0..=1) also sent to the router's choice.
    pub mirror_fraction: f64,
    /// The share of requests (0..=1) also sent, as a mirror the user never sees, to a model the
    /// router lacks evidence on (exploration; any mode; within the mirror spend cap).
    pub explore_fraction: f64,
    /// A model stops being explored once it has this many org feedback samples in the window.
    pub explore_until_samples: u64,
    /// The route's category, which picks the benchmark priors (`general`, `code`, ...).
    pub category: String,
    /// The nine hard constraints.
    pub constraints: Constraints,
    /// Head of the route's constraints hash chain ("" for the configured defaults).
    pub constraints_hash: String,
    /// Sequence of the route configuration in force (0 for the configuration file).
    pub version: i64,
    /// Score weights.
    pub weights: ScoreWeights,
    /// How the feedback blend learns.
    pub learning: Learning,
}

impl RoutePolicy {
    /// Returns a policy with the published defaults for everything but the models.
    pub fn new(
        name: impl Into<String>,
        baseline: impl Into<String>,
        candidates: Vec<String>,
    ) -> Self {
        RoutePolicy {
            name: name.into(),
            baseline: baseline.into(),
            candidates,
            mode: RouteMode::Live,
            canary_percent: 0,
            mirror_fraction: 0.0,
            explore_fraction: 0.0,
            explore_until_samples: 30,
            category: "general".into(),
            constraints: Constraints::default(),
            constraints_hash: String::new(),
            version: 0,
            weights: ScoreWeights::default(),
            learning: Learning::default(),
        }
    }

    /// Checks that the numbers make sense; the router relies on it.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |message: String| {
            Err(PolicyError {
                route: self.name.clone(),
                message,
            })
        };
        let w = self.weights;
        if ![w.success, w.feedback, w.cost]
            .iter()
            .all(|x| x.is_finite() && *x >= 0.0)
            || w.success + w.feedback + w.cost <= 0.0
        {
            return err("score weights must be finite, non-negative and not all zero".into());
        }
        if self.canary_percent > 100 {
            return err(format!(
                "canary_percent {} is outside 0..=100",
                self.canary_percent
            ));
        }
        if !(0.0..=1.0).contains(&self.explore_fraction) {
            return err(format!(
                "explore_fraction {} is outside 0..=1",
                self.explore_fraction
            ));
        }
        if !(0.0..=1.0).contains(&self.mirror_fraction) {
            return err(format!(
                "mirror_fraction {} is outside 0..=1",
                self.mirror_fraction
            ));
        }
        for (i, blend) in self.learning.blends.iter().enumerate() {
            let all = [
                blend.benchmark,
                blend.judge,
                blend.admin,
                blend.nps,
                blend.user,
            ];
            if !all.iter().all(|x| x.is_finite() && *x >= 0.0) || blend.total() <= 0.0 {
                return err(format!(
                    "phase {i} source weights must be finite, non-negative and not all zero"
                ));
            }
        }
        let c = &self.constraints;
        let fractions = [
            ("max_regression", c.max_regression),
            ("min_quality", c.min_quality),
            ("max_error_rate", c.max_error_rate),
            ("min_confidence", c.min_confidence),
        ];
        for (name, value) in fractions {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                return err(format!("{name} {v} is outside 0..=1"));
            }
        }
        if let Some(v) = c.max_cost_increase
            && !(v.is_finite() && v >= -1.0)
        {
            return err(format!(
                "max_cost_increase {v} must be a number ≥ -1 (-0.5 requires a 50% saving)"
            ));
        }
        if let Some(v) = c.max_cost_per_request
            && !(v.is_finite() && v >= 0.0)
        {
            return err(format!(
                "max_cost_per_request {v} must be a non-negative number"
            ));
        }
        for (name, value) in [
            ("max_p95_latency_ms", c.max_p95_latency_ms),
            ("min_samples", c.min_samples),
            ("rollback_threshold", c.rollback_threshold),
        ] {
            if let Some(v) = value
                && v < 0
            {
                return err(format!("{name} {v} must not be negative"));
            }
        }
        if self.candidates.iter().any(|c| c == &self.baseline) {
            return err("the baseline is also listed as a candidate".into());
        }
        Ok(())
    }
}
