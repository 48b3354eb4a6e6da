//! A counting processor, sample events and a node (log + store in a data directory) for the tests.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures that cannot be built leave no test to run"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_events::{
    Codec, Event, EventId, FeedbackSubmitted, PartitionKey, RequestId, RequestReceived, Target,
};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record, Topic};
use switchyard_processor::{
    Input, Output, ProcessError, Processor, ProcessorDeps, ProcessorOptions, ProcessorRuntime,
    RunError, StagedState,
};
use switchyard_runtime::{CancellationToken, ManualClock, Metrics};
use switchyard_store::{EmbeddedStore, StateStore, Table};
use tokio::sync::Notify;

/// Per-request counts: `request id` → u64 BE.
pub const COUNTS: Table = Table::new("test.counts");
/// One key, `total` → u64 BE: every input updates it, so a batch must read its own writes.
pub const TOTAL: Table = Table::new("test.total");
pub const GROUP: &str = "test-counter";
pub const PARTITIONS: u32 = 4;

/// Counts `RequestReceived` per request id and in total, and emits one `FeedbackSubmitted`
/// acknowledgement per input. Deliberately *not* idempotent, so a double application shows.
///
/// Metadata switches: `poison` makes the input poison after staging a write (which must be
/// dropped); `transient` fails the first `fail_transiently` tries; `slow` sleeps.
#[derive(Debug, Default, Clone)]
pub struct Counter {
    pub fail_transiently: Arc<AtomicU32>,
    pub slow: Option<Duration>,
    /// Notified when an input starts being processed.
    pub started: Arc<Notify>,
}

impl Processor for Counter {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn inputs(&self) -> &'static [Topic] {
        &[Topic::Requests]
    }

    async fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> Result<(), ProcessError> {
        self.started.notify_one();
        let Event::RequestReceived(request) = &input.event else {
            return Ok(());
        };
        if let Some(delay) = self.slow {
            tokio::time::sleep(delay).await;
        }
        if request.metadata.contains_key("transient")
            && self
                .fail_transiently
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(ProcessError::Transient("dependency down".into()));
        }
        let key = request.request_id.as_str().as_bytes();
        let count = read_u64(state.get(COUNTS, key).await?) + 1;
        state.put(COUNTS, key, count.to_be_bytes());
        let total = read_u64(state.get(TOTAL, b"total").await?) + 1;
        state.put(TOTAL, b"total".as_slice(), total.to_be_bytes());
        if request.metadata.contains_key("poison") {
            return Err(ProcessError::poison("metadata says poison"));
        }
        out.emit("ack", ack(request, input.event_id()));
        Ok(())
    }
}

