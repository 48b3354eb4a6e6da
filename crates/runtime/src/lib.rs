//! switchyard-runtime: the pieces every Switchyard process shares, below the roles.
//!
//! - [`Clock`] ([`SystemClock`], [`ManualClock`]): time as an injected dependency. Processors
//!   never read the wall clock (`SystemTime::now` is banned by `clippy.toml`); they take a clock,
//!   so replays and tests are deterministic.
//! - [`Supervisor`]: runs the roles of one process (`switchyard serve` runs them all, production
//!   runs one per process) as named tasks on a `TaskTracker`, with one `CancellationToken` for
//!   shutdown. The first role that fails cancels the others; SIGTERM/SIGINT cancel all of them;
//!   [`Supervisor::wait`] gives them a grace period and returns the first failure with its
//!   cause chain, which `main` turns into a non-zero exit.
//! - [`Metrics`]: the typed Prometheus registry. Every metric family is a struct field defined in
//!   `metrics.rs`, with typed label sets, recorded through one method per occurrence; nowhere else
//!   names a metric. [`Metrics::encode`] renders it for `/metrics` ([`METRICS_CONTENT_TYPE`]).
//! - [`init_tracing`]: installs the process's `tracing` subscriber (text or JSON on stderr,
//!   `RUST_LOG` overriding the configured level), once.
//!
//! This crate knows nothing of events, topics or backends: it sits under every other crate.

mod clock;
mod metrics;
mod supervisor;
mod telemetry;

pub use clock::{
    Clock, ManualClock, SharedClock, SystemClock, micros_since_epoch, system_time_from_micros,
};
pub use metrics::{
    HttpMetrics, HttpRequestLabels, LogMetrics, METRICS_CONTENT_TYPE, Metrics, MirrorLabels,
    MirrorMetrics, ProcessorLabels, ProcessorMetrics, ProcessorStageLabels, ProcessorTopicLabels,
    PublishMetrics, RouteLabels, TopicLabels,
};
pub use supervisor::{RoleName, Supervisor, SupervisorError};
pub use telemetry::{LOG_FILTER_ENV, LogFormat, TelemetryError, init_tracing};
pub use tokio_util::sync::CancellationToken;
