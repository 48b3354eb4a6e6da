//! The projector's settings: window shape, publishing throttle, and each route's starting
//! point (what the configuration file says before any admin event).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchyard_config::{LearningPoolConfig, RouteConfig, RoutingConfig};
use switchyard_events::{Constraints, ModelName, Percent, RouteMode};

/// The margin a regression is measured against when a route's constraints set no
/// `max_regression`: the default constraints' 5% (`crates/config/default.toml`).
pub const DEFAULT_MAX_REGRESSION: f64 = 0.05;

/// A route as the configuration file declares it; the route's events (`RouteConfigured`,
/// `ConstraintsChanged`, pins) for an org are laid over it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDefaults {
    /// The model served when in doubt.
    pub baseline: ModelName,
    /// Models the router may choose instead.
    pub candidates: Vec<ModelName>,
    /// Rollout mode.
    pub mode: RouteMode,
    /// Canary share, in canary mode.
    pub canary_percent: Option<Percent>,
    /// The route's constraints (its own table, else `[routing.default_constraints]`).
    pub constraints: Constraints,
}

/// The shared learning pool, as the projector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Orgs that share (`[orgs.<org>] learning_pool = "share"`); empty: no pool.
    pub members: BTreeSet<String>,
    /// Orgs a (category, model) needs observations from before it is in the pool (default 2).
    pub min_orgs: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            members: BTreeSet::new(),
            min_orgs: 2,
        }
    }
}

/// What the projector needs to know besides its inputs. Every duration is event time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectorConfig {
    /// Length of the rolling window (default 24 h).
    pub window: Duration,
    /// Width of a time bucket (default 1 h): the window expires one bucket at a time, and a
    /// bucket leaves the window once it ends `window` before the newest event time.
    pub bucket: Duration,
    /// Least event time between two snapshots of one org (default 500 ms); pins, unpins,
    /// constraint and route changes and rollbacks publish at once.
    pub publish_interval: Duration,
    /// How long a request's join state outlives its window (default 24 h): feedback that
    /// arrives more than `window + join_grace` after the request's last fact is not joined.
    pub join_grace: Duration,
    /// Routes of the configuration file, by name (every org starts from these).
    pub routes: BTreeMap<String, RouteDefaults>,
    /// Constraints of routes created at run time without a constraints chain of their own.
    pub default_constraints: Constraints,
    /// Regression margin of routes whose constraints set no `max_regression`.
    pub default_max_regression: f64,
    /// Quality observations a time bucket needs, per source, before it can count regressions
    /// (default 3).
    pub min_bucket_samples: u64,
    /// How long an automatic rollback pins its route (default: one window). When the pin
    /// lapses the route routes again, the offending model still excluded by its route's
    /// `rollback_threshold` constraint while its regressions remain in the window, and the
    /// rollback re-arms for new regressions. `None` pins until someone unpins.
    pub rollback_pin: Option<Duration>,
    /// Quality observations the baseline needs, per source, before its window mean is a
    /// reference for regressions (default 5).
    pub min_baseline_samples: u64,
    /// Standard errors by which a time bucket's mean quality must fall below the baseline's
    /// mean minus `max_regression` before its low observations count as regressions (default
    /// 2.33, a 1% one-sided test; see [`crate::stats::RegressionRule`]).
    pub regression_z: f64,
    /// Judge plus admin samples that put a route in phase 1 (`routing.learning`, default 20).
    pub phase1_min_samples: u64,
    /// NPS samples that put a route in phase 2 (default 10).
    pub phase2_min_samples: u64,
    /// The shared learning pool (default: no member).
    pub pool: PoolSettings,
    /// The category of each route of the configuration file (a route's `RouteConfigured`
    /// category wins; a route with neither is `general`).
    pub route_categories: BTreeMap<String, String>,
    /// Whether the regression test compares judge scores calibrated against session NPS
    /// (`routing.learning.calibrate_judge`, default true; see
    /// `switchyard_router::calibration`): a judge's self-preference otherwise reads as a
    /// regression of every other provider's model against a baseline of the judge's family.
    pub calibrate_judge: bool,
}

impl Default for ProjectorConfig {
    /// Returns the defaults of `crates/config/default.toml`, with no configured route.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(24 * 3600),
            bucket: Duration::from_secs(3600),
            publish_interval: Duration::from_millis(500),
            join_grace: Duration::from_secs(24 * 3600),
            routes: BTreeMap::new(),
            default_constraints: Constraints {
                max_regression: Some(DEFAULT_MAX_REGRESSION),
                min_confidence: Some(0.8),
                rollback_threshold: Some(3),
                ..Constraints::default()
            },
            default_max_regression: DEFAULT_MAX_REGRESSION,
            rollback_pin: Some(Duration::from_secs(24 * 3600)),
            min_bucket_samples: 3,
            min_baseline_samples: 5,
            regression_z: 2.33,
            phase1_min_samples: 20,
            phase2_min_samples: 10,
            pool: PoolSettings::default(),
            route_categories: BTreeMap::new(),
            calibrate_judge: true,
        }
    }
}

