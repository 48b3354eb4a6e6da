//! [`AnyStore`]: the state-store backend the configuration picked, as one type.
//!
//! The binary picks its store at run time (`store.url`), while every processor and read model is
//! generic over [`StateStore`]. Dispatching here once keeps them monomorphised a single time and
//! keeps `cfg(feature = "scylla")` out of the callers: without the feature, [`AnyStore::scylla`]
//! returns a clear error instead of the variant not existing (as `switchyard_log::AnyLog` does
//! for Kafka).

use switchyard_events::Topic;

use crate::{EmbeddedStore, Entry, StateStore, StoreError, Table, WriteBatch};

/// The state store of this process: embedded (single node) or ScyllaDB (distributed).
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The embedded store ([`EmbeddedStore`]).
    Embedded(EmbeddedStore),
    /// The ScyllaDB backend (untested here: see `crate::scylla`).
    #[cfg(feature = "scylla")]
    Scylla(crate::scylla::ScyllaStore),
}

impl AnyStore {
    /// Connects to ScyllaDB (`store.url = "scylla://host:port[,host:port]/keyspace"`): the
    /// keyspace must exist; missing tables are created.
    #[cfg(feature = "scylla")]
    pub async fn scylla(nodes: &[String], keyspace: &str) -> Result<Self, StoreError> {
        let options = crate::scylla::ScyllaOptions {
            nodes: nodes.to_vec(),
            keyspace: keyspace.to_owned(),
        };
        crate::scylla::ScyllaStore::connect(&options)
            .await
            .map(AnyStore::Scylla)
    }

    /// Without the `scylla` feature: an error that says how to get it.
    #[cfg(not(feature = "scylla"))]
    pub async fn scylla(nodes: &[String], keyspace: &str) -> Result<Self, StoreError> {
        Err(StoreError::Invalid(format!(
            "store.url names ScyllaDB ({}/{keyspace}), but this binary was built without the \
             `scylla` cargo feature; rebuild with `cargo build -p switchyard --features scylla` \
             (the ScyllaDB backend is untested: see the README)",
            nodes.join(",")
        )))
    }

    /// Returns the embedded store, when that is the backend.
    pub fn as_embedded(&self) -> Option<&EmbeddedStore> {
        match self {
            AnyStore::Embedded(store) => Some(store),
            #[cfg(feature = "scylla")]
            AnyStore::Scylla(_) => None,
        }
    }

    /// Returns the backend's name: `embedded` or `scylla`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Embedded(_) => "embedded",
            #[cfg(feature = "scylla")]
            AnyStore::Scylla(_) => "scylla",
        }
    }
}

impl From<EmbeddedStore> for AnyStore {
    fn from(store: EmbeddedStore) -> Self {
        AnyStore::Embedded(store)
    }
}

/// Runs `$body` with `$store` bound to the backend inside `$self`.
macro_rules! dispatch {
    ($self:expr, $store:ident => $body:expr) => {
        match $self {
            AnyStore::Embedded($store) => $body,
            #[cfg(feature = "scylla")]
            AnyStore::Scylla($store) => $body,
        }
    };
}

impl StateStore for AnyStore {
    async fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, store => store.get(table, key).await)
    }

    async fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        dispatch!(self, store => store.scan_prefix(table, prefix, after, limit).await)
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        dispatch!(self, store => store.apply(batch).await)
    }

    async fn checkpoint(
        &self,
        group: &str,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, StoreError> {
        dispatch!(self, store => store.checkpoint(group, topic, partition).await)
    }
}
