//! The shared learning pool as ingress reads it: the projector's pool snapshots (the
//! pseudo-org [`POOL_ORG`] on the `routing-table` topic) blended into the benchmark priors of
//! the orgs that share (`[orgs.<org>] learning_pool = "share"`).
//!
//! An org that does not share never reads the pool: its decisions rest on the shipped priors
//! (plus operator rows) and its own feedback. The blended priors are rebuilt once per pool
//! snapshot and swapped in atomically; the request path loads one pointer. The blend carries
//! the pool snapshot's version ([`Priors::pool_version`]) in the same allocation, so a decision
//! records the version of exactly the priors it read (`RouteDecided.pool_version`), which is
//! what `switchyard audit` rebuilds the priors from.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use switchyard_config::LearningPoolConfig;
use switchyard_events::RoutingTableUpdated;
use switchyard_router::Priors;

pub use switchyard_router::POOL_ORG;

/// The sharing orgs and the newest pool priors.
#[derive(Debug, Default)]
pub struct LearningPool {
    members: BTreeSet<String>,
    strength: f64,
    /// The shipped priors blended with the newest pool snapshot, which carry that snapshot's
    /// version; `None` until one arrives.
    blended: ArcSwapOption<Priors>,
}

impl LearningPool {
    /// Returns the pool for the configured members (none: nobody reads a pool).
    pub fn new(config: &LearningPoolConfig) -> Self {
        LearningPool {
            members: config.members.clone(),
            strength: config.prior_strength,
            ..LearningPool::default()
        }
    }

    /// Returns whether `snapshot` is the pool's rather than an org's.
    pub fn is_pool(snapshot: &RoutingTableUpdated) -> bool {
        snapshot.envelope.org.as_str() == POOL_ORG
    }

    /// Takes a pool snapshot in, blended into `shipped`. An older snapshot than the newest seen
    /// is ignored. One writer (the routing-table follower) calls it.
    pub fn apply(&self, snapshot: &RoutingTableUpdated, shipped: &Priors) {
        if self.members.is_empty() {
            return;
        }
        let newest = self.blended.load().as_ref().and_then(|p| p.pool_version());
        if newest.is_some_and(|v| snapshot.version < v) {
            return;
        }
        self.blended
            .store(Some(Arc::new(shipped.with_pool(snapshot, self.strength))));
    }

    /// Returns the version of the pool snapshot sharing orgs decide on, `None` before one.
    pub fn version(&self) -> Option<i64> {
        self.blended.load().as_ref().and_then(|p| p.pool_version())
    }

    /// Returns the priors `org` decides on: the pool's blend for a sharing org once a pool
    /// snapshot arrived, else `None` (the shipped priors).
    pub fn priors_for(&self, org: &str) -> Option<Arc<Priors>> {
        if !self.members.contains(org) {
            return None;
        }
        self.blended.load_full()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use switchyard_events::{
        Envelope, EventId, FeedbackSource, ModelName, ModelStats, OrgId, PartitionKey, Phase,
        RouteEntry, RouteMode, RouteName, SourceStats, Timestamp, TraceId,
    };
    use switchyard_router::Prior;

    use super::*;

    fn pool_snapshot(version: i64, mean: f64, samples: i64) -> RoutingTableUpdated {
        RoutingTableUpdated {
            envelope: Envelope {
                event_id: EventId::now_v7(),
                org: OrgId::new(POOL_ORG),
                event_time: Timestamp::from_micros(1_763_942_400_000_000),
                trace_id: TraceId::new("t"),
                partition_key: PartitionKey::org(&OrgId::new(POOL_ORG)),
            },
            version,
            generated_at: Timestamp::from_micros(1_763_942_400_000_000),
            routes: vec![RouteEntry {
                route: RouteName::new("general"),
                baseline_model: ModelName::new(""),
                mode: RouteMode::Off,
                canary_percent: None,
                pinned_model: None,
                phase: Phase::ZERO,
                models: vec![ModelStats {
                    model: ModelName::new("p/cheap"),
                    samples,
                    success_rate: 0.0,
                    quality_mean: mean,
                    quality_variance: 0.0,
                    cost_mean_usd: 0.0,
                    p95_latency_ms: 0,
                    error_rate: 0.0,
                    signals: BTreeMap::from([("orgs".to_owned(), 2.0)]),
                    sources: vec![SourceStats {
                        source: FeedbackSource::Benchmark,
                        samples,
                        mean,
                        variance: 0.0,
                    }],
                    successes: 0,
                    errors: 0,
                    regressions: BTreeMap::new(),
                    latency_samples: 0,
                }],
                constraints_hash: String::new(),
                route_version: 0,
            }],
            source_offsets: BTreeMap::new(),
        }
    }

    fn shipped() -> Priors {
        let mut priors = Priors::default();
        priors.extend([Prior {
            model: "p/cheap".into(),
            category: "general".into(),
            score: 0.8,
            source: "test".into(),
            as_of: "2026-11-24".into(),
        }]);
        priors
    }

    fn score(priors: &Priors) -> Option<f64> {
        priors.get("p/cheap", "general").map(|p| p.score)
    }

    #[test]
    fn only_sharing_orgs_read_the_pool() {
        let pool = LearningPool::new(&LearningPoolConfig {
            members: ["acme".to_owned()].into(),
            prior_strength: 10.0,
            min_orgs: 2,
        });
        let shipped = shipped();
        assert!(pool.priors_for("acme").is_none(), "no pool snapshot yet");
        let snapshot = pool_snapshot(7, 1.0, 10);
        assert!(LearningPool::is_pool(&snapshot));
        pool.apply(&snapshot, &shipped);
        let acme = pool
            .priors_for("acme")
            .expect("a sharing org reads the pool");
        // (10·0.8 + 10·1.0) / 20
        assert!((score(&acme).expect("a row") - 0.9).abs() < 1e-12);
        assert_eq!(acme.pool_version(), Some(7), "the blend names its snapshot");
        assert!(
            pool.priors_for("globex").is_none(),
            "a private org does not"
        );
        // An older snapshot delivered late changes nothing.
        pool.apply(&pool_snapshot(3, 0.0, 10), &shipped);
        let acme = pool.priors_for("acme").expect("still the pool");
        assert!((score(&acme).expect("a row") - 0.9).abs() < 1e-12);
        assert_eq!(pool.version(), Some(7));
        // A newer one replaces it, version and rows together.
        pool.apply(&pool_snapshot(9, 0.0, 10), &shipped);
        let acme = pool.priors_for("acme").expect("still the pool");
        assert!((score(&acme).expect("a row") - 0.4).abs() < 1e-12);
        assert_eq!(acme.pool_version(), Some(9));
    }

    #[test]
    fn without_members_nobody_reads_a_pool() {
        let pool = LearningPool::new(&LearningPoolConfig::default());
        pool.apply(&pool_snapshot(1, 1.0, 10), &shipped());
        assert!(pool.priors_for("acme").is_none());
    }
}
