//! Routes (`[routes.<name>]`) and the settings every route shares (`[routing]`), validated.
//!
//! These are the configured starting point of each route's policy; ingress turns them into a
//! `switchyard_router::RoutePolicy` and lays the route's event-sourced overrides (admin API:
//! `RouteConfigured`, `ConstraintsChanged`, pins) on top. The constraints and the rollout mode
//! convert to the events' types here (`From`), in one place for ingress and the projector; the
//! crate does not depend on the router.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::raw::{RawConstraints, RawLearning, RawRoute, RawRouting, RawScoreWeights, RouteMode};

/// The category a route gets when it names none.
pub const DEFAULT_CATEGORY: &str = "general";

/// Languages decision explanations are written in (`routing.default_language`). Kept in step
/// with `switchyard_router::Lang::ALL` by a test in `switchyard-ingress`.
pub const SUPPORTED_LANGUAGES: [&str; 6] = ["en", "es", "pt", "fr", "de", "ja"];

/// One route: a kind of traffic with its baseline, candidates, rollout and constraints.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The route's name.
    pub name: String,
    /// The default model (`provider/model`).
    pub baseline: String,
    /// Cheaper models the router may pick (never the baseline, no duplicates).
    pub candidates: Vec<String>,
    /// Rollout mode.
    pub mode: RouteMode,
    /// In canary mode, the share of sessions (0..=100) served by the router's choice.
    pub canary_percent: u8,
    /// In shadow mode, the share of requests (0..=1) also sent to the router's choice.
    pub mirror_fraction: f64,
    /// Most spent on mirrored requests per UTC day, in USD; `None` = no cap.
    pub mirror_daily_cap_usd: Option<f64>,
    /// Share of requests (0..=1) mirrored to a model the router lacks evidence on.
    pub explore_fraction: f64,
    /// Org samples after which a model is no longer explored.
    pub explore_until_samples: u64,
    /// Category that picks the benchmark priors (`general`, `code`, ...).
    pub category: String,
    /// The constraints in force: the route's own table, else `[routing.default_constraints]`.
    pub constraints: ConstraintsConfig,
    /// Whether [`constraints`](RouteConfig::constraints) is the route's own table (`true`) or
    /// the defaults (`false`).
    pub own_constraints: bool,
    /// Whether ingress records this route's prompt and completion text (for the judge), and
    /// how much; `None` = never. Resolved from `[judge]` ([`crate::JudgeConfig::text_capture`]).
    pub text_capture: Option<crate::TextCapture>,
}

/// The nine route constraints; `None` = not enforced. Mirrors `switchyard_events::Constraints`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConstraintsConfig {
    /// Largest quality drop versus the baseline, as a fraction (0..=1).
    pub max_regression: Option<f64>,
    /// Minimum quality score (0..=1).
    pub min_quality: Option<f64>,
    /// Maximum error rate (0..=1).
    pub max_error_rate: Option<f64>,
    /// Largest cost increase versus the baseline, as a fraction (>= -1; -0.5 demands a 50%
    /// saving).
    pub max_cost_increase: Option<f64>,
    /// Most USD per request (>= 0).
    pub max_cost_per_request: Option<f64>,
    /// p95 latency limit in milliseconds (>= 1).
    pub max_p95_latency_ms: Option<i64>,
    /// Minimum confidence (0..=1).
    pub min_confidence: Option<f64>,
    /// Samples needed before routing away from the baseline (>= 0).
    pub min_samples: Option<i64>,
    /// Regressions that trigger an automatic rollback (>= 1).
    pub rollback_threshold: Option<i64>,
}

/// The nine keys, one to one: what the router and the constraints events carry.
impl From<&ConstraintsConfig> for switchyard_events::Constraints {
    fn from(c: &ConstraintsConfig) -> Self {
        Self {
            max_regression: c.max_regression,
            min_quality: c.min_quality,
            max_error_rate: c.max_error_rate,
            max_cost_increase: c.max_cost_increase,
            max_cost_per_request: c.max_cost_per_request,
            max_p95_latency_ms: c.max_p95_latency_ms,
            min_confidence: c.min_confidence,
            min_samples: c.min_samples,
            rollback_threshold: c.rollback_threshold,
        }
    }
}

/// The nine keys, one to one (so constraints from the admin API get the file's checks).
impl From<&switchyard_events::Constraints> for ConstraintsConfig {
    fn from(c: &switchyard_events::Constraints) -> Self {
        Self {
            max_regression: c.max_regression,
            min_quality: c.min_quality,
            max_error_rate: c.max_error_rate,
            max_cost_increase: c.max_cost_increase,
            max_cost_per_request: c.max_cost_per_request,
            max_p95_latency_ms: c.max_p95_latency_ms,
            min_confidence: c.min_confidence,
            min_samples: c.min_samples,
            rollback_threshold: c.rollback_threshold,
        }
    }
}

