//! The ScyllaDB state store (feature `scylla`), for the distributed deployment.
//!
//! **Untested here**: ScyllaDB cannot be installed on the machines this was written on. The
//! state-store contract suite (`switchyard-testkit`) runs against it wherever `SCYLLA_URI` is set
//! (`crates/store/tests/it/scylla.rs`); without it those tests are reported as ignored, never as
//! passed.
//!
//! Layout (`schemas/scylla/state_store.cql`, compiled in and executed by [`ScyllaStore::connect`]):
//! - `state ((tbl, bucket), k) → v`: a key of a store [`Table`] lives in bucket
//!   `fnv1a32(key) % 16` of that table, clustered by key (blobs compare bytewise, as the embedded
//!   store orders keys). `get` reads one row of one partition; `scan_prefix` runs the same key
//!   range on the 16 partitions of the table (paged by the driver) and merges them in key order.
//! - `checkpoints ((grp), topic, part) → next_offset`.
//!
//! What the port's promises become here:
//! - `apply` is one LOGGED batch: once it returns, every write and checkpoint of the batch will
//!   be applied (the batch log replays a half-applied batch), so state never outlives or lags its
//!   checkpoint after a crash. It is **not isolated**: a concurrent reader may see some of the
//!   batch's writes before the others. Within a batch the embedded store's order holds (puts in
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

use std::collections::BTreeMap;
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

use crate::{Entry, StateStore, StoreError, Table, WriteBatch};

/// The CQL schema, statement by statement (`schemas/scylla/state_store.cql`).
pub const SCHEMA_CQL: &str = include_str!("../../../schemas/scylla/state_store.cql");

/// Buckets (partitions) per store table. Part of the stored format.
pub const BUCKETS: i32 = 16;

/// The most writes one `apply` may carry (after folding writes to the same key).
pub const MAX_BATCH_STATEMENTS: usize = 4096;

/// About the most bytes of keys and values one `apply` may carry: ScyllaDB refuses a batch above
/// `batch_size_fail_threshold_in_kb` (1024 KiB by default); this stays under it with room for the
/// statements' framing.
pub const MAX_BATCH_BYTES: usize = 900 * 1024;

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

/// The statements of [`SCHEMA_CQL`]: `--` comments removed, split at `;`, trimmed, non-empty.
pub fn schema_statements() -> Vec<String> {
    let without_comments: String = SCHEMA_CQL
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The bucket of a key: FNV-1a (32 bits) of its bytes, mod [`BUCKETS`].
pub fn bucket_of(key: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // BUCKETS is positive and small: the remainder fits an i32.
    i32::try_from(h % BUCKETS.unsigned_abs()).unwrap_or(0)
}

/// The smallest key greater than every key that starts with `prefix`, if there is one (none for
/// the empty prefix or a prefix of 0xFF bytes only).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Which of the four scan statements a scan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScanShape {
    /// `k > ?` (after a cursor) rather than `k >= ?` (from the prefix).
    exclusive_start: bool,
    /// `k < ?` bounds the range.
    bounded: bool,
}

impl ScanShape {
    const ALL: [ScanShape; 4] = [
        ScanShape {
            exclusive_start: false,
            bounded: false,
        },
        ScanShape {
            exclusive_start: false,
            bounded: true,
        },
        ScanShape {
            exclusive_start: true,
            bounded: false,
        },
        ScanShape {
            exclusive_start: true,
            bounded: true,
        },
    ];

    fn index(self) -> usize {
        usize::from(self.exclusive_start) * 2 + usize::from(self.bounded)
    }

    fn cql(self) -> String {
        let start = if self.exclusive_start { ">" } else { ">=" };
        let end = if self.bounded { " AND k < ?" } else { "" };
        format!("SELECT k, v FROM state WHERE tbl = ? AND bucket = ? AND k {start} ?{end}")
    }
}

/// The range a scan covers: the start key, whether it is exclusive, and the end (exclusive).
fn scan_range(prefix: &[u8], after: Option<&[u8]>) -> (Vec<u8>, bool, Option<Vec<u8>>) {
    let end = prefix_successor(prefix);
    match after {
        Some(after) if after >= prefix => (after.to_vec(), true, end),
        _ => (prefix.to_vec(), false, end),
    }
}

fn is_valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
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
    /// missing and prepares the statements.
    pub async fn connect(options: &ScyllaOptions) -> Result<Self, StoreError> {
        if !is_valid_keyspace(&options.keyspace) {
            return Err(StoreError::Invalid(format!(
                "invalid keyspace {:?} (1 to 48 letters, digits or `_`)",
                options.keyspace
            )));
        }
        let session = connect_session(&options.nodes).await?;
        let found = session
            .query_unpaged(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (options.keyspace.as_str(),),
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
                ks = options.keyspace,
                nodes = options.nodes.join(","),
            )));
        }
        session
            .use_keyspace(options.keyspace.as_str(), false)
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
            async move { session.prepare(cql).await.map_err(StoreError::storage) }
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
            let mut scan = prepare(shape.cql()).await?;
            scan.set_page_size(SCAN_PAGE_ROWS);
            scans.push(scan);
        }
        let scans: [PreparedStatement; 4] = scans
            .try_into()
            .map_err(|_| StoreError::Invalid("scan statements".into()))?;
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                keyspace: options.keyspace.clone(),
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

/// A batch folded to one write per key, in the embedded store's order.
#[derive(Debug, Default)]
struct Folded {
    state: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    checkpoints: BTreeMap<(String, Topic, u32), u64>,
}

