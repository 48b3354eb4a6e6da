//! The control plane as ingress sees it: a read model folded from the `control`, `pins` and
//! `constraints` topics, and the write path of the admin API.
//!
//! Everything here is event-sourced. API keys (`ApiKeyCreated`, `ApiKeyRevoked`) and route
//! configurations (`RouteConfigured`) are on the compacted `control` topic, pins
//! (`RoutePinned`, `RouteUnpinned`) on the compacted `pins` topic, and constraint changes
//! (`ConstraintsChanged`, a per-route SHA-256 hash chain) on the `constraints` topic, which
//! keeps every record (an audit chain must not lose links). Every ingress node replays the three
//! topics from the beginning on start and then follows them ([`follow`]) with a consumer group
//! of its own that never commits: each node reads every partition, so a change made on any node
//! reaches all of them within one poll.
//!
//! # Read model
//!
//! The fold keeps, per (org, route): the newest `RouteConfigured` (a deleted route included),
//! the newest `RoutePinned` unless a `RouteUnpinned` followed it, and the verified constraints
//! chain. A change that does not extend the chain (a gap, a second change with the same
//! sequence, a wrong `prev_hash` or `hash`) is refused: logged as a warning, counted in
//! [`FoldStats::refused_constraints`] and listed with the route, never applied and never a
//! panic. Pin expiry is not the fold's business: `expires_at` is compared with a time the
//! caller passes in, so the fold stays deterministic.
//!
//! After each batch the fold rebuilds the effective [`RouteView`] of every route it touched
//! (configuration file + the org's events + `[routing]`, see [`crate::routes`]) and publishes
//! the index with one atomic swap. The request path reads it with [`ControlPlane::route`]: one
//! lock-free load, one map lookup, one `Arc` clone.
//!
//! # Read-your-writes
//!
//! The follower records the next offset it has applied per (topic, partition).
//! [`ControlPlane::commit`] appends an admin event straight to the log (durable when it
//! resolves), then [`ControlPlane::wait_applied`] until this node's follower has folded it, so
//! the admin call's answer already reflects its own change. Other replicas follow the same
//! topics and converge within their poll interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use switchyard_config::{RouteConfig, RoutingConfig};
use switchyard_events::{
    ApiKeyId, Codec, CodecError, ConstraintsChanged, Event, EventId, KeyHash, OrgId,
    RouteConfigured, RouteName, RoutePinned, Timestamp, Topic,
};
use switchyard_log::{EventLog, GroupId, LogError, Position, Record, StartFrom, Subscription};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::routes::{PinInForce, RouteView, RoutingDefaults};

/// The topics the control plane folds.
pub const FOLLOWED_TOPICS: [Topic; 3] = [Topic::Control, Topic::Pins, Topic::Constraints];

/// What the control plane knows about one API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key id (public; appears in events and logs).
    pub key_id: ApiKeyId,
    /// Owning organisation.
    pub org: OrgId,
    /// Whether the key may use the admin API.
    pub admin: bool,
    /// Route used when a request names none.
    pub default_route: Option<RouteName>,
    /// Free-form label.
    pub label: Option<String>,
    /// When the key was created.
    pub created_at: Timestamp,
    /// Whether the key was revoked.
    pub revoked: bool,
    /// Requests and tokens per minute (unlimited when unset).
    #[serde(default)]
    pub limits: crate::limits::KeyLimits,
}

/// The folded API keys.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    by_hash: HashMap<KeyHash, ApiKeyId>,
    by_id: BTreeMap<ApiKeyId, KeyInfo>,
}

