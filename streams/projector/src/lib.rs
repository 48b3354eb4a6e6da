//! switchyard-projector: rolling windows, regressions, automatic rollback and the routing
//! table.
//!
//! Place in the pipeline: consumes `decisions` (`RouteDecided`), `responses`
//! (`ResponseCompleted`), `feedback` (`FeedbackSubmitted` about a request: user, admin, and NPS
//! already spread over a session's requests by session-NPS propagation; and admin ratings of a
//! (route, model) pair, one admin observation of that pair each) and `judge-scores`
//! (`JudgeScored`), plus the route topics `pins` (`RoutePinned`, `RouteUnpinned`),
//! `constraints` (`ConstraintsChanged`) and `control` (`RouteConfigured`), through the consumer
//! group [`GROUP`]. It keeps rolling windows per (org, route, model) over event time in the
//! state store and emits, per org, a versioned `RoutingTableUpdated` to the compacted
//! `routing-table` topic (which every ingress follows and turns into the router's
//! statistics), and a `RoutePinned { reason: auto_rollback, pinned_by: "switchyard" }` to
//! `pins` when a model's regressions reach its route's `rollback_threshold`.
//!
//! # Windows
//!
//! Each (org, route, model) has, over the last [`ProjectorConfig::window`] of event time (24 h),
//! in buckets of [`ProjectorConfig::bucket`] (1 h, so expiry costs one bucket at a time):
//! completed requests, successes (no error, truncation or refusal) and errors (error, timeout,
//! a fallback to another model), quality observations per source (judge, admin, NPS, user)
//! with their count, mean and variance, the mean cost and the p95 latency. A request's
//! response is joined to its decision (route and served model come from the decision), and
//! feedback to the request's decision; joins do not depend on arrival order (a request's facts
//! wait in its join state, and its contributions are recomputed from them), and a feedback id
//! delivered again, or replaced by a newer rating, counts once, with its newest value. Window
//! statistics are integers (histograms, nano-USD), so merging is exact; see [`stats`] and
//! `windows.md` beside this file for the arithmetic and the timing.
//!
//! # Regressions and automatic rollback
//!
//! A quality observation of a non-baseline model that falls more than the route's
//! `max_regression` below the baseline's window mean *for the same source* is a regression,
//! bucketed by the size of its drop (`0-5%`, `5-10%`, `10-20%`, `20%+`, points of the 0..=1
//! scale) — counted only when its time bucket as a whole sits significantly below that level
//! ([`ProjectorConfig::regression_z`] standard errors, a 1% one-sided test by default). A single
//! score is far noisier than any useful margin (a model exactly as good as its baseline has
//! half its scores below the baseline's mean), so without that test every candidate would
//! collect regressions and roll back within hours; with it, noise almost never counts and a
//! real drop counts every affected request (see [`stats::RegressionRule`]). Regressions are
//! evaluated on the merged window when a snapshot is built, against the baseline's current
//! mean. When a model's regressions reach the route's `rollback_threshold` (canary and live
//! routes, no pin in force) the projector pins the route to its baseline, once; it does not
//! fire again until the route is unpinned. The one-line override is the unpin:
//!
//! ```sh
//! curl -X DELETE 127.0.0.1:8080/v1/routes/<route>/pin
//! ```
//!
//! which re-arms the rollback: the regressions already in the window are accounted for, and
//! only new ones can fire it again.
//!
//! # Snapshots
//!
//! One `RoutingTableUpdated` per org, at most once per [`ProjectorConfig::publish_interval`]
//! of event time (500 ms), and at once on any pin, unpin, constraints or route change and on a
//! rollback. It carries every route of the org (the configuration file's, the org's own, and
//! any seen in its traffic) with every model's v2 statistics, and `source_offsets`
//! (`topic/partition` → last offset folded). `version` is the sum of the next offsets of every
//! input partition: it grows with every input and is a function of the inputs folded, never of
//! a clock. `generated_at` is the newest event time folded.
//!
//! Throttling by event time means the inputs of the last interval before traffic stops wait
//! for the next input of the org (any route, any topic); under steady traffic a snapshot lags
//! its newest input by at most the interval.
//!
//! # Partitioning and the single member
//!
//! A processor writes only state owned by its input's partition ([`state`] lists the owner of
//! every table). The request-path topics are keyed by session id, else request id, so a
//! request's decision, response, feedback and judge scores share a partition number and are
//! joined there; window cells are kept *per partition* (keyed by org, route, model, partition,
//! bucket) and merged when a snapshot is built. A partition's window state is thus a function
//! of that partition's inputs, and a snapshot a function of the inputs folded (its
//! `source_offsets`), whatever the interleaving of partitions.
//!
//! The merge step reads every partition's cells and writes the org's publishing state and the
//! routes' rollback state: **the projector group runs as one member** (the `switchyard
//! projector` role; another process can stand by and takes the partitions over in a
//! rebalance, and the state moves with them). Two members would each publish tables built from
//! half the traffic. Scaling the fold out would need a re-partition topic keyed by org/route.
//!
//! # Delivery semantics
//!
//! The runtime applies each batch's state with its input checkpoints atomically. On top of
//! that the fold is idempotent: facts are kept per id with the newest version winning, so a
//! redelivered input changes nothing; pin events are deduplicated by offset. After a crash
//! between appending outputs and applying state, the batch is processed again and re-emits its
//! snapshots and rollbacks with the same derived event ids (consumers dedupe by id; ingress
//! keeps the newest snapshot of an org anyway). A pin this projector emitted is read back from
//! `pins` like any other.
//!
//! # Staleness
//!
//! The processor runtime offers no hook for a processor's own metrics, so the feedback-in →
//! table-out staleness is measured where a snapshot is applied: [`staleness`] (clock time at
//! the ingress minus `generated_at`) is what the routing-table follower records; the runtime's
//! `processor_event_time_lag_seconds` gauge covers the projector's own lag.

pub mod config;
mod process;
mod snapshot;
pub mod state;
pub mod stats;

pub use config::PoolSettings;
pub use config::{ConfigError, DEFAULT_MAX_REGRESSION, ProjectorConfig, RouteDefaults};
pub use process::{GROUP, INPUTS, ProjectorProcessor};
pub use snapshot::{ROLLBACK_PINNED_BY, staleness};
pub use state::POOL_ORG;

use switchyard_log::EventLog;
use switchyard_processor::{ProcessorDeps, ProcessorOptions, ProcessorRuntime, RunError};
use switchyard_runtime::CancellationToken;
use switchyard_store::StateStore;

/// Returns the projector for `config`, once its settings are checked.
pub fn processor(config: ProjectorConfig) -> Result<ProjectorProcessor, ConfigError> {
    config.validate()?;
    Ok(ProjectorProcessor::new(config))
}

/// Runs the projector until `shutdown` is cancelled: the role `projector` (and one task of
/// `switchyard serve`). Run exactly one per deployment (see the crate documentation).
pub async fn run<L: EventLog, S: StateStore>(
    deps: ProcessorDeps<L, S>,
    options: ProcessorOptions,
    config: ProjectorConfig,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let processor = processor(config).map_err(|e| RunError::Invalid(e.to_string()))?;
    ProcessorRuntime::new(processor, deps, options)
        .run(shutdown)
        .await
}
