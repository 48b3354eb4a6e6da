//! The Kafka backend (cargo feature `kafka`): the event log of the distributed deployment, on any
//! broker that speaks the Kafka protocol, through librdkafka (`rdkafka`, built from source).
//!
//! # Mapping
//! - A [`Topic`] is the physical topic `topic_prefix + Topic::name()`. [`KafkaLog::connect`]
//!   creates missing topics (compacted ones with `cleanup.policy=compact`; an existing topic is
//!   fine) and reads every topic's real partition count from the metadata, so
//!   [`EventLog::partitions`] answers without a round trip and a topic provisioned with another
//!   count is used as it is.
//! - `append` sends each record to the explicit partition [`partition_for_key`] (Kafka's
//!   murmur2 partitioner, so a key lands where the embedded backend and the Java clients put it;
//!   an empty key goes round-robin) through one idempotent producer (`enable.idempotence=true`,
//!   `acks=all`), and resolves once every record's delivery report arrived, with the positions
//!   from those reports.
//! - `read`, `watermarks` and `offset_for_time` use plain consumers with no group membership
//!   (`assign` + fetch, `ListOffsets`).
//! - `subscribe` joins a consumer group (`group_prefix + GroupId`) with the
//!   `cooperative-sticky` assignor and no auto-commit. A partition starts at the group's
//!   committed offset, else at [`StartFrom`] (resolved to an explicit offset when the partition
//!   is assigned, so "latest" means the end at assignment time). A partition a member keeps
//!   across a rebalance keeps its read position (cooperative rebalancing revokes only the
//!   partitions that move).
//!
//! # Delivery semantics
//! At-least-once. An acknowledged append is on every in-sync replica (`acks=all`), but an append
//! that fails or times out may still have been written, in part: the caller's retry can duplicate
//! records. A member commits after processing ([`Subscription::commit`], synchronous); after a
//! crash or a rebalance, the next owner of a partition resumes at the last commit and sees again
//! what was processed but not committed. Processors therefore dedupe by event id.
//!
//! # Group membership runs in the background
//! Each [`KafkaSubscription`] owns one thread that serves the consumer's events (rebalances,
//! errors) every 100 ms, while the records of each partition wait in librdkafka's per-partition
//! queues until [`Subscription::poll`] takes them. So a member keeps its place in the group while
//! the processor is busy, and joining returns only once the member has its partitions (or after
//! `join_timeout`, when the group has more members than partitions). The flip side: the broker's
//! `max.poll.interval.ms` no longer detects a processor stuck between polls; its own health
//! check has to.
//!
//! # Tansu (the broker of the test suite)
//! The contract suite runs against Tansu 0.6 (`scripts/with-tansu.sh`). What it lacks:
//! compaction never runs there (a compacted topic keeps every record, so readers of compacted
//! topics must tolerate history, which they must anyway: Kafka compacts lazily and never the
//! active segment); CreatePartitions and AlterConfigs; `group.protocol=consumer`;
//! `read_committed` still returns aborted records (this backend uses no transactions). It holds
//! each group join for half of `session.timeout.ms`, so tests use 2 s sessions
//! ([`KafkaOptions::for_tests`]). Where it answers differently from Kafka:
//! - its high watermark (ListOffsets "latest", and the one in fetch responses) is the base
//!   offset of the last record batch + 1, not the offset after the last record; and ListOffsets
//!   by time answers with the first offset of the batch holding the record. Both are corrected
//!   when [`KafkaOptions::tansu_workarounds`] is on (tests only: it costs a fetch per call);
//!   partition EOF events are not used at all (they fire after every batch);
//! - when a group's leader leaves while another member's join is pending, Tansu keeps naming
//!   the departed member as leader and the group never completes its rebalance. A new member
//!   therefore waits until the members this client dropped from its group have left (always:
//!   it costs milliseconds); members leaving from another process can still hit it on Tansu.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::kafka_logging::Logging;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use switchyard_events::{Cleanup, Topic};
use tokio::sync::{Notify, watch};

pub use crate::kafka_options::KafkaOptions;
use crate::record::{GroupId, Header, Position, Record, StartFrom, StoredRecord, Watermarks};
use crate::{EventLog, LogError, Subscription, partition_for_key};

/// How often a member's background thread serves the consumer's events.
const EVENT_POLL: Duration = Duration::from_millis(100);
/// Longest a waiting [`Subscription::poll`] sleeps between looks at its queues (a safety net:
/// every queue also wakes it up when it becomes non-empty).
const POLL_RECHECK: Duration = Duration::from_millis(250);

