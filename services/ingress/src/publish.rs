//! Events leave the request path through a bounded queue. `publish` never blocks and never
//! drops: when the queue is full (or the publisher is down) the event spills to a durable local
//! queue (fjall, `<data_dir>/spill`), and the publisher re-sends spilled events once the log
//! accepts appends again. Queue depth and spill counts are exported as metrics.
//!
//! The publisher encodes (Confluent-framed Avro) and appends in batches, one append per topic per
//! batch, so the embedded log group-commits them together. It also signs the batch's decision
//! traces with one Ed25519 signature over their Merkle root (`switchyard_router::sign`): the
//! request path builds a trace and hands it over unsigned. A trace that overflows to the spill
//! is signed alone on the way, so nothing reaches the log unsigned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use switchyard_events::{Codec, Event, RouteDecided, Topic};
use switchyard_log::{EventLog, Record};
use switchyard_router::DecisionSigner;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Counters of the publisher.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Events accepted by `publish`.
    pub published: AtomicU64,
    /// Events appended to the log.
    pub appended: AtomicU64,
    /// Events written to the spill.
    pub spilled: AtomicU64,
    /// Events re-sent from the spill.
    pub unspilled: AtomicU64,
    /// Events that failed to encode (a bug; logged loudly).
    pub encode_failures: AtomicU64,
}

/// The durable overflow queue: `[seq u64 BE]` → `[topic code][key len u32][key][value]`.
#[derive(Clone)]
pub struct Spill {
    db: Database,
    queue: Keyspace,
    next: Arc<AtomicU64>,
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Spill {
    /// Opens the spill in a directory.
    pub fn open(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let db = Database::builder(dir)
            .worker_threads(1)
            .open()
            .with_context(|| format!("open spill in {}", dir.display()))?;
        Self::with_db(db, None)
    }

    /// Opens a spill in a temporary directory (memory mode, tests).
    pub fn temporary() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = Database::builder(dir.path())
            .temporary(true)
            .worker_threads(1)
            .open()?;
        Self::with_db(db, Some(Arc::new(dir)))
    }

    fn with_db(db: Database, temp: Option<Arc<tempfile::TempDir>>) -> anyhow::Result<Self> {
        let queue = db.keyspace("spill", KeyspaceCreateOptions::default)?;
        let next = match queue.iter().next_back() {
            Some(g) => {
                let (k, _) = g.into_inner()?;
                u64::from_be_bytes(k.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8])) + 1
            }
            None => 0,
        };
        Ok(Spill {
            db,
            queue,
            next: Arc::new(AtomicU64::new(next)),
            _temp: temp,
        })
    }

    fn push(&self, topic: Topic, record: &Record) -> anyhow::Result<()> {
        let seq = self.next.fetch_add(1, Ordering::AcqRel);
        let mut v = Vec::with_capacity(5 + record.key.len() + record.value.len());
        v.push(topic.code());
        v.extend_from_slice(&(record.key.len() as u32).to_be_bytes());
        v.extend_from_slice(&record.key);
        v.extend_from_slice(&record.value);
        self.queue.insert(seq.to_be_bytes(), v)?;
        Ok(())
    }

    fn peek(&self, max: usize) -> anyhow::Result<Vec<(u64, Topic, Record)>> {
        let mut out = Vec::new();
        for g in self.queue.iter().take(max) {
            let (k, v) = g.into_inner()?;
            let seq = u64::from_be_bytes(
                k.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .context("spill key")?,
            );
            let topic = v
                .first()
                .copied()
                .and_then(Topic::from_code)
                .context("spill topic")?;
            let key_len = u32::from_be_bytes(
                v.get(1..5)
                    .and_then(|b| b.try_into().ok())
                    .context("spill key length")?,
            ) as usize;
            let key = v.get(5..5 + key_len).context("spill key bytes")?.to_vec();
            let value = v.get(5 + key_len..).context("spill value")?.to_vec();
            out.push((seq, topic, Record::new(key, value)));
        }
        Ok(out)
    }

    fn remove(&self, seqs: &[u64]) -> anyhow::Result<()> {
        let mut batch = self.db.batch();
        for s in seqs {
            batch.remove(&self.queue, s.to_be_bytes().to_vec());
        }
        batch.durability(Some(PersistMode::Buffer)).commit()?;
        Ok(())
    }

    /// Returns whether the spill is empty.
    pub fn is_empty(&self) -> bool {
        self.queue.iter().next().is_none()
    }

    fn persist(&self) {
        if let Err(e) = self.db.persist(PersistMode::SyncData) {
            tracing::error!(error = %e, "cannot sync the spill");
        }
    }
}

/// The request path's handle: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Event>,
    spill: Spill,
    codec: Codec,
    stats: Arc<PublishStats>,
    capacity: usize,
    signer: Option<Arc<DecisionSigner>>,
}

