//! The control plane as ingress sees it: a read model folded from the `control` topic.
//!
//! API keys are event-sourced: `switchyard keys create` appends `ApiKeyCreated` (with the
//! SHA-256 of the secret, never the secret) to the compacted `control` topic; every ingress
//! replays that topic from the beginning on start and then follows it, so a key created anywhere
//! works on every node. The follower uses a consumer group of its own that never commits: each
//! node reads every partition, from the start, every time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use switchyard_events::{
    ApiKeyId, Codec, Event, EventId, KeyHash, OrgId, RouteName, Timestamp, Topic,
};
use switchyard_log::{EventLog, GroupId, StartFrom, Subscription};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
}

/// The folded control-plane state.
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

/// The shared, live control-plane state of a node.
#[derive(Debug, Clone, Default)]
pub struct ControlPlane {
    keys: Arc<RwLock<KeyTable>>,
}

impl ControlPlane {
    /// Folds one event in.
    pub fn apply(&self, event: &Event) {
        if let Ok(mut keys) = self.keys.write() {
            keys.apply(event);
        }
    }

    /// Returns a copy of the key table.
    pub fn snapshot(&self) -> KeyTable {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Returns the live key for a presented secret.
    ///
    /// The lookup is by SHA-256 of the secret; the found entry's hash is then compared with the
    /// presented one in constant time, so timing reveals nothing about stored hashes.
    pub fn authenticate(&self, secret: &str) -> Option<KeyInfo> {
        let hash = KeyHash::of_secret(secret);
        let keys = self.keys.read().ok()?;
        let (stored, id) = keys.by_hash.get_key_value(&hash)?;
        let info = keys.by_id.get(id)?;
        (constant_time_eq(stored.as_str().as_bytes(), hash.as_str().as_bytes()) && !info.revoked)
            .then(|| info.clone())
    }
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

/// Follows the control topic until `shutdown`, folding every event into `plane`. Sends `true`
/// on `caught_up` once everything that existed at start has been applied.
pub async fn follow<L: EventLog>(
    log: L,
    codec: Arc<Codec>,
    plane: ControlPlane,
    caught_up: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut ends = BTreeMap::new();
    for p in 0..log.partitions(Topic::Control) {
        let w = log.watermarks(Topic::Control, p).await?;
        if w.end > w.start {
            ends.insert(p, w.end);
        }
    }
    let group = GroupId::new(format!("control-follower-{}", EventId::now_v7()))?;
    let mut sub = log
        .subscribe(&group, &[Topic::Control], StartFrom::Earliest)
        .await
        .context("subscribe to the control topic")?;
    if ends.is_empty() {
        caught_up.send_replace(true);
    }
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            batch = sub.poll(1000, Duration::from_millis(500)) => batch.context("poll the control topic")?,
        };
        for r in batch {
            match codec.decode(&r.value) {
                Ok(event) => plane.apply(&event),
                Err(e) => {
                    tracing::warn!(offset = r.offset, partition = r.partition, error = %e, "skipping undecodable control event")
                }
            }
            if ends
                .get(&r.partition)
                .is_some_and(|end| r.offset + 1 >= *end)
            {
                ends.remove(&r.partition);
                if ends.is_empty() {
                    caught_up.send_replace(true);
                }
            }
        }
    }
}
