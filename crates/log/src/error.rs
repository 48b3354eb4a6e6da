use std::path::PathBuf;

use switchyard_events::Topic;

/// What a caller should do about a [`LogError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Retrying will not help (bad input, closed log, corrupt data).
    NoRetry,
    /// The failure may be transient (I/O, broker unavailable): retry with backoff.
    WithBackoff,
}

/// Errors of the event-log port.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage engine failed (I/O, disk full, corruption detected by the engine).
    #[error("event log storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Another process holds the data directory.
    #[error(
        "data directory {} is in use by another switchyard process (stop it, or use another --data-dir)",
        path.display()
    )]
    Locked {
        /// The locked directory.
        path: PathBuf,
    },
    /// The requested offset is not in the partition.
    #[error(
        "offset {requested} is out of range for {topic}/{partition} (log start {start}, end {end})"
    )]
    OffsetOutOfRange {
        /// Topic read.
        topic: Topic,
        /// Partition read.
        partition: u32,
        /// Offset asked for.
        requested: u64,
        /// First offset still kept.
        start: u64,
        /// High watermark.
        end: u64,
    },
    /// The partition does not exist.
    #[error("{topic} has {partitions} partitions, partition {partition} does not exist")]
    UnknownPartition {
        /// Topic addressed.
        topic: Topic,
        /// Partition addressed.
        partition: u32,
        /// Partitions of the topic.
        partitions: u32,
    },
    /// A stored record could not be decoded.
    #[error("stored record {topic}/{partition}@{offset} is corrupt: {reason}")]
    Corrupt {
        /// Topic of the record.
        topic: Topic,
        /// Partition of the record.
        partition: u32,
        /// Offset of the record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The caller's request is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The broker or the network failed (Kafka backend): unreachable, timed out, or an error
    /// answer. May pass.
    #[error("kafka broker error: {0}")]
    Broker(String),
}

impl LogError {
    /// Returns whether the operation may succeed when retried.
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            LogError::Storage(_) | LogError::Locked { .. } | LogError::Broker(_) => {
                RetryHint::WithBackoff
            }
            LogError::OffsetOutOfRange { .. }
            | LogError::UnknownPartition { .. }
            | LogError::Corrupt { .. }
            | LogError::Invalid(_)
            | LogError::Closed => RetryHint::NoRetry,
        }
    }

    /// Returns a low-cardinality label for error metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LogError::Storage(_) => "storage",
            LogError::Locked { .. } => "locked",
            LogError::OffsetOutOfRange { .. } => "offset_out_of_range",
            LogError::UnknownPartition { .. } => "unknown_partition",
            LogError::Corrupt { .. } => "corrupt",
            LogError::Invalid(_) => "invalid",
            LogError::Closed => "closed",
            LogError::Broker(_) => "broker",
        }
    }

    pub(crate) fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        LogError::Storage(Box::new(e))
    }
}
