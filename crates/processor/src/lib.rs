//! switchyard-processor: the runtime every stream processor runs on.
//!
//! Place in the pipeline: a processor consumes topics of the event log (`switchyard-log`)
//! through its own consumer group, folds each input event into state kept in the state store
//! (`switchyard-store`), and may emit derived events back to the log. The decisions read model,
//! session-NPS propagation, the judge, the regression windows, the routing-table projector and
//! the Parquet sink all implement [`Processor`] and run in a [`ProcessorRuntime`]: as tasks of
//! `switchyard serve` in single-node mode, as their own consumer group per process in the
//! distributed mode.
//!
//! # The loop
//!
//! For every batch (at most [`ProcessorOptions::batch_size`] records from the member's
//! partitions):
//!
//! 1. **Process.** Each record is decoded ([`switchyard_events::Codec`]) and handed to
//!    [`Processor::process`] with a [`StagedState`] and an [`Output`]. State reads see the store
//!    plus the writes staged earlier in the batch (read-your-writes); writes and outputs are only
//!    staged. A record that does not decode, or whose processing fails with
//!    [`ProcessError::Poison`], is set aside for the dead-letter topic and its staged writes and
//!    outputs are dropped; the batch goes on.
//! 2. **(a) Append** the outputs to their topics, then the dead letters to
//!    [`Topic::DeadLetter`], and wait until they are durable.
//! 3. **(b) Apply** the staged state writes *and* the batch's input checkpoints
//!    (`(group, topic, partition) → next offset`) as one [`switchyard_store::WriteBatch`]:
//!    atomic and durable.
//! 4. **(c) Commit** the consumer group's offsets in the log, last.
//!
//! # Crash safety
//!
//! The store's checkpoint is the processor's position; the log's committed offset is only a
//! hint. When a partition delivers records for the first time (start, restart, rebalance), the
//! runtime reads the store's checkpoint for it and seeks there, and it drops any record below
//! the position it has applied (a redelivery). So, for a crash:
//!
//! - **before (a)**: nothing is durable; the batch is read and processed again.
//! - **between (a) and (b)**: the outputs (and dead letters) are durable, the state is not. On
//!   restart the batch is processed again from the same state and **re-emits the same
//!   outputs**. That is why an output's event id is derived from its input's event id
//!   ([`Output::emit`]): the second copy carries the same id, and consumers MUST dedupe by event
//!   id. Dead letters are identified by their source headers
//!   ([`dead_letter::DeadLetterSource`]).
//! - **between (b) and (c)**: state and checkpoints are durable, the log's offsets lag one batch.
//!   On restart the log redelivers that batch, and the runtime skips it because the store's
//!   checkpoint is past it: **no input is folded into state twice**.
//! - **after (c)**: nothing to redo.
//!
//! With the embedded store, state and checkpoints commit atomically, so the effect on state is
//! exactly once. A store without cross-partition atomicity (ScyllaDB) weakens (b); that is why
//! processors MUST also be idempotent (below). In the distributed mode a member that lost a
//! partition in a rebalance while a batch was in flight may still apply that batch; its
//! checkpoint then moves back to an offset the new owner has passed, which idempotent processors
//! tolerate.
//!
//! # Failures
//!
//! - Undecodable bytes and [`ProcessError::Poison`]: dead-lettered with the reason and the source
//!   topic, partition and offset in headers ([`dead_letter`]); the partition moves on.
//! - Transient failures (the log, the store, [`ProcessError::Transient`], a transient
//!   [`ProcessError::Store`]): the step is retried with doubling backoff, forever. A transient
//!   failure while processing retries the whole batch from a fresh [`StagedState`]. No input is
//!   ever skipped because a dependency is down.
//! - Anything else ([`ProcessError::Fatal`], a closed store): [`ProcessorRuntime::run`] returns
//!   [`RunError`] and the supervisor stops the process with the cause.
//!
//! # The processor contract
//!
//! A [`Processor`]:
//!
//! - MUST be deterministic given its inputs and its state: the same input and state give the
//!   same writes and outputs. It reads time only from the input ([`Input::event_time`]); it has
//!   no clock. (The runtime's clock is for metrics.)
//! - MUST keep its state in the [`StagedState`], not in `self` (`process` takes `&self`): a batch
//!   may be processed more than once, and another member may take a partition over.
//! - MUST be idempotent: processing an input already folded into state leaves the state as it
//!   is (dedupe by an id the input carries, or make writes overwrite). With the embedded store
//!   this never happens; with a store without atomic batches it can.
//! - MUST NOT depend on the order of inputs across partitions, which no log guarantees.
//! - SHOULD classify errors: [`ProcessError::Poison`] for inputs that will never succeed,
//!   [`ProcessError::Transient`] for dependencies that may recover.
//! - Emits through [`Output::emit`] only; the runtime assigns derived event ids.
//!
//! # Metrics
//!
//! `processor_records_total`, `processor_dead_lettered_records_total`,
//! `processor_output_events_total`, `processor_retries_total`, `processor_lag_records`,
//! `processor_event_time_lag_seconds`, `processor_batch_duration_seconds`, all labelled by the
//! processor's group (`switchyard_runtime::ProcessorMetrics`).
//!
//! # Shutdown
//!
//! Cancelling the token passed to [`ProcessorRuntime::run`] stops the loop between batches: a
//! batch being processed is finished (appended, applied, committed) first. A batch waiting to
//! retry a transient failure stops at once, leaving its input to the next run.