fn fold(batch: WriteBatch) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    for (table, key, value) in batch.puts {
        table.validate()?;
        folded.state.insert((table, key), Some(value));
    }
    for (table, key) in batch.deletes {
        table.validate()?;
        folded.state.insert((table, key), None);
    }
    for c in batch.checkpoints {
        folded
            .checkpoints
            .insert((c.group, c.topic, c.partition), c.offset);
    }
    let statements = folded.state.len() + folded.checkpoints.len();
    if statements > MAX_BATCH_STATEMENTS {
        return Err(StoreError::Invalid(format!(
            "a ScyllaDB batch holds at most {MAX_BATCH_STATEMENTS} writes; this one has {statements}"
        )));
    }
    let bytes: usize = folded
        .state
        .iter()
        .map(|((table, key), value)| {
            table.name().len() + key.len() + value.as_ref().map_or(0, Vec::len)
        })
        .sum::<usize>()
        + folded
            .checkpoints
            .keys()
            .map(|(group, topic, _)| group.len() + topic.name().len() + 12)
            .sum::<usize>();
    if bytes > MAX_BATCH_BYTES {
        return Err(StoreError::Invalid(format!(
            "a ScyllaDB batch carries at most {MAX_BATCH_BYTES} bytes; this one has {bytes}"
        )));
    }
    Ok(folded)
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
        let statement = &self.inner.scans[shape.index()];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_is_two_create_if_not_exists_statements() {
        let statements = schema_statements();
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS state ("));
        assert!(statements[0].contains("PRIMARY KEY ((tbl, bucket), k)"));
        assert!(statements[0].ends_with("WITH CLUSTERING ORDER BY (k ASC)"));
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS checkpoints ("));
        assert!(statements.iter().all(|s| !s.contains("--")));
    }

    #[test]
    fn the_schema_names_every_column_the_statements_use() {
        let schema = schema_statements().join(" ");
        for column in [
            "tbl text",
            "bucket int",
            "k blob",
            "v blob",
            "grp text",
            "topic text",
        ] {
            assert!(schema.contains(column), "{column}");
        }
        assert!(schema.contains("part int") && schema.contains("next_offset bigint"));
        for shape in ScanShape::ALL {
            assert_eq!(ScanShape::ALL[shape.index()], shape);
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // FNV-1a of "" is the offset basis; of "a" a published test vector.
        assert_eq!(bucket_of(b""), (0x811c_9dc5_u32 % 16) as i32);
        assert_eq!(bucket_of(b"a"), (0xe40c_292c_u32 % 16) as i32);
        let mut seen = [0_u32; 16];
        for i in 0..1600 {
            seen[bucket_of(format!("session/{i}").as_bytes()) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn prefix_successor_bounds_exactly_the_prefixed_keys() {
        assert_eq!(prefix_successor(b"session/"), Some(b"session0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
        let end = prefix_successor(b"ab").unwrap_or_default();
        for key in [&b"ab"[..], b"ab\x00", b"ab\xff\xff", b"abz"] {
            assert!(key >= &b"ab"[..] && key < end.as_slice(), "{key:?}");
        }
        for key in [&b"aa\xff"[..], b"ac", b"b"] {
            assert!(!(key >= &b"ab"[..] && key < end.as_slice()), "{key:?}");
        }
    }

    #[test]
    fn scans_start_after_the_cursor_or_at_the_prefix() {
        assert_eq!(
            scan_range(b"s/", Some(b"s/5")),
            (b"s/5".to_vec(), true, Some(b"s0".to_vec()))
        );
        assert_eq!(
            scan_range(b"s/", None),
            (b"s/".to_vec(), false, Some(b"s0".to_vec()))
        );
        // A cursor before the prefix does not widen the scan.
        assert_eq!(
            scan_range(b"s/", Some(b"a")),
            (b"s/".to_vec(), false, Some(b"s0".to_vec()))
        );
        assert_eq!(scan_range(b"", Some(b"k")), (b"k".to_vec(), true, None));
    }

    #[test]
    fn a_batch_folds_to_the_embedded_order() -> Result<(), StoreError> {
        const T: Table = Table::new("t.a");
        let mut b = WriteBatch::new();
        b.put(T, "k", "1")
            .put(T, "k", "2")
            .put(T, "gone", "x")
            .delete(T, "gone")
            .checkpoint("g", Topic::Feedback, 0, 5)
            .checkpoint("g", Topic::Feedback, 0, 7);
        let folded = fold(b)?;
        assert_eq!(
            folded.state.get(&(T, b"k".to_vec())),
            Some(&Some(b"2".to_vec()))
        );
        assert_eq!(folded.state.get(&(T, b"gone".to_vec())), Some(&None));
        assert_eq!(
            folded
                .checkpoints
                .get(&("g".to_owned(), Topic::Feedback, 0)),
            Some(&7)
        );
        Ok(())
    }

    #[test]
    fn oversized_and_invalid_batches_are_refused_before_sending() {
        let mut b = WriteBatch::new();
        for i in 0..=MAX_BATCH_STATEMENTS {
            b.put(Table::new("t.a"), format!("{i}"), "v");
        }
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
        let mut b = WriteBatch::new();
        b.put(Table::new("t.a"), "big", vec![0_u8; MAX_BATCH_BYTES + 1]);
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
        let mut b = WriteBatch::new();
        b.put(Table::new("Bad!"), "k", "v");
        assert!(matches!(fold(b), Err(StoreError::Invalid(_))));
    }
}
