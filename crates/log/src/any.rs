//! [`AnyLog`]: the backend the configuration picked, as one type.
//!
//! The binary chooses its event log at run time (`log.url`), while every role is generic over
//! [`EventLog`]. Dispatching here, once, keeps the roles monomorphised a single time (one copy
//! of the ingress, the processors and the CLI commands, not one per backend) and keeps
//! `cfg(feature = "kafka")` out of the callers: without the feature, [`AnyLog::kafka`] returns
//! a clear error instead of the variant not existing.

use std::time::Duration;

use crate::embedded::EmbeddedLog;
use crate::{
    EventLog, GroupId, KafkaOptions, LogError, Position, Record, StartFrom, StoredRecord,
    Subscription, Topic, Watermarks,
};

/// The event log of this process: embedded (single node) or Kafka (distributed).
#[derive(Debug, Clone)]
pub enum AnyLog {
    /// The embedded log ([`EmbeddedLog`]).
    Embedded(EmbeddedLog),
    /// The Kafka backend.
    #[cfg(feature = "kafka")]
    Kafka(crate::kafka::KafkaLog),
}

impl AnyLog {
    /// Connects to a Kafka cluster (creating missing topics when the settings say so).
    #[cfg(feature = "kafka")]
    pub async fn kafka(settings: KafkaOptions) -> Result<Self, LogError> {
        crate::kafka::KafkaLog::connect(settings)
            .await
            .map(AnyLog::Kafka)
    }

    /// Without the `kafka` feature: an error that says how to get it.
    #[cfg(not(feature = "kafka"))]
    pub async fn kafka(settings: KafkaOptions) -> Result<Self, LogError> {
        Err(LogError::Invalid(format!(
            "log.url names Kafka ({}), but this binary was built without the `kafka` cargo \
             feature; rebuild with `cargo build -p switchyard --features kafka`",
            settings.brokers
        )))
    }

    /// Returns the embedded log, when that is the backend.
    pub fn as_embedded(&self) -> Option<&EmbeddedLog> {
        match self {
            AnyLog::Embedded(log) => Some(log),
            #[cfg(feature = "kafka")]
            AnyLog::Kafka(_) => None,
        }
    }

    /// Returns the backend's name: `embedded` or `kafka`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyLog::Embedded(_) => "embedded",
            #[cfg(feature = "kafka")]
            AnyLog::Kafka(_) => "kafka",
        }
    }
}

impl From<EmbeddedLog> for AnyLog {
    fn from(log: EmbeddedLog) -> Self {
        AnyLog::Embedded(log)
    }
}

/// Runs `$body` with `$log` bound to the backend inside `$self`.
macro_rules! dispatch {
    ($self:expr, $log:ident => $body:expr) => {
        match $self {
            AnyLog::Embedded($log) => $body,
            #[cfg(feature = "kafka")]
            AnyLog::Kafka($log) => $body,
        }
    };
}

impl EventLog for AnyLog {
    type Subscription = AnySubscription;

    async fn append(&self, topic: Topic, records: Vec<Record>) -> Result<Vec<Position>, LogError> {
        dispatch!(self, log => log.append(topic, records).await)
    }

    fn partitions(&self, topic: Topic) -> u32 {
        dispatch!(self, log => log.partitions(topic))
    }

    async fn read(
        &self,
        topic: Topic,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        dispatch!(self, log => log.read(topic, partition, from, max).await)
    }

    async fn watermarks(&self, topic: Topic, partition: u32) -> Result<Watermarks, LogError> {
        dispatch!(self, log => log.watermarks(topic, partition).await)
    }

    async fn offset_for_time(
        &self,
        topic: Topic,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        dispatch!(self, log => log.offset_for_time(topic, partition, timestamp_ms).await)
    }

    async fn subscribe(
        &self,
        group: &GroupId,
        topics: &[Topic],
        start: StartFrom,
    ) -> Result<AnySubscription, LogError> {
        match self {
            AnyLog::Embedded(log) => log
                .subscribe(group, topics, start)
                .await
                .map(AnySubscription::Embedded),
            #[cfg(feature = "kafka")]
            AnyLog::Kafka(log) => log
                .subscribe(group, topics, start)
                .await
                .map(|s| AnySubscription::Kafka(Box::new(s))),
        }
    }

    async fn committed(
        &self,
        group: &GroupId,
        topic: Topic,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        dispatch!(self, log => log.committed(group, topic, partition).await)
    }

    async fn flush(&self) -> Result<(), LogError> {
        dispatch!(self, log => log.flush().await)
    }

    async fn close(&self) -> Result<(), LogError> {
        dispatch!(self, log => log.close().await)
    }
}

/// A consumer-group membership of an [`AnyLog`].
#[derive(Debug)]
pub enum AnySubscription {
    /// Of the embedded log.
    Embedded(<EmbeddedLog as EventLog>::Subscription),
    /// Of the Kafka backend (boxed: it holds the client and its queues).
    #[cfg(feature = "kafka")]
    Kafka(Box<<crate::kafka::KafkaLog as EventLog>::Subscription>),
}

macro_rules! dispatch_sub {
    ($self:expr, $sub:ident => $body:expr) => {
        match $self {
            AnySubscription::Embedded($sub) => $body,
            #[cfg(feature = "kafka")]
            AnySubscription::Kafka($sub) => $body,
        }
    };
}

impl Subscription for AnySubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        dispatch_sub!(self, sub => sub.poll(max, wait).await)
    }

    async fn commit(&mut self, offsets: &[(Topic, u32, u64)]) -> Result<(), LogError> {
        dispatch_sub!(self, sub => sub.commit(offsets).await)
    }

    fn seek(&mut self, topic: Topic, partition: u32, offset: u64) -> Result<(), LogError> {
        dispatch_sub!(self, sub => sub.seek(topic, partition, offset))
    }

    fn assignment(&self) -> Vec<(Topic, u32)> {
        dispatch_sub!(self, sub => sub.assignment())
    }
}