impl KafkaOptions {
    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "switchyard")
            .set("socket.keepalive.enable", "true");
        config
    }

    fn with_extra(&self, mut config: ClientConfig) -> ClientConfig {
        for (k, v) in &self.client_config {
            config.set(k, v);
        }
        config
    }

    fn producer_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                millis(self.request_timeout * 4).to_string(),
            );
        self.with_extra(config)
    }

    /// A consumer that never joins a group: reads by assign, watermarks, offsets by time,
    /// metadata. librdkafka needs a group id to deliver assigned partitions on the consumer
    /// queue; this one never commits.
    fn reader_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set(
                "group.id",
                format!("{}switchyard-reader", self.group_prefix),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A read knows where the partition ends and stops there; the fetch librdkafka
            // sends after that must not hold the connection (the next read waits for it).
            .set("fetch.wait.max.ms", "10")
            .set("auto.offset.reset", "error")
            .set("allow.auto.create.topics", "false");
        self.with_extra(config)
    }

    fn member_config(&self, group: &str, start: StartFrom) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("group.id", group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set(
                "auto.offset.reset",
                match start {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            )
            .set(
                "session.timeout.ms",
                millis(self.session_timeout).to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                millis(self.heartbeat_interval).to_string(),
            );
        self.with_extra(config)
    }

    fn validate(&self) -> Result<(), LogError> {
        if self.brokers.trim().is_empty() {
            return Err(LogError::Invalid("kafka brokers must not be empty".into()));
        }
        if self.partitions == 0 || self.partitions > 10_000 {
            return Err(LogError::Invalid(
                "kafka partitions must be between 1 and 10000".into(),
            ));
        }
        if self.replication_factor == 0 {
            return Err(LogError::Invalid(
                "kafka replication factor must be at least 1".into(),
            ));
        }
        let name_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if !name_ok(&self.topic_prefix) || !name_ok(&self.group_prefix) {
            return Err(LogError::Invalid(
                "kafka topic and group prefixes may contain only A-Z a-z 0-9 . _ -".into(),
            ));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return Err(LogError::Invalid(
                "kafka heartbeat interval must be positive and below the session timeout".into(),
            ));
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Maps a client error: configuration mistakes are the caller's; anything else is the broker's
/// (or the network's) and may pass.
fn kafka_error(context: &str, e: KafkaError) -> LogError {
    match e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
            LogError::Invalid(format!("{context}: {e}"))
        }
        other => LogError::Broker(format!("{context}: {other}")),
    }
}

fn join_error(e: tokio::task::JoinError) -> LogError {
    LogError::Broker(format!("kafka client task failed: {e}"))
}

/// Physical names of the topics, both ways.
#[derive(Debug)]
struct Names {
    physical: HashMap<Topic, String>,
    logical: HashMap<String, Topic>,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let physical: HashMap<Topic, String> = Topic::ALL
            .into_iter()
            .map(|t| (t, format!("{prefix}{}", t.name())))
            .collect();
        let logical = physical.iter().map(|(t, n)| (n.clone(), *t)).collect();
        Names { physical, logical }
    }

    fn name(&self, topic: Topic) -> &str {
        self.physical.get(&topic).map_or("", String::as_str)
    }

    fn topic(&self, name: &str) -> Option<Topic> {
        self.logical.get(name).copied()
    }
}

type Reader = BaseConsumer<Logging>;
/// The producer, logging through [`Logging`].
type KafkaProducer = FutureProducer<Logging>;

/// Consumers outside any group: reads (assign + fetch), watermarks, offsets by time, metadata.
/// Shared by the log and its members' rebalance callbacks.
struct Readers {
    options: KafkaOptions,
    names: Arc<Names>,
    /// Requests only (watermarks, offsets by time, metadata); never assigned.
    meta: Reader,
    /// Idle readers (each read assigns one partition to one of them).
    idle: Mutex<Vec<Reader>>,
}

impl Readers {
    fn take(&self) -> Result<Reader, LogError> {
        let idle = self.idle.lock().ok().and_then(|mut r| r.pop());
        match idle {
            Some(reader) => Ok(reader),
            None => self
                .options
                .reader_config()
                .create_with_context(Logging)
                .map_err(|e| kafka_error("creating a kafka consumer", e)),
        }
    }

