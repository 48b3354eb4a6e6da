//! [`ProcessorRuntime`]: the consume → process → append → apply → commit loop.
//!
//! One loop per processor instance: single-node mode runs it as a task of `switchyard serve`,
//! distributed mode as one member of the processor's consumer group (`switchyard stream <name>`).
//! The steps of a batch, and why the order matters, are in the crate documentation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use switchyard_events::{Codec, Event, Timestamp, Topic};
use switchyard_log::{EventLog, GroupId, LogError, Record, StartFrom, StoredRecord, Subscription};
use switchyard_runtime::{CancellationToken, Metrics, SharedClock};
use switchyard_store::{StateStore, WriteBatch};
use tracing::Instrument;

use crate::Processor;
use crate::dead_letter::{DeadLetter, DeadLetterKind, error_chain};
use crate::error::{ErrorClass, ProcessError, RunError, log_is_transient};
use crate::io::{Input, Output};
use crate::state::StagedState;

/// What the runtime needs from the process: the ports, the codec, metrics and a clock.
#[derive(Debug, Clone)]
pub struct ProcessorDeps<L, S> {
    /// The event log the inputs are read from and the outputs appended to.
    pub log: L,
    /// The state store holding the processor's state and input checkpoints.
    pub store: S,
    /// Decodes inputs and encodes outputs.
    pub codec: Codec,
    /// The process's metrics registry (`processor_*` families).
    pub metrics: Metrics,
    /// Wall-clock time for metrics only (event-time lag); never handed to the processor.
    pub clock: SharedClock,
}

/// Tuning of the loop. [`ProcessorOptions::default`] suits every processor so far.
#[derive(Debug, Clone)]
pub struct ProcessorOptions {
    /// Most records polled, processed and applied as one batch (one store apply, one commit).
    pub batch_size: usize,
    /// How long a poll waits for records when none are ready.
    pub poll_wait: Duration,
    /// How long a batch that came back short waits for more records before it is processed
    /// (0: at once). Under light load every batch costs a store apply and a commit however few
    /// records it holds; a few milliseconds of linger make one batch of many requests' events.
    pub linger: Duration,
    /// Where a partition starts when the store has no checkpoint for it.
    pub start_from: StartFrom,
    /// First backoff after a transient failure; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest backoff between retries.
    pub retry_max: Duration,
    /// How often the lag gauge is refreshed (it asks the log for high watermarks).
    pub lag_interval: Duration,
    /// Stops the loop at a chosen step, as a crash would (tests only).
    #[cfg(feature = "fault-injection")]
    pub crash: Option<CrashPoint>,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_wait: Duration::from_millis(200),
            linger: Duration::ZERO,
            start_from: StartFrom::Earliest,
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            lag_interval: Duration::from_secs(5),
            #[cfg(feature = "fault-injection")]
            crash: None,
        }
    }
}

/// Where an injected crash stops the loop (cargo feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    /// The step after which the loop stops.
    pub step: CrashStep,
    /// The batch (counting from 1, batches with records only) in which it stops.
    pub batch: u64,
}

/// A step of a batch after which a crash can be injected.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashStep {
    /// Outputs and dead letters are durable in the log; state and checkpoints are not applied.
    AfterAppend,
    /// State and checkpoints are durable in the store; the log's offsets are not committed.
    AfterApply,
}

/// Runs one [`Processor`] over an [`EventLog`] and a [`StateStore`].
#[derive(Debug)]
pub struct ProcessorRuntime<P, L, S> {
    processor: P,
    deps: ProcessorDeps<L, S>,
    options: ProcessorOptions,
}

/// Whether the loop goes on after a step.
enum Flow<T> {
    Continue(T),
    /// Shutdown was requested while the step was waiting to retry.
    Stop,
}

/// A batch's results, ready to be made durable.
struct Processed {
    writes: WriteBatch,
    outputs: Vec<Event>,
    dead: Vec<DeadLetter>,
    /// Input records folded into state, by input topic.
    applied: BTreeMap<Topic, u64>,
    /// The latest event time among the inputs.
    latest_event_time: Option<Timestamp>,
    /// The event time of every input folded into state (the end-to-end lag histogram).
    event_times: Vec<Timestamp>,
}

/// Why processing a batch failed.
enum BatchFailure {
    Transient(ProcessError),
    Fatal(RunError),
}

/// Doubling backoff between retries of one step, cut short by shutdown.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Sleeps before the next try; returns `false` when shutdown was requested meanwhile.
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

