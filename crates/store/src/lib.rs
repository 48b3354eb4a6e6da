//! switchyard-store: the `StateStore` port and its embedded backend.
//!
//! Place in the pipeline: processors keep their state here (session → decisions index, rolling
//! windows, the projector's materialised view), and the control plane keeps its read models
//! (API keys, routes, pins, the constraints audit chain). A [`WriteBatch`] carries state writes
//! *and* the consumer checkpoints they were computed from; [`StateStore::apply`] makes both
//! durable atomically, so after a crash a processor resumes exactly from the input that
//! produced its last durable state (Quickwit's "published atomically with the checkpoint").
//!
//! Backends: [`EmbeddedStore`] (fjall, in the data directory, in the same database as the
//! embedded log; `memory://` is the same engine in a temporary directory), and with the
//! `scylla` feature `scylla::ScyllaStore` (distributed mode; **untested here**, see its module
//! docs). Both run the same contract suite (`switchyard-testkit`). ScyllaDB's batches are atomic
//! but not isolated and it has no cross-partition transactions, which is why the processor
//! contract also requires idempotence. [`AnyStore`] is the backend the configuration picked, as
//! one type.

mod any;
mod embedded;
#[cfg(feature = "scylla")]
pub mod scylla;
pub mod scylla_layout;

use std::fmt;
use std::future::Future;

pub use any::AnyStore;
pub use embedded::EmbeddedStore;
pub use switchyard_events::Topic;

/// A key and its value, as returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A named table of the state store. Tables are declared as constants by their owners, never
/// spelled inline: `pub const SESSIONS: Table = Table::new("session_nps.sessions");`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(&'static str);

impl Table {
    /// Declares a table. Names are `[a-z0-9_.]`, at most 64 bytes (checked when used).
    pub const fn new(name: &'static str) -> Self {
        Table(name)
    }

    /// Returns the table's name.
    pub const fn name(self) -> &'static str {
        self.0
    }

    fn validate(self) -> Result<(), StoreError> {
        let ok = !self.0.is_empty()
            && self.0.len() <= 64
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if ok {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "table name `{}` must be 1..=64 of [a-z0-9_.]",
                self.0
            )))
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A consumer position recorded with state: the next offset of `(topic, partition)` that the
/// processor `group` has not yet folded into its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The processor's consumer group.
    pub group: String,
    /// Input topic.
    pub topic: Topic,
    /// Input partition.
    pub partition: u32,
    /// Next offset to process.
    pub offset: u64,
}

/// State writes and checkpoints applied together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    puts: Vec<(Table, Vec<u8>, Vec<u8>)>,
    deletes: Vec<(Table, Vec<u8>)>,
    checkpoints: Vec<Checkpoint>,
}

impl WriteBatch {
    /// Returns an empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` in `table`.
    pub fn put(
        &mut self,
        table: Table,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.puts.push((table, key.into(), value.into()));
        self
    }

    /// Deletes `key` from `table`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) -> &mut Self {
        self.deletes.push((table, key.into()));
        self
    }

    /// Records a consumer checkpoint.
    pub fn checkpoint(
        &mut self,
        group: impl Into<String>,
        topic: Topic,
        partition: u32,
        offset: u64,
    ) -> &mut Self {
        self.checkpoints.push(Checkpoint {
            group: group.into(),
            topic,
            partition,
            offset,
        });
        self
    }

    /// Returns whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty() && self.checkpoints.is_empty()
    }

    /// Returns the number of writes.
    pub fn len(&self) -> usize {
        self.puts.len() + self.deletes.len() + self.checkpoints.len()
    }
}

/// Errors of the state-store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed.
    #[error("state store storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request is invalid.
    #[error("invalid state store request: {0}")]
    Invalid(String),
    /// The store was closed.
    #[error("the state store is closed")]
    Closed,
}

impl StoreError {
    /// Returns whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Storage(_))
    }

    /// Returns a low-cardinality label for error metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Storage(_) => "storage",
            StoreError::Invalid(_) => "invalid",
            StoreError::Closed => "closed",
        }
    }

    pub(crate) fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Storage(Box::new(e))
    }
}

/// The state-store port. Implemented by every backend; exercised by one contract suite.
pub trait StateStore: Clone + Send + Sync + 'static {
    /// Returns the value of `key` in `table`.
    fn get(
        &self,
        table: Table,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Returns up to `limit` entries of `table` whose key starts with `prefix`, in key order,
    /// starting after `after` when given (pagination).
    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// Applies the batch's writes and checkpoints atomically and durably.
    fn apply(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Returns the checkpoint of `group` for `(topic, partition)`.
    fn checkpoint(
        &self,
        group: &str,
        topic: Topic,
        partition: u32,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
}