impl KeyTable {
    /// Folds one event in; events of other kinds are ignored. Idempotent under redelivery.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ApiKeyCreated(e) => {
                self.by_hash.insert(e.key_hash.clone(), e.key_id.clone());
                self.by_id.insert(
                    e.key_id.clone(),
                    KeyInfo {
                        key_id: e.key_id.clone(),
                        org: e.envelope.org.clone(),
                        admin: e.admin,
                        default_route: e.default_route.clone(),
                        label: e.label.clone(),
                        created_at: e.envelope.event_time,
                        revoked: false,
                        limits: crate::limits::KeyLimits {
                            requests_per_minute: e
                                .requests_per_minute
                                .and_then(|n| u64::try_from(n).ok()),
                            tokens_per_minute: e
                                .tokens_per_minute
                                .and_then(|n| u64::try_from(n).ok()),
                        },
                    },
                );
            }
            Event::ApiKeyRevoked(e) => {
                if let Some(info) = self.by_id.get_mut(&e.key_id) {
                    info.revoked = true;
                }
            }
            _ => {}
        }
    }

    /// Returns the live key whose secret hashes to `hash`.
    pub fn by_hash(&self, hash: &KeyHash) -> Option<&KeyInfo> {
        self.by_hash
            .get(hash)
            .and_then(|id| self.by_id.get(id))
            .filter(|k| !k.revoked)
    }

    /// Returns every key, revoked ones included, in id order.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.by_id.values().cloned().collect()
    }
}

/// One route of one org.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// The organisation.
    pub org: OrgId,
    /// The route.
    pub route: RouteName,
}

impl RouteKey {
    /// Returns the key of `route` in `org`.
    pub fn new(org: &OrgId, route: &RouteName) -> Self {
        RouteKey {
            org: org.clone(),
            route: route.clone(),
        }
    }
}

/// A constraints change the fold refused: it would have broken the route's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedChange {
    /// The sequence it claimed.
    pub sequence: i64,
    /// The hash it carried.
    pub hash: String,
    /// Who wrote it.
    pub changed_by: String,
    /// Why it was refused.
    pub problem: String,
}

/// What the log says about one route of one org.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteFacts {
    /// The newest `RouteConfigured` (a deleted route included); `None` = the configuration file
    /// decides.
    pub configured: Option<RouteConfigured>,
    /// The newest `RoutePinned`, unless a `RouteUnpinned` followed it. Its `expires_at` is
    /// checked by readers against their clock.
    pub pin: Option<RoutePinned>,
    /// The verified constraints chain, from sequence 0; the last entry is in force.
    pub chain: Vec<ConstraintsChanged>,
    /// Changes refused because they did not extend the chain (at most the last 100).
    pub refused: Vec<RefusedChange>,
}

/// Most refused changes kept per route (the counter keeps counting).
const MAX_REFUSED: usize = 100;

impl RouteFacts {
    /// Returns the constraints change in force (the chain's head).
    pub fn head(&self) -> Option<&ConstraintsChanged> {
        self.chain.last()
    }

    /// Returns whether the chain verifies from its first link and nothing was refused.
    pub fn verified(&self) -> bool {
        self.refused.is_empty() && ConstraintsChanged::verify_chain(&self.chain).is_ok()
    }
}

/// Counters of what the fold could not apply, for metrics and alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FoldStats {
    /// Constraints changes refused because they did not extend their route's chain.
    pub refused_constraints: u64,
    /// Route configurations that did not make a valid policy (the route kept its previous
    /// configuration source; see the warning in the log).
    pub invalid_policies: u64,
    /// Records that did not decode (skipped).
    pub undecodable: u64,
}

#[derive(Debug, Default)]
struct Counters {
    refused_constraints: AtomicU64,
    invalid_policies: AtomicU64,
    undecodable: AtomicU64,
}

/// The published, read-only index of effective routes.
#[derive(Debug, Clone, Default)]
struct RouteIndex {
    /// Routes of the configuration file, for orgs without events of their own.
    config: Arc<HashMap<String, Arc<RouteView>>>,
    /// Org → route → the view built from the org's events; `None` = the route does not exist
    /// for this org (deleted, or only pins/constraints on a route nobody configured).
    orgs: HashMap<String, HashMap<String, Option<Arc<RouteView>>>>,
}

impl RouteIndex {
    fn get(&self, org: &str, route: &str) -> Option<Arc<RouteView>> {
        match self.orgs.get(org).and_then(|routes| routes.get(route)) {
            Some(view) => view.clone(),
            None => self.config.get(route).cloned(),
        }
    }
}

#[derive(Debug, Default)]
struct Fold {
    routes: HashMap<RouteKey, RouteFacts>,
}

