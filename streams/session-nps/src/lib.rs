//! switchyard-session-nps: session-NPS propagation.
//!
//! Place in the pipeline: consumes `decisions` (`RouteDecided`) and `feedback`
//! (`FeedbackSubmitted`) through the consumer group [`GROUP`], keeps a session → decisions index
//! and each session's current rating in the state store, and emits one
//! `FeedbackSubmitted { target: Request { request_id }, source: Nps, .. }` per decision of a
//! rated session to `feedback`, where the decisions read model, the regression windows and the
//! projector read it like any other per-request feedback. It runs in the processor runtime
//! (`switchyard-processor`): a task of `switchyard serve`, or the role `stream session-nps`.
//!
//! # What is propagated
//!
//! A *rating* is a `FeedbackSubmitted` with `target: Session { session_id }` and
//! `source: Nps` (what `POST /v1/feedback {"session_id", "nps"}` records). Session feedback of
//! any other source, and feedback about a request (including this processor's own outputs,
//! which it reads back from `feedback`), is ignored.
//!
//! A session has **one current rating**: of all its ratings, the one with the greatest
//! `(event_time, event_id)`, whichever API key sent it. A rating applies to a decision of its
//! session (same org, same session id) when
//!
//! ```text
//! decision.event_time <= rating.event_time + window      (window: SessionNpsConfig, default 24 h)
//! ```
//!
//! that is, to every decision taken before the rating and to those taken up to `window` after
//! it (a user who rates a conversation and goes on talking). Times are event times from the
//! events themselves, never a clock, so the relation between a rating and a decision does not
//! depend on which of the two is processed first, nor on when.
//!
//! # Outputs and their ids
//!
//! Each (rating, covered decision) pair is emitted **once**: by the rating, for the decisions
//! already indexed when it is processed, or by the decision, when it is indexed after the
//! rating. Output event ids come from [`Output::emit`](switchyard_processor::Output::emit):
//! derived from the input's event id and a purpose naming the other side of the pair
//! (`nps/<decision event id>` when the rating is the input, `nps/<rating event id>` when the
//! decision is), so an event id always stands for one (rating, decision) pair, and the same id
//! always carries the same bytes. A batch processed again after a crash re-emits identical
//! events that consumers drop by event id.
//!
//! One case escapes event-id deduplication: a crash after the outputs were appended but before
//! state was applied, followed by a retry that polls the two topics in another interleaving
//! (the runtime guarantees order within a partition, not across topics). If the rating came
//! before the decision on the first run and after it on the retry, the pair is emitted once by
//! each side, under two event ids. Both copies carry the same feedback id, event time and
//! content, so a consumer deduplicating by feedback id (latest wins) sees one fact; consumers
//! of propagated NPS must deduplicate by feedback id, not only by event id.
//!
//! The emitted event's **feedback id** depends on the decision only:
//! [`derived_feedback_id`]`(org, session, decision)`. A later rating for the same session
//! (a changed mind, a retry) is emitted again for every decision it covers with the *same*
//! feedback id, so a consumer that keeps the latest entry per feedback id (the decisions read
//! model does, by `(event_time, event_id)`) replaces the earlier score instead of counting it
//! twice. For that comparison to pick the right rating, every emission carries the **rating's**
//! `event_time`, also when it is emitted because a decision arrived later. Since a later rating
//! covers everything an earlier one did (its window ends later), nothing ever needs retracting.
//! A rating older than the session's current one (delivered late) emits nothing.
//!
//! Each emission keeps the rating's raw score, scale and normalised score, sets
//! `derived_from` to the rating's event id, `route` and `model` to the decision's route and
//! served model, the envelope's `trace_id` to the decision's, its partition key to the session
//! id, and the label `session_feedback_id` to the rating's feedback id. The rating's comment is
//! not copied (it is about the session, and stays on the rating).
//!
//! # Partitioning
//!
//! `decisions` and `feedback` are keyed by session id for anything in a session
//! (`PartitionKey::session_or_request`), so all the events of a session are in one partition
//! number of each topic, and the consumer group gives those to one member: one member owns a
//! session's state, and a session's events on one topic are read in order. The processor
//! checks it: a rating or a sessioned decision whose record key is not its session id would be
//! processed by a member that does not own the session, so it is dead-lettered as poison
//! (`POST /v1/feedback` keys session ratings by the session id). Feedback about a *request* is
//! keyed by its request id at ingress (ingress does not know the request's session); this
//! processor does not read it.
//!
//! # Delivery semantics
//!
//! The runtime applies each batch's state with its input checkpoints atomically and commits
//! offsets last. On top of that the fold is idempotent: a redelivered rating is not newer than
//! the stored one and a redelivered decision is already indexed, so neither changes state nor
//! emits. The effective score per decision (the latest emission per feedback id) does not
//! depend on the order in which the two topics are consumed, on batching or on redelivery
//! (`tests/it/interleavings.rs`).
//!
//! Two ratings of one session with the same event time to the microsecond are ordered by the
//! rating's event id here and by the emitted event id downstream, which may disagree; ingress
//! mints event times from one clock per node, so this needs two nodes rating one session in
//! the same microsecond.
//!
//! # State
//!
//! See [`state`]. The index keeps every sessioned decision and the current rating of every
//! rated session for `retention` of event time (`feedback.session_retention_hours`, 7 days): a
//! decision that long after it was taken, a rating that long after its window closed; then a
//! sweep (`switchyard_processor::expiry`) forgets them.

mod process;
pub mod state;

pub use process::{
    GROUP, INPUTS, SESSION_FEEDBACK_LABEL, SessionNpsConfig, SessionNpsProcessor,
    derived_feedback_id,
};

use switchyard_log::EventLog;
use switchyard_processor::{
    Processor, ProcessorDeps, ProcessorOptions, ProcessorRuntime, RunError,
};
use switchyard_runtime::CancellationToken;
use switchyard_store::StateStore;

/// Returns the propagation as a [`Processor`], to run in a [`ProcessorRuntime`].
pub fn processor(config: SessionNpsConfig) -> impl Processor {
    SessionNpsProcessor::new(config)
}

/// Runs session-NPS propagation until `shutdown` is cancelled: the role `stream session-nps`
/// (and one task of `switchyard serve`).
pub async fn run<L: EventLog, S: StateStore>(
    deps: ProcessorDeps<L, S>,
    options: ProcessorOptions,
    config: SessionNpsConfig,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    ProcessorRuntime::new(SessionNpsProcessor::new(config), deps, options)
        .run(shutdown)
        .await
}
