//! The ScyllaDB state store (feature `scylla`), for the distributed deployment.
//!
//! **Untested here**: ScyllaDB cannot be installed on the machines this was written on. The
//! state-store contract suite (`switchyard-testkit`) runs against it wherever `SCYLLA_URI` is set
//! (`crates/store/tests/it/scylla.rs`); without it those tests are reported as ignored, never as
//! passed.
//!
//! Layout (`crate::scylla_layout`; `schemas/scylla/state_store.cql`, compiled in and executed by
//! [`ScyllaStore::connect`]):
//! - `state ((tbl, bucket), k) → v`: a key of a store [`Table`] lives in bucket
//!   `fnv1a32(key) % 16` of that table, clustered by key (blobs compare bytewise, as the embedded
//!   store orders keys). `get` reads one row of one partition; `scan_prefix` runs the same key
//!   range on the 16 partitions of the table (paged by the driver) and merges them in key order.
//! - `checkpoints ((grp), topic, part) → next_offset`.
//!
//! What the port's promises become here:
//! - `apply` is one LOGGED batch: once it returns, every write and checkpoint of the batch will
//!   be applied (the batch log replays a half-applied batch), so state and its checkpoint end up
//!   together even after a crash. It is **not isolated**: a concurrent reader may see some of the
//!   batch's writes before the others. An `apply` that fails (a timeout) may still be applied
//!   later; the processors' idempotence under redelivery is what makes retrying it safe. Within a batch the embedded store's order holds (puts in
//!   order, then deletes; the last write to a key wins), because the batch is folded to one write
//!   per key before it is sent (CQL gives every statement of a batch the same timestamp, and a
//!   tie is not resolved by statement order).
//! - Batches are bounded: at most [`MAX_BATCH_STATEMENTS`] writes after folding and about
//!   [`MAX_BATCH_BYTES`] of keys and values (ScyllaDB's default `batch_size_fail_threshold_in_kb`
//!   is 1024); a larger batch is refused as [`StoreError::Invalid`] before anything is written.
//! - Durability is the cluster's: writes and reads use `LOCAL_QUORUM`, so with a replication
//!   factor of 3 an applied batch survives the loss of one replica and a read sees the latest
//!   applied write. Write timestamps come from a monotonic client-side generator, so writes of
//!   one process apply in the order it made them; two processes writing the same key (a
//!   partition that moved between processors) are ordered by their clocks.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::try_join_all;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;
use switchyard_events::Topic;

pub use crate::scylla_layout::{
    BUCKETS, MAX_BATCH_BYTES, MAX_BATCH_STATEMENTS, SCHEMA_CQL, schema_statements,
};
use crate::scylla_layout::{ScanShape, bucket_of, fold, is_valid_keyspace, scan_range};
use crate::{Entry, StateStore, StoreError, Table, WriteBatch};

/// Rows fetched per page by a scan (per bucket).
const SCAN_PAGE_ROWS: i32 = 1000;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaOptions {
    /// `host:port` contact points.
    pub nodes: Vec<String>,
    /// The keyspace holding the tables; it must exist (see [`ScyllaStore::create_keyspace`]).
    pub keyspace: String,
}

/// The ScyllaDB state store. Cheap to clone.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    keyspace: String,
    get: PreparedStatement,
    put: PreparedStatement,
    delete: PreparedStatement,
    put_checkpoint: PreparedStatement,
    get_checkpoint: PreparedStatement,
    /// Indexed by [`ScanShape::index`].
    scans: [PreparedStatement; 4],
}

impl fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.inner.keyspace)
            .finish_non_exhaustive()
    }
}

async fn connect_session(nodes: &[String]) -> Result<Session, StoreError> {
    if nodes.is_empty() {
        return Err(StoreError::Invalid(
            "no ScyllaDB contact point (store.url = \"scylla://host:port/keyspace\")".into(),
        ));
    }
    let profile = ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .build()
        .into_handle();
    SessionBuilder::new()
        .known_nodes(nodes)
        .default_execution_profile_handle(profile)
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
        .build()
        .await
        .map_err(StoreError::storage)
}