impl<P, L, S> ProcessorRuntime<P, L, S>
where
    P: Processor,
    L: EventLog,
    S: StateStore,
{
    /// Returns a runtime for `processor`.
    pub fn new(processor: P, deps: ProcessorDeps<L, S>, options: ProcessorOptions) -> Self {
        Self {
            processor,
            deps,
            options,
        }
    }

    /// Returns the processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// Runs until `shutdown` is cancelled (finishing the batch in flight) or a failure that
    /// retrying cannot fix. Transient failures of the log, the store or the processor are
    /// retried with backoff, forever: an input is never skipped because a dependency is down.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let group_name = self.processor.group();
        let group = GroupId::new(group_name).map_err(|e| RunError::Invalid(e.to_string()))?;
        let inputs = self.processor.inputs();
        if inputs.is_empty() {
            return Err(RunError::Invalid(format!(
                "processor `{group_name}` declares no input topics"
            )));
        }
        if self.options.batch_size == 0 {
            return Err(RunError::Invalid("batch_size must be at least 1".into()));
        }
        tracing::info!(group = group_name, ?inputs, "processor starting");

        let mut backoff = self.backoff();
        let mut subscription = loop {
            match self
                .deps
                .log
                .subscribe(&group, inputs, self.options.start_from)
                .await
            {
                Ok(subscription) => break subscription,
                Err(e) if log_is_transient(&e) => {
                    self.retrying("subscribe", &e);
                    if !backoff.wait(&shutdown).await {
                        return Ok(());
                    }
                }
                Err(source) => {
                    return Err(RunError::Log {
                        stage: "subscribe",
                        source,
                    });
                }
            }
        };

        // Next offset to process per assigned partition, loaded from the store's checkpoint
        // the first time a partition delivers records (and again after it moved away and back).
        let mut positions: HashMap<(Topic, u32), u64> = HashMap::new();
        let mut batches: u64 = 0;
        let mut lag_refreshed: Option<tokio::time::Instant> = None;
        let mut backoff = self.backoff();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let polled = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                polled = subscription.poll(self.options.batch_size, self.options.poll_wait) => polled,
            };
            let records = match polled {
                Ok(mut records) => {
                    backoff = self.backoff();
                    let room = self.options.batch_size.saturating_sub(records.len());
                    if !records.is_empty() && room > 0 && !self.options.linger.is_zero() {
                        tokio::select! {
                            biased;
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(self.options.linger) => {
                                // What arrived meanwhile joins the batch; an error here is
                                // the next poll's to report.
                                if let Ok(more) = subscription.poll(room, Duration::ZERO).await {
                                    records.extend(more);
                                }
                            }
                        }
                    }
                    records
                }
                Err(e) if log_is_transient(&e) => {
                    self.retrying("poll", &e);
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                    continue;
                }
                Err(LogError::Closed) if shutdown.is_cancelled() => break,
                Err(source) => {
                    return Err(RunError::Log {
                        stage: "poll",
                        source,
                    });
                }
            };
            let assigned: HashSet<(Topic, u32)> = subscription.assignment().into_iter().collect();
            positions.retain(|partition, _| assigned.contains(partition));
            let records = match self
                .admit(&mut subscription, &mut positions, records, &shutdown)
                .await?
            {
                Flow::Continue(records) => records,
                Flow::Stop => break,
            };
            if !records.is_empty() {
                batches += 1;
                let span = tracing::debug_span!(
                    "batch",
                    group = group_name,
                    batch = batches,
                    records = records.len()
                );
                match self
                    .run_batch(
                        &mut subscription,
                        &mut positions,
                        records,
                        batches,
                        &shutdown,
                    )
                    .instrument(span)
                    .await?
                {
                    Flow::Continue(()) => {}
                    Flow::Stop => break,
                }
            }
            let due = lag_refreshed.is_none_or(|at| at.elapsed() >= self.options.lag_interval);
            if due {
                self.refresh_lag(&positions).await;
                lag_refreshed = Some(tokio::time::Instant::now());
            }
        }
        tracing::info!(group = group_name, "processor stopped");
        Ok(())
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            next: self.options.retry_initial,
            max: self.options.retry_max.max(self.options.retry_initial),
        }
    }

    fn retrying(&self, stage: &'static str, error: &(dyn std::error::Error + 'static)) {
        let group = self.processor.group();
        self.deps.metrics.processor().record_retry(group, stage);
        tracing::warn!(group, stage, error = %error_chain(error), "transient failure, retrying");
    }

    /// Drops records the store's checkpoints say were already applied, and moves partitions
    /// seen for the first time to their checkpoint.
    ///
    /// The log's committed offset can lag the store's checkpoint by one batch (a crash between
    /// apply and commit), and can be anywhere when the store was replaced; the store's
    /// checkpoint is the truth because it was written atomically with the state. A partition
    /// whose first records are not at its checkpoint is sought there and its records of this
    /// poll are dropped (the next poll reads from the checkpoint).
    async fn admit(
        &self,
        subscription: &mut L::Subscription,
        positions: &mut HashMap<(Topic, u32), u64>,
        mut records: Vec<StoredRecord>,
        shutdown: &CancellationToken,
    ) -> Result<Flow<Vec<StoredRecord>>, RunError> {
        let mut firsts: Vec<((Topic, u32), u64)> = Vec::new();
        for record in &records {
            let partition = (record.topic, record.partition);
            if !positions.contains_key(&partition) && !firsts.iter().any(|(p, _)| *p == partition) {
                firsts.push((partition, record.offset));
            }
        }
        let mut moved: HashSet<(Topic, u32)> = HashSet::new();
        for ((topic, partition), first) in firsts {
            let target = match self.resume_offset(topic, partition, shutdown).await? {
                Flow::Continue(target) => target.unwrap_or(first),
                Flow::Stop => return Ok(Flow::Stop),
            };
            if target != first {
                tracing::info!(
                    group = self.processor.group(),
                    %topic,
                    partition,
                    from = first,
                    to = target,
                    "resuming partition from the store checkpoint"
                );
                subscription
                    .seek(topic, partition, target)
                    .map_err(|source| RunError::Log {
                        stage: "seek",
                        source,
                    })?;
                moved.insert((topic, partition));
            }
            positions.insert((topic, partition), target);
        }
        records.retain(|record| {
            let partition = (record.topic, record.partition);
            !moved.contains(&partition)
                && positions
                    .get(&partition)
                    .is_some_and(|next| record.offset >= *next)
        });
        Ok(Flow::Continue(records))
    }

    /// Returns where a partition resumes: the store's checkpoint; without one, the log start
    /// when starting from the earliest record (the state is empty, so everything kept is
    /// input), else `None` (wherever the log put the member).
    async fn resume_offset(
        &self,
        topic: Topic,
        partition: u32,
        shutdown: &CancellationToken,
    ) -> Result<Flow<Option<u64>>, RunError> {
        let group = self.processor.group();
        let mut backoff = self.backoff();
        let checkpoint = loop {
            match self.deps.store.checkpoint(group, topic, partition).await {
                Ok(checkpoint) => break checkpoint,
                Err(e) if e.is_transient() => {
                    self.retrying("checkpoint", &e);
                    if !backoff.wait(shutdown).await {
                        return Ok(Flow::Stop);
                    }
                }
                Err(source) => {
                    return Err(RunError::Store {
                        stage: "checkpoint",
                        source,
                    });
                }
            }
        };
        if checkpoint.is_some() || self.options.start_from == StartFrom::Latest {
            return Ok(Flow::Continue(checkpoint));
        }
        loop {
            match self.deps.log.watermarks(topic, partition).await {
                Ok(marks) => return Ok(Flow::Continue(Some(marks.start))),
                Err(e) if log_is_transient(&e) => {
                    self.retrying("watermarks", &e);
                    if !backoff.wait(shutdown).await {
                        return Ok(Flow::Stop);
                    }
                }
                Err(source) => {
                    return Err(RunError::Log {
                        stage: "watermarks",
                        source,
                    });
                }
            }
        }
    }

    /// Processes one batch and makes it durable: (a) append outputs and dead letters, (b) apply
    /// state with the checkpoints, (c) commit the log's offsets.
    async fn run_batch(
        &self,
        subscription: &mut L::Subscription,
        positions: &mut HashMap<(Topic, u32), u64>,
        records: Vec<StoredRecord>,
        #[cfg_attr(not(feature = "fault-injection"), expect(unused_variables))] batch: u64,
        shutdown: &CancellationToken,
    ) -> Result<Flow<()>, RunError> {
        let group = self.processor.group();
        let started = tokio::time::Instant::now();

        // Next offset per partition of this batch, in first-seen order.
        let mut next_offsets: Vec<(Topic, u32, u64)> = Vec::new();
        for record in &records {
            match next_offsets
                .iter_mut()
                .find(|(t, p, _)| *t == record.topic && *p == record.partition)
            {
                Some(entry) => entry.2 = entry.2.max(record.offset + 1),
                None => next_offsets.push((record.topic, record.partition, record.offset + 1)),
            }
        }

        let mut backoff = self.backoff();
        let processed = loop {
            match self.process_batch(&records).await {
                Ok(processed) => break processed,
                Err(BatchFailure::Transient(e)) => {
                    self.retrying("process", &e);
                    if !backoff.wait(shutdown).await {
                        return Ok(Flow::Stop);
                    }
                }
                Err(BatchFailure::Fatal(e)) => return Err(e),
            }
        };

        // (a) Outputs first: once state moves past an input, nothing would re-emit its outputs.
        let mut by_topic: Vec<(Topic, Vec<Record>)> = Vec::new();
        for event in &processed.outputs {
            let bytes = self
                .deps
                .codec
                .encode(event)
                .map_err(|source| RunError::Encode {
                    group,
                    kind: event.kind(),
                    source,
                })?;
            let record = Record {
                key: event.partition_key().as_str().as_bytes().to_vec(),
                value: bytes,
                headers: Vec::new(),
                timestamp_ms: Some(event.envelope().event_time.as_millis()),
            };
            match by_topic.iter_mut().find(|(t, _)| *t == event.topic()) {
                Some((_, list)) => list.push(record),
                None => by_topic.push((event.topic(), vec![record])),
            }
        }
        if !processed.dead.is_empty() {
            by_topic.push((
                Topic::DeadLetter,
                processed
                    .dead
                    .iter()
                    .map(|dead| dead.to_record(group))
                    .collect(),
            ));
        }
        for (topic, records) in by_topic {
            let count = records.len() as u64;
            let mut backoff = self.backoff();
            loop {
                match self.deps.log.append(topic, records.clone()).await {
                    Ok(_) => break,
                    Err(e) if log_is_transient(&e) => {
                        self.retrying("append", &e);
                        if !backoff.wait(shutdown).await {
                            return Ok(Flow::Stop);
                        }
                    }
                    Err(source) => {
                        return Err(RunError::Log {
                            stage: "append",
                            source,
                        });
                    }
                }
            }
            if topic != Topic::DeadLetter {
                self.deps
                    .metrics
                    .processor()
                    .record_outputs(group, topic.name(), count);
            }
        }
        #[cfg(feature = "fault-injection")]
        self.crash_if(CrashStep::AfterAppend, batch)?;

        // (b) State and checkpoints, atomically.
        let mut writes = processed.writes;
        for (topic, partition, next) in &next_offsets {
            writes.checkpoint(group, *topic, *partition, *next);
        }
        let mut backoff = self.backoff();
        loop {
            match self.deps.store.apply(writes.clone()).await {
                Ok(()) => break,
                Err(e) if e.is_transient() => {
                    self.retrying("apply", &e);
                    if !backoff.wait(shutdown).await {
                        return Ok(Flow::Stop);
                    }
                }
                Err(source) => {
                    return Err(RunError::Store {
                        stage: "apply",
                        source,
                    });
                }
            }
        }
        for (topic, partition, next) in &next_offsets {
            positions.insert((*topic, *partition), *next);
        }
        #[cfg(feature = "fault-injection")]
        self.crash_if(CrashStep::AfterApply, batch)?;

        // (c) The log's offsets last. A failure here loses nothing: the store's checkpoint is
        // ahead and wins on restart, so after the retries a permanent failure is only logged.
        let mut backoff = self.backoff();
        loop {
            match subscription.commit(&next_offsets).await {
                Ok(()) => break,
                Err(e) if log_is_transient(&e) => {
                    self.retrying("commit", &e);
                    if !backoff.wait(shutdown).await {
                        return Ok(Flow::Stop);
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        group,
                        error = %error_chain(&e),
                        "failed to commit offsets; the store checkpoint stays authoritative"
                    );
                    break;
                }
            }
        }

        let metrics = self.deps.metrics.processor();
        let mut dead_by_topic: BTreeMap<Topic, u64> = BTreeMap::new();
        for dead in &processed.dead {
            *dead_by_topic.entry(dead.source.topic).or_default() += 1;
        }
        let topics: HashSet<Topic> = processed
            .applied
            .keys()
            .chain(dead_by_topic.keys())
            .copied()
            .collect();
        for topic in topics {
            metrics.record_inputs(
                group,
                topic.name(),
                processed.applied.get(&topic).copied().unwrap_or(0),
                dead_by_topic.get(&topic).copied().unwrap_or(0),
            );
        }
        let now = self.deps.clock.now_micros();
        for time in &processed.event_times {
            let lag = now.saturating_sub(time.as_micros());
            metrics.record_event_lag(
                group,
                Duration::from_micros(u64::try_from(lag).unwrap_or(0)),
            );
        }
        if let Some(time) = processed.latest_event_time {
            let lag_micros = now.saturating_sub(time.as_micros());
            metrics.set_event_time_lag(
                group,
                Duration::from_micros(u64::try_from(lag_micros).unwrap_or(0)),
            );
        }
        metrics.record_batch(group, started.elapsed());
        tracing::debug!(
            group,
            outputs = processed.outputs.len(),
            dead_lettered = processed.dead.len(),
            "batch applied"
        );
        Ok(Flow::Continue(()))
    }

    /// Runs the processor over every record of a batch, staging state and outputs.
    async fn process_batch(&self, records: &[StoredRecord]) -> Result<Processed, BatchFailure> {
        let group = self.processor.group();
        let mut state = StagedState::new(&self.deps.store);
        let mut outputs = Vec::new();
        let mut dead = Vec::new();
        let mut applied: BTreeMap<Topic, u64> = BTreeMap::new();
        let mut latest_event_time: Option<Timestamp> = None;
        let mut event_times = Vec::new();
        for record in records {
            let event = match self.deps.codec.decode(&record.value) {
                Ok(event) => event,
                // The schema registry could not be asked about the id: retry the batch rather
                // than dead-letter an input that decodes once it answers.
                Err(e) if e.is_transient() => {
                    return Err(BatchFailure::Transient(ProcessError::Transient(Box::new(
                        e,
                    ))));
                }
                Err(e) => {
                    tracing::warn!(
                        group,
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        error = %error_chain(&e),
                        "undecodable input, dead-lettering it"
                    );
                    dead.push(DeadLetter {
                        source: record.clone(),
                        kind: DeadLetterKind::Undecodable,
                        reason: error_chain(&e),
                    });
                    continue;
                }
            };
            let input = Input {
                event,
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                key: record.key.clone(),
                headers: record.headers.clone(),
            };
            state.begin_record();
            let mut output = Output::new(group, input.event_id());
            match self
                .processor
                .process(&input, &mut state, &mut output)
                .await
            {
                Ok(()) => {
                    state.commit_record();
                    outputs.extend(output.into_events());
                    *applied.entry(record.topic).or_default() += 1;
                    let time = input.event_time();
                    latest_event_time = Some(latest_event_time.map_or(time, |t| t.max(time)));
                    event_times.push(time);
                }
                Err(e) => match e.class() {
                    ErrorClass::Poison => {
                        state.rollback_record();
                        tracing::warn!(
                            group,
                            topic = %record.topic,
                            partition = record.partition,
                            offset = record.offset,
                            error = %error_chain(&e),
                            "poison input, dead-lettering it"
                        );
                        dead.push(DeadLetter {
                            source: record.clone(),
                            kind: DeadLetterKind::Poison,
                            reason: error_chain(&e),
                        });
                    }
                    ErrorClass::Transient => return Err(BatchFailure::Transient(e)),
                    ErrorClass::Fatal => {
                        return Err(BatchFailure::Fatal(RunError::Processor {
                            group,
                            topic: record.topic,
                            partition: record.partition,
                            offset: record.offset,
                            source: e,
                        }));
                    }
                },
            }
        }
        Ok(Processed {
            writes: state.into_write_batch(),
            outputs,
            dead,
            applied,
            latest_event_time,
            event_times,
        })
    }

    /// Sets the lag gauge of every input topic from the partitions this member has seen.
    async fn refresh_lag(&self, positions: &HashMap<(Topic, u32), u64>) {
        let group = self.processor.group();
        let mut lag: BTreeMap<Topic, u64> = BTreeMap::new();
        for topic in self.processor.inputs() {
            lag.insert(*topic, 0);
        }
        for (&(topic, partition), &next) in positions {
            match self.deps.log.watermarks(topic, partition).await {
                Ok(marks) => *lag.entry(topic).or_default() += marks.end.saturating_sub(next),
                Err(e) => {
                    tracing::debug!(group, %topic, partition, error = %e, "cannot read watermarks for lag");
                }
            }
        }
        for (topic, records) in lag {
            self.deps
                .metrics
                .processor()
                .set_lag(group, topic.name(), records);
        }
    }

    #[cfg(feature = "fault-injection")]
    fn crash_if(&self, step: CrashStep, batch: u64) -> Result<(), RunError> {
        match self.options.crash {
            Some(point) if point.step == step && point.batch == batch => {
                tracing::warn!(group = self.processor.group(), ?point, "injected crash");
                Err(RunError::InjectedCrash(point))
            }
            _ => Ok(()),
        }
    }
}