    fn give_back(&self, reader: Reader) {
        if reader.unassign().is_ok()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(reader);
        }
    }

    /// Returns a partition's log start and high watermark.
    fn watermarks(&self, topic: Topic, partition: u32) -> Result<(u64, u64), LogError> {
        let name = self.names.name(topic);
        let (low, high) = self
            .meta
            .fetch_watermarks(name, partition as i32, self.options.request_timeout)
            .map_err(|e| kafka_error(&format!("fetching watermarks of {name}/{partition}"), e))?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        if !self.options.tansu_workarounds || high <= low {
            return Ok((low, high));
        }
        // Tansu answers with the base offset of the last record batch + 1: the batch there
        // tells where the partition really ends.
        Ok((
            low,
            self.end_of_batch_at(topic, partition, high - 1)?.max(high),
        ))
    }

    /// Reads the record batch that holds `offset` and returns the offset after its last record.
    fn end_of_batch_at(&self, topic: Topic, partition: u32, offset: u64) -> Result<u64, LogError> {
        let reader = self.take()?;
        let result = self.assign(&reader, topic, partition, offset).map(|()| {
            let name = self.names.name(topic);
            let deadline = Instant::now() + self.options.request_timeout;
            let mut end = None;
            loop {
                // librdkafka hands over a fetched batch whole: once its first record is here,
                // whatever is not queued yet belongs to a later batch.
                let wait = match end {
                    Some(_) => Duration::ZERO,
                    None => deadline.saturating_duration_since(Instant::now()),
                };
                match reader.poll(wait) {
                    Some(Ok(m)) if m.topic() == name && m.partition() == partition as i32 => {
                        let next = m.offset().max(0) as u64 + 1;
                        end = Some(end.map_or(next, |e: u64| e.max(next)));
                    }
                    Some(_) => {}
                    None if end.is_some() || wait.is_zero() => break,
                    None => {}
                }
            }
            end.unwrap_or(offset + 1)
        });
        self.give_back(reader);
        result
    }

    fn assign(
        &self,
        reader: &Reader,
        topic: Topic,
        partition: u32,
        offset: u64,
    ) -> Result<(), LogError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            self.names.name(topic),
            partition as i32,
            Offset::Offset(offset as i64),
        )
        .map_err(|e| kafka_error("assigning a partition", e))?;
        reader
            .assign(&tpl)
            .map_err(|e| kafka_error("assigning a partition", e))
    }

    fn read(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let (start, end) = self.watermarks(topic, partition)?;
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                topic,
                partition,
                requested: from,
                start,
                end,
            });
        }
        if from == end || max == 0 {
            return Ok(Vec::new());
        }
        let want = usize::try_from(end - from).map_or(max, |n| n.min(max));
        let reader = self.take()?;
        let result = self.fetch(&reader, topic, partition, from, end, want);
        self.give_back(reader);
        result
    }

    /// Fetches up to `want` records of one partition from `from`, stopping at `end` (the high
    /// watermark seen before).
    fn fetch(
        &self,
        reader: &Reader,
        topic: Topic,
        partition: u32,
        from: u64,
        end: u64,
        want: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let name = self.names.name(topic);
        self.assign(reader, topic, partition, from)?;
        let deadline = Instant::now() + self.options.request_timeout;
        let mut out = Vec::with_capacity(want.min(1024));
        while out.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if out.is_empty() {
                    return Err(LogError::Broker(format!(
                        "reading {name}/{partition} from {from}: no record within {:?}",
                        self.options.request_timeout
                    )));
                }
                break;
            }
            match reader.poll(left) {
                None => {}
                Some(Ok(m)) => {
                    if m.topic() != name || m.partition() != partition as i32 || m.offset() < 0 {
                        continue;
                    }
                    let offset = m.offset() as u64;
                    if offset < from {
                        continue;
                    }
                    out.push(stored(&m, topic, partition));
                    if offset + 1 >= end {
                        break;
                    }
                }
                // Not enabled: Tansu signals it after every fetched batch; a read ends at `end`.
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::OffsetOutOfRange) {
                        let (start, end) = self.watermarks(topic, partition)?;
                        return Err(LogError::OffsetOutOfRange {
                            topic,
                            partition,
                            requested: from,
                            start,
                            end,
                        });
                    }
                    return Err(kafka_error(&format!("reading {name}/{partition}"), e));
                }
            }
        }
        Ok(out)
    }

    /// Returns the first offset whose record is at or after the time (Kafka's `ListOffsets`).
    fn offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        let found = self.list_offset_for_time(topic, partition, timestamp_ms)?;
        if !self.options.tansu_workarounds {
            return Ok(found);
        }
        // Tansu answers with the first offset of the batch that holds the record: scan from
        // there to the first record at or after the time.
        let Some(mut from) = found else {
            return Ok(None);
        };
        loop {
            let batch = match self.read(topic, partition, from, 500) {
                Ok(batch) => batch,
                // Retention moved the start past the answer: go on from the new start.
                Err(LogError::OffsetOutOfRange { start, end, .. })
                    if from < start && start < end =>
                {
                    from = start;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = batch.last() else {
                return Ok(None);
            };
            if let Some(hit) = batch.iter().find(|r| r.timestamp_ms >= timestamp_ms) {
                return Ok(Some(hit.offset));
            }
            from = last.offset + 1;
        }
    }

    fn list_offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        let name = self.names.name(topic);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(name, partition as i32, Offset::Offset(timestamp_ms))
            .map_err(|e| kafka_error("looking up an offset by time", e))?;
        let found = self
            .meta
            .offsets_for_times(tpl, self.options.request_timeout)
            .map_err(|e| kafka_error("looking up an offset by time", e))?;
        let elem = found
            .find_partition(name, partition as i32)
            .ok_or_else(|| LogError::Broker(format!("no offset by time for {name}/{partition}")))?;
        elem.error()
            .map_err(|e| kafka_error("looking up an offset by time", e))?;
        Ok(match elem.offset() {
            Offset::Offset(o) if o >= 0 => Some(o as u64),
            _ => None,
        })
    }
}

