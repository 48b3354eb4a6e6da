//! [`StagedState`]: a processor's view of its state during one batch.
//!
//! Reads go to the store, with the batch's own pending writes visible (read-your-writes);
//! writes are staged in memory and become one [`WriteBatch`] that the runtime applies together
//! with the batch's input checkpoints. Each input record is processed inside its own layer on
//! top of the batch's: when the record succeeds its writes join the batch, when it is poison
//! they are dropped, so a dead-lettered record leaves no trace in state.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard_store::{Entry, StateStore, StoreError, Table, WriteBatch};

use crate::ProcessError;

/// A staged write: `Some(value)` puts, `None` deletes.
type Staged = Option<Vec<u8>>;

/// A key of a staged write.
type StagedKey = (Table, Vec<u8>);

/// Staged writes in key order (so the resulting batch is deterministic).
type Layer = BTreeMap<StagedKey, Staged>;

/// A processor's state during one batch: the store plus the writes staged so far.
///
/// Built by the runtime for every batch. It is public so that tests and tools can drive a
/// processor without the log ([`StagedState::new`], [`StagedState::into_write_batch`]).
#[derive(Debug)]
pub struct StagedState<'a, S> {
    store: &'a S,
    /// Writes of the records of this batch that succeeded.
    batch: Layer,
    /// Writes of the record being processed.
    record: Layer,
    /// Values read from the store during this batch. Only this processor writes its keys and
    /// only when the batch is applied, so a key's stored value cannot change while the batch
    /// runs: a key read by every record (a sweep cursor) costs one store read per batch.
    /// Staged writes are looked up first, so they always win over a remembered read.
    read: Mutex<HashMap<StagedKey, Staged>>,
}

impl<'a, S: StateStore> StagedState<'a, S> {
    /// Returns a view of `store` with nothing staged.
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            batch: Layer::new(),
            record: Layer::new(),
            read: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the value of `key` in `table`: the latest staged write, else the store's value.
    pub async fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let staged_key = (table, key.to_vec());
        if let Some(staged) = self.record.get(&staged_key) {
            return Ok(staged.clone());
        }
        if let Some(staged) = self.batch.get(&staged_key) {
            return Ok(staged.clone());
        }
        let remembered = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&staged_key)
            .cloned();
        if let Some(stored) = remembered {
            return Ok(stored);
        }
        let stored = self.store.get(table, key).await?;
        self.read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(staged_key, stored.clone());
        Ok(stored)
    }

    /// Stages `key` = `value` in `table`.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.record.insert((table, key.into()), Some(value.into()));
    }

    /// Returns the value of `key` in `table` parsed as JSON, as [`StagedState::get`] reads it.
    ///
    /// # Errors
    ///
    /// A failed read is [`ProcessError::Store`]; a stored entry that does not parse is
    /// [`ProcessError::Fatal`] (the processor wrote it itself, so its state is corrupt).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, ProcessError> {
        match self.get(table, key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ProcessError::fatal(format!("stored {table} entry does not parse: {e}"))
            }),
        }
    }

    /// Stages `key` = `value` serialised as JSON in `table`.
    ///
    /// # Errors
    ///
    /// A value that does not serialise is [`ProcessError::Fatal`] (nothing is staged).
    pub fn put_json<T: Serialize>(
        &mut self,
        table: Table,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) -> Result<(), ProcessError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ProcessError::fatal(format!("cannot serialise {table} state: {e}")))?;
        self.put(table, key, bytes);
        Ok(())
    }

    /// Stages the deletion of `key` from `table`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.record.insert((table, key.into()), None);
    }

    /// Returns up to `limit` entries of `table` whose key starts with `prefix`, in key order,
    /// strictly after `after` when given, with the staged writes applied (a staged put shows
    /// up, a staged delete hides the stored entry).
    pub async fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A cursor before the prefix means "from the start of the prefix"; one past every key
        // of the prefix means there is nothing left.
        let after = after.filter(|after| *after >= prefix);
        if after.is_some_and(|after| !after.starts_with(prefix)) {
            return Ok(Vec::new());
        }
        // The staged writes in range, the record's layer over the batch's.
        let mut staged: BTreeMap<Vec<u8>, Staged> = BTreeMap::new();
        for layer in [&self.batch, &self.record] {
            for ((staged_table, key), value) in layer.range(range_of(table, prefix, after)) {
                if *staged_table != table || !key.starts_with(prefix) {
                    break;
                }
                staged.insert(key.clone(), value.clone());
            }
        }
        // Each staged key can hide or replace at most one stored key, so the first
        // `limit + staged.len()` stored keys contain every stored key of the merged first
        // `limit` (a stored key further down has more than `limit` survivors before it).
        let fetched = self
            .store
            .scan_prefix(table, prefix, after, limit.saturating_add(staged.len()))
            .await?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = fetched.into_iter().collect();
        for (key, value) in staged {
            match value {
                Some(value) => {
                    merged.insert(key, value);
                }
                None => {
                    merged.remove(&key);
                }
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Returns the number of writes staged by the batch's successful records.
    pub fn staged_writes(&self) -> usize {
        self.batch.len()
    }

    /// Starts a record: its writes are kept apart until [`StagedState::commit_record`].
    pub(crate) fn begin_record(&mut self) {
        self.record.clear();
    }

    /// Adds the current record's writes to the batch.
    pub fn commit_record(&mut self) {
        let record = std::mem::take(&mut self.record);
        self.batch.extend(record);
    }

    /// Drops the current record's writes (it is being dead-lettered).
    pub fn rollback_record(&mut self) {
        self.record.clear();
    }

    /// Returns the staged writes of the committed records as a [`WriteBatch`] (no checkpoints:
    /// the runtime adds them). The current record's uncommitted writes are not included.
    pub fn into_write_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for ((table, key), value) in self.batch {
            match value {
                Some(value) => batch.put(table, key, value),
                None => batch.delete(table, key),
            };
        }
        batch
    }
}

/// The staged keys of `table` at or after `prefix`, strictly after `after` when given.
fn range_of(
    table: Table,
    prefix: &[u8],
    after: Option<&[u8]>,
) -> (Bound<StagedKey>, Bound<StagedKey>) {
    let start = match after {
        Some(after) => Bound::Excluded((table, after.to_vec())),
        None => Bound::Included((table, prefix.to_vec())),
    };
    let end = match next_prefix(prefix) {
        Some(end) => Bound::Excluded((table, end)),
        None => Bound::Unbounded,
    };
    (start, end)
}

/// Returns the smallest key greater than every key that starts with `prefix`, if any.
fn next_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_prefix_carries() {
        assert_eq!(next_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(next_prefix(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(next_prefix(&[0xFF, 0xFF]), None);
        assert_eq!(next_prefix(b""), None);
    }
}
