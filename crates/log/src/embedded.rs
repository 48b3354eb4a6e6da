//! The embedded backend: a durable event log in the data directory, on fjall (an LSM-tree
//! storage engine with a write-ahead journal and cross-keyspace atomic batches).
//!
//! # Layout
//! One fjall database per data directory, shared with the embedded state store. The log uses
//! four keyspaces:
//! - `log.<topic>.<partition>`, one keyspace per partition: `[offset u64 BE]` → encoded record
//!   (see [`encode_value`]). A keyspace per partition keeps every LSM tree's keys strictly
//!   increasing, so flushed tables never overlap and compaction moves them instead of
//!   rewriting them (a shared keyspace interleaved partitions and spent most of the CPU in
//!   compaction).
//! - `log_partitions`: `[topic code]` → the topic's partition count, fixed at creation so a
//!   config change never remaps keys.
//! - `log_starts`: `[topic code][partition]` → log start offset (moved by retention).
//! - `log_groups`: `[group][0xFF][topic code][partition]` → the group's committed offset.
//!
//! # Group commit
//! Every write goes through one writer thread. `append` hands its records to the thread and
//! waits; the thread takes everything queued (up to `group_commit_max_records` /
//! `max_bytes`), assigns offsets, writes one atomic batch, fdatasyncs the journal once, then
//! publishes the new high watermarks and answers every waiting caller. Callers on the request
//! path therefore never fsync themselves, and N concurrent producers share one fsync. Readers
//! see a record only after the batch that holds it is durable.
//!
//! # Crash safety
//! fjall recovers the journal on open; a torn batch is discarded whole. On open the high
//! watermark of each partition is recomputed from the last key present, so offsets continue
//! after the last durable record and an acknowledged record is never overwritten.
//!
//! # Time index
//! Each record stores the running maximum of timestamps in its partition, which is
//! non-decreasing in offset order, so `offset_for_time` is a binary search (Kafka's time index
//! has the same semantics). Retention deletes the prefix older than `retention`; compaction of
//! compacted topics keeps the latest record per key.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use switchyard_events::{Cleanup, Topic};
use tokio::sync::{oneshot, watch};

use crate::record::{GroupId, Header, Position, Record, StartFrom, StoredRecord, Watermarks};
use crate::{EventLog, LogError, Subscription, partition_for_key};

const PARTITIONS: &str = "log_partitions";
const STARTS: &str = "log_starts";
const GROUPS: &str = "log_groups";
const VALUE_FORMAT: u8 = 1;

/// fjall's background workers (flush and compaction). One, on purpose: with two or more, fjall
/// 3.1's worker 0 hands every compaction message back to the queue and picks it up again, a
/// busy loop that took 70% of both cores in the append benchmark (measured with perf). One
/// worker flushes and compacts in turn, which is all a log's sequential writes need.
pub const FJALL_WORKERS: usize = 1;

/// Returns the wall-clock time in milliseconds; the log stamps append time and applies retention
/// with it (processors never read it: they use event time).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// When a group commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fdatasync once per group commit: an acknowledged record survives power loss.
    Group,
    /// Leave data in OS buffers: survives a process crash, not a power loss (benchmarks).
    None,
}

/// Options of the embedded log.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Partitions of a topic created by this log (existing topics keep theirs).
    pub partitions: u32,
    /// Durability of a group commit.
    pub fsync: Fsync,
    /// Most records in one group commit.
    pub group_commit_max_records: usize,
    /// Most payload bytes in one group commit.
    pub group_commit_max_bytes: usize,
    /// How long the writer waits for more records once it has some (0 = never wait).
    pub group_commit_linger: Duration,
    /// Age after which records of delete-cleanup topics are removed.
    pub retention: Duration,
    /// Compacted topics keep a superseded record until the record that superseded it is this
    /// old: every record that was in force within this window stays readable (the audit
    /// horizon; Kafka's `min.compaction.lag.ms`, measured from the successor so that a record
    /// still in force at the start of the window is kept too).
    pub compaction_min_lag: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            partitions: 8,
            fsync: Fsync::Group,
            group_commit_max_records: 8192,
            group_commit_max_bytes: 8 << 20,
            group_commit_linger: Duration::ZERO,
            retention: Duration::from_secs(7 * 24 * 3600),
            compaction_min_lag: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Opens (creating if needed) the fjall database of a data directory.
///
/// The log and the state store share it, so a processor's state and checkpoint and the log's
/// group offsets live in one journal.
pub fn open_database(dir: &Path) -> Result<Database, LogError> {
    std::fs::create_dir_all(dir).map_err(LogError::storage)?;
    Database::builder(dir)
        .cache_size(64 << 20)
        .worker_threads(FJALL_WORKERS)
        .open()
        .map_err(|e| locked_or_storage(e, dir))
}