struct Inner {
    options: KafkaOptions,
    names: Arc<Names>,
    partitions: HashMap<Topic, u32>,
    /// The idempotent producer. Replaced when it hits a fatal error (a fenced or unknown
    /// producer id, e.g. after a broker lost its producer state in a restart): an idempotent
    /// producer never recovers from one, and every later append would fail.
    producer: RwLock<Arc<KafkaProducer>>,
    readers: Arc<Readers>,
    round_robin: AtomicU32,
    closed: AtomicBool,
    /// Group members opened through this client, until their consumer has left the group.
    members: Mutex<Vec<Arc<MemberTrack>>>,
}

/// Where a member is in leaving its group.
struct MemberTrack {
    group_id: String,
    /// The subscription was dropped; its thread is closing the consumer.
    leaving: AtomicBool,
    /// The consumer is closed: it revoked its partitions and left the group.
    left: watch::Sender<bool>,
}

/// The Kafka event log. Cheap to clone; all clones share one producer.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("options", &self.inner.options)
            .field("partitions", &self.inner.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the cluster, creates the missing topics (when `create_topics`) and reads
    /// every topic's partition count.
    pub async fn connect(options: KafkaOptions) -> Result<Self, LogError> {
        options.validate()?;
        let names = Arc::new(Names::new(&options.topic_prefix));
        let producer: KafkaProducer = options
            .producer_config()
            .create_with_context(Logging)
            .map_err(|e| kafka_error("creating the kafka producer", e))?;
        let meta: Reader = options
            .reader_config()
            .create_with_context(Logging)
            .map_err(|e| kafka_error("creating a kafka consumer", e))?;
        // One bounded round trip first: an unreachable cluster is a clear error within the
        // request timeout, not a wait in the admin client.
        let meta = {
            let timeout = options.request_timeout;
            let brokers = options.brokers.clone();
            tokio::task::spawn_blocking(move || match meta.fetch_metadata(None, timeout) {
                Ok(_) => Ok(meta),
                Err(e) => Err(kafka_error(
                    &format!("no answer from the brokers {brokers} within {timeout:?}"),
                    e,
                )),
            })
            .await
            .map_err(join_error)??
        };
        if options.create_topics {
            create_topics(&options, &names).await?;
        }
        let (meta, partitions) = {
            let names = Arc::clone(&names);
            let timeout = options.request_timeout;
            tokio::task::spawn_blocking(move || {
                let partitions = partition_counts(&meta, &names, timeout)?;
                Ok::<_, LogError>((meta, partitions))
            })
            .await
            .map_err(join_error)??
        };
        let readers = Arc::new(Readers {
            options: options.clone(),
            names: Arc::clone(&names),
            meta,
            idle: Mutex::new(Vec::new()),
        });
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                options,
                names,
                partitions,
                producer: RwLock::new(Arc::new(producer)),
                readers,
                round_robin: AtomicU32::new(0),
                closed: AtomicBool::new(false),
                members: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Returns the physical name of a topic (prefix + logical name).
    pub fn topic_name(&self, topic: Topic) -> &str {
        self.inner.names.name(topic)
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_partition(&self, topic: Topic, partition: u32) -> Result<(), LogError> {
        let partitions = self.partitions(topic);
        if partition < partitions {
            Ok(())
        } else {
            Err(LogError::UnknownPartition {
                topic,
                partition,
                partitions,
            })
        }
    }

    /// Waits (up to the request timeout each) until the members of `group` (of any group when
    /// `None`) that were dropped have left. A new member of a group therefore never joins
    /// while a member of this client is leaving it: Tansu keeps naming a leader that left
    /// during a join as the leader of the next generation, and that group never completes its
    /// rebalance. Kafka needs no such wait; it costs a few milliseconds.
    async fn wait_for_leaving(&self, group: Option<&str>) {
        let pending: Vec<watch::Receiver<bool>> = match self.inner.members.lock() {
            Ok(mut members) => {
                members.retain(|m| !*m.left.borrow());
                members
                    .iter()
                    .filter(|m| m.leaving.load(Ordering::Acquire))
                    .filter(|m| group.is_none_or(|g| g == m.group_id))
                    .map(|m| m.left.subscribe())
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for mut left in pending {
            let wait = left.wait_for(|left| *left);
            if tokio::time::timeout(self.inner.options.request_timeout, wait)
                .await
                .is_err()
            {
                tracing::warn!("a dropped group member did not leave within the request timeout");
            }
        }
    }

    fn committed_blocking(
        &self,
        group: &GroupId,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        let options = &self.inner.options;
        let group_id = format!("{}{}", options.group_prefix, group.as_str());
        let mut config = options.base_config();
        config
            .set("group.id", &group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer: Reader = options
            .with_extra(config)
            .create_with_context(Logging)
            .map_err(|e| kafka_error("creating a kafka consumer", e))?;
        let name = self.topic_name(topic);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(name, partition as i32);
        let got = consumer
            .committed_offsets(tpl, options.request_timeout)
            .map_err(|e| kafka_error(&format!("reading offsets of group {group_id}"), e))?;
        Ok(
            match got
                .find_partition(name, partition as i32)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
                _ => None,
            },
        )
    }
}

async fn create_topics(options: &KafkaOptions, names: &Names) -> Result<(), LogError> {
    let admin: AdminClient<Logging> = options
        .with_extra(options.base_config())
        .create_with_context(Logging)
        .map_err(|e| kafka_error("creating the kafka admin client", e))?;
    let min_lag_ms = options.compaction_min_lag.as_millis().to_string();
    let new_topics: Vec<NewTopic<'_>> = Topic::ALL
        .into_iter()
        .map(|topic| {
            let new = NewTopic::new(
                names.name(topic),
                options.partitions as i32,
                TopicReplication::Fixed(i32::from(options.replication_factor)),
            );
            match topic.cleanup() {
                Cleanup::Compact => new
                    .set("cleanup.policy", "compact")
                    .set("min.compaction.lag.ms", &min_lag_ms),
                Cleanup::Delete => new.set("cleanup.policy", "delete"),
                Cleanup::Keep => new
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", "-1")
                    .set("retention.bytes", "-1"),
            }
        })
        .collect();
    let admin_options = AdminOptions::new()
        .operation_timeout(Some(options.request_timeout))
        .request_timeout(Some(options.request_timeout));
    let results = admin
        .create_topics(&new_topics, &admin_options)
        .await
        .map_err(|e| kafka_error("creating topics", e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(LogError::Broker(format!(
                    "creating topic {name} failed: {code}"
                )));
            }
        }
    }
    Ok(())
}

/// Reads every topic's partition count, waiting (up to the request timeout) for topics created
/// a moment ago to show up in the metadata.
fn partition_counts(
    meta: &Reader,
    names: &Names,
    timeout: Duration,
) -> Result<HashMap<Topic, u32>, LogError> {
    let deadline = Instant::now() + timeout;
    let mut counts = HashMap::new();
    for topic in Topic::ALL {
        let name = names.name(topic);
        loop {
            let metadata = meta
                .fetch_metadata(Some(name), timeout)
                .map_err(|e| kafka_error("fetching metadata", e))?;
            let found = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .filter(|t| t.error().is_none())
                .map(|t| t.partitions().len());
            match found {
                Some(n) if n > 0 => {
                    counts.insert(topic, n as u32);
                    break;
                }
                _ if Instant::now() >= deadline => {
                    return Err(LogError::Broker(format!(
                        "topic {name} does not exist (create it, or enable create_topics)"
                    )));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok(counts)
}

/// Converts a fetched message.
fn stored(m: &BorrowedMessage<'_>, topic: Topic, partition: u32) -> StoredRecord {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    name: h.key.to_owned(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    StoredRecord {
        topic,
        partition,
        offset: m.offset().max(0) as u64,
        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
        value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

impl KafkaLog {
    fn producer(&self) -> Arc<KafkaProducer> {
        Arc::clone(
            &self
                .inner
                .producer
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// After a failed append: when the producer is in a fatal state, or the broker no longer
    /// knows its producer id (a restarted broker that lost its producer state answers
    /// `ProducerFenced` or `UnknownProducerId` forever), a new producer replaces it (once,
    /// whichever append notices first). The caller sees the failure and retries.
    fn replace_if_fatal(&self, failed: &Arc<KafkaProducer>, error: &KafkaError) {
        let state_lost = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::Fatal
            )
        );
        let (code, reason) = match failed.client().fatal_error() {
            Some((code, reason)) => (Some(code), reason),
            None if state_lost => (None, error.to_string()),
            None => return,
        };
        let mut current = self
            .inner
            .producer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match self
            .inner
            .options
            .producer_config()
            .create_with_context::<_, KafkaProducer>(Logging)
        {
            Ok(fresh) => {
                tracing::warn!(
                    ?code,
                    reason,
                    "the idempotent Kafka producer hit a fatal error; a new producer replaces it"
                );
                *current = Arc::new(fresh);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create a Kafka producer to replace a failed one")
            }
        }
    }

    /// Sends `records` through `producer` and waits for every delivery report.
    async fn send(
        &self,
        producer: &Arc<KafkaProducer>,
        topic: Topic,
        name: &str,
        partitions: u32,
        records: &[Record],
    ) -> Result<Vec<Position>, LogError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for rec in records {
            let partition = if rec.key.is_empty() {
                self.inner.round_robin.fetch_add(1, Ordering::Relaxed) % partitions.max(1)
            } else {
                partition_for_key(&rec.key, partitions)
            };
            let mut headers = OwnedHeaders::new_with_capacity(rec.headers.len());
            for h in &rec.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: &h.name,
                    value: Some(&h.value[..]),
                });
            }
            let mut message = FutureRecord::<[u8], [u8]>::to(name)
                .partition(partition as i32)
                .payload(&rec.value[..])
                .headers(headers);
            if !rec.key.is_empty() {
                message = message.key(&rec.key[..]);
            }
            if let Some(ts) = rec.timestamp_ms {
                message = message.timestamp(ts);
            }
            loop {
                match producer.send_result(message) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: wait for deliveries to drain it.
                        message = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        self.replace_if_fatal(producer, &e);
                        return Err(kafka_error(&format!("appending to {name}"), e));
                    }
                }
            }
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(d)) => positions.push(Position {
                    topic,
                    partition: d.partition.max(0) as u32,
                    offset: d.offset.max(0) as u64,
                }),
                Ok(Err((e, _))) => {
                    self.replace_if_fatal(producer, &e);
                    return Err(kafka_error(&format!("appending to {name}"), e));
                }
                Err(_canceled) => return Err(LogError::Closed),
            }
        }
        Ok(positions)
    }
}

