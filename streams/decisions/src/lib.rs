//! switchyard-decisions: the decisions read model.
//!
//! Place in the pipeline: consumes `decisions` (`RouteDecided`), `responses`
//! (`ResponseCompleted`, joined by decision id), `feedback` (`FeedbackSubmitted` about a
//! request, joined by request id) and `judge-scores` (`JudgeScored`, joined by decision id)
//! through the consumer group [`GROUP`], and keeps one [`DecisionRecord`] per decision in the
//! state store: the whole decision trace joined with its outcome (served model, status, latency,
//! usage, cost, attempts), the outcome of its shadow-mode mirror when the request was mirrored
//! (a `ResponseCompleted` with `shadow` set, kept as `shadow_response`, never in place of the
//! response the client got) and a summary of the quality scores received (count and mean per
//! source). It emits no events. The API's `GET /v1/decisions/{id}` and `GET /v1/decisions`
//! read it through [`DecisionQueries`].
//!
//! Keys and tables: see [`state`]. Records are keyed by org and decision id; secondary indexes
//! by org + time, org + route + time and org + session + time (newest first) serve the list
//! queries, and a request-id index serves lookups by the id clients see (`x-request-id`, the
//! completion's `id`).
//!
//! Delivery semantics: the [`DecisionsProcessor`] runs in the processor runtime
//! (`switchyard-processor`), which applies each batch's state with its input checkpoints
//! atomically. On top of that the fold is idempotent and order-independent: a response,
//! feedback or judge score may arrive before its decision (the four topics are consumed
//! independently); it waits in a pending table and is merged when the decision arrives, and a
//! redelivered input changes nothing (scores are kept per feedback / judgement id, and the mean
//! is computed over them in id order). The state after any interleaving of the same inputs is
//! identical, byte for byte (`tests/it/interleavings.rs`).
//!
//! All four topics are keyed by session id, else request id, so every event about a decision
//! lands in the same partition number of its topic, and one member of the group owns all of
//! them (co-partitioning): members never write the same keys.
//!
//! Session-level feedback (`Target::Session`) is not folded here: session-NPS propagation turns
//! it into per-request feedback, which is.

mod process;
mod query;
mod record;
pub mod state;

pub use process::{DecisionsProcessor, GROUP, INPUTS, PENDING_TTL};
pub use query::{
    DEFAULT_SCAN_BUDGET, DecisionFilter, DecisionQueries, MAX_LIMIT, Page, QueryError,
};
pub use record::{DecisionRecord, FeedbackSummary, ResponseOutcome, SourceSummary};

use switchyard_log::EventLog;
use switchyard_processor::{ProcessorDeps, ProcessorOptions, ProcessorRuntime, RunError};
use switchyard_runtime::CancellationToken;
use switchyard_store::StateStore;

/// Runs the read model until `shutdown` is cancelled: the role `stream decisions` (and one task
/// of `switchyard serve`). Query what it builds with [`DecisionQueries`] over the same store.
pub async fn run<L: EventLog, S: StateStore>(
    deps: ProcessorDeps<L, S>,
    options: ProcessorOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    ProcessorRuntime::new(DecisionsProcessor, deps, options)
        .run(shutdown)
        .await
}