/// `[routing]`: settings every route shares.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RoutingConfig {
    /// Weights of a candidate's score.
    pub score_weights: ScoreWeightsConfig,
    /// Constraints of routes that set none of their own (already applied to
    /// [`RouteConfig::constraints`]; kept here for routes created through the admin API).
    pub default_constraints: ConstraintsConfig,
    /// How the feedback blend learns. Mirrors the configurable fields of
    /// `switchyard_router::Learning`.
    pub learning: LearningConfig,
    /// The key that signs decision traces.
    pub signing_key: SigningKeyFile,
    /// Language of explanations when a request does not ask for one (one of
    /// [`SUPPORTED_LANGUAGES`]).
    pub default_language: String,
    /// Operator benchmark priors laid over the shipped ones; `None` = the shipped ones only.
    pub priors_file: Option<PathBuf>,
    /// Routes chosen from request metadata, first match wins (after the route header and the
    /// key's default route).
    pub rules: Vec<RouteRule>,
}

/// `[[routing.rules]]`: requests whose metadata (and `user`) match go to `route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// The route.
    pub route: String,
    /// Every pair must equal the request's `metadata` entry.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The request's `user` must equal this, when set.
    pub user: Option<String>,
}

impl RouteRule {
    /// Returns whether a request's metadata and user match.
    pub fn matches(&self, metadata: &dyn Fn(&str) -> Option<String>, user: Option<&str>) -> bool {
        self.user.as_deref().is_none_or(|u| user == Some(u))
            && self
                .metadata
                .iter()
                .all(|(k, v)| metadata(k).as_deref() == Some(v.as_str()))
    }
}

/// `[routing.score_weights]`: finite, non-negative, not all zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeightsConfig {
    /// Weight of the success rate.
    pub success: f64,
    /// Weight of the blended feedback.
    pub feedback: f64,
    /// Weight of the cost relative to the baseline.
    pub cost: f64,
}

/// `[routing.learning]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningConfig {
    /// Judge plus admin samples that move a route from phase 0 to phase 1.
    pub phase1_min_samples: u64,
    /// Session-NPS samples that move a route to phase 2.
    pub phase2_min_samples: u64,
    /// Samples at which an org source earns half of its phase weight.
    pub half_weight_samples: f64,
    /// Standard deviation of a benchmark prior as an estimate of org quality.
    pub prior_sd: f64,
    /// Whether judge scores are calibrated against session NPS, per provider of the judged
    /// model, before models are compared and regressions tested.
    pub calibrate_judge: bool,
}

/// Where the decision-signing key lives (`routing.signing_key_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKeyFile {
    /// The default location, `<data_dir>/keys/decision-signing.pk8`: generated on first start
    /// when missing.
    Generated(PathBuf),
    /// An operator's key: must exist (a missing file is an error, never a new key, so replicas
    /// never sign with keys nobody distributed).
    Configured(PathBuf),
}

impl SigningKeyFile {
    /// Returns the file's path.
    pub fn path(&self) -> &Path {
        match self {
            SigningKeyFile::Generated(path) | SigningKeyFile::Configured(path) => path,
        }
    }
}

impl ConstraintsConfig {
    /// The names of the nine constraints, in their canonical order.
    pub const NAMES: [&'static str; 9] = [
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

    /// Checks every range; on failure returns the constraint's name and what is wrong with its
    /// value. The one rule set for the configuration file and the admin API.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let fractions = [
            ("max_regression", self.max_regression),
            ("min_quality", self.min_quality),
            ("max_error_rate", self.max_error_rate),
            ("min_confidence", self.min_confidence),
        ];
        for (name, value) in fractions {
            if let Some(v) = value
                && !(v.is_finite() && (0.0..=1.0).contains(&v))
            {
                return Err((name, format!("must be between 0 and 1, got {v}")));
            }
        }
        if let Some(v) = self.max_cost_increase
            && !(v.is_finite() && v >= -1.0)
        {
            return Err((
                "max_cost_increase",
                format!("must be a number >= -1 (-0.5 demands a 50% saving), got {v}"),
            ));
        }
        if let Some(v) = self.max_cost_per_request
            && !(v.is_finite() && v >= 0.0)
        {
            return Err((
                "max_cost_per_request",
                format!("must be a non-negative number of USD, got {v}"),
            ));
        }
        for (name, value, min) in [
            ("max_p95_latency_ms", self.max_p95_latency_ms, 1),
            ("min_samples", self.min_samples, 0),
            ("rollback_threshold", self.rollback_threshold, 1),
        ] {
            if let Some(v) = value
                && v < min
            {
                return Err((name, format!("must be at least {min}, got {v}")));
            }
        }
        Ok(())
    }
}