/// A setting the projector cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid projector setting `{key}`: {problem}")]
pub struct ConfigError {
    /// The setting.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ProjectorConfig {
    /// Returns the settings for the validated configuration's `[routing]` and `[routes.*]`
    /// (window shape and throttle at their defaults).
    pub fn from_config(routing: &RoutingConfig, routes: &[RouteConfig]) -> Self {
        let defaults = routes
            .iter()
            .map(|route| {
                let mode = RouteMode::from(route.mode);
                let defaults = RouteDefaults {
                    baseline: ModelName::new(route.baseline.clone()),
                    candidates: route
                        .candidates
                        .iter()
                        .map(|c| ModelName::new(c.clone()))
                        .collect(),
                    mode,
                    canary_percent: (mode == RouteMode::Canary)
                        .then(|| Percent::new(route.canary_percent).ok())
                        .flatten(),
                    constraints: Constraints::from(&route.constraints),
                };
                (route.name.clone(), defaults)
            })
            .collect();
        Self {
            routes: defaults,
            route_categories: routes
                .iter()
                .map(|route| (route.name.clone(), route.category.clone()))
                .collect(),
            default_constraints: Constraints::from(&routing.default_constraints),
            phase1_min_samples: routing.learning.phase1_min_samples,
            phase2_min_samples: routing.learning.phase2_min_samples,
            calibrate_judge: routing.learning.calibrate_judge,
            ..Self::default()
        }
    }

    /// Returns the settings with the shared learning pool of `[orgs.*]` and `[learning_pool]`.
    pub fn with_pool(mut self, pool: &LearningPoolConfig) -> Self {
        self.pool = PoolSettings {
            members: pool.members.clone(),
            min_orgs: pool.min_orgs,
        };
        self
    }

    /// Checks the window shape: a bucket of at least a millisecond, a window of at least one
    /// bucket, a margin within `0..=1`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| Err(ConfigError { key, problem });
        if self.bucket < Duration::from_millis(1) {
            return invalid(
                "bucket",
                format!("must be at least 1 ms, got {:?}", self.bucket),
            );
        }
        if self.window < self.bucket {
            return invalid(
                "window",
                format!(
                    "must be at least one bucket ({:?}), got {:?}",
                    self.bucket, self.window
                ),
            );
        }
        for (key, value) in [
            ("window", self.window),
            ("join_grace", self.join_grace),
            ("publish_interval", self.publish_interval),
        ] {
            if i64::try_from(value.as_micros()).is_err() {
                return invalid(key, format!("{value:?} is out of range"));
            }
        }
        if !(self.default_max_regression.is_finite()
            && (0.0..=1.0).contains(&self.default_max_regression))
        {
            return invalid(
                "default_max_regression",
                format!("must be within 0..=1, got {}", self.default_max_regression),
            );
        }
        if !(self.regression_z.is_finite() && self.regression_z >= 0.0) {
            return invalid(
                "regression_z",
                format!("must be a non-negative number, got {}", self.regression_z),
            );
        }
        Ok(())
    }

    /// Returns the window length in microseconds.
    pub(crate) fn window_micros(&self) -> i64 {
        micros(self.window)
    }

    /// Returns the bucket width in microseconds (at least 1).
    pub(crate) fn bucket_micros(&self) -> i64 {
        micros(self.bucket).max(1)
    }

    /// Returns the publish interval in microseconds.
    pub(crate) fn publish_micros(&self) -> i64 {
        micros(self.publish_interval)
    }

    /// Returns how long after its last fact a request's join state is dropped.
    pub(crate) fn join_retention_micros(&self) -> i64 {
        micros(self.window)
            .saturating_add(self.bucket_micros())
            .saturating_add(micros(self.join_grace))
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_converts() {
        let config = switchyard_config::Config::defaults_in("/nonexistent/switchyard-projector")
            .expect("the compiled-in configuration validates");
        let projector = ProjectorConfig::from_config(&config.routing, &config.routes);
        assert!(projector.validate().is_ok());
        let default = projector.routes.get("default");
        assert!(default.is_some_and(|r| r.baseline.as_str() == "demo/large"));
        assert_eq!(projector.default_constraints.rollback_threshold, Some(3));
    }

    #[test]
    fn a_window_shorter_than_a_bucket_is_refused() {
        let config = ProjectorConfig {
            window: Duration::from_secs(60),
            bucket: Duration::from_secs(3600),
            ..ProjectorConfig::default()
        };
        assert_eq!(config.validate().map_err(|e| e.key), Err("window"));
        assert!(ProjectorConfig::default().validate().is_ok());
    }
}