/// Opens a database in a fresh temporary directory, deleted when the database is dropped
/// (`memory://`: the real engine, no persistence).
pub fn open_temporary_database() -> Result<(Database, tempfile::TempDir), LogError> {
    let dir = tempfile::tempdir().map_err(LogError::storage)?;
    let db = Database::builder(dir.path())
        .temporary(true)
        .worker_threads(FJALL_WORKERS)
        .open()
        .map_err(|e| locked_or_storage(e, dir.path()))?;
    Ok((db, dir))
}

fn locked_or_storage(e: fjall::Error, dir: &Path) -> LogError {
    match e {
        fjall::Error::Locked => LogError::Locked {
            path: dir.to_path_buf(),
        },
        other => LogError::storage(other),
    }
}

type PartitionKey = (Topic, u32);

/// Per-partition state shared between the writer and the readers.
struct PartitionState {
    /// The partition's records (its own keyspace).
    records: Keyspace,
    /// Next offset to assign (writer only).
    next: AtomicU64,
    /// Durable high watermark: offsets below it are readable.
    high: AtomicU64,
    /// First offset still kept.
    start: AtomicU64,
    /// Running maximum timestamp (writer only).
    max_ts: AtomicU64,
}

#[derive(Debug, Default)]
struct GroupState {
    generation: u64,
    next_member: u64,
    members: BTreeMap<u64, Vec<Topic>>,
}

/// What the writer thread needs; it holds no handle to [`Shared`], so dropping the last
/// [`EmbeddedLog`] closes the channel, ends the writer and releases the database.
struct Core {
    db: Database,
    starts: Keyspace,
    groups_ks: Keyspace,
    topics: HashMap<Topic, u32>,
    parts: HashMap<PartitionKey, PartitionState>,
    /// Bumped after every durable group commit; readers wait on it.
    appended: watch::Sender<u64>,
    clock: WallClock,
    options: EmbeddedOptions,
    stats: LogStats,
    observer: std::sync::RwLock<Option<CommitObserver>>,
}

/// One durable group commit, reported to the [`CommitObserver`].
#[derive(Debug, Clone)]
pub struct GroupCommit {
    /// Records made durable, per topic.
    pub by_topic: Vec<(Topic, u64)>,
    /// Records made durable in all.
    pub records: u64,
    /// Time to write and sync the batch.
    pub took: Duration,
}

/// Called by the writer after every durable group commit (metrics); must be cheap.
pub type CommitObserver = Arc<dyn Fn(&GroupCommit) + Send + Sync>;

struct Shared {
    core: Arc<Core>,
    /// Consumer groups of this process.
    groups: Mutex<HashMap<GroupId, GroupState>>,
    /// Bumped on every membership change.
    rebalances: watch::Sender<u64>,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
    _temp: Option<tempfile::TempDir>,
}

/// Counters of the embedded log, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Records made durable.
    pub appended_records: AtomicU64,
    /// Group commits made.
    pub group_commits: AtomicU64,
    /// Records in the last group commit.
    pub last_group_records: AtomicU64,
    /// Records removed by retention and compaction.
    pub removed_records: AtomicU64,
}

/// Where an append's outcome is sent.
type AppendReply = oneshot::Sender<Result<Vec<Position>, LogError>>;

enum Command {
    Append {
        topic: Topic,
        records: Vec<Record>,
        reply: oneshot::Sender<Result<Vec<Position>, LogError>>,
    },
    Commit {
        key: Vec<u8>,
        offset: u64,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    Remove {
        keys: Vec<(PartitionKey, u64)>,
        starts: Vec<(PartitionKey, u64)>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

/// The embedded event log. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("options", &self.shared.core.options)
            .finish_non_exhaustive()
    }
}

fn record_key(offset: u64) -> [u8; 8] {
    offset.to_be_bytes()
}

fn partition_prefix(topic: Topic, partition: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = topic.code();
    k[1..5].copy_from_slice(&partition.to_be_bytes());
    k
}

fn group_key(group: &GroupId, topic: Topic, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.as_str().len() + 6);
    k.extend_from_slice(group.as_str().as_bytes());
    k.push(0xFF);
    k.extend_from_slice(&partition_prefix(topic, partition));
    k
}

