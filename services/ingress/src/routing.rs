//! The router as ingress runs it: policies, the live routing table, priors and the signer.
//!
//! The routing table is the projector's: ingress follows the compacted `routing-table` topic
//! from its start and swaps each org's snapshot in atomically (an `ArcSwap`: the request path
//! takes no lock, it loads one pointer). Until the projector has published anything, the table
//! is version 0 and decisions rest on the benchmark priors (phase 0).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use switchyard_config::RoutingConfig;
use switchyard_events::{Codec, Event, EventId, RoutingTableUpdated, Topic};
use switchyard_log::{EventLog, GroupId, StartFrom, Subscription};
use switchyard_router::{DecisionSigner, Lang, Priors, RoutingTable};
use tokio_util::sync::CancellationToken;

/// What the decision path needs besides the request and the control plane.
pub struct RouterState {
    /// Benchmark priors (shipped, plus operator rows).
    pub priors: Priors,
    /// Signs decision traces: the publisher signs each batch it appends (see
    /// `switchyard_router::sign`), dry runs sign their one trace.
    pub signer: Arc<DecisionSigner>,
    /// The newest routing table.
    pub table: ArcSwap<RoutingTable>,
    /// Language of explanations when the caller sends no `Accept-Language`.
    pub default_lang: Lang,
    /// Routes chosen from request metadata (`[[routing.rules]]`).
    pub rules: Vec<switchyard_config::RouteRule>,
    /// The shared learning pool: the priors of the orgs that share (none by default).
    pub pool: crate::pool::LearningPool,
    /// What each org's applied snapshot folded, and when this node applied it
    /// (`GET /v1/routing/table`).
    pub applied: ArcSwap<std::collections::BTreeMap<String, Arc<AppliedTable>>>,
}

/// An org's routing table as this node applied it: which inputs it folded, and when.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AppliedTable {
    /// The snapshot's version.
    pub version: i64,
    /// Newest event time folded (microseconds).
    pub generated_at: i64,
    /// When this node swapped it in (its clock, microseconds).
    pub applied_at: i64,
    /// `topic/partition` → last offset folded.
    pub source_offsets: std::collections::BTreeMap<String, i64>,
}

impl std::fmt::Debug for RouterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterState")
            .field("signer", &self.signer)
            .field("table_version", &self.table.load().version)
            .finish_non_exhaustive()
    }
}

impl RouterState {
    /// Builds the state from the routing settings.
    pub fn new(routing: &RoutingConfig, priors: Priors, signer: Arc<DecisionSigner>) -> Self {
        RouterState {
            priors,
            signer,
            table: ArcSwap::from_pointee(RoutingTable::new(0)),
            default_lang: Lang::parse(&routing.default_language).unwrap_or_default(),
            rules: routing.rules.clone(),
            pool: crate::pool::LearningPool::default(),
            applied: ArcSwap::default(),
        }
    }

    /// Records that `snapshot` was applied at `now` (microseconds).
    pub fn note_applied(&self, snapshot: &RoutingTableUpdated, now: i64) {
        let mut next = std::collections::BTreeMap::clone(&self.applied.load());
        next.insert(
            snapshot.envelope.org.as_str().to_owned(),
            Arc::new(AppliedTable {
                version: snapshot.version,
                generated_at: snapshot.generated_at.as_micros(),
                applied_at: now,
                source_offsets: snapshot.source_offsets.clone(),
            }),
        );
        self.applied.store(Arc::new(next));
    }

    /// Returns the state with the shared learning pool of `[orgs.*]` and `[learning_pool]`.
    pub fn with_pool(mut self, pool: &switchyard_config::LearningPoolConfig) -> Self {
        self.pool = crate::pool::LearningPool::new(pool);
        self
    }

    /// Returns the priors `org` decides on: the learning pool's blend when the org shares and
    /// a pool snapshot arrived, else the shipped priors.
    pub fn priors_for(&self, org: &str) -> PriorsRef<'_> {
        match self.pool.priors_for(org) {
            Some(pooled) => PriorsRef::Pooled(pooled),
            None => PriorsRef::Shipped(&self.priors),
        }
    }

    /// Folds one routing-table snapshot in: an org's whole table. Snapshots of one org are
    /// keyed by org, so the log delivers them in order; the table's version is the newest seen,
    /// and the org's own version (what its decisions record) is the snapshot's.
    pub fn apply_snapshot(&self, snapshot: &RoutingTableUpdated) {
        let current = self.table.load();
        let mut next = RoutingTable::clone(&current);
        next.version = next.version.max(snapshot.version);
        next.replace_org_at(
            snapshot.envelope.org.as_str(),
            snapshot.version,
            stats_of(snapshot),
        );
        self.table.store(Arc::new(next));
    }
}

/// The priors one decision uses: the shipped table, or a sharing org's pool blend.
#[derive(Debug)]
pub enum PriorsRef<'a> {
    /// The shipped priors (plus operator rows).
    Shipped(&'a Priors),
    /// The shipped priors blended with the learning pool.
    Pooled(Arc<Priors>),
}

impl std::ops::Deref for PriorsRef<'_> {
    type Target = Priors;

    fn deref(&self) -> &Priors {
        match self {
            PriorsRef::Shipped(priors) => priors,
            PriorsRef::Pooled(priors) => priors,
        }
    }
}

pub use switchyard_router::stats_of;

/// Returns the route a request's metadata selects, by the first matching rule.
pub fn route_by_rules<'a>(
    rules: &'a [switchyard_config::RouteRule],
    req: &switchyard_providers::ChatRequest,
) -> Option<&'a str> {
    if rules.is_empty() {
        return None;
    }
    let metadata = req
        .extra
        .get("metadata")
        .and_then(serde_json::Value::as_object);
    let lookup = |k: &str| {
        metadata
            .and_then(|m| m.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let user = req.extra.get("user").and_then(serde_json::Value::as_str);
    rules
        .iter()
        .find(|r| r.matches(&lookup, user))
        .map(|r| r.route.as_str())
}

/// Follows the `routing-table` topic from its start until `shutdown`, swapping each snapshot
/// in. Every node reads every partition (a group of its own that never commits).
pub async fn follow_routing_table<L: EventLog>(
    log: L,
    codec: Arc<Codec>,
    state: Arc<crate::gateway::Gateway>,
    metrics: switchyard_runtime::Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let group = GroupId::new(format!("routing-table-follower-{}", EventId::now_v7()))?;
    let mut sub = log
        .subscribe(&group, &[Topic::RoutingTable], StartFrom::Earliest)
        .await
        .context("subscribe to the routing-table topic")?;
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            batch = sub.poll(100, Duration::from_millis(200)) => batch.context("poll the routing-table topic")?,
        };
        for r in batch {
            let Some(decoded) = crate::decode::decode_patiently(&codec, &r.value, &shutdown).await
            else {
                return Ok(());
            };
            match decoded {
                Ok(Event::RoutingTableUpdated(snapshot))
                    if crate::pool::LearningPool::is_pool(&snapshot) =>
                {
                    state.router.pool.apply(&snapshot, &state.router.priors);
                }
                Ok(Event::RoutingTableUpdated(snapshot)) => {
                    state.router.apply_snapshot(&snapshot);
                    let now = state.clock.now_micros();
                    state.router.note_applied(&snapshot, now);
                    let stale = u64::try_from(now - snapshot.generated_at.as_micros()).unwrap_or(0);
                    metrics
                        .routing_table()
                        .record_applied(snapshot.version, Duration::from_micros(stale));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(offset = r.offset, partition = r.partition, error = %e, "skipping undecodable routing-table event");
                }
            }
        }
    }
}