/// Appends one record to a topic of some [`EventLog`], type-erased.
type AppendFn =
    dyn Fn(Topic, Record) -> BoxFuture<'static, Result<Vec<Position>, LogError>> + Send + Sync;

/// Appends control-plane events straight to the log (admin writes; never the request path's
/// queue), whatever the log backend.
#[derive(Clone)]
pub struct ControlWriter {
    append: Arc<AppendFn>,
    codec: Arc<Codec>,
}

impl std::fmt::Debug for ControlWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlWriter").finish_non_exhaustive()
    }
}

impl ControlWriter {
    /// Returns a writer appending to `log`, encoding with `codec`.
    pub fn new<L: EventLog>(log: L, codec: Arc<Codec>) -> Self {
        ControlWriter {
            append: Arc::new(move |topic, record| {
                let log = log.clone();
                async move { log.append(topic, vec![record]).await }.boxed()
            }),
            codec,
        }
    }

    /// Appends one event to its topic, keyed by its partition key; resolves once it is
    /// durable, with its position.
    pub async fn append(&self, event: &Event) -> Result<Position, ControlError> {
        let bytes = self.codec.encode(event).map_err(ControlError::Encode)?;
        let record = Record::new(event.partition_key().as_str(), bytes)
            .at(event.envelope().event_time.as_millis());
        let positions = (self.append)(event.topic(), record)
            .await
            .map_err(ControlError::Append)?;
        positions
            .first()
            .copied()
            .ok_or(ControlError::Append(LogError::Invalid(
                "the log returned no position for an appended record".into(),
            )))
    }
}

/// Why an admin write did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// This control plane was built without a [`ControlWriter`].
    #[error("this node cannot write control-plane events (no log writer)")]
    ReadOnly,
    /// The event did not encode.
    #[error("the event did not encode: {0}")]
    Encode(#[source] CodecError),
    /// The log refused the append.
    #[error("the event log refused the append: {0}")]
    Append(#[source] LogError),
    /// The event is durable but this node had not folded it in time.
    #[error(
        "the change is recorded ({topic}/{partition} offset {offset}) but this node had not applied it after {timeout:?}"
    )]
    NotApplied {
        /// Topic.
        topic: Topic,
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
        /// How long we waited.
        timeout: Duration,
    },
}

impl ControlError {
    /// Returns a low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ControlError::ReadOnly => "read_only",
            ControlError::Encode(_) => "encode",
            ControlError::Append(_) => "append",
            ControlError::NotApplied { .. } => "not_applied",
        }
    }
}

struct Inner {
    fold: Mutex<Fold>,
    /// The API keys, read on every authenticated request.
    keys: RwLock<KeyTable>,
    index: ArcSwap<RouteIndex>,
    defaults: RoutingDefaults,
    /// Next offset applied, per (topic, partition).
    applied: watch::Sender<BTreeMap<(Topic, u32), u64>>,
    writer: OnceLock<ControlWriter>,
    write_locks: Mutex<HashMap<RouteKey, Arc<tokio::sync::Mutex<()>>>>,
    counters: Counters,
}

impl Default for Inner {
    fn default() -> Self {
        Inner::new(RoutingDefaults::default())
    }
}

impl Inner {
    fn new(defaults: RoutingDefaults) -> Self {
        let config = defaults
            .config_routes()
            .filter_map(|route| {
                match crate::routes::build_view(Some(route), None, &defaults) {
                    Ok(view) => view.map(|view| (route.name.clone(), Arc::new(view))),
                    Err(error) => {
                        tracing::warn!(route = %route.name, %error, "a configured route does not make a valid policy");
                        None
                    }
                }
            })
            .collect();
        Inner {
            fold: Mutex::default(),
            keys: RwLock::default(),
            index: ArcSwap::from_pointee(RouteIndex {
                config: Arc::new(config),
                orgs: HashMap::new(),
            }),
            defaults,
            applied: watch::Sender::new(BTreeMap::new()),
            writer: OnceLock::new(),
            write_locks: Mutex::default(),
            counters: Counters::default(),
        }
    }
}