fn offset_of_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn read_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// Encodes a stored record's value: format byte, timestamp, running max timestamp, key,
/// headers, payload (lengths as u32 BE; payload takes the rest).
fn encode_value(rec: &Record, timestamp: i64, max_ts: i64) -> Vec<u8> {
    let headers_len: usize = rec
        .headers
        .iter()
        .map(|h| 8 + h.name.len() + h.value.len())
        .sum();
    let mut v = Vec::with_capacity(1 + 16 + 4 + rec.key.len() + 4 + headers_len + rec.value.len());
    v.push(VALUE_FORMAT);
    v.extend_from_slice(&timestamp.to_be_bytes());
    v.extend_from_slice(&max_ts.to_be_bytes());
    v.extend_from_slice(&(rec.key.len() as u32).to_be_bytes());
    v.extend_from_slice(&rec.key);
    v.extend_from_slice(&(rec.headers.len() as u32).to_be_bytes());
    for h in &rec.headers {
        v.extend_from_slice(&(h.name.len() as u32).to_be_bytes());
        v.extend_from_slice(h.name.as_bytes());
        v.extend_from_slice(&(h.value.len() as u32).to_be_bytes());
        v.extend_from_slice(&h.value);
    }
    v.extend_from_slice(&rec.value);
    v
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

struct Decoded {
    timestamp: i64,
    max_ts: i64,
    key: Vec<u8>,
    headers: Vec<Header>,
    value: Vec<u8>,
}

fn decode_value(v: &[u8]) -> Option<Decoded> {
    let mut c = Cursor(v);
    if c.take(1)? != [VALUE_FORMAT] {
        return None;
    }
    let timestamp = c.i64()?;
    let max_ts = c.i64()?;
    let key_len = c.u32()? as usize;
    let key = c.take(key_len)?.to_vec();
    let header_count = c.u32()? as usize;
    let mut headers = Vec::with_capacity(header_count.min(64));
    for _ in 0..header_count {
        let n = c.u32()? as usize;
        let name = String::from_utf8(c.take(n)?.to_vec()).ok()?;
        let n = c.u32()? as usize;
        let value = c.take(n)?.to_vec();
        headers.push(Header { name, value });
    }
    Some(Decoded {
        timestamp,
        max_ts,
        key,
        headers,
        value: c.0.to_vec(),
    })
}

fn system_clock() -> WallClock {
    Arc::new(|| {
        #[expect(
            clippy::disallowed_methods,
            reason = "the log stamps append time with the wall clock"
        )]
        let now = std::time::SystemTime::now();
        now.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

impl EmbeddedLog {
    /// Opens the log in a database (see [`open_database`]) with the wall clock.
    pub fn open(db: Database, options: EmbeddedOptions) -> Result<Self, LogError> {
        Self::open_with_clock(db, options, system_clock(), None)
    }

    /// Opens a log in a temporary directory (`memory://`).
    pub fn temporary(options: EmbeddedOptions) -> Result<Self, LogError> {
        let (db, dir) = open_temporary_database()?;
        Self::open_with_clock(db, options, system_clock(), Some(dir))
    }

    /// Opens a log in a data directory of its own (tests and tools; the server shares its
    /// database with the store through [`open_database`]).
    pub fn open_dir(dir: &Path, options: EmbeddedOptions) -> Result<Self, LogError> {
        Self::open(open_database(dir)?, options)
    }

    /// Opens the log with an injected wall clock (retention tests).
    pub fn open_with_clock(
        db: Database,
        options: EmbeddedOptions,
        clock: WallClock,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Self, LogError> {
        if options.partitions == 0 || options.partitions > 1024 {
            return Err(LogError::Invalid(
                "partitions must be between 1 and 1024".into(),
            ));
        }
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(LogError::storage)
        };
        let partitions_ks = ks(PARTITIONS)?;
        let starts = ks(STARTS)?;
        let groups_ks = ks(GROUPS)?;

        let mut topics = HashMap::new();
        let mut parts = HashMap::new();
        for topic in Topic::ALL {
            let count = match partitions_ks
                .get([topic.code()])
                .map_err(LogError::storage)?
            {
                Some(v) => {
                    u32::from_be_bytes(v.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(
                        || LogError::Invalid(format!("partition count of {topic} is corrupt")),
                    )?)
                }
                None => {
                    partitions_ks
                        .insert([topic.code()], options.partitions.to_be_bytes())
                        .map_err(LogError::storage)?;
                    options.partitions
                }
            };
            topics.insert(topic, count);
            for p in 0..count {
                let prefix = partition_prefix(topic, p);
                let start = starts
                    .get(prefix)
                    .map_err(LogError::storage)?
                    .as_deref()
                    .and_then(read_u64)
                    .unwrap_or(0);
                let records = ks(&format!("log.{}.{p}", topic.name()))?;
                let (next, max_ts) = match records.iter().next_back() {
                    Some(guard) => {
                        let (k, v) = guard.into_inner().map_err(LogError::storage)?;
                        let offset = offset_of_key(&k).ok_or(LogError::Corrupt {
                            topic,
                            partition: p,
                            offset: 0,
                            reason: "bad key",
                        })?;
                        let d = decode_value(&v).ok_or(LogError::Corrupt {
                            topic,
                            partition: p,
                            offset,
                            reason: "bad value",
                        })?;
                        (offset + 1, d.max_ts)
                    }
                    None => (start, i64::MIN),
                };
                let next = next.max(start);
                parts.insert(
                    (topic, p),
                    PartitionState {
                        records,
                        next: AtomicU64::new(next),
                        high: AtomicU64::new(next),
                        start: AtomicU64::new(start),
                        max_ts: AtomicU64::new(max_ts as u64),
                    },
                );
            }
        }
        db.persist(PersistMode::SyncData)
            .map_err(LogError::storage)?;

        let (tx, rx) = mpsc::channel();
        let core = Arc::new(Core {
            db,
            starts,
            groups_ks,
            topics,
            parts,
            appended: watch::channel(0).0,
            clock,
            options,
            stats: LogStats::default(),
            observer: std::sync::RwLock::new(None),
        });
        let writer_core = Arc::clone(&core);
        let handle = std::thread::Builder::new()
            .name("switchyard-log-writer".into())
            .spawn(move || writer_loop(&writer_core, &rx))
            .map_err(LogError::storage)?;
        let shared = Arc::new(Shared {
            core,
            groups: Mutex::new(HashMap::new()),
            rebalances: watch::channel(0).0,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            closed: AtomicBool::new(false),
            _temp: temp,
        });
        Ok(EmbeddedLog { shared })
    }

    /// Installs the observer called after every durable group commit.
    pub fn set_commit_observer(&self, observer: CommitObserver) {
        if let Ok(mut slot) = self.shared.core.observer.write() {
            *slot = Some(observer);
        }
    }

    /// Returns the log's counters.
    pub fn stats(&self) -> &LogStats {
        &self.shared.core.stats
    }

    /// Returns the underlying database (shared with the embedded state store).
    pub fn database(&self) -> &Database {
        &self.shared.core.db
    }

    /// Returns the on-disk size of the database in bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.core.db.disk_space().unwrap_or(0)
    }

    fn send(&self, cmd: Command) -> Result<(), LogError> {
        let guard = self.shared.tx.lock().map_err(|_| LogError::Closed)?;
        match guard.as_ref() {
            Some(tx) => tx.send(cmd).map_err(|_| LogError::Closed),
            None => Err(LogError::Closed),
        }
    }

    fn partition(&self, topic: Topic, partition: u32) -> Result<&PartitionState, LogError> {
        self.shared
            .core
            .parts
            .get(&(topic, partition))
            .ok_or(LogError::UnknownPartition {
                topic,
                partition,
                partitions: self.partitions(topic),
            })
    }

    /// Applies retention and compaction once: removes records of delete-cleanup topics older
    /// than the retention, and superseded records (same key, lower offset) of compacted
    /// topics whose successor is older than `compaction_min_lag`. Returns the number of records removed. The server runs this periodically.
    pub async fn enforce_retention(&self) -> Result<u64, LogError> {
        let this = self.clone();
        let plan = tokio::task::spawn_blocking(move || this.plan_cleanup())
            .await
            .map_err(LogError::storage)??;
        let removed = plan.keys.len() as u64;
        for chunk in plan.keys.chunks(10_000) {
            let (reply, rx) = oneshot::channel();
            self.send(Command::Remove {
                keys: chunk.to_vec(),
                starts: Vec::new(),
                reply,
            })?;
            rx.await.map_err(|_| LogError::Closed)??;
        }
        if !plan.starts.is_empty() {
            let (reply, rx) = oneshot::channel();
            self.send(Command::Remove {
                keys: Vec::new(),
                starts: plan.starts,
                reply,
            })?;
            rx.await.map_err(|_| LogError::Closed)??;
        }
        self.shared
            .core
            .stats
            .removed_records
            .fetch_add(removed, Ordering::Relaxed);
        Ok(removed)
    }

    fn plan_cleanup(&self) -> Result<CleanupPlan, LogError> {
        let mut plan = CleanupPlan::default();
        let now = (self.shared.core.clock)();
        let cutoff = now.saturating_sub(self.shared.core.options.retention.as_millis() as i64);
        let lag_cutoff = now.saturating_sub(
            i64::try_from(self.shared.core.options.compaction_min_lag.as_millis())
                .unwrap_or(i64::MAX),
        );
        for topic in Topic::ALL {
            for p in 0..self.partitions(topic) {
                let state = self.partition(topic, p)?;
                let start = state.start.load(Ordering::Acquire);
                let high = state.high.load(Ordering::Acquire);
                match topic.cleanup() {
                    Cleanup::Delete => {
                        let new_start = self
                            .first_offset_at_or_after(topic, p, cutoff)?
                            .unwrap_or(high);
                        if new_start > start {
                            for kv in state
                                .records
                                .range(record_key(start)..record_key(new_start))
                            {
                                plan.keys.push((
                                    (topic, p),
                                    offset_of_key(&kv.key().map_err(LogError::storage)?)
                                        .unwrap_or(0),
                                ));
                            }
                            plan.starts.push(((topic, p), new_start));
                        }
                    }
                    // The audit chain: nothing is ever removed.
                    Cleanup::Keep => {}
                    Cleanup::Compact => {
                        // The newest record per key; the one before it goes once the newer one
                        // has been in force longer than the minimum lag.
                        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
                        for kv in state.records.range(record_key(start)..record_key(high)) {
                            let (k, v) = kv.into_inner().map_err(LogError::storage)?;
                            let d = decode_value(&v).ok_or(LogError::Corrupt {
                                topic,
                                partition: p,
                                offset: offset_of_key(&k).unwrap_or(0),
                                reason: "bad value",
                            })?;
                            let superseded_long_ago = d.timestamp <= lag_cutoff;
                            if let Some(old) = latest.insert(d.key, offset_of_key(&k).unwrap_or(0))
                                && superseded_long_ago
                            {
                                plan.keys.push(((topic, p), old));
                            }
                        }
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Binary search over the running-maximum timestamps of a partition.
    fn first_offset_at_or_after(
        &self,
        topic: Topic,
        partition: u32,
        ts: i64,
    ) -> Result<Option<u64>, LogError> {
        let state = self.partition(topic, partition)?;
        let (mut lo, mut hi) = (
            state.start.load(Ordering::Acquire),
            state.high.load(Ordering::Acquire),
        );
        let mut found = None;
        // Invariant: every existing offset below `lo` has max_ts < ts; `found` is the best
        // offset known to have max_ts >= ts.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let first = state.records.range(record_key(mid)..record_key(hi)).next();
            let Some(guard) = first else {
                hi = mid;
                continue;
            };
            let (k, v) = guard.into_inner().map_err(LogError::storage)?;
            let offset = offset_of_key(&k).unwrap_or(mid);
            let d = decode_value(&v).ok_or(LogError::Corrupt {
                topic,
                partition,
                offset,
                reason: "bad value",
            })?;
            if d.max_ts >= ts {
                found = Some(offset);
                hi = mid;
            } else {
                lo = offset + 1;
            }
        }
        Ok(found)
    }

    fn read_sync(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let state = self.partition(topic, partition)?;
        let start = state.start.load(Ordering::Acquire);
        let high = state.high.load(Ordering::Acquire);
        if from < start || from > high {
            return Err(LogError::OffsetOutOfRange {
                topic,
                partition,
                requested: from,
                start,
                end: high,
            });
        }
        let mut out = Vec::with_capacity(max.min((high - from) as usize));
        for kv in state
            .records
            .range(record_key(from)..record_key(high))
            .take(max)
        {
            let (k, v) = kv.into_inner().map_err(LogError::storage)?;
            let offset = offset_of_key(&k).ok_or(LogError::Corrupt {
                topic,
                partition,
                offset: from,
                reason: "bad key",
            })?;
            let d = decode_value(&v).ok_or(LogError::Corrupt {
                topic,
                partition,
                offset,
                reason: "bad value",
            })?;
            out.push(StoredRecord {
                topic,
                partition,
                offset,
                key: d.key,
                value: d.value,
                headers: d.headers,
                timestamp_ms: d.timestamp,
            });
        }
        Ok(out)
    }
}

#[derive(Default)]
struct CleanupPlan {
    keys: Vec<(PartitionKey, u64)>,
    starts: Vec<(PartitionKey, u64)>,
}

/// The writer thread: drains queued commands into one atomic, fsynced batch.
fn writer_loop(shared: &Core, rx: &mpsc::Receiver<Command>) {
    let mut round_robin: u32 = 0;
    while let Ok(first) = rx.recv() {
        let mut cmds = vec![first];
        let mut records = cmds.iter().map(command_records).sum::<usize>();
        let mut bytes = cmds.iter().map(command_bytes).sum::<usize>();
        let deadline = std::time::Instant::now() + shared.options.group_commit_linger;
        while records < shared.options.group_commit_max_records
            && bytes < shared.options.group_commit_max_bytes
        {
            let next = if shared.options.group_commit_linger.is_zero() {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                    .ok()
            };
            let Some(cmd) = next else { break };
            records += command_records(&cmd);
            bytes += command_bytes(&cmd);
            cmds.push(cmd);
        }
        commit_group(shared, cmds, &mut round_robin);
    }
}

fn command_records(cmd: &Command) -> usize {
    match cmd {
        Command::Append { records, .. } => records.len(),
        Command::Remove { keys, .. } => keys.len(),
        _ => 1,
    }
}

fn command_bytes(cmd: &Command) -> usize {
    match cmd {
        Command::Append { records, .. } => {
            records.iter().map(|r| r.value.len() + r.key.len()).sum()
        }
        _ => 16,
    }
}

fn commit_group(shared: &Core, cmds: Vec<Command>, round_robin: &mut u32) {
    let now = (shared.clock)();
    let started = std::time::Instant::now();
    let mut by_topic: Vec<(Topic, u64)> = Vec::new();
    let mut batch = shared.db.batch();
    // Offsets are assigned tentatively; on failure they are rolled back to these values.
    let mut before: HashMap<PartitionKey, (u64, u64)> = HashMap::new();
    let mut replies: Vec<(AppendReply, Vec<Position>)> = Vec::new();
    let mut done: Vec<oneshot::Sender<Result<(), LogError>>> = Vec::new();
    let mut new_starts: Vec<(PartitionKey, u64)> = Vec::new();
    let mut appended = 0u64;
    for cmd in cmds {
        match cmd {
            Command::Append {
                topic,
                records,
                reply,
            } => {
                let partitions = shared.topics.get(&topic).copied().unwrap_or(1);
                let mut positions = Vec::with_capacity(records.len());
                for rec in records {
                    let partition = if rec.key.is_empty() {
                        *round_robin = round_robin.wrapping_add(1);
                        *round_robin % partitions
                    } else {
                        partition_for_key(&rec.key, partitions)
                    };
                    let Some(state) = shared.parts.get(&(topic, partition)) else {
                        continue;
                    };
                    let offset = state.next.load(Ordering::Relaxed);
                    let prev_max = state.max_ts.load(Ordering::Relaxed) as i64;
                    before
                        .entry((topic, partition))
                        .or_insert((offset, prev_max as u64));
                    let ts = rec.timestamp_ms.unwrap_or(now);
                    let max_ts = prev_max.max(ts);
                    batch.insert(
                        &state.records,
                        record_key(offset).to_vec(),
                        encode_value(&rec, ts, max_ts),
                    );
                    state.next.store(offset + 1, Ordering::Relaxed);
                    state.max_ts.store(max_ts as u64, Ordering::Relaxed);
                    positions.push(Position {
                        topic,
                        partition,
                        offset,
                    });
                    appended += 1;
                }
                match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                    Some((_, n)) => *n += positions.len() as u64,
                    None => by_topic.push((topic, positions.len() as u64)),
                }
                replies.push((reply, positions));
            }
            Command::Commit { key, offset, reply } => {
                batch.insert(&shared.groups_ks, key, offset.to_be_bytes().to_vec());
                done.push(reply);
            }
            Command::Remove {
                keys,
                starts,
                reply,
            } => {
                for (key, offset) in keys {
                    if let Some(state) = shared.parts.get(&key) {
                        batch.remove(&state.records, record_key(offset).to_vec());
                    }
                }
                for ((topic, p), start) in starts {
                    batch.insert(
                        &shared.starts,
                        partition_prefix(topic, p).to_vec(),
                        start.to_be_bytes().to_vec(),
                    );
                    new_starts.push(((topic, p), start));
                }
                done.push(reply);
            }
            Command::Flush { reply } => done.push(reply),
        }
    }
    let durability = match shared.options.fsync {
        Fsync::Group => Some(PersistMode::SyncData),
        Fsync::None => Some(PersistMode::Buffer),
    };
    let result = batch.durability(durability).commit();
    match result {
        Ok(()) => {
            for (key, state) in &shared.parts {
                if before.contains_key(key) {
                    state
                        .high
                        .store(state.next.load(Ordering::Relaxed), Ordering::Release);
                }
            }
            for (key, start) in new_starts {
                if let Some(state) = shared.parts.get(&key) {
                    state.start.fetch_max(start, Ordering::AcqRel);
                }
            }
            shared
                .stats
                .appended_records
                .fetch_add(appended, Ordering::Relaxed);
            shared.stats.group_commits.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .last_group_records
                .store(appended, Ordering::Relaxed);
            shared.appended.send_modify(|v| *v = v.wrapping_add(1));
            let observer = shared.observer.read().ok().and_then(|o| o.clone());
            if let (true, Some(observer)) = (appended > 0, observer) {
                observer(&GroupCommit {
                    by_topic,
                    records: appended,
                    took: started.elapsed(),
                });
            }
            for (reply, positions) in replies {
                let _ = reply.send(Ok(positions));
            }
            for reply in done {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; the batch is rejected");
            for (key, (next, max_ts)) in before {
                if let Some(state) = shared.parts.get(&key) {
                    state.next.store(next, Ordering::Relaxed);
                    state.max_ts.store(max_ts, Ordering::Relaxed);
                }
            }
            let msg = e.to_string();
            for (reply, _) in replies {
                let _ = reply.send(Err(LogError::Storage(msg.clone().into())));
            }
            for reply in done {
                let _ = reply.send(Err(LogError::Storage(msg.clone().into())));
            }
        }
    }
}

impl EventLog for EmbeddedLog {
    type Subscription = EmbeddedSubscription;

    async fn append(&self, topic: Topic, records: Vec<Record>) -> Result<Vec<Position>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Append {
            topic,
            records,
            reply,
        })?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    fn partitions(&self, topic: Topic) -> u32 {
        self.shared.core.topics.get(&topic).copied().unwrap_or(0)
    }

    async fn read(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_sync(topic, partition, from, max))
            .await
            .map_err(LogError::storage)?
    }

    async fn watermarks(&self, topic: Topic, partition: u32) -> Result<Watermarks, LogError> {
        let state = self.partition(topic, partition)?;
        Ok(Watermarks {
            start: state.start.load(Ordering::Acquire),
            end: state.high.load(Ordering::Acquire),
        })
    }

    async fn offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.first_offset_at_or_after(topic, partition, timestamp_ms)
        })
        .await
        .map_err(LogError::storage)?
    }

    async fn subscribe(
        &self,
        group: &GroupId,
        topics: &[Topic],
        start: StartFrom,
    ) -> Result<EmbeddedSubscription, LogError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        if topics.is_empty() {
            return Err(LogError::Invalid(
                "subscribe needs at least one topic".into(),
            ));
        }
        let member = {
            let mut groups = self.shared.groups.lock().map_err(|_| LogError::Closed)?;
            let state = groups.entry(group.clone()).or_default();
            state.next_member += 1;
            let member = state.next_member;
            state.members.insert(member, topics.to_vec());
            state.generation += 1;
            member
        };
        self.shared
            .rebalances
            .send_modify(|v| *v = v.wrapping_add(1));
        Ok(EmbeddedSubscription {
            log: self.clone(),
            group: group.clone(),
            member,
            start,
            generation: u64::MAX,
            positions: BTreeMap::new(),
            cursor: 0,
            appended: self.shared.core.appended.subscribe(),
            rebalances: self.shared.rebalances.subscribe(),
        })
    }

    async fn committed(
        &self,
        group: &GroupId,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        let v = self
            .shared
            .core
            .groups_ks
            .get(group_key(group, topic, partition))
            .map_err(LogError::storage)?;
        Ok(v.as_deref().and_then(read_u64))
    }

    async fn flush(&self) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Flush { reply })?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    async fn close(&self) -> Result<(), LogError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = self.flush().await;
        // Dropping the sender ends the writer loop once the queue is drained.
        if let Ok(mut tx) = self.shared.tx.lock() {
            tx.take();
        }
        let handle = self.shared.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(LogError::storage)?
                .ok();
        }
        self.shared
            .core
            .db
            .persist(PersistMode::SyncAll)
            .map_err(LogError::storage)?;
        flushed
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            // The writer holds only the core; it ends once the channel is closed and drained.
            let _ = handle.join();
        }
    }
}

