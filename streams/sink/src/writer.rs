//! The writer half of the sink: closes staged buffers into immutable Parquet files.
//!
//! Every [`WriterOptions::check_every`], [`Writer::flush_ready`] looks at each buffer (one
//! table, org and UTC date) and closes it when it holds [`WriterOptions::max_rows`] rows or
//! [`WriterOptions::max_bytes`] bytes (size roll), or when its first staged row's event time is
//! [`WriterOptions::roll_interval`] before now (time roll). Closing a buffer:
//!
//! 1. picks the rows (the first `max_rows`/`max_bytes` in key order) and records an *intent*
//!    in the store: the file name, derived from the first row's partition and offset, and the
//!    highest offset taken per partition;
//! 2. writes the Parquet file `<table>/org=<org>/date=<date>/part-<partition>-<offset>.parquet`
//!    and its manifest entry `_manifest/<same path>.json` through `object_store` (a put is
//!    atomic: a reader sees the whole file or none);
//! 3. in one store batch: deletes the rows, raises the partition marks, adds to the flushed
//!    totals and deletes the intent.
//!
//! A crash after (1) finds the intent on restart and writes the same rows to the same name, so
//! the file is replaced, never duplicated; a crash after (2) does the same (the put is
//! idempotent); the marks then make a redelivered input a no-op ([`crate::stage`]).
//!
//! Only one writer may run over a store's staged rows: run the sink role once (it scales with
//! the file sizes, not with partitions).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use switchyard_store::{StateStore, StoreError, WriteBatch};

use crate::rows::SinkTable;
use crate::stage::{
    BUFFERS, BufferKey, BufferTotals, FLUSHED, INTENTS, MARKS, STAGED, split_row_key,
};

/// When buffers are closed.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Close a buffer at this many rows (and never put more in one file).
    pub max_rows: usize,
    /// Close a buffer at this many bytes of staged row JSON.
    pub max_bytes: u64,
    /// Close a buffer whose first row's event time is this long before now.
    pub roll_interval: Duration,
    /// How often [`Writer::run`] looks.
    pub check_every: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_bytes: 64 << 20,
            roll_interval: Duration::from_secs(300),
            check_every: Duration::from_secs(1),
        }
    }
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// The object store failed.
    #[error("object store: {0}")]
    Objects(#[from] object_store::Error),
    /// Rows did not convert to Arrow or Parquet.
    #[error("encoding {table}: {message}")]
    Encode {
        /// The table.
        table: &'static str,
        /// What failed.
        message: String,
    },
    /// The sink's own state does not parse.
    #[error("corrupt sink state: {0}")]
    Corrupt(String),
}

/// A closed file, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The file's path in the object store.
    pub path: String,
    /// The table.
    pub table: String,
    /// The org.
    pub org: String,
    /// The UTC date.
    pub date: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Earliest event time in the file (microseconds).
    pub min_event_time_us: i64,
    /// Latest event time in the file (microseconds).
    pub max_event_time_us: i64,
    /// Highest source offset per partition of the table's topic.
    pub offsets: BTreeMap<u32, u64>,
}

/// A file being written: recorded before the put so a crash rewrites the same rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    name: String,
    /// Highest offset taken per partition.
    bounds: BTreeMap<u32, u64>,
}

/// The manifest directory in the object store.
pub const MANIFEST_DIR: &str = "_manifest";

/// Writes staged rows of a store into Parquet files in an object store.
#[derive(Debug, Clone)]
pub struct Writer<S> {
    store: S,
    objects: Arc<dyn ObjectStore>,
    options: WriterOptions,
}

impl<S: StateStore> Writer<S> {
    /// Returns a writer.
    pub fn new(store: S, objects: Arc<dyn ObjectStore>, options: WriterOptions) -> Self {
        Self {
            store,
            objects,
            options,
        }
    }

    /// Closes, once, every buffer that is due at `now_micros`; returns the files written.
    ///
    /// # Errors
    ///
    /// The first store, object-store or encoding failure; buffers closed before it stay closed.
    pub async fn flush_ready(&self, now_micros: i64) -> Result<Vec<ManifestEntry>, WriteError> {
        let mut written = Vec::new();
        for (buffer, mut pending) in self.pending().await? {
            // A buffer fuller than one file is closed into several, while what is left is due.
            while pending.rows > 0 && self.due(&buffer, pending, now_micros).await? {
                let Some((entry, staged_bytes)) = self.close(&buffer).await? else {
                    break;
                };
                pending.rows = pending.rows.saturating_sub(entry.rows);
                pending.bytes = pending.bytes.saturating_sub(staged_bytes);
                written.push(entry);
            }
        }
        Ok(written)
    }