impl EventLog for KafkaLog {
    type Subscription = KafkaSubscription;

    async fn append(&self, topic: Topic, records: Vec<Record>) -> Result<Vec<Position>, LogError> {
        self.check_open()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let partitions = self.partitions(topic);
        let name = self.topic_name(topic);
        // `send` replaces the producer on its own errors when they are fatal.
        self.send(&self.producer(), topic, name, partitions, &records)
            .await
    }

    fn partitions(&self, topic: Topic) -> u32 {
        self.inner.partitions.get(&topic).copied().unwrap_or(0)
    }

    async fn read(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.check_open()?;
        self.check_partition(topic, partition)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.inner.readers.read(topic, partition, from, max))
            .await
            .map_err(join_error)?
    }

    async fn watermarks(&self, topic: Topic, partition: u32) -> Result<Watermarks, LogError> {
        self.check_open()?;
        self.check_partition(topic, partition)?;
        let this = self.clone();
        let (start, end) =
            tokio::task::spawn_blocking(move || this.inner.readers.watermarks(topic, partition))
                .await
                .map_err(join_error)??;
        Ok(Watermarks { start, end })
    }

    async fn offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.check_open()?;
        self.check_partition(topic, partition)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.inner
                .readers
                .offset_for_time(topic, partition, timestamp_ms)
        })
        .await
        .map_err(join_error)?
    }

    async fn subscribe(
        &self,
        group: &GroupId,
        topics: &[Topic],
        start: StartFrom,
    ) -> Result<KafkaSubscription, LogError> {
        self.check_open()?;
        if topics.is_empty() {
            return Err(LogError::Invalid(
                "subscribe needs at least one topic".into(),
            ));
        }
        let options = &self.inner.options;
        let group_id = format!("{}{}", options.group_prefix, group.as_str());
        self.wait_for_leaving(Some(&group_id)).await;
        let shared = Arc::new(MemberShared::default());
        let (assigned_tx, mut assigned) = watch::channel(0usize);
        let context = MemberContext {
            shared: Arc::clone(&shared),
            names: Arc::clone(&self.inner.names),
            readers: Arc::clone(&self.inner.readers),
            start,
            request_timeout: options.request_timeout,
            assigned: assigned_tx,
        };
        let consumer: Arc<BaseConsumer<MemberContext>> = Arc::new(
            options
                .member_config(&group_id, start)
                .create_with_context(context)
                .map_err(|e| kafka_error("creating a kafka consumer", e))?,
        );
        // Every partition of the subscribed topics gets its own queue, so the background thread
        // sees only events and the records wait for `poll`.
        let mut queues = Vec::new();
        for &topic in topics {
            for p in 0..self.partitions(topic) {
                if let Some(mut queue) =
                    consumer.split_partition_queue(self.topic_name(topic), p as i32)
                {
                    let shared = Arc::clone(&shared);
                    queue.set_nonempty_callback(move || shared.notify.notify_one());
                    queues.push(MemberQueue {
                        topic,
                        partition: p,
                        queue,
                    });
                }
            }
        }
        let names: Vec<&str> = topics.iter().map(|t| self.topic_name(*t)).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| kafka_error(&format!("joining group {group_id}"), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let track = Arc::new(MemberTrack {
            group_id: group_id.clone(),
            leaving: AtomicBool::new(false),
            left: watch::Sender::new(false),
        });
        {
            let consumer = Arc::clone(&consumer);
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let track = Arc::clone(&track);
            std::thread::Builder::new()
                .name(format!("kafka-member-{}", group.as_str()))
                .spawn(move || {
                    serve_member(&consumer, &shared, &stop);
                    // The last reference: dropping it closes the consumer (leaves the group).
                    drop(consumer);
                    track.left.send_replace(true);
                })
                .map_err(|e| LogError::Broker(format!("starting a group member thread: {e}")))?;
        }
        if let Ok(mut members) = self.inner.members.lock() {
            members.push(Arc::clone(&track));
        }
        let sub = KafkaSubscription {
            log: self.clone(),
            group_id,
            member: Some(Member { consumer, queues }),
            cursor: 0,
            shared,
            stop,
            track,
        };
        // Return once the member owns partitions, so that what is appended from now on is
        // consumed by the members that will keep it.
        let joined = tokio::time::timeout(options.join_timeout, assigned.wait_for(|n| *n > 0));
        match joined.await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(sub.fatal().unwrap_or(LogError::Closed)),
            Err(_) => tracing::info!(
                group = %sub.group_id,
                "no partitions assigned within the join timeout (more members than partitions?)"
            ),
        }
        if let Some(e) = sub.fatal() {
            return Err(e);
        }
        Ok(sub)
    }

    async fn committed(
        &self,
        group: &GroupId,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        self.check_open()?;
        self.check_partition(topic, partition)?;
        let this = self.clone();
        let group = group.clone();
        tokio::task::spawn_blocking(move || this.committed_blocking(&group, topic, partition))
            .await
            .map_err(join_error)?
    }

    async fn flush(&self) -> Result<(), LogError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.producer()
                .flush(this.inner.options.request_timeout)
                .map_err(|e| kafka_error("flushing the producer", e))
        })
        .await
        .map_err(join_error)?
    }

    async fn close(&self) -> Result<(), LogError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = self.flush().await;
        if let Ok(mut idle) = self.inner.readers.idle.lock() {
            idle.clear();
        }
        self.wait_for_leaving(None).await;
        flushed
    }
}