/// A member of an embedded consumer group. Leaves the group when dropped.
pub struct EmbeddedSubscription {
    log: EmbeddedLog,
    group: GroupId,
    member: u64,
    start: StartFrom,
    generation: u64,
    /// Assigned partitions and this member's read position in each.
    positions: BTreeMap<PartitionKey, u64>,
    cursor: usize,
    appended: watch::Receiver<u64>,
    rebalances: watch::Receiver<u64>,
}

impl std::fmt::Debug for EmbeddedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSubscription")
            .field("group", &self.group)
            .field("member", &self.member)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl EmbeddedSubscription {
    /// Recomputes this member's partitions when the group's membership changed: for each topic,
    /// the members subscribed to it, in join order, take its partitions round-robin.
    fn rebalance(&mut self) -> Result<(), LogError> {
        let (generation, mine) = {
            let groups = self
                .log
                .shared
                .groups
                .lock()
                .map_err(|_| LogError::Closed)?;
            let Some(state) = groups.get(&self.group) else {
                return Ok(());
            };
            if state.generation == self.generation {
                return Ok(());
            }
            let mut mine = Vec::new();
            let my_topics = state.members.get(&self.member).cloned().unwrap_or_default();
            for topic in my_topics {
                let members: Vec<u64> = state
                    .members
                    .iter()
                    .filter(|(_, t)| t.contains(&topic))
                    .map(|(m, _)| *m)
                    .collect();
                let Some(index) = members.iter().position(|m| *m == self.member) else {
                    continue;
                };
                for p in 0..self.log.partitions(topic) {
                    if p as usize % members.len() == index {
                        mine.push((topic, p));
                    }
                }
            }
            (state.generation, mine)
        };
        let mut positions = BTreeMap::new();
        for (topic, p) in mine {
            let position = match self.positions.get(&(topic, p)) {
                Some(pos) => *pos,
                None => {
                    let committed = self
                        .log
                        .shared
                        .core
                        .groups_ks
                        .get(group_key(&self.group, topic, p))
                        .map_err(LogError::storage)?;
                    let state = self.log.partition(topic, p)?;
                    match committed.as_deref().and_then(read_u64) {
                        Some(offset) => offset,
                        None => match self.start {
                            StartFrom::Earliest => state.start.load(Ordering::Acquire),
                            StartFrom::Latest => state.high.load(Ordering::Acquire),
                        },
                    }
                }
            };
            positions.insert((topic, p), position);
        }
        self.positions = positions;
        self.generation = generation;
        Ok(())
    }

    fn poll_once(&mut self, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        self.rebalance()?;
        let keys: Vec<PartitionKey> = self.positions.keys().copied().collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for i in 0..keys.len() {
            if out.len() >= max {
                break;
            }
            let (topic, p) = keys[(self.cursor + i) % keys.len()];
            let Some(position) = self.positions.get(&(topic, p)).copied() else {
                continue;
            };
            let state = self.log.partition(topic, p)?;
            let start = state.start.load(Ordering::Acquire);
            // A position below the log start (retention removed it) resumes at the start, like
            // Kafka's auto.offset.reset=earliest.
            let from = position.max(start);
            if from >= state.high.load(Ordering::Acquire) {
                continue;
            }
            let batch = self.log.read_sync(topic, p, from, max - out.len())?;
            if let Some(last) = batch.last() {
                self.positions.insert((topic, p), last.offset + 1);
            }
            out.extend(batch);
        }
        self.cursor = self.cursor.wrapping_add(1);
        Ok(out)
    }
}

