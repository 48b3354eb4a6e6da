//! The dead-letter record: the input's bytes, key, time and headers as read, plus headers that
//! say which processor gave up on it, where it was, and why.
//!
//! A dead-letter record keeps the input's key, so it lands in the partition of its key like the
//! input did. A replay after a crash between the append and the checkpoint can append the same
//! dead letter twice; `(group, source_topic, source_partition, source_offset)` identifies it.

use switchyard_events::Topic;
use switchyard_log::{Header, Record, StoredRecord};

/// Header: the consumer group of the processor that dead-lettered the record.
pub const HEADER_GROUP: &str = "switchyard.dlq.group";
/// Header: the topic the record was read from (`Topic::name()`).
pub const HEADER_SOURCE_TOPIC: &str = "switchyard.dlq.source_topic";
/// Header: the partition the record was read from (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "switchyard.dlq.source_partition";
/// Header: the record's offset in its partition (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "switchyard.dlq.source_offset";
/// Header: the kind of failure, [`DeadLetterKind::label`].
pub const HEADER_KIND: &str = "switchyard.dlq.kind";
/// Header: the failure, with its cause chain, as text.
pub const HEADER_REASON: &str = "switchyard.dlq.reason";

/// Why a record was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// The bytes do not decode into an event (codec error).
    Undecodable,
    /// The event decoded but the processor classified it as poison.
    Poison,
}

impl DeadLetterKind {
    /// Returns the header value and metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DeadLetterKind::Undecodable => "undecodable",
            DeadLetterKind::Poison => "poison",
        }
    }
}

/// A record the processor gave up on, with the reason.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub(crate) source: StoredRecord,
    pub(crate) kind: DeadLetterKind,
    pub(crate) reason: String,
}

impl DeadLetter {
    /// Returns the record appended to [`Topic::DeadLetter`].
    pub(crate) fn to_record(&self, group: &str) -> Record {
        let mut headers = self.source.headers.clone();
        let mut add = |name: &str, value: String| {
            headers.push(Header {
                name: name.to_owned(),
                value: value.into_bytes(),
            });
        };
        add(HEADER_GROUP, group.to_owned());
        add(HEADER_SOURCE_TOPIC, self.source.topic.name().to_owned());
        add(HEADER_SOURCE_PARTITION, self.source.partition.to_string());
        add(HEADER_SOURCE_OFFSET, self.source.offset.to_string());
        add(HEADER_KIND, self.kind.label().to_owned());
        add(HEADER_REASON, self.reason.clone());
        Record {
            key: self.source.key.clone(),
            value: self.source.value.clone(),
            headers,
            timestamp_ms: Some(self.source.timestamp_ms),
        }
    }
}

/// Returns the value of the last header named `name`, as text.
pub fn header_text<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|h| h.name == name)
        .and_then(|h| std::str::from_utf8(&h.value).ok())
}

/// Where a dead-lettered record came from, read back from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSource {
    /// The processor's consumer group.
    pub group: String,
    /// The source topic.
    pub topic: Topic,
    /// The source partition.
    pub partition: u32,
    /// The source offset.
    pub offset: u64,
    /// [`DeadLetterKind::label`].
    pub kind: String,
    /// The failure as text.
    pub reason: String,
}

impl DeadLetterSource {
    /// Parses the dead-letter headers of a record of [`Topic::DeadLetter`]; `None` when any is
    /// missing or malformed.
    pub fn from_headers(headers: &[Header]) -> Option<Self> {
        Some(Self {
            group: header_text(headers, HEADER_GROUP)?.to_owned(),
            topic: header_text(headers, HEADER_SOURCE_TOPIC)?.parse().ok()?,
            partition: header_text(headers, HEADER_SOURCE_PARTITION)?
                .parse()
                .ok()?,
            offset: header_text(headers, HEADER_SOURCE_OFFSET)?.parse().ok()?,
            kind: header_text(headers, HEADER_KIND)?.to_owned(),
            reason: header_text(headers, HEADER_REASON)?.to_owned(),
        })
    }
}

/// Renders an error and its sources as one line: `outer: inner: innermost`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