pub mod dead_letter;
mod error;
pub mod expiry;
mod inline;
mod io;
mod runtime;
mod state;

use std::future::Future;

pub use error::{ErrorClass, ProcessError, RunError, require_nonempty};
pub use inline::Inline;
pub use io::{Input, Output};
#[cfg(feature = "fault-injection")]
pub use runtime::{CrashPoint, CrashStep};
pub use runtime::{ProcessorDeps, ProcessorOptions, ProcessorRuntime};
pub use state::StagedState;
pub use switchyard_events::Topic;
use switchyard_store::StateStore;

/// A stream processor: a consumer group, its input topics, and a step that folds one input into
/// state and outputs. See the crate documentation for the contract.
pub trait Processor: Send + Sync + 'static {
    /// Returns the consumer group (also the namespace of its checkpoints in the store and the
    /// `group` label of its metrics): 1..=200 characters of `[A-Za-z0-9._-]`, constant for the
    /// life of the processor's state (a new name starts from scratch).
    fn group(&self) -> &'static str;

    /// Returns the topics the processor consumes.
    fn inputs(&self) -> &'static [Topic];

    /// Folds one input into state (read and staged through `state`) and outputs (staged in
    /// `out`). Nothing is durable until the runtime applies the batch.
    fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> impl Future<Output = Result<(), ProcessError>> + Send;
}

/// A processor run under another consumer group, for a per-node copy of a read model: every
/// ingress of a deployment without a shared store (ScyllaDB) folds the decisions topic into its
/// own store, each as its own group, so any replica answers `GET /v1/decisions/{id}`.
///
/// The group name is leaked once (the trait hands out `&'static str`): one small string per
/// process start.
#[derive(Debug)]
pub struct Regrouped<P> {
    inner: P,
    group: &'static str,
}

impl<P: Processor> Regrouped<P> {
    /// Runs `inner` as consumer group `group` (validated by the runtime like any group).
    pub fn new(inner: P, group: String) -> Self {
        Regrouped {
            inner,
            group: Box::leak(group.into_boxed_str()),
        }
    }
}

impl<P: Processor> Processor for Regrouped<P> {
    fn group(&self) -> &'static str {
        self.group
    }

    fn inputs(&self) -> &'static [Topic] {
        self.inner.inputs()
    }

    fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> impl Future<Output = Result<(), ProcessError>> + Send {
        self.inner.process(input, state, out)
    }
}