/// Signs traces with one signature; on failure (a bug: the payload cannot be written) logs it
/// and marks them `unsigned`, which no key verifies.
pub fn sign_or_mark<'a>(
    signer: &DecisionSigner,
    traces: impl IntoIterator<Item = &'a mut RouteDecided>,
) {
    let mut traces: Vec<&mut RouteDecided> = traces.into_iter().collect();
    if traces.is_empty() {
        return;
    }
    if let Err(e) = signer.sign_batch(traces.iter_mut().map(|t| &mut **t)) {
        tracing::error!(error = %e, traces = traces.len(), "cannot sign decision traces; they are published unsigned");
        for t in traces {
            t.signing_key_id = "unsigned".into();
            t.signature.clear();
            t.signature_proof = None;
        }
    }
}

impl Publisher {
    /// Returns a publisher and the receiving end its background task drains.
    pub fn new(capacity: usize, spill: Spill, codec: Codec) -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Publisher {
                tx,
                spill,
                codec,
                stats: Arc::default(),
                capacity,
                signer: None,
            },
            rx,
        )
    }

    /// Signs the decision traces it publishes with this key.
    #[must_use]
    pub fn with_signer(mut self, signer: Arc<DecisionSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Signs the unsigned decision traces among `events`, all with one signature.
    fn sign(&self, events: &mut [Event]) {
        if let Some(signer) = &self.signer {
            sign_or_mark(
                signer,
                events.iter_mut().filter_map(|e| match e {
                    Event::RouteDecided(d) if d.signature.is_empty() => Some(d),
                    _ => None,
                }),
            );
        }
    }

    /// Hands an event to the publisher; spills it to disk when the queue is full.
    pub fn publish(&self, event: Event) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut event = match self.tx.try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e)) => e,
        };
        self.sign(std::slice::from_mut(&mut event));
        match encode(&self.codec, &event) {
            Ok(record) => match self.spill.push(event.topic(), &record) {
                Ok(()) => {
                    self.stats.spilled.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, kind = event.kind().name(), "cannot spill an event; it is lost")
                }
            },
            Err(e) => {
                self.stats.encode_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, kind = event.kind().name(), "cannot encode an event");
            }
        }
    }

    /// Returns the number of events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    /// Returns the counters.
    pub fn stats(&self) -> &PublishStats {
        &self.stats
    }
}

fn encode(codec: &Codec, event: &Event) -> anyhow::Result<Record> {
    let value = codec.encode(event)?;
    Ok(Record::new(event.partition_key().as_str(), value)
        .at(event.envelope().event_time.as_millis()))
}

/// Whether the log has been acknowledging appends. After a failed or timed-out append the
/// publisher stops trying for a backoff (doubling from 250 ms to 10 s): new batches go straight
/// to the spill, and the next spill drain is the probe that finds the log back.
#[derive(Debug)]
struct LogHealth {
    timeout: Duration,
    down_until: Option<tokio::time::Instant>,
    backoff: Duration,
}

impl LogHealth {
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    const MAX_BACKOFF: Duration = Duration::from_secs(10);

    fn new(timeout: Duration) -> Self {
        LogHealth {
            timeout,
            down_until: None,
            backoff: Self::FIRST_BACKOFF,
        }
    }

    fn is_down(&self) -> bool {
        self.down_until
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    fn failed(&mut self) {
        if self.down_until.is_none() {
            tracing::warn!(
                "the event log does not acknowledge appends; events spill to disk until it does"
            );
        }
        self.down_until = Some(tokio::time::Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
    }

    fn succeeded(&mut self) {
        if self.down_until.take().is_some() {
            tracing::info!("the event log acknowledges appends again; re-sending the spill");
        }
        self.backoff = Self::FIRST_BACKOFF;
    }

    /// Appends within the timeout; a timeout is a failure (the append may still land later,
    /// and then twice: consumers dedupe by event id).
    async fn append<L: EventLog>(
        &self,
        log: &L,
        topic: Topic,
        records: Vec<Record>,
    ) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, log.append(topic, records)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no acknowledgement within {:?}", self.timeout)),
        }
    }
}