    /// Closes every buffer, whatever its size or age (shutdown, tests, benchmarks).
    ///
    /// # Errors
    ///
    /// As [`Writer::flush_ready`].
    pub async fn flush_all(&self) -> Result<Vec<ManifestEntry>, WriteError> {
        let mut written = Vec::new();
        for (buffer, _) in self.pending().await? {
            while let Some((entry, _)) = self.close(&buffer).await? {
                written.push(entry);
            }
        }
        Ok(written)
    }

    /// Runs [`Writer::flush_ready`] every `check_every` until `stop` resolves, then once more.
    /// Failures are logged and retried at the next tick: staged rows wait in the store.
    pub async fn run(
        &self,
        clock: impl Fn() -> i64 + Send + Sync,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let mut tick = tokio::time::interval(self.options.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {}
            }
            match self.flush_ready(clock()).await {
                Ok(files) if !files.is_empty() => {
                    let rows: u64 = files.iter().map(|f| f.rows).sum();
                    tracing::info!(files = files.len(), rows, "sink closed files");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "sink writer failed; retrying at the next tick")
                }
            }
        }
    }

    /// Whether a buffer with `pending` rows and bytes is to be closed at `now_micros`.
    async fn due(
        &self,
        buffer: &BufferKey,
        pending: BufferTotals,
        now_micros: i64,
    ) -> Result<bool, WriteError> {
        if pending.rows >= self.options.max_rows as u64
            || pending.bytes >= self.options.max_bytes
            || self.has_intent(buffer).await?
        {
            return Ok(true);
        }
        let roll = i64::try_from(self.options.roll_interval.as_micros()).unwrap_or(i64::MAX);
        Ok(self
            .first_event_time(buffer)
            .await?
            .is_some_and(|first| now_micros.saturating_sub(first) >= roll))
    }

    /// Every buffer with rows not yet in a file, with how much is pending.
    async fn pending(&self) -> Result<Vec<(BufferKey, BufferTotals)>, WriteError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(BUFFERS, b"", after.as_deref(), 1000)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in &page {
                let buffer = BufferKey::parse(key).ok_or_else(|| {
                    WriteError::Corrupt(format!("buffer key {}", String::from_utf8_lossy(key)))
                })?;
                let staged: BufferTotals = parse(value)?;
                let flushed: BufferTotals = match self.store.get(FLUSHED, key).await? {
                    Some(v) => parse(&v)?,
                    None => BufferTotals::default(),
                };
                if staged.rows > flushed.rows {
                    out.push((
                        buffer,
                        BufferTotals {
                            rows: staged.rows - flushed.rows,
                            bytes: staged.bytes.saturating_sub(flushed.bytes),
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    async fn has_intent(&self, buffer: &BufferKey) -> Result<bool, WriteError> {
        Ok(self
            .store
            .get(INTENTS, buffer.id().as_bytes())
            .await?
            .is_some())
    }

    async fn first_event_time(&self, buffer: &BufferKey) -> Result<Option<i64>, WriteError> {
        #[derive(Deserialize)]
        struct Time {
            event_time: i64,
        }
        let first = self
            .store
            .scan_prefix(STAGED, &buffer.prefix(), None, 1)
            .await?;
        match first.first() {
            Some((_, row)) => Ok(Some(parse::<Time>(row)?.event_time)),
            None => Ok(None),
        }
    }

    /// Closes one file of `buffer`: its intent's rows if one is recorded, else the first rows
    /// up to the size limits. Returns the file and the staged bytes it took; `None` when
    /// nothing is staged.
    async fn close(&self, buffer: &BufferKey) -> Result<Option<(ManifestEntry, u64)>, WriteError> {
        let id = buffer.id();
        let intent: Option<Intent> = match self.store.get(INTENTS, id.as_bytes()).await? {
            Some(v) => Some(parse(&v)?),
            None => None,
        };
        let prefix = buffer.prefix();
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut bytes = 0u64;
        let mut after: Option<Vec<u8>> = None;
        'scan: loop {
            let page = self
                .store
                .scan_prefix(STAGED, &prefix, after.as_deref(), 4096)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in page {
                let (partition, offset) = split_row_key(&key)
                    .ok_or_else(|| WriteError::Corrupt("staged row key".into()))?;
                match &intent {
                    Some(intent) => {
                        if intent.bounds.get(&partition).is_some_and(|b| offset <= *b) {
                            bytes += value.len() as u64;
                            rows.push((key, value));
                        }
                    }
                    None => {
                        bytes += value.len() as u64;
                        rows.push((key, value));
                        if rows.len() >= self.options.max_rows || bytes >= self.options.max_bytes {
                            break 'scan;
                        }
                    }
                }
            }
        }
        let Some((first_key, _)) = rows.first() else {
            // Nothing staged (an intent whose rows are gone cannot exist: they are deleted
            // with it).
            return Ok(None);
        };
        let intent = match intent {
            Some(intent) => intent,
            None => {
                let (partition, offset) = split_row_key(first_key)
                    .ok_or_else(|| WriteError::Corrupt("staged row key".into()))?;
                let mut bounds = BTreeMap::new();
                for (key, _) in &rows {
                    if let Some((p, o)) = split_row_key(key) {
                        let bound = bounds.entry(p).or_insert(o);
                        *bound = (*bound).max(o);
                    }
                }
                let intent = Intent {
                    name: format!("part-{partition:05}-{offset:020}.parquet"),
                    bounds,
                };
                let mut batch = WriteBatch::new();
                batch.put(INTENTS, id.as_bytes().to_vec(), to_json(&intent)?);
                self.store.apply(batch).await?;
                intent
            }
        };

        let (file, min_time, max_time) = encode(buffer.table, &rows)?;
        let dir = format!(
            "{}/org={}/date={}",
            buffer.table.name(),
            buffer.org,
            buffer.date
        );
        let path = format!("{dir}/{}", intent.name);
        let entry = ManifestEntry {
            path: path.clone(),
            table: buffer.table.name().to_owned(),
            org: buffer.org.clone(),
            date: buffer.date.clone(),
            rows: rows.len() as u64,
            bytes: file.len() as u64,
            min_event_time_us: min_time,
            max_event_time_us: max_time,
            offsets: intent.bounds.clone(),
        };
        self.objects
            .put(&ObjectPath::from(path.as_str()), PutPayload::from(file))
            .await?;
        self.objects
            .put(
                &ObjectPath::from(format!("{MANIFEST_DIR}/{path}.json")),
                PutPayload::from(to_json(&entry)?),
            )
            .await?;

        let mut batch = WriteBatch::new();
        for (key, _) in &rows {
            batch.delete(STAGED, key.clone());
        }
        for (partition, bound) in &intent.bounds {
            let key = buffer.mark_key(*partition);
            let old = self
                .store
                .get(MARKS, &key)
                .await?
                .and_then(|m| <[u8; 8]>::try_from(m.as_slice()).ok())
                .map(u64::from_be_bytes);
            let mark = old.map_or(*bound, |old| old.max(*bound));
            batch.put(MARKS, key, mark.to_be_bytes().to_vec());
        }
        let mut flushed: BufferTotals = match self.store.get(FLUSHED, id.as_bytes()).await? {
            Some(v) => parse(&v)?,
            None => BufferTotals::default(),
        };
        flushed.rows += rows.len() as u64;
        flushed.bytes += bytes;
        batch.put(FLUSHED, id.as_bytes().to_vec(), to_json(&flushed)?);
        batch.delete(INTENTS, id.into_bytes());
        self.store.apply(batch).await?;
        Ok(Some((entry, bytes)))
    }
}

/// Encodes staged rows (JSON objects) of `table` as one Parquet file; returns it with the
/// least and greatest event time.
pub fn encode(
    table: SinkTable,
    rows: &[(Vec<u8>, Vec<u8>)],
) -> Result<(Vec<u8>, i64, i64), WriteError> {
    let fail = |message: String| WriteError::Encode {
        table: table.name(),
        message,
    };
    let schema = table.schema();
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .with_batch_size(8192)
        .build_decoder()
        .map_err(|e| fail(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(props))
        .map_err(|e| fail(e.to_string()))?;
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    let mut write =
        |batch: RecordBatch, writer: &mut ArrowWriter<&mut Vec<u8>>| -> Result<(), WriteError> {
            if let Some(times) = batch
                .column(3)
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            {
                if let Some(min) = arrow::compute::min(times) {
                    min_time = min_time.min(min);
                }
                if let Some(max) = arrow::compute::max(times) {
                    max_time = max_time.max(max);
                }
            }
            writer.write(&batch).map_err(|e| fail(e.to_string()))
        };
    for chunk in rows.chunks(8192) {
        let mut text = Vec::with_capacity(chunk.iter().map(|(_, v)| v.len() + 1).sum());
        for (_, row) in chunk {
            text.extend_from_slice(row);
            text.push(b'\n');
        }
        let mut rest = text.as_slice();
        while !rest.is_empty() {
            let read = decoder.decode(rest).map_err(|e| fail(e.to_string()))?;
            rest = &rest[read..];
            if let Some(batch) = decoder.flush().map_err(|e| fail(e.to_string()))? {
                write(batch, &mut writer)?;
            }
        }
    }
    if let Some(batch) = decoder.flush().map_err(|e| fail(e.to_string()))? {
        write(batch, &mut writer)?;
    }
    writer.close().map_err(|e| fail(e.to_string()))?;
    Ok((out, min_time, max_time))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WriteError> {
    serde_json::from_slice(bytes).map_err(|e| WriteError::Corrupt(e.to_string()))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec(value).map_err(|e| WriteError::Corrupt(e.to_string()))
}