impl ScyllaStore {
    /// Connects, checks that the keyspace exists, creates the tables of [`SCHEMA_CQL`] that are
    /// missing and prepares the statements. Several processes starting at once race on those
    /// `CREATE TABLE IF NOT EXISTS`; on a cluster whose schema changes are not Raft-managed that
    /// can leave conflicting table ids, so a deployment creates the tables once beforehand
    /// (`cqlsh -k <keyspace> -f schemas/scylla/state_store.cql`).
    pub async fn connect(options: &ScyllaOptions) -> Result<Self, StoreError> {
        if !is_valid_keyspace(&options.keyspace) {
            return Err(StoreError::Invalid(format!(
                "invalid keyspace {:?} (1 to 48 letters, digits or `_`)",
                options.keyspace
            )));
        }
        // An unquoted CQL identifier is case-insensitive: the server keeps it in lower case.
        let keyspace = options.keyspace.to_ascii_lowercase();
        let session = connect_session(&options.nodes).await?;
        let found = session
            .query_unpaged(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (keyspace.as_str(),),
            )
            .await
            .map_err(StoreError::storage)?
            .into_rows_result()
            .map_err(StoreError::storage)?
            .rows_num();
        if found == 0 {
            return Err(StoreError::Invalid(format!(
                "keyspace `{ks}` does not exist on {nodes}: create it with the replication you \
                 want, e.g. CREATE KEYSPACE {ks} WITH replication = {{'class': \
                 'NetworkTopologyStrategy', 'replication_factor': 3}} (see \
                 schemas/scylla/state_store.cql)",
                ks = keyspace,
                nodes = options.nodes.join(","),
            )));
        }
        session
            .use_keyspace(keyspace.as_str(), false)
            .await
            .map_err(StoreError::storage)?;
        for statement in schema_statements() {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(StoreError::storage)?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(StoreError::storage)?;

        let prepare = |cql: String| {
            let session = &session;
            async move {
                let mut statement = session.prepare(cql).await.map_err(StoreError::storage)?;
                // Reads, and writes with client-side timestamps: safe for the driver to retry.
                statement.set_is_idempotent(true);
                Ok::<_, StoreError>(statement)
            }
        };
        let get =
            prepare("SELECT v FROM state WHERE tbl = ? AND bucket = ? AND k = ?".into()).await?;
        let put =
            prepare("INSERT INTO state (tbl, bucket, k, v) VALUES (?, ?, ?, ?)".into()).await?;
        let delete =
            prepare("DELETE FROM state WHERE tbl = ? AND bucket = ? AND k = ?".into()).await?;
        let put_checkpoint = prepare(
            "INSERT INTO checkpoints (grp, topic, part, next_offset) VALUES (?, ?, ?, ?)".into(),
        )
        .await?;
        let get_checkpoint = prepare(
            "SELECT next_offset FROM checkpoints WHERE grp = ? AND topic = ? AND part = ?".into(),
        )
        .await?;
        let mut scans = Vec::with_capacity(ScanShape::ALL.len());
        for shape in ScanShape::ALL {
            scans.push(prepare(shape.cql()).await?);
        }
        let scans: [PreparedStatement; 4] = scans
            .try_into()
            .map_err(|_| StoreError::Invalid("scan statements".into()))?;
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                keyspace,
                get,
                put,
                delete,
                put_checkpoint,
                get_checkpoint,
                scans,
            }),
        })
    }

    /// Creates `keyspace` with `SimpleStrategy` and `replication_factor` if it does not exist:
    /// for development and the contract tests. A production keyspace is created by its operator,
    /// with `NetworkTopologyStrategy`.
    pub async fn create_keyspace(
        nodes: &[String],
        keyspace: &str,
        replication_factor: u32,
    ) -> Result<(), StoreError> {
        if !is_valid_keyspace(keyspace) || replication_factor == 0 {
            return Err(StoreError::Invalid(format!(
                "cannot create keyspace {keyspace:?} with replication factor {replication_factor}"
            )));
        }
        let session = connect_session(nodes).await?;
        session
            .query_unpaged(
                format!(
                    "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
                     {{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
                ),
                (),
            )
            .await
            .map_err(StoreError::storage)?;
        session
            .await_schema_agreement()
            .await
            .map_err(StoreError::storage)?;
        Ok(())
    }

    /// Drops `keyspace` and everything in it (the contract tests clean up with it).
    pub async fn drop_keyspace(nodes: &[String], keyspace: &str) -> Result<(), StoreError> {
        if !is_valid_keyspace(keyspace) {
            return Err(StoreError::Invalid(format!(
                "invalid keyspace {keyspace:?}"
            )));
        }
        let session = connect_session(nodes).await?;
        session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
            .await
            .map_err(StoreError::storage)?;
        Ok(())
    }

    /// Returns the keyspace.
    pub fn keyspace(&self) -> &str {
        &self.inner.keyspace
    }
}

fn to_i32(what: &str, v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} does not fit a CQL int")))
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Invalid(format!("{what} {v} does not fit a CQL bigint")))
}