/// Drains the queue into the log until `shutdown`, then drains what is left; re-sends the spill
/// whenever the queue is idle and the log acknowledges appends. An append that fails or is not
/// acknowledged within `append_timeout` spills its batch. Once a batch has its first events, the
/// publisher waits up to `linger` for more (up to `batch_max`), so that a light load still
/// batches: the request path never waits for this, only the events do.
#[expect(clippy::too_many_arguments, reason = "the publisher's settings, named")]
pub async fn run<L: EventLog>(
    publisher: Publisher,
    mut rx: mpsc::Receiver<Event>,
    log: L,
    batch_max: usize,
    append_timeout: Duration,
    linger: Duration,
    metrics: switchyard_runtime::Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let report = |p: &Publisher| {
        let s = p.stats();
        metrics.publish().set(
            p.queue_depth() as u64,
            s.spilled.load(Ordering::Relaxed),
            s.unspilled.load(Ordering::Relaxed),
            s.appended.load(Ordering::Relaxed),
        );
    };
    let mut health = LogHealth::new(append_timeout);
    let mut buf = Vec::with_capacity(batch_max);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let stopping = tokio::select! {
            n = rx.recv_many(&mut buf, batch_max) => n == 0,
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        if stopping {
            // Close the queue and drain whatever is still in it.
            rx.close();
            while rx.recv_many(&mut buf, batch_max).await > 0 {
                append_or_spill(&publisher, &log, &mut health, &mut buf).await;
            }
            publisher.spill.persist();
            if !health.is_down() {
                drain_spill(&publisher, &log, &mut health).await;
            }
            report(&publisher);
            return Ok(());
        }
        if !linger.is_zero() && !buf.is_empty() && buf.len() < batch_max {
            let until = tokio::time::Instant::now() + linger;
            while buf.len() < batch_max {
                let room = batch_max - buf.len();
                tokio::select! {
                    n = rx.recv_many(&mut buf, room) => {
                        if n == 0 {
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(until) => break,
                    () = shutdown.cancelled() => break,
                }
            }
        }
        if !buf.is_empty() {
            // The buffer is reused: growing a fresh one event by event per batch cost more
            // than encoding the batch (large reallocations, fresh pages faulted in).
            append_or_spill(&publisher, &log, &mut health, &mut buf).await;
        }
        if rx.is_empty() && !publisher.spill.is_empty() && !health.is_down() {
            publisher.spill.persist();
            drain_spill(&publisher, &log, &mut health).await;
        }
        report(&publisher);
    }
}

fn spill_records(publisher: &Publisher, topic: Topic, records: &[Record]) {
    for r in records {
        match publisher.spill.push(topic, r) {
            Ok(()) => {
                publisher.stats.spilled.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "cannot spill an event; it is lost"),
        }
    }
    publisher.spill.persist();
}

/// Appends (or spills) the batch in `events`, leaving `events` empty with its capacity kept.
async fn append_or_spill<L: EventLog>(
    publisher: &Publisher,
    log: &L,
    health: &mut LogHealth,
    events: &mut Vec<Event>,
) {
    publisher.sign(events);
    let mut by_topic: BTreeMap<Topic, Vec<Record>> = BTreeMap::new();
    for event in events.iter() {
        match encode(&publisher.codec, event) {
            Ok(r) => by_topic.entry(event.topic()).or_default().push(r),
            Err(e) => {
                publisher
                    .stats
                    .encode_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, kind = event.kind().name(), "cannot encode an event");
            }
        }
    }
    if health.is_down() {
        for (topic, records) in &by_topic {
            spill_records(publisher, *topic, records);
        }
        events.clear();
        return;
    }
    let attempt = &*health;
    let batch = &*events;
    let appends = by_topic.into_iter().map(|(topic, records)| async move {
        let n = records.len() as u64;
        // The records move into the append; a failed append re-encodes its topic's events
        // (deterministic) to spill them, rather than every append paying for a copy.
        match attempt.append(log, topic, records).await {
            Ok(()) => {
                publisher.stats.appended.fetch_add(n, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, %topic, records = n, "log append failed; spilling");
                let records: Vec<Record> = batch
                    .iter()
                    .filter(|event| event.topic() == topic)
                    .filter_map(|event| encode(&publisher.codec, event).ok())
                    .collect();
                spill_records(publisher, topic, &records);
                false
            }
        }
    });
    let results = futures::future::join_all(appends).await;
    events.clear();
    if results.iter().all(|ok| *ok) {
        health.succeeded();
    } else {
        health.failed();
    }
}

async fn drain_spill<L: EventLog>(publisher: &Publisher, log: &L, health: &mut LogHealth) {
    loop {
        let items = match publisher.spill.peek(1024) {
            Ok(items) if !items.is_empty() => items,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spill");
                return;
            }
        };
        // Per topic, in spill order.
        let mut by_topic: BTreeMap<Topic, (Vec<u64>, Vec<Record>)> = BTreeMap::new();
        for (seq, topic, record) in items {
            let entry = by_topic.entry(topic).or_default();
            entry.0.push(seq);
            entry.1.push(record);
        }
        for (topic, (seqs, records)) in by_topic {
            let n = records.len() as u64;
            if let Err(e) = health.append(log, topic, records).await {
                tracing::warn!(error = %e, "the log still refuses appends; the spill waits");
                health.failed();
                return;
            }
            health.succeeded();
            if let Err(e) = publisher.spill.remove(&seqs) {
                // Re-sent but not removed: a later drain sends them again; consumers dedupe by id.
                tracing::error!(error = %e, "cannot remove re-sent events from the spill");
                return;
            }
            publisher.stats.unspilled.fetch_add(n, Ordering::Relaxed);
            publisher.stats.appended.fetch_add(n, Ordering::Relaxed);
        }
    }
}
