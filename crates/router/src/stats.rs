//! The routing table: per (org, route, model) sufficient statistics, as the projector
//! publishes them. The router reads them; it never updates them.

use std::collections::{BTreeMap, HashMap};

use switchyard_events::{FeedbackSource, RoutingTableUpdated};

use crate::calibration::{CalibrationSettings, JudgeOffsets};

/// Count, mean and variance of one feedback source's normalised (0..=1) scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SourceStat {
    /// Samples.
    pub samples: u64,
    /// Mean score.
    pub mean: f64,
    /// Sample variance of the scores.
    pub variance: f64,
}

/// What the org's own traffic says about one model on one route (the rolling window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelStats {
    /// Completed requests.
    pub requests: u64,
    /// Requests that completed without error, truncation or refusal.
    pub successes: u64,
    /// Requests that failed (provider or gateway error, timeout).
    pub errors: u64,
    /// Feedback per source (benchmark is never here: priors are shipped).
    pub judge: SourceStat,
    /// Admin ratings.
    pub admin: SourceStat,
    /// Session NPS, propagated to the session's decisions.
    pub nps: SourceStat,
    /// End-user ratings.
    pub user: SourceStat,
    /// Mean cost per request in USD, when priced.
    pub cost_mean_usd: Option<f64>,
    /// p95 latency in milliseconds over the window.
    pub p95_latency_ms: Option<u64>,
    /// Latency samples behind the p95.
    pub latency_samples: u64,
    /// Regressions against the baseline in the window, by bucket label (`0-5%`, ...).
    pub regressions: BTreeMap<String, u64>,
    /// How far the judge scores this model's provider above session NPS, org-wide (see
    /// [`crate::calibration`]); subtracted from judge scores when the route calibrates.
    pub judge_offset: f64,
}

impl ModelStats {
    /// Returns the statistics of one org source; `None` for the benchmark (a prior).
    pub fn source(&self, source: FeedbackSource) -> Option<&SourceStat> {
        match source {
            FeedbackSource::Judge => Some(&self.judge),
            FeedbackSource::Admin => Some(&self.admin),
            FeedbackSource::Nps => Some(&self.nps),
            FeedbackSource::User => Some(&self.user),
            FeedbackSource::Benchmark => None,
        }
    }

    /// Returns a mutable org source; `None` for the benchmark.
    pub fn source_mut(&mut self, source: FeedbackSource) -> Option<&mut SourceStat> {
        match source {
            FeedbackSource::Judge => Some(&mut self.judge),
            FeedbackSource::Admin => Some(&mut self.admin),
            FeedbackSource::Nps => Some(&mut self.nps),
            FeedbackSource::User => Some(&mut self.user),
            FeedbackSource::Benchmark => None,
        }
    }

    /// Returns one org source with the judge calibrated when `calibrate` (its mean minus
    /// [`ModelStats::judge_offset`], within 0..=1); `None` for the benchmark.
    pub fn calibrated(&self, source: FeedbackSource, calibrate: bool) -> Option<SourceStat> {
        let mut stat = *self.source(source)?;
        if calibrate && source == FeedbackSource::Judge && stat.samples > 0 {
            stat.mean = (stat.mean - self.judge_offset).clamp(0.0, 1.0);
        }
        Some(stat)
    }

    /// Returns the org feedback samples behind the model's quality (every source but priors).
    pub fn org_samples(&self) -> u64 {
        self.judge.samples + self.admin.samples + self.nps.samples + self.user.samples
    }

    /// Returns the regressions in the window, all buckets together.
    pub fn regression_count(&self) -> u64 {
        self.regressions.values().sum()
    }
}

/// One route's statistics, by model id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteStats {
    /// Per model.
    pub models: BTreeMap<String, ModelStats>,
}

impl RouteStats {
    /// Returns a model's statistics.
    pub fn model(&self, id: &str) -> Option<&ModelStats> {
        self.models.get(id)
    }

    /// Returns the route's judge-plus-admin and NPS samples, which set its phase.
    pub fn phase_samples(&self) -> (u64, u64) {
        self.models.values().fold((0, 0), |(ja, nps), m| {
            (ja + m.judge.samples + m.admin.samples, nps + m.nps.samples)
        })
    }
}