impl StateStore for ScyllaStore {
    async fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        table.validate()?;
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.get, (table.name(), bucket_of(key), key))
            .await
            .map_err(StoreError::storage)?
            .into_rows_result()
            .map_err(StoreError::storage)?;
        let row = result
            .maybe_first_row::<(Vec<u8>,)>()
            .map_err(StoreError::storage)?;
        Ok(row.map(|(v,)| v))
    }

    async fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        table.validate()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (start, exclusive_start, end) = scan_range(prefix, after);
        if end.as_ref().is_some_and(|end| start >= *end) {
            return Ok(Vec::new());
        }
        let shape = ScanShape {
            exclusive_start,
            bounded: end.is_some(),
        };
        // No bucket contributes more than `limit` rows to the merged page: one round trip each
        // for a page of up to SCAN_PAGE_ROWS.
        let mut statement = self.inner.scans[shape.index()].clone();
        statement.set_page_size(
            i32::try_from(limit)
                .unwrap_or(SCAN_PAGE_ROWS)
                .clamp(1, SCAN_PAGE_ROWS),
        );
        let statement = &statement;
        let session = &self.inner.session;
        // One ordered stream per bucket; every key is in exactly one bucket, so merging them by
        // key yields the table's keys in order without duplicates.
        let mut streams = try_join_all((0..BUCKETS).map(|bucket| {
            let values: Vec<CqlValue> = [
                CqlValue::Text(table.name().to_owned()),
                CqlValue::Int(bucket),
                CqlValue::Blob(start.clone()),
            ]
            .into_iter()
            .chain(end.clone().map(CqlValue::Blob))
            .collect();
            async move {
                session
                    .execute_iter(statement.clone(), values)
                    .await
                    .map_err(StoreError::storage)?
                    .rows_stream::<(Vec<u8>, Vec<u8>)>()
                    .map_err(StoreError::storage)
            }
        }))
        .await?;
        let mut heads: Vec<Option<Entry>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(
                stream
                    .next()
                    .await
                    .transpose()
                    .map_err(StoreError::storage)?,
            );
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(i) = heads
                .iter()
                .enumerate()
                .filter_map(|(i, head)| head.as_ref().map(|(k, _)| (i, k)))
                .min_by(|a, b| a.1.cmp(b.1))
                .map(|(i, _)| i)
            else {
                break;
            };
            let next = match streams.get_mut(i) {
                Some(stream) => stream
                    .next()
                    .await
                    .transpose()
                    .map_err(StoreError::storage)?,
                None => None,
            };
            if let Some(entry) = heads
                .get_mut(i)
                .and_then(|head| std::mem::replace(head, next))
            {
                out.push(entry);
            }
        }
        Ok(out)
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let folded = fold(batch)?;
        let inner = &self.inner;
        let mut cql = Batch::new(BatchType::Logged);
        cql.set_is_idempotent(true);
        let mut values: Vec<Vec<CqlValue>> =
            Vec::with_capacity(folded.state.len() + folded.checkpoints.len());
        for ((table, key), value) in folded.state {
            let row = vec![
                CqlValue::Text(table.name().to_owned()),
                CqlValue::Int(bucket_of(&key)),
                CqlValue::Blob(key),
            ];
            match value {
                Some(value) => {
                    cql.append_statement(inner.put.clone());
                    values.push(row.into_iter().chain([CqlValue::Blob(value)]).collect());
                }
                None => {
                    cql.append_statement(inner.delete.clone());
                    values.push(row);
                }
            }
        }
        for ((group, topic, partition), offset) in folded.checkpoints {
            cql.append_statement(inner.put_checkpoint.clone());
            values.push(vec![
                CqlValue::Text(group),
                CqlValue::Text(topic.name().to_owned()),
                CqlValue::Int(to_i32("partition", partition)?),
                CqlValue::BigInt(to_i64("offset", offset)?),
            ]);
        }
        inner
            .session
            .batch(&cql, values)
            .await
            .map_err(StoreError::storage)?;
        Ok(())
    }

    async fn checkpoint(
        &self,
        group: &str,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .inner
            .session
            .execute_unpaged(
                &self.inner.get_checkpoint,
                (group, topic.name(), to_i32("partition", partition)?),
            )
            .await
            .map_err(StoreError::storage)?
            .into_rows_result()
            .map_err(StoreError::storage)?;
        let row = result
            .maybe_first_row::<(i64,)>()
            .map_err(StoreError::storage)?;
        row.map(|(offset,)| {
            u64::try_from(offset)
                .map_err(|_| StoreError::Invalid(format!("negative checkpoint offset {offset}")))
        })
        .transpose()
    }
}