impl RawConstraints {
    /// Checks the ranges; `prefix` is the dotted key of the table, for messages.
    pub(crate) fn validate(&self, prefix: &str) -> Result<ConstraintsConfig, ConfigError> {
        let constraints = ConstraintsConfig {
            max_regression: self.max_regression,
            min_quality: self.min_quality,
            max_error_rate: self.max_error_rate,
            max_cost_increase: self.max_cost_increase,
            max_cost_per_request: self.max_cost_per_request,
            max_p95_latency_ms: self.max_p95_latency_ms,
            min_confidence: self.min_confidence,
            min_samples: self.min_samples,
            rollback_threshold: self.rollback_threshold,
        };
        constraints.check().map_err(|(name, problem)| {
            ConfigError::invalid(&format!("{prefix}.{name}"), problem)
        })?;
        Ok(constraints)
    }
}

impl RawScoreWeights {
    fn validate(&self) -> Result<ScoreWeightsConfig, ConfigError> {
        for (name, v) in [
            ("success", self.success),
            ("feedback", self.feedback),
            ("cost", self.cost),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::invalid(
                    &format!("routing.score_weights.{name}"),
                    format!("must be a finite, non-negative number, got {v}"),
                ));
            }
        }
        if self.success + self.feedback + self.cost <= 0.0 {
            return Err(ConfigError::invalid(
                "routing.score_weights",
                "success, feedback and cost must not all be zero",
            ));
        }
        Ok(ScoreWeightsConfig {
            success: self.success,
            feedback: self.feedback,
            cost: self.cost,
        })
    }
}

impl RawLearning {
    fn validate(&self) -> Result<LearningConfig, ConfigError> {
        let count = |name: &str, v: i64| {
            u64::try_from(v)
                .ok()
                .filter(|v| *v <= 1_000_000)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        &format!("routing.learning.{name}"),
                        format!("must be between 0 and 1000000, got {v}"),
                    )
                })
        };
        let positive = |name: &str, v: f64, max: f64| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(v)
            } else {
                Err(ConfigError::invalid(
                    &format!("routing.learning.{name}"),
                    format!("must be a number above 0 and at most {max}, got {v}"),
                ))
            }
        };
        Ok(LearningConfig {
            phase1_min_samples: count("phase1_min_samples", self.phase1_min_samples)?,
            phase2_min_samples: count("phase2_min_samples", self.phase2_min_samples)?,
            half_weight_samples: positive("half_weight_samples", self.half_weight_samples, 1e6)?,
            prior_sd: positive("prior_sd", self.prior_sd, 1.0)?,
            calibrate_judge: self.calibrate_judge,
        })
    }
}