/// What a member's consumer context, its thread and its subscription share.
#[derive(Default)]
struct MemberShared {
    /// Wakes a waiting `poll`: a queue became non-empty, the assignment changed, or a failure.
    notify: Notify,
    /// Records that arrived on the consumer queue instead of a partition queue (a partition
    /// added to a topic after the member joined).
    stray: Mutex<VecDeque<StoredRecord>>,
    /// A fatal client error; the member is unusable once set.
    fatal: Mutex<Option<String>>,
}

/// The consumer context of a member: assigns explicit start offsets on rebalance.
struct MemberContext {
    shared: Arc<MemberShared>,
    names: Arc<Names>,
    readers: Arc<Readers>,
    start: StartFrom,
    request_timeout: Duration,
    /// Partitions assigned after the latest rebalance.
    assigned: watch::Sender<usize>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka_logging::log_line(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka_logging::log_error(&error, reason);
    }
}

impl MemberContext {
    /// Resolves where each newly assigned partition starts: the group's committed offset, else
    /// the log start or the current end. An explicit offset makes `StartFrom::Latest` mean the
    /// end at assignment, not at some later first fetch. When the lookup fails, librdkafka
    /// resolves the same thing itself (committed, else `auto.offset.reset`).
    fn starting_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        assigned: &TopicPartitionList,
    ) -> TopicPartitionList {
        let committed = match consumer.committed_offsets(assigned.clone(), self.request_timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reading committed offsets on assignment failed");
                return assigned.clone();
            }
        };
        let mut out = TopicPartitionList::with_capacity(assigned.count());
        for elem in assigned.elements() {
            let (name, p) = (elem.topic(), elem.partition());
            let offset = match committed.find_partition(name, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Offset::Offset(o),
                _ => match self.start {
                    StartFrom::Earliest => Offset::Beginning,
                    StartFrom::Latest => match self.names.topic(name) {
                        Some(topic) => match self.readers.watermarks(topic, p.max(0) as u32) {
                            Ok((_, end)) => Offset::Offset(end as i64),
                            Err(_) => Offset::End,
                        },
                        None => Offset::End,
                    },
                },
            };
            if out.add_partition_offset(name, p, offset).is_err() {
                out.add_partition(name, p);
            }
        }
        out
    }

    fn forget_strays(&self, revoked: &TopicPartitionList) {
        let gone: Vec<(Topic, u32)> = revoked
            .elements()
            .iter()
            .filter_map(|e| Some((self.names.topic(e.topic())?, e.partition().max(0) as u32)))
            .collect();
        if let Ok(mut stray) = self.shared.stray.lock() {
            stray.retain(|r| !gone.contains(&(r.topic, r.partition)));
        }
    }
}

