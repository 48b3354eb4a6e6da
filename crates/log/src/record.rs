use std::fmt;

use switchyard_events::Topic;

/// A record header (name and opaque bytes), as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: Vec<u8>,
}

/// A record to append. The key picks the partition; an empty key spreads records round-robin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Partition key (the event's partition key: session id, else request id).
    pub key: Vec<u8>,
    /// Encoded event (Confluent-framed Avro).
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Event time in milliseconds since the epoch; `None` lets the log stamp its append time.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// Returns a record with a key and a value, no headers, stamped by the log.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Record {
            key: key.into(),
            value: value.into(),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    /// Sets the event time.
    #[must_use]
    pub fn at(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }
}

/// A durable record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Topic.
    pub topic: Topic,
    /// Partition.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
    /// Partition key.
    pub key: Vec<u8>,
    /// Encoded event.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Event time (or append time when the producer gave none), milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Topic.
    pub topic: Topic,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
}

/// A partition's bounds: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// First offset still kept (retention moves it forward).
    pub start: u64,
    /// High watermark: the offset the next record will get.
    pub end: u64,
}

/// Where a group member starts reading a partition for which the group has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The first record still kept.
    Earliest,
    /// Only records appended after joining.
    Latest,
}

/// A consumer-group name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    /// Returns a group id; names are 1..=200 bytes of `[A-Za-z0-9._-]`.
    pub fn new(name: impl Into<String>) -> Result<Self, crate::LogError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 200
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(GroupId(name))
        } else {
            Err(crate::LogError::Invalid(format!(
                "consumer group `{name}` must be 1..=200 characters of A-Z a-z 0-9 . _ -"
            )))
        }
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