impl RawRouting {
    pub(crate) fn validate(&self, data_dir: &Path) -> Result<RoutingConfig, ConfigError> {
        let language = self.default_language.trim().to_ascii_lowercase();
        if !SUPPORTED_LANGUAGES.contains(&language.as_str()) {
            return Err(ConfigError::invalid(
                "routing.default_language",
                format!(
                    "unsupported language {:?} (supported: {})",
                    self.default_language,
                    SUPPORTED_LANGUAGES.join(", ")
                ),
            ));
        }
        let signing_key = match self.signing_key_file.trim() {
            "" => SigningKeyFile::Generated(data_dir.join("keys").join("decision-signing.pk8")),
            path => SigningKeyFile::Configured(PathBuf::from(path)),
        };
        let priors_file = match self.priors_file.trim() {
            "" => None,
            path => Some(PathBuf::from(path)),
        };
        Ok(RoutingConfig {
            score_weights: self.score_weights.validate()?,
            default_constraints: self
                .default_constraints
                .validate("routing.default_constraints")?,
            learning: self.learning.validate()?,
            signing_key,
            default_language: language,
            priors_file,
            rules: self
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if !valid_route_name(&r.route) {
                        return Err(ConfigError::invalid(
                            &format!("routing.rules[{i}].route"),
                            "route names are 1..=128 letters, digits, `-`, `_` and `.`",
                        ));
                    }
                    if r.metadata.is_empty() && r.user.is_none() {
                        return Err(ConfigError::invalid(
                            &format!("routing.rules[{i}]"),
                            "a rule needs `metadata` pairs or a `user` to match",
                        ));
                    }
                    Ok(RouteRule {
                        route: r.route.clone(),
                        metadata: r.metadata.clone(),
                        user: r.user.clone(),
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Returns whether `name` is a valid route name: 1 to 128 letters, digits, `-`, `_` or `.`.
pub fn valid_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Returns whether `category` is a valid route category: 1..=64 lowercase letters, digits, `-`
/// or `_`.
pub fn valid_category(category: &str) -> bool {
    !category.is_empty()
        && category.len() <= 64
        && category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

/// Returns whether `model` is written `provider/model`.
pub fn valid_model_id(model: &str) -> bool {
    model
        .split_once('/')
        .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty())
}

pub(crate) fn validate_routes(
    routes: BTreeMap<String, RawRoute>,
    routing: &RoutingConfig,
) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut out = Vec::new();
    for (name, route) in routes {
        if !valid_route_name(&name) {
            return Err(ConfigError::invalid(
                &format!("routes.{name}"),
                "route names are 1 to 128 letters, digits, `-`, `_` and `.`",
            ));
        }
        let key = |k: &str| format!("routes.{name}.{k}");
        for (k, model) in std::iter::once(("baseline", &route.baseline))
            .chain(route.candidates.iter().map(|c| ("candidates", c)))
        {
            if !valid_model_id(model) {
                return Err(ConfigError::invalid(
                    &key(k),
                    format!("model {model:?} must be written provider/model, e.g. \"demo/large\""),
                ));
            }
        }
        if route.candidates.contains(&route.baseline) {
            return Err(ConfigError::invalid(
                &key("candidates"),
                format!(
                    "lists the baseline {:?}; candidates are the models the router may pick instead of it",
                    route.baseline
                ),
            ));
        }
        for (i, model) in route.candidates.iter().enumerate() {
            if route.candidates[..i].contains(model) {
                return Err(ConfigError::invalid(
                    &key("candidates"),
                    format!("lists {model:?} twice"),
                ));
            }
        }
        let canary_percent = match route.canary_percent {
            None => 0,
            Some(v) => u8::try_from(v).ok().filter(|v| *v <= 100).ok_or_else(|| {
                ConfigError::invalid(
                    &key("canary_percent"),
                    format!("must be between 0 and 100, got {v}"),
                )
            })?,
        };
        let mirror_fraction = route.mirror_fraction.unwrap_or(0.0);
        if !(mirror_fraction.is_finite() && (0.0..=1.0).contains(&mirror_fraction)) {
            return Err(ConfigError::invalid(
                &key("mirror_fraction"),
                format!("must be between 0 and 1, got {mirror_fraction}"),
            ));
        }
        let explore_fraction = route.explore_fraction.unwrap_or(0.0);
        if !(explore_fraction.is_finite() && (0.0..=1.0).contains(&explore_fraction)) {
            return Err(ConfigError::invalid(
                &key("explore_fraction"),
                format!("must be between 0 and 1, got {explore_fraction}"),
            ));
        }
        if let Some(cap) = route.mirror_daily_cap_usd
            && !(cap.is_finite() && cap >= 0.0)
        {
            return Err(ConfigError::invalid(
                &key("mirror_daily_cap_usd"),
                format!("must be a non-negative number of USD, got {cap}"),
            ));
        }
        let category = route
            .category
            .unwrap_or_else(|| DEFAULT_CATEGORY.to_owned());
        if !valid_category(&category) {
            return Err(ConfigError::invalid(
                &key("category"),
                format!(
                    "invalid category {category:?} (1 to 64 lowercase letters, digits, `-` or `_`)"
                ),
            ));
        }
        let (constraints, own_constraints) = match &route.constraints {
            Some(own) => (own.validate(&key("constraints"))?, true),
            None => (routing.default_constraints, false),
        };
        out.push(RouteConfig {
            name,
            baseline: route.baseline,
            candidates: route.candidates,
            mode: route.mode,
            canary_percent,
            mirror_fraction,
            mirror_daily_cap_usd: route.mirror_daily_cap_usd,
            explore_fraction,
            explore_until_samples: route.explore_until_samples.unwrap_or(30),
            category,
            constraints,
            own_constraints,
            text_capture: None,
        });
    }
    if !out.iter().any(|r| r.name == "default") {
        return Err(ConfigError::invalid(
            "routes.default",
            "a route named `default` is required (requests that name no route use it)",
        ));
    }
    Ok(out)
}