impl ConsumerContext for MemberContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let positioned = self.starting_offsets(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(&positioned)
                } else {
                    consumer.assign(&positioned)
                }
            }
            other => {
                if other != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(error = ?other, "consumer group rebalance failed");
                }
                self.forget_strays(tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying a consumer group assignment failed");
        }
        let count = consumer.assignment().map_or(0, |a| a.count());
        self.assigned.send_replace(count);
        self.shared.notify.notify_one();
    }
}

/// The loop of a member's background thread: serves rebalances and errors until the
/// subscription is dropped, then closes the consumer (leaving the group) when it holds the last
/// reference.
fn serve_member(
    consumer: &Arc<BaseConsumer<MemberContext>>,
    shared: &MemberShared,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(EVENT_POLL) {
            None => {}
            Some(Ok(m)) => {
                let names = &consumer.context().names;
                if let Some(topic) = names.topic(m.topic()) {
                    let record = stored(&m, topic, m.partition().max(0) as u32);
                    if let Ok(mut stray) = shared.stray.lock() {
                        stray.push_back(record);
                    }
                    shared.notify.notify_one();
                }
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                if let Ok(mut fatal) = shared.fatal.lock() {
                    *fatal = Some(format!("fatal consumer error: {code}"));
                }
                shared.notify.notify_one();
                break;
            }
            Some(Err(e)) => tracing::debug!(error = %e, "kafka consumer event"),
        }
    }
}

