//! switchyard-log: the `EventLog` port and its backends.
//!
//! Place in the pipeline: every role appends encoded events here (ingress publishes
//! `RequestReceived`, `ResponseCompleted`, `RouteDecided`; processors publish what they derive) and
//! every processor consumes from here through a consumer group. The port moves bytes
//! ([`Record`]); typed publishing sits on top in `switchyard-events`.
//!
//! Semantics are Kafka's, because that is what the processors rely on and what the distributed
//! deployment runs on:
//! - a [`Topic`] has a fixed number of partitions; a record's key picks its partition
//!   ([`partition_for_key`], Kafka's murmur2 partitioner, so both backends agree);
//! - offsets are per partition, dense on append, and may have gaps after compaction;
//! - consumer groups split partitions between their members and keep committed offsets
//!   (the next offset to read); a member resumes from the committed offset;
//! - replay reads any partition from an offset, or from the first offset at or after a time.
//!
//! Delivery: `append` resolves only once the records are durable (in the embedded backend:
//! after the group commit that carried them was fsynced; in Kafka: acknowledged by every
//! in-sync replica). Consumers see only durable records.
//! Consumption is at-least-once; processors dedupe by event id.
//!
//! Backends, both held to one contract suite (`switchyard-testkit`):
//! - [`embedded::EmbeddedLog`]: fjall, in the data directory; `memory://` is the same engine in a
//!   temporary directory. Single-node mode.
//! - `kafka::KafkaLog` (cargo feature `kafka`): any Kafka-protocol cluster through librdkafka,
//!   for the distributed mode. `acks=all` replaces the fsync; its tests run against a Tansu
//!   broker that `make test` starts (`scripts/with-tansu.sh`).

mod any;
pub mod embedded;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
mod kafka_logging;
mod kafka_options;
mod partitioner;
mod record;

use std::future::Future;
use std::time::Duration;

pub use any::{AnyLog, AnySubscription};
pub use error::{LogError, RetryHint};
pub use kafka_options::KafkaOptions;
pub use partitioner::{murmur2, partition_for_key};
pub use record::{GroupId, Header, Position, Record, StartFrom, StoredRecord, Watermarks};
pub use switchyard_events::Topic;

/// The event-log port. Implemented by every backend; exercised by one contract suite.
pub trait EventLog: Clone + Send + Sync + 'static {
    /// A consumer-group membership returned by [`EventLog::subscribe`].
    type Subscription: Subscription;

    /// Appends records to a topic and resolves once they are durable, with one position per
    /// record in input order. Records with the same key land in the same partition, in order.
    fn append(
        &self,
        topic: Topic,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<Vec<Position>, LogError>> + Send;

    /// Returns the number of partitions of a topic.
    fn partitions(&self, topic: Topic) -> u32;

    /// Reads up to `max` durable records of one partition starting at `from` (inclusive).
    /// Returns an empty vector at the end of the partition; [`LogError::OffsetOutOfRange`] when
    /// `from` is below the log start (retention removed it) or past the end.
    fn read(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, LogError>> + Send;

    /// Returns the log start and the high watermark (next offset to be written) of a partition.
    fn watermarks(
        &self,
        topic: Topic,
        partition: u32,
    ) -> impl Future<Output = Result<Watermarks, LogError>> + Send;

    /// Returns the first offset whose timestamp is at or after `timestamp_ms` (Kafka's
    /// `offsetsForTimes`), or `None` when every record is older.
    fn offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> impl Future<Output = Result<Option<u64>, LogError>> + Send;

    /// Joins a consumer group for the given topics. Partitions are split between the group's
    /// members; a partition starts at the group's committed offset, else at `start`.
    fn subscribe(
        &self,
        group: &GroupId,
        topics: &[Topic],
        start: StartFrom,
    ) -> impl Future<Output = Result<Self::Subscription, LogError>> + Send;

    /// Returns a group's committed offset (the next offset to read) for one partition.
    fn committed(
        &self,
        group: &GroupId,
        topic: Topic,
        partition: u32,
    ) -> impl Future<Output = Result<Option<u64>, LogError>> + Send;

    /// Waits until everything appended so far is durable.
    fn flush(&self) -> impl Future<Output = Result<(), LogError>> + Send;

    /// Flushes and releases the backend (the embedded backend unlocks its data directory).
    /// Appends after close fail with [`LogError::Closed`].
    fn close(&self) -> impl Future<Output = Result<(), LogError>> + Send;
}

/// One member of a consumer group.
pub trait Subscription: Send + 'static {
    /// Returns up to `max` records from the assigned partitions, waiting up to `wait` for new
    /// ones when none are available. Rebalances happen inside this call.
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, LogError>> + Send;

    /// Commits, for each `(topic, partition)`, the next offset the group should read.
    /// Offsets for partitions this member no longer owns are ignored (Kafka fences them).
    fn commit(
        &mut self,
        offsets: &[(Topic, u32, u64)],
    ) -> impl Future<Output = Result<(), LogError>> + Send;

    /// Moves this member's read position of an assigned partition (replay, or resuming from a
    /// processor checkpoint kept in the state store).
    fn seek(&mut self, topic: Topic, partition: u32, offset: u64) -> Result<(), LogError>;

    /// Returns the partitions currently assigned to this member.
    fn assignment(&self) -> Vec<(Topic, u32)>;
}
