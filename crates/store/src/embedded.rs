//! The embedded state store: two keyspaces in the data directory's fjall database.
//! - `state`: `[table name][0x00][key]` → value;
//! - `checkpoints`: `[group][0xFF][topic code][partition u32 BE]` → next offset (u64 BE).
//!
//! `apply` writes both in one fjall batch, fdatasynced before it returns.

use std::path::Path;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use switchyard_events::Topic;

use crate::{Entry, StateStore, StoreError, Table, WriteBatch};

/// The embedded state store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    state: Keyspace,
    checkpoints: Keyspace,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

fn state_key(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(table.name().len() + 1 + key.len());
    k.extend_from_slice(table.name().as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn checkpoint_key(group: &str, topic: Topic, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 6);
    k.extend_from_slice(group.as_bytes());
    k.push(0xFF);
    k.push(topic.code());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

impl EmbeddedStore {
    /// Opens the store in a database shared with the embedded log.
    pub fn open(db: Database) -> Result<Self, StoreError> {
        Self::open_inner(db, None)
    }

    /// Opens a store in a directory of its own (tools and tests).
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::storage)?;
        let db = Database::builder(dir)
            .worker_threads(switchyard_log_workers())
            .open()
            .map_err(StoreError::storage)?;
        Self::open(db)
    }

    /// Opens a store in a temporary directory (`memory://`).
    pub fn temporary() -> Result<Self, StoreError> {
        let dir = tempfile::tempdir().map_err(StoreError::storage)?;
        let db = Database::builder(dir.path())
            .temporary(true)
            .worker_threads(switchyard_log_workers())
            .open()
            .map_err(StoreError::storage)?;
        Self::open_inner(db, Some(dir))
    }

    fn open_inner(db: Database, temp: Option<tempfile::TempDir>) -> Result<Self, StoreError> {
        let state = db
            .keyspace("state", KeyspaceCreateOptions::default)
            .map_err(StoreError::storage)?;
        let checkpoints = db
            .keyspace("checkpoints", KeyspaceCreateOptions::default)
            .map_err(StoreError::storage)?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                state,
                checkpoints,
                _temp: temp,
            }),
        })
    }

    fn scan_sync(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        table.validate()?;
        let table_prefix_len = table.name().len() + 1;
        let full_prefix = state_key(table, prefix);
        let mut out = Vec::new();
        let iter: Box<dyn Iterator<Item = fjall::Guard>> = match after {
            Some(after) => {
                let mut start = state_key(table, after);
                start.push(0); // strictly after
                Box::new(self.inner.state.range(start..))
            }
            None => Box::new(self.inner.state.prefix(&full_prefix)),
        };
        for guard in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = guard.into_inner().map_err(StoreError::storage)?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            out.push((k[table_prefix_len..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

impl StateStore for EmbeddedStore {
    async fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        table.validate()?;
        let v = self
            .inner
            .state
            .get(state_key(table, key))
            .map_err(StoreError::storage)?;
        Ok(v.map(|v| v.to_vec()))
    }

    async fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let this = self.clone();
        let prefix = prefix.to_vec();
        let after = after.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || this.scan_sync(table, &prefix, after.as_deref(), limit))
            .await
            .map_err(StoreError::storage)?
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        for (table, _, _) in &batch.puts {
            table.validate()?;
        }
        for (table, _) in &batch.deletes {
            table.validate()?;
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut b = inner.db.batch();
            for (table, key, value) in batch.puts {
                b.insert(&inner.state, state_key(table, &key), value);
            }
            for (table, key) in batch.deletes {
                b.remove(&inner.state, state_key(table, &key));
            }
            for c in batch.checkpoints {
                b.insert(
                    &inner.checkpoints,
                    checkpoint_key(&c.group, c.topic, c.partition),
                    c.offset.to_be_bytes().to_vec(),
                );
            }
            b.durability(Some(PersistMode::SyncData))
                .commit()
                .map_err(StoreError::storage)
        })
        .await
        .map_err(StoreError::storage)?
    }

    async fn checkpoint(
        &self,
        group: &str,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, StoreError> {
        let v = self
            .inner
            .checkpoints
            .get(checkpoint_key(group, topic, partition))
            .map_err(StoreError::storage)?;
        Ok(v.and_then(|v| {
            v.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        }))
    }
}

/// One fjall background worker: see `switchyard_log::embedded::FJALL_WORKERS` for why (the
/// store does not depend on the log crate, so the number is repeated here with its reason).
const fn switchyard_log_workers() -> usize {
    1
}