/// A routing-table snapshot: the newest statistics of every (org, route).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingTable {
    /// Monotonic version (0 before the projector published anything).
    pub version: i64,
    routes: HashMap<String, HashMap<String, RouteStats>>,
    /// The version of each org's snapshot in the table (see [`RoutingTable::org_version`]).
    org_versions: HashMap<String, i64>,
}

impl RoutingTable {
    /// Returns an empty table of a version.
    pub fn new(version: i64) -> Self {
        RoutingTable {
            version,
            routes: HashMap::new(),
            org_versions: HashMap::new(),
        }
    }

    /// Sets one route's statistics.
    pub fn insert(&mut self, org: &str, route: &str, stats: RouteStats) {
        self.routes
            .entry(org.to_owned())
            .or_default()
            .insert(route.to_owned(), stats);
    }

    /// Returns one route's statistics.
    pub fn route(&self, org: &str, route: &str) -> Option<&RouteStats> {
        self.routes.get(org)?.get(route)
    }

    /// Replaces every route of one org (a projector snapshot is per org).
    pub fn replace_org(&mut self, org: &str, routes: HashMap<String, RouteStats>) {
        self.routes.insert(org.to_owned(), routes);
    }

    /// Replaces every route of one org with its snapshot of `version`, and remembers that
    /// version as the org's (what a decision records, so an audit finds the exact snapshot).
    pub fn replace_org_at(&mut self, org: &str, version: i64, routes: HashMap<String, RouteStats>) {
        self.org_versions.insert(org.to_owned(), version);
        self.replace_org(org, routes);
    }

    /// Returns the version of the snapshot the table holds for `org`: the version its
    /// statistics come from. Snapshots of different orgs travel in different partitions, so
    /// the table's overall [`RoutingTable::version`] (the newest of any org) does not name the
    /// snapshot an org's decision read; this does. Falls back to the overall version for orgs
    /// set with [`RoutingTable::insert`] or [`RoutingTable::replace_org`], and is 0 for an org
    /// without a snapshot in a table built from snapshots.
    pub fn org_version(&self, org: &str) -> i64 {
        match self.org_versions.get(org) {
            Some(v) => *v,
            None if self.org_versions.is_empty() => self.version,
            None => 0,
        }
    }
}

/// Converts a projector snapshot into the router's statistics, by route, with every model's
/// judge offset estimated over the whole snapshot (the org's routes; see
/// [`crate::calibration`]).
pub fn stats_of(snapshot: &RoutingTableUpdated) -> HashMap<String, RouteStats> {
    let mut routes = raw_stats_of(snapshot);
    let offsets = JudgeOffsets::estimate(
        routes.iter().flat_map(|(route, r)| {
            r.models
                .iter()
                .map(move |(id, m)| (route.as_str(), id.as_str(), m.judge, m.nps))
        }),
        &CalibrationSettings::default(),
    );
    if !offsets.is_empty() {
        for route in routes.values_mut() {
            for (id, m) in &mut route.models {
                m.judge_offset = offsets.of(id);
            }
        }
    }
    routes
}

fn raw_stats_of(snapshot: &RoutingTableUpdated) -> HashMap<String, RouteStats> {
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    snapshot
        .routes
        .iter()
        .map(|entry| {
            let models = entry
                .models
                .iter()
                .map(|m| {
                    let mut stats = ModelStats {
                        requests: count(m.samples),
                        successes: count(m.successes),
                        errors: count(m.errors),
                        cost_mean_usd: (m.cost_mean_usd.is_finite() && m.samples > 0)
                            .then_some(m.cost_mean_usd),
                        p95_latency_ms: (m.latency_samples > 0).then(|| count(m.p95_latency_ms)),
                        latency_samples: count(m.latency_samples),
                        regressions: m
                            .regressions
                            .iter()
                            .map(|(k, v)| (k.clone(), count(*v)))
                            .collect(),
                        ..ModelStats::default()
                    };
                    for s in &m.sources {
                        if s.source == FeedbackSource::Benchmark {
                            continue;
                        }
                        if let Some(slot) = stats.source_mut(s.source) {
                            *slot = SourceStat {
                                samples: count(s.samples),
                                mean: s.mean,
                                variance: s.variance,
                            };
                        }
                    }
                    (m.model.as_str().to_owned(), stats)
                })
                .collect();
            (entry.route.as_str().to_owned(), RouteStats { models })
        })
        .collect()
}
