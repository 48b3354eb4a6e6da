//! The processor half of the sink: stages each input's row in the state store.
//!
//! Staging makes the sink crash-safe without holding offsets back: a row is durable in the store
//! (atomically with the input's checkpoint) before the log's offset is committed, so nothing
//! acknowledged is lost, and the writer ([`crate::writer`]) turns staged rows into files later.
//!
//! State (all keys start with the buffer `table/org/date/`):
//!
//! - [`STAGED`] `table/org/date/` + partition (u32 BE) + offset (u64 BE) → the row's JSON; the
//!   writer deletes rows once they are in a closed file.
//! - [`BUFFERS`] `table/org/date` → [`BufferTotals`], rows and bytes ever staged; written only
//!   here.
//! - [`FLUSHED`] `table/org/date` → [`BufferTotals`] moved into files, and [`MARKS`]
//!   `table/org/date/` + partition → the highest offset in a closed file; written only by the
//!   writer. A redelivered input at or below its mark is already in a file and is skipped, so a
//!   redelivery never duplicates a row.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use switchyard_processor::{Input, Output, ProcessError, Processor, StagedState, Topic};
use switchyard_store::{StateStore, Table};

use crate::rows::{SinkTable, row_of};

/// The processor's consumer group (and checkpoint namespace).
pub const GROUP: &str = "sink";

/// The topics the sink consumes.
pub const INPUTS: &[Topic] = &[
    Topic::Decisions,
    Topic::Requests,
    Topic::Responses,
    Topic::Feedback,
    Topic::JudgeScores,
];

/// Staged rows.
pub const STAGED: Table = Table::new("sink.staged");
/// Totals staged per buffer.
pub const BUFFERS: Table = Table::new("sink.buffers");
/// Totals written to files per buffer.
pub const FLUSHED: Table = Table::new("sink.flushed");
/// Highest offset written to a file per buffer and partition.
pub const MARKS: Table = Table::new("sink.marks");
/// A file being written (the writer's intent, so a crash rewrites the same file).
pub const INTENTS: Table = Table::new("sink.intents");

/// Rows and bytes of a buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferTotals {
    /// Rows.
    pub rows: u64,
    /// Bytes of row JSON.
    pub bytes: u64,
}

/// Identifies a buffer: the rows of one table, org and UTC date.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferKey {
    /// The table.
    pub table: SinkTable,
    /// The org.
    pub org: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

impl BufferKey {
    /// `table/org/date`: the key of its totals.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.table.name(), self.org, self.date)
    }

    /// `table/org/date/`: the prefix of its staged rows and marks.
    pub fn prefix(&self) -> Vec<u8> {
        format!("{}/", self.id()).into_bytes()
    }

    /// Parses [`BufferKey::id`].
    pub fn parse(id: &[u8]) -> Option<BufferKey> {
        let text = std::str::from_utf8(id).ok()?;
        let mut parts = text.splitn(3, '/');
        let table = SinkTable::from_name(parts.next()?)?;
        let org = parts.next()?.to_owned();
        let date = parts.next()?.to_owned();
        (!org.is_empty() && date.len() == 10).then_some(BufferKey { table, org, date })
    }

    /// The staged row key of `(partition, offset)`.
    pub fn row_key(&self, partition: u32, offset: u64) -> Vec<u8> {
        let mut key = self.prefix();
        key.extend_from_slice(&partition.to_be_bytes());
        key.extend_from_slice(&offset.to_be_bytes());
        key
    }

    /// The mark key of a partition.
    pub fn mark_key(&self, partition: u32) -> Vec<u8> {
        let mut key = self.prefix();
        key.extend_from_slice(&partition.to_be_bytes());
        key
    }
}

/// Splits a staged row key into its buffer prefix length, partition and offset.
pub fn split_row_key(key: &[u8]) -> Option<(u32, u64)> {
    let tail = key.len().checked_sub(12)?;
    let partition = u32::from_be_bytes(key[tail..tail + 4].try_into().ok()?);
    let offset = u64::from_be_bytes(key[tail + 4..].try_into().ok()?);
    Some((partition, offset))
}

/// The Parquet sink as a [`Processor`]: run it in a
/// [`ProcessorRuntime`](switchyard_processor::ProcessorRuntime) next to a
/// [`Writer`](crate::Writer) over the same store. It emits no events.
#[derive(Debug, Clone, Default)]
pub struct SinkProcessor {
    text_orgs: BTreeSet<String>,
}

impl SinkProcessor {
    /// Returns the processor; `text_orgs` are the orgs whose prompt, completion and comment
    /// text is exported.
    pub fn new(text_orgs: impl IntoIterator<Item = String>) -> Self {
        Self {
            text_orgs: text_orgs.into_iter().collect(),
        }
    }
}

impl Processor for SinkProcessor {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn inputs(&self) -> &'static [Topic] {
        INPUTS
    }

    async fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        _out: &mut Output,
    ) -> Result<(), ProcessError> {
        let org = input.event.envelope().org.as_str();
        let with_text = self.text_orgs.contains(org);
        let Some(row) = row_of(&input.event, with_text)
            .map_err(|e| ProcessError::poison(format!("cannot encode the row: {e}")))?
        else {
            return Ok(());
        };
        if row.table.topic() != input.topic {
            // An event on a topic its table is not read from: not exported (the same event on
            // its own topic is).
            return Ok(());
        }
        let buffer = BufferKey {
            table: row.table,
            org: row.org,
            date: row.date,
        };
        let mark = state.get(MARKS, &buffer.mark_key(input.partition)).await?;
        let mark = mark
            .as_deref()
            .and_then(|m| <[u8; 8]>::try_from(m).ok())
            .map(u64::from_be_bytes);
        if mark.is_some_and(|mark| input.offset <= mark) {
            // Redelivered after it was written to a file.
            return Ok(());
        }
        let key = buffer.row_key(input.partition, input.offset);
        if state.get(STAGED, &key).await?.is_some() {
            // Redelivered while still staged: already counted.
            return Ok(());
        }
        let id = buffer.id();
        let mut totals: BufferTotals = state
            .get_json(BUFFERS, id.as_bytes())
            .await?
            .unwrap_or_default();
        totals.rows += 1;
        totals.bytes += row.json.len() as u64;
        state.put_json(BUFFERS, id.into_bytes(), &totals)?;
        state.put(STAGED, key, row.json);
        Ok(())
    }
}