impl Subscription for EmbeddedSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.appended.borrow_and_update();
            self.rebalances.borrow_and_update();
            let batch = self.poll_once(max.max(1))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if self.log.shared.closed.load(Ordering::Acquire) {
                return Err(LogError::Closed);
            }
            tokio::select! {
                changed = self.appended.changed() => { if changed.is_err() { return Err(LogError::Closed); } }
                changed = self.rebalances.changed() => { if changed.is_err() { return Err(LogError::Closed); } }
                () = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    async fn commit(&mut self, offsets: &[(Topic, u32, u64)]) -> Result<(), LogError> {
        self.rebalance()?;
        for &(topic, partition, offset) in offsets {
            if !self.positions.contains_key(&(topic, partition)) {
                continue;
            }
            let (reply, rx) = oneshot::channel();
            self.log.send(Command::Commit {
                key: group_key(&self.group, topic, partition),
                offset,
                reply,
            })?;
            rx.await.map_err(|_| LogError::Closed)??;
        }
        Ok(())
    }

    fn seek(&mut self, topic: Topic, partition: u32, offset: u64) -> Result<(), LogError> {
        self.rebalance()?;
        match self.positions.get_mut(&(topic, partition)) {
            Some(position) => {
                *position = offset;
                Ok(())
            }
            None => Err(LogError::Invalid(format!(
                "{topic}/{partition} is not assigned to this member"
            ))),
        }
    }

    fn assignment(&self) -> Vec<(Topic, u32)> {
        let mut this = Vec::with_capacity(self.positions.len());
        // Reflect a pending rebalance without mutating: callers poll to apply it.
        this.extend(self.positions.keys().copied());
        this
    }
}

impl Drop for EmbeddedSubscription {
    fn drop(&mut self) {
        if let Ok(mut groups) = self.log.shared.groups.lock()
            && let Some(state) = groups.get_mut(&self.group)
        {
            state.members.remove(&self.member);
            state.generation += 1;
        }
        self.log
            .shared
            .rebalances
            .send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Returns the default data directory's database path inside a data directory.
pub fn database_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}