pub fn read_u64(value: Option<Vec<u8>>) -> u64 {
    value
        .and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn decode_sample(hex_text: &str) -> Event {
    let bytes = hex::decode(hex_text.trim()).expect("sample hex");
    Codec::new()
        .expect("codec")
        .decode(&bytes)
        .expect("sample decodes")
}

/// A `RequestReceived` built from the frozen v2 sample, so schema additions do not touch tests.
pub fn request(i: u32, metadata: &[&str]) -> RequestReceived {
    let Event::RequestReceived(mut event) = decode_sample(include_str!(
        "../../../../schemas/samples/request_received/v2.bin.hex"
    )) else {
        panic!("not a RequestReceived sample");
    };
    let base: EventId = "019ab5d3-6e7b-7c1a-8f2e-3d4c5b6a7980".parse().expect("id");
    event.envelope.event_id = base.derive(&format!("input-{i}"));
    event.request_id = RequestId::new(format!("req-{i}"));
    event.session_id = None;
    event.envelope.partition_key = PartitionKey::session_or_request(None, &event.request_id);
    event.metadata = metadata
        .iter()
        .map(|k| ((*k).to_owned(), "1".to_owned()))
        .collect();
    event
}

/// The acknowledgement the counter emits for a request.
fn ack(request: &RequestReceived, input: EventId) -> FeedbackSubmitted {
    let Event::FeedbackSubmitted(mut event) = decode_sample(include_str!(
        "../../../../schemas/samples/feedback_submitted/v2.bin.hex"
    )) else {
        panic!("not a FeedbackSubmitted sample");
    };
    event.envelope = request.envelope.clone();
    event.target = Target::Request {
        request_id: request.request_id.clone(),
    };
    event.derived_from = Some(input);
    event
}

/// The log and the store of one data directory.
pub struct Node {
    pub dir: PathBuf,
    pub log: EmbeddedLog,
    pub store: EmbeddedStore,
    pub metrics: Metrics,
}

impl Node {
    pub fn open(dir: &Path) -> Result<Self> {
        let options = EmbeddedOptions {
            partitions: PARTITIONS,
            ..EmbeddedOptions::default()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            log: EmbeddedLog::open_dir(&dir.join("log"), options).context("open log")?,
            store: EmbeddedStore::open_dir(&dir.join("store")).context("open store")?,
            metrics: Metrics::new(),
        })
    }

    /// Closes the log and drops the store, as a process exit would, and opens both again.
    pub async fn restart(self) -> Result<Self> {
        let dir = self.dir.clone();
        self.log.close().await?;
        drop(self);
        Self::open(&dir)
    }

    pub fn runtime(
        &self,
        counter: Counter,
        options: ProcessorOptions,
    ) -> ProcessorRuntime<Counter, EmbeddedLog, EmbeddedStore> {
        self.runtime_with_codec(counter, options, Codec::new().expect("codec"))
    }

    /// A runtime whose codec is `codec` (e.g. one resolving ids through a schema registry).
    pub fn runtime_with_codec(
        &self,
        counter: Counter,
        options: ProcessorOptions,
        codec: Codec,
    ) -> ProcessorRuntime<Counter, EmbeddedLog, EmbeddedStore> {
        ProcessorRuntime::new(
            counter,
            ProcessorDeps {
                log: self.log.clone(),
                store: self.store.clone(),
                codec,
                metrics: self.metrics.clone(),
                clock: Arc::new(ManualClock::at_micros(1_764_000_000_123_456 + 2_000_000)),
            },
            options,
        )
    }

    /// Appends events to `requests`.
    pub async fn publish(&self, events: impl IntoIterator<Item = RequestReceived>) -> Result<()> {
        let codec = Codec::new()?;
        let mut records = Vec::new();
        for event in events {
            let event = Event::RequestReceived(event);
            records.push(
                Record::new(event.partition_key().as_str(), codec.encode(&event)?)
                    .at(event.envelope().event_time.as_millis()),
            );
        }
        self.log.append(Topic::Requests, records).await?;
        Ok(())
    }

    /// Appends raw bytes to `requests` (an undecodable record).
    pub async fn publish_raw(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.log
            .append(Topic::Requests, vec![Record::new(key, bytes.to_vec())])
            .await?;
        Ok(())
    }

    /// Returns every record of a topic, all partitions, decoded where possible.
    pub async fn read_all(&self, topic: Topic) -> Result<Vec<switchyard_log::StoredRecord>> {
        let mut all = Vec::new();
        for partition in 0..self.log.partitions(topic) {
            all.extend(self.log.read(topic, partition, 0, usize::MAX).await?);
        }
        Ok(all)
    }

    /// Returns the store checkpoints of every `requests` partition.
    pub async fn checkpoints(&self) -> Result<Vec<Option<u64>>> {
        let mut out = Vec::new();
        for partition in 0..PARTITIONS {
            out.push(
                self.store
                    .checkpoint(GROUP, Topic::Requests, partition)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Returns the high watermarks of every `requests` partition, as the checkpoints a
    /// processor that has seen everything holds (`None` for empty partitions).
    pub async fn ends(&self) -> Result<Vec<Option<u64>>> {
        let mut out = Vec::new();
        for partition in 0..PARTITIONS {
            let end = self.log.watermarks(Topic::Requests, partition).await?.end;
            out.push((end > 0).then_some(end));
        }
        Ok(out)
    }

    /// Waits until the processor's store checkpoints reach the end of every partition.
    pub async fn wait_caught_up(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.checkpoints().await? == self.ends().await? {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "processor did not catch up: checkpoints {:?}, ends {:?}",
                    self.checkpoints().await?,
                    self.ends().await?
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn count(&self, request: u32) -> Result<u64> {
        Ok(read_u64(
            self.store
                .get(COUNTS, format!("req-{request}").as_bytes())
                .await?,
        ))
    }

    pub async fn total(&self) -> Result<u64> {
        Ok(read_u64(self.store.get(TOTAL, b"total").await?))
    }
}

/// Runs a runtime as a task; returns its handle and the token that stops it.
pub fn spawn(
    runtime: ProcessorRuntime<Counter, EmbeddedLog, EmbeddedStore>,
) -> (
    tokio::task::JoinHandle<Result<(), RunError>>,
    CancellationToken,
) {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(runtime.run(shutdown.clone()));
    (handle, shutdown)
}

/// Small batches and short waits, so tests see several batches quickly.
pub fn options(batch_size: usize) -> ProcessorOptions {
    ProcessorOptions {
        batch_size,
        poll_wait: Duration::from_millis(20),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..ProcessorOptions::default()
    }
}