struct MemberQueue {
    topic: Topic,
    partition: u32,
    queue: PartitionQueue<MemberContext>,
}

struct Member {
    consumer: Arc<BaseConsumer<MemberContext>>,
    queues: Vec<MemberQueue>,
}

/// A member of a Kafka consumer group. Leaves the group when dropped.
pub struct KafkaSubscription {
    log: KafkaLog,
    group_id: String,
    /// Taken on drop, so that the background thread holds the last reference and closes the
    /// consumer off the async runtime.
    member: Option<Member>,
    cursor: usize,
    shared: Arc<MemberShared>,
    stop: Arc<AtomicBool>,
    track: Arc<MemberTrack>,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.group_id)
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl KafkaSubscription {
    fn fatal(&self) -> Option<LogError> {
        let fatal = self.shared.fatal.lock().ok()?.clone()?;
        Some(LogError::Broker(format!(
            "group {} member failed: {fatal}",
            self.group_id
        )))
    }

    fn member(&self) -> Result<&Member, LogError> {
        self.member.as_ref().ok_or(LogError::Closed)
    }

    /// Takes what is ready, without waiting: strays first, then the partition queues in turn
    /// (starting one further each call, so no partition starves).
    fn take_ready(&mut self, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        if let Ok(mut stray) = self.shared.stray.lock() {
            while out.len() < max {
                let Some(r) = stray.pop_front() else { break };
                out.push(r);
            }
        }
        let member = self.member.as_ref().ok_or(LogError::Closed)?;
        let n = member.queues.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let Some(q) = member.queues.get((self.cursor + i) % n) else {
                continue;
            };
            while out.len() < max {
                match q.queue.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(m)) => out.push(stored(&m, q.topic, q.partition)),
                    Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                        return Err(LogError::Broker(format!(
                            "group {} member failed: {code}",
                            self.group_id
                        )));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(group = %self.group_id, error = %e, "kafka fetch error");
                        break;
                    }
                }
            }
        }
        self.cursor = self.cursor.wrapping_add(1);
        Ok(out)
    }
}

impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(e) = self.fatal() {
                return Err(e);
            }
            let batch = self.take_ready(max.max(1))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(POLL_RECHECK);
            let _ = tokio::time::timeout(nap, self.shared.notify.notified()).await;
        }
    }

    async fn commit(&mut self, offsets: &[(Topic, u32, u64)]) -> Result<(), LogError> {
        let consumer = Arc::clone(&self.member()?.consumer);
        let owned = self.assignment();
        let names = Arc::clone(&self.log.inner.names);
        let mut tpl = TopicPartitionList::new();
        for &(topic, partition, offset) in offsets {
            // Kafka's classic protocol accepts a member's commit for any partition; the
            // contract is that a member no longer owning a partition cannot move its offset.
            if !owned.contains(&(topic, partition)) {
                continue;
            }
            tpl.add_partition_offset(
                names.name(topic),
                partition as i32,
                Offset::Offset(offset as i64),
            )
            .map_err(|e| kafka_error("committing offsets", e))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        let group_id = self.group_id.clone();
        tokio::task::spawn_blocking(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| kafka_error(&format!("committing offsets of group {group_id}"), e))
        })
        .await
        .map_err(join_error)?
    }

    fn seek(&mut self, topic: Topic, partition: u32, offset: u64) -> Result<(), LogError> {
        if !self.assignment().contains(&(topic, partition)) {
            return Err(LogError::Invalid(format!(
                "{topic}/{partition} is not assigned to this member"
            )));
        }
        if let Ok(mut stray) = self.shared.stray.lock() {
            stray.retain(|r| (r.topic, r.partition) != (topic, partition));
        }
        // A zero timeout makes the seek asynchronous; librdkafka discards what was fetched
        // before it (version barrier), so the next poll starts at `offset`.
        self.member()?
            .consumer
            .seek(
                self.log.topic_name(topic),
                partition as i32,
                Offset::Offset(offset as i64),
                Duration::ZERO,
            )
            .map_err(|e| kafka_error(&format!("seeking {topic}/{partition}"), e))
    }

    fn assignment(&self) -> Vec<(Topic, u32)> {
        let Some(member) = self.member.as_ref() else {
            return Vec::new();
        };
        let Ok(tpl) = member.consumer.assignment() else {
            return Vec::new();
        };
        let names = &self.log.inner.names;
        let mut out: Vec<(Topic, u32)> = tpl
            .elements()
            .iter()
            .filter_map(|e| Some((names.topic(e.topic())?, e.partition().max(0) as u32)))
            .collect();
        out.sort();
        out
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // Drop our references first: the member thread then holds the last one and closes the
        // consumer (revoking its partitions and leaving the group) on its own thread.
        drop(self.member.take());
        self.track.leaving.store(true, Ordering::Release);
        self.stop.store(true, Ordering::Release);
    }
}