/// The shared, live control-plane state of a node: cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("stats", &self.fold_stats())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Returns a control plane whose routes start from the configuration file: `routes`
    /// (`[routes.*]`) and `routing` (`[routing]`: weights, learning, default constraints).
    /// [`ControlPlane::default`] has no configured routes (tools that only read keys).
    pub fn new(routes: &[RouteConfig], routing: &RoutingConfig) -> Self {
        ControlPlane {
            inner: Arc::new(Inner::new(RoutingDefaults::new(routes, routing))),
        }
    }

    /// Gives the control plane a writer for [`ControlPlane::commit`] (the admin API). Without
    /// one, admin writes fail with [`ControlError::ReadOnly`].
    #[must_use]
    pub fn with_writer(self, writer: ControlWriter) -> Self {
        if self.inner.writer.set(writer).is_err() {
            tracing::warn!("the control plane already has a writer; keeping the first");
        }
        self
    }

    /// Returns the writer given by [`ControlPlane::with_writer`], if any: the node's direct,
    /// durable path to the log. `POST /v1/feedback` appends through it too (feedback is
    /// acknowledged only once durable, and nothing folds it here, so it does not go through
    /// [`ControlPlane::commit`]).
    pub fn writer(&self) -> Option<&ControlWriter> {
        self.inner.writer.get()
    }

    /// Returns the configuration-file defaults routes are built from.
    pub fn defaults(&self) -> &RoutingDefaults {
        &self.inner.defaults
    }

    /// Folds one event in (any topic; events the control plane does not track are ignored)
    /// and publishes the routes it changed. The follower folds whole batches with
    /// [`ControlPlane::apply_records`]; this is for tools and tests.
    pub fn apply(&self, event: &Event) {
        self.apply_events(std::slice::from_ref(event));
    }

    fn apply_events(&self, events: &[Event]) {
        let is_key_event =
            |e: &&Event| matches!(e, Event::ApiKeyCreated(_) | Event::ApiKeyRevoked(_));
        if events.iter().any(|e| is_key_event(&e))
            && let Ok(mut keys) = self.inner.keys.write()
        {
            for event in events.iter().filter(is_key_event) {
                keys.apply(event);
            }
        }
        let Ok(mut fold) = self.inner.fold.lock() else {
            return;
        };
        let mut touched: Vec<RouteKey> = events
            .iter()
            .filter_map(|event| self.fold_route_event(&mut fold, event))
            .collect();
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.publish(&fold, &touched);
        }
    }

    /// Folds one route event; returns the route it touched.
    fn fold_route_event(&self, fold: &mut Fold, event: &Event) -> Option<RouteKey> {
        let org = &event.envelope().org;
        match event {
            Event::RouteConfigured(e) => {
                let key = RouteKey::new(org, &e.route);
                let facts = fold.routes.entry(key.clone()).or_default();
                // Log order decides between equal sequences (every node sees the same order);
                // an older sequence arriving late is stale.
                if facts
                    .configured
                    .as_ref()
                    .is_none_or(|c| e.sequence >= c.sequence)
                {
                    facts.configured = Some(e.clone());
                }
                Some(key)
            }
            Event::RoutePinned(e) => {
                let key = RouteKey::new(org, &e.route);
                fold.routes.entry(key.clone()).or_default().pin = Some(e.clone());
                Some(key)
            }
            Event::RouteUnpinned(e) => {
                let key = RouteKey::new(org, &e.route);
                fold.routes.entry(key.clone()).or_default().pin = None;
                Some(key)
            }
            Event::ConstraintsChanged(e) => {
                let key = RouteKey::new(org, &e.route);
                let facts = fold.routes.entry(key.clone()).or_default();
                if let Err(problem) = extend_chain(facts, e) {
                    self.inner
                        .counters
                        .refused_constraints
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        org = %org,
                        route = %e.route,
                        sequence = e.sequence,
                        hash = %e.hash,
                        %problem,
                        "refused a constraints change that does not extend the route's hash chain"
                    );
                    if facts.refused.len() >= MAX_REFUSED {
                        facts.refused.remove(0);
                    }
                    facts.refused.push(RefusedChange {
                        sequence: e.sequence,
                        hash: e.hash.clone(),
                        changed_by: e.changed_by.clone(),
                        problem,
                    });
                }
                Some(key)
            }
            _ => None,
        }
    }

    /// Rebuilds the views of `touched` routes and swaps the index.
    fn publish(&self, fold: &Fold, touched: &[RouteKey]) {
        let current = self.inner.index.load_full();
        let mut next = RouteIndex::clone(&current);
        for key in touched {
            let config = self.inner.defaults.config_route(key.route.as_str());
            let facts = fold.routes.get(key);
            let view = match crate::routes::build_view(config, facts, &self.inner.defaults) {
                Ok(view) => view.map(Arc::new),
                Err(error) => {
                    // The org's configuration or constraints do not make a valid policy (only a
                    // foreign writer can cause this: the admin API validates): the
                    // configuration file's route applies, with the pin still honoured.
                    self.inner
                        .counters
                        .invalid_policies
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(org = %key.org, route = %key.route, %error, "the route's events do not make a valid policy; the configuration file's route applies");
                    let pin_only = facts.map(|f| RouteFacts {
                        pin: f.pin.clone(),
                        ..RouteFacts::default()
                    });
                    crate::routes::build_view(config, pin_only.as_ref(), &self.inner.defaults)
                        .ok()
                        .flatten()
                        .map(Arc::new)
                }
            };
            next.orgs
                .entry(key.org.as_str().to_owned())
                .or_default()
                .insert(key.route.as_str().to_owned(), view);
        }
        self.inner.index.store(Arc::new(next));
    }

    /// Folds a batch of records read from [`FOLLOWED_TOPICS`], publishes the routes they
    /// changed, then marks their offsets applied (so [`ControlPlane::wait_applied`] returns
    /// only once the change is visible). Undecodable records are skipped with a warning.
    pub fn apply_records(&self, codec: &Codec, records: &[switchyard_log::StoredRecord]) {
        let decoded = records.iter().map(|r| codec.decode(&r.value)).collect();
        self.apply_decoded(records, decoded);
    }

    /// [`ControlPlane::apply_records`] with the records already decoded (`decoded[i]` is
    /// `records[i]`); an error is counted and skipped.
    pub fn apply_decoded(
        &self,
        records: &[switchyard_log::StoredRecord],
        decoded: Vec<Result<Event, switchyard_events::CodecError>>,
    ) {
        let mut events = Vec::with_capacity(records.len());
        for (r, d) in records.iter().zip(decoded) {
            match d {
                Ok(event) => events.push(event),
                Err(e) => {
                    self.inner
                        .counters
                        .undecodable
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(topic = %r.topic, partition = r.partition, offset = r.offset, error = %e, "skipping an undecodable control-plane event");
                }
            }
        }
        self.apply_events(&events);
        if records.is_empty() {
            return;
        }
        self.inner.applied.send_modify(|applied| {
            for r in records {
                let next = applied.entry((r.topic, r.partition)).or_insert(0);
                *next = (*next).max(r.offset + 1);
            }
        });
    }

    /// Waits until this node has folded the record at `offset` of `topic`/`partition` (the
    /// position [`ControlPlane::commit`] or an append returned). Returns `false` on timeout.
    pub async fn wait_applied(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> bool {
        let mut rx = self.inner.applied.subscribe();
        let applied = |m: &BTreeMap<(Topic, u32), u64>| {
            m.get(&(topic, partition))
                .is_some_and(|next| *next > offset)
        };
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(applied)).await,
            Ok(Ok(_))
        )
    }

    /// Returns the next offset this node has applied of `topic`/`partition` (0 = none).
    pub fn applied_offset(&self, topic: Topic, partition: u32) -> u64 {
        self.inner
            .applied
            .borrow()
            .get(&(topic, partition))
            .copied()
            .unwrap_or(0)
    }

    /// Appends an admin event straight to the log, waits until it is durable, then until this
    /// node has folded it (at most `timeout`): read-your-writes for the admin API.
    pub async fn commit(&self, event: &Event, timeout: Duration) -> Result<Position, ControlError> {
        let writer = self.inner.writer.get().ok_or(ControlError::ReadOnly)?;
        let position = writer.append(event).await?;
        if self
            .wait_applied(position.topic, position.partition, position.offset, timeout)
            .await
        {
            Ok(position)
        } else {
            Err(ControlError::NotApplied {
                topic: position.topic,
                partition: position.partition,
                offset: position.offset,
                timeout,
            })
        }
    }

    /// Returns the lock that serialises admin writes to one route on this node (so two
    /// concurrent constraint changes cannot both claim the same sequence here).
    pub fn write_lock(&self, key: &RouteKey) -> Arc<tokio::sync::Mutex<()>> {
        match self.inner.write_locks.lock() {
            Ok(mut locks) => Arc::clone(locks.entry(key.clone()).or_default()),
            Err(_) => Arc::default(),
        }
    }

    /// Returns the effective route `route` of `org` and its pin in force at `now`: one
    /// lock-free index load, one lookup, one `Arc` clone (plus a copy of the pin when pinned).
    /// `None` = no such route for this org. This is what the request path calls.
    pub fn route(&self, org: &OrgId, route: &str, now: Timestamp) -> Option<ResolvedRoute> {
        let view = self.inner.index.load().get(org.as_str(), route)?;
        let pin = view.pin_at(now).cloned();
        Some(ResolvedRoute { view, pin })
    }

    /// Returns the effective policy of `route` in `org` (configuration file, then the org's
    /// `RouteConfigured` and constraints chain, with `[routing]` weights and learning).
    pub fn effective_policy(
        &self,
        org: &OrgId,
        route: &str,
    ) -> Option<Arc<switchyard_router::RoutePolicy>> {
        self.inner
            .index
            .load()
            .get(org.as_str(), route)
            .map(|view| Arc::clone(&view.policy))
    }

    /// Returns the pin in force on `route` of `org` at `now` (an expired pin is no pin).
    pub fn pin(&self, org: &OrgId, route: &str, now: Timestamp) -> Option<switchyard_router::Pin> {
        self.inner
            .index
            .load()
            .get(org.as_str(), route)?
            .pin_at(now)
            .map(|p| p.pin.clone())
    }

    /// Returns the names of every route `org` has, in name order.
    pub fn route_names(&self, org: &OrgId) -> Vec<String> {
        let index = self.inner.index.load();
        let mut names: Vec<String> = index.config.keys().cloned().collect();
        if let Some(routes) = index.orgs.get(org.as_str()) {
            for (name, view) in routes {
                match view {
                    Some(_) => names.push(name.clone()),
                    None => names.retain(|n| n != name),
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Returns a copy of what the log says about one route (for the admin API).
    pub fn facts(&self, key: &RouteKey) -> RouteFacts {
        self.inner
            .fold
            .lock()
            .ok()
            .and_then(|fold| fold.routes.get(key).cloned())
            .unwrap_or_default()
    }

    /// Returns the fold's counters (refused chain links, invalid policies, undecodable
    /// records), for metrics.
    pub fn fold_stats(&self) -> FoldStats {
        let c = &self.inner.counters;
        FoldStats {
            refused_constraints: c.refused_constraints.load(Ordering::Relaxed),
            invalid_policies: c.invalid_policies.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
        }
    }

    /// Returns a copy of the key table.
    pub fn snapshot(&self) -> KeyTable {
        self.inner
            .keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// Returns the live key for a presented secret.
    ///
    /// The lookup is by SHA-256 of the secret; the found entry's hash is then compared with the
    /// presented one in constant time, so timing reveals nothing about stored hashes.
    pub fn authenticate(&self, secret: &str) -> Option<KeyInfo> {
        let hash = KeyHash::of_secret(secret);
        let keys = self.inner.keys.read().ok()?;
        let (stored, id) = keys.by_hash.get_key_value(&hash)?;
        let info = keys.by_id.get(id)?;
        (constant_time_eq(stored.as_str().as_bytes(), hash.as_str().as_bytes()) && !info.revoked)
            .then(|| info.clone())
    }
}

/// A route as the request path needs it: the effective policy and the pin in force.
#[derive(Debug, Clone)]
pub struct ResolvedRoute {
    /// The route's effective view (policy, mirror cap, where it came from).
    pub view: Arc<RouteView>,
    /// The pin in force at the time asked for.
    pub pin: Option<PinInForce>,
}

impl ResolvedRoute {
    /// Returns the policy.
    pub fn policy(&self) -> &switchyard_router::RoutePolicy {
        &self.view.policy
    }
}

/// Extends the route's chain with `change`, or says why it does not extend it.
pub(crate) fn extend_chain(
    facts: &mut RouteFacts,
    change: &ConstraintsChanged,
) -> Result<(), String> {
    let next = i64::try_from(facts.chain.len()).unwrap_or(i64::MAX);
    if change.sequence < next {
        let existing = usize::try_from(change.sequence)
            .ok()
            .and_then(|i| facts.chain.get(i));
        return match existing {
            // The same change delivered again.
            Some(existing) if existing.hash == change.hash => Ok(()),
            _ => Err(format!(
                "sequence {} is already taken by another change (a fork: two writers raced)",
                change.sequence
            )),
        };
    }
    if change.sequence > next {
        return Err(format!(
            "sequence {} leaves a gap: the chain's next sequence is {next}",
            change.sequence
        ));
    }
    let prev = facts.head().map_or("", |h| h.hash.as_str());
    if change.prev_hash != prev {
        return Err(format!(
            "prev_hash {:?} is not the hash of change {} ({prev:?})",
            change.prev_hash,
            next - 1
        ));
    }
    let expected = change.expected_hash();
    if change.hash != expected {
        return Err(format!(
            "hash {:?} is not the hash of its content ({expected:?})",
            change.hash
        ));
    }
    facts.chain.push(change.clone());
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the whole control topic once, from the start (tools that run without a server).
pub async fn load_keys<L: EventLog>(log: &L, codec: &Codec) -> anyhow::Result<KeyTable> {
    let mut table = KeyTable::default();
    for p in 0..log.partitions(Topic::Control) {
        let w = log.watermarks(Topic::Control, p).await?;
        let mut from = w.start;
        while from < w.end {
            let batch = log.read(Topic::Control, p, from, 1000).await?;
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            for r in batch {
                match codec.decode(&r.value) {
                    Ok(event) => table.apply(&event),
                    Err(e) => {
                        tracing::warn!(offset = r.offset, partition = p, error = %e, "skipping undecodable control event")
                    }
                }
            }
        }
    }
    Ok(table)
}

/// Follows [`FOLLOWED_TOPICS`] until `shutdown`, folding every record into `plane`. Sends
/// `true` on `caught_up` once everything that existed at start has been applied.
pub async fn follow<L: EventLog>(
    log: L,
    codec: Arc<Codec>,
    plane: ControlPlane,
    caught_up: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut ends = BTreeMap::new();
    for topic in FOLLOWED_TOPICS {
        for p in 0..log.partitions(topic) {
            let w = log.watermarks(topic, p).await?;
            if w.end > w.start {
                ends.insert((topic, p), w.end);
            }
        }
    }
    let group = GroupId::new(format!("control-follower-{}", EventId::now_v7()))?;
    let mut sub = log
        .subscribe(&group, &FOLLOWED_TOPICS, StartFrom::Earliest)
        .await
        .context("subscribe to the control-plane topics")?;
    if ends.is_empty() {
        caught_up.send_replace(true);
    }
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            batch = sub.poll(1000, Duration::from_millis(500)) => batch.context("poll the control-plane topics")?,
        };
        // A record the schema registry cannot resolve yet is waited on, not skipped.
        let mut decoded = Vec::with_capacity(batch.len());
        for r in &batch {
            match crate::decode::decode_patiently(&codec, &r.value, &shutdown).await {
                Some(d) => decoded.push(d),
                None => return Ok(()),
            }
        }
        plane.apply_decoded(&batch, decoded);
        if !ends.is_empty() {
            for r in &batch {
                if ends
                    .get(&(r.topic, r.partition))
                    .is_some_and(|end| r.offset + 1 >= *end)
                {
                    ends.remove(&(r.topic, r.partition));
                }
            }
            if ends.is_empty() {
                caught_up.send_replace(true);
            }
        }
    }
}

#[cfg(test)]
mod tests;
