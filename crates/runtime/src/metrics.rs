//! [`Metrics`]: every Prometheus metric family Switchyard exports, defined in this one file.
//!
//! Families are struct fields, label sets are typed structs, and recording goes through one
//! method per occurrence (`record_append`, `record_request`, ...), so metric names and labels
//! appear nowhere else in the workspace. To add a metric: add the field to the group it belongs
//! to (or a new group), register it in that group's `register`, and add a `record_*` method.
//!
//! Label values are `&'static str` on purpose: they come from closed sets in the code
//! (`Topic::name()`, route constants), so the number of series is bounded by the code and a
//! request can never mint a new one.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of per-topic log metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TopicLabels {
    /// Logical topic name (`Topic::name()`), without the deployment prefix.
    pub topic: &'static str,
}

/// Labels of `http_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpRequestLabels {
    /// Route template (`/v1/chat/completions`), never the raw path.
    pub route: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Labels of per-route HTTP metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template (`/v1/chat/completions`), never the raw path.
    pub route: &'static str,
}

/// Labels of per-processor metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProcessorLabels {
    /// The processor's consumer group (a constant of the processor, e.g. `decisions`).
    pub group: &'static str,
}

/// Labels of per-processor, per-topic metrics (input topics, or output topics for outputs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProcessorTopicLabels {
    /// The processor's consumer group.
    pub group: &'static str,
    /// Logical topic name (`Topic::name()`).
    pub topic: &'static str,
}

/// Labels of processor retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProcessorStageLabels {
    /// The processor's consumer group.
    pub group: &'static str,
    /// The step that failed and is retried (`poll`, `process`, `append`, `apply`, `commit`).
    pub stage: &'static str,
}

/// Labels of shadow-mirror metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MirrorLabels {
    /// How the mirrored call ended (`ResponseStatus::as_str()`: `ok`, `error`, `timeout`, ...).
    pub status: &'static str,
}

/// Labels of `build_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Builds histograms with fixed buckets inside a [`Family`].
#[derive(Debug, Clone, Copy)]
struct Buckets {
    start: f64,
    factor: f64,
    count: u16,
}

impl Buckets {
    fn histogram(self) -> Histogram {
        Histogram::new(exponential_buckets(self.start, self.factor, self.count))
    }
}

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        self.histogram()
    }
}

/// Records per group commit: 1 to 16384.
const GROUP_COMMIT_RECORDS: Buckets = Buckets {
    start: 1.0,
    factor: 2.0,
    count: 15,
};
/// Append latency: 50 µs to ~1.6 s (an fdatasync is ~0.1–10 ms).
const APPEND_LATENCY_SECONDS: Buckets = Buckets {
    start: 0.000_05,
    factor: 2.0,
    count: 16,
};
/// Request duration: 5 ms to ~82 s (model calls are slow; streams long).
const REQUEST_DURATION_SECONDS: Buckets = Buckets {
    start: 0.005,
    factor: 2.0,
    count: 15,
};

/// One processor batch: 100 µs to ~6.5 s.
/// End-to-end lag of a processor's inputs: 0.5 ms to ~28 s in steps of 25 %, fine enough to
/// read a p99 off the buckets (`make bench-kafka`).
const PROCESSOR_EVENT_LAG_SECONDS: Buckets = Buckets {
    start: 0.000_5,
    factor: 1.25,
    count: 50,
};

const PROCESSOR_BATCH_SECONDS: Buckets = Buckets {
    start: 0.000_1,
    factor: 2.0,
    count: 17,
};

/// Event log metrics (`log_*`), recorded by `switchyard-log`.
#[derive(Debug)]
pub struct LogMetrics {
    appended_records: Family<TopicLabels, Counter>,
    append_batches: Counter,
    group_commit_records: Histogram,
    append_latency: Histogram,
}

impl LogMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            appended_records: Family::default(),
            append_batches: Counter::default(),
            group_commit_records: GROUP_COMMIT_RECORDS.histogram(),
            append_latency: APPEND_LATENCY_SECONDS.histogram(),
        };
        registry.register(
            "log_appended_records",
            "Records appended to the event log, by topic",
            metrics.appended_records.clone(),
        );
        registry.register(
            "log_append_batches",
            "Append calls (batches of records) acknowledged by the event log",
            metrics.append_batches.clone(),
        );
        registry.register(
            "log_group_commit_records",
            "Records written per group commit (one write and one fsync) of the embedded log",
            metrics.group_commit_records.clone(),
        );
        registry.register_with_unit(
            "log_append_latency",
            "Time from an append call to its acknowledgement",
            Unit::Seconds,
            metrics.append_latency.clone(),
        );
        metrics
    }

    /// Records one acknowledged append of `records` records to `topic` that took `latency`.
    pub fn record_append(&self, topic: &'static str, records: u64, latency: Duration) {
        self.appended_records
            .get_or_create(&TopicLabels { topic })
            .inc_by(records);
        self.append_batches.inc();
        self.append_latency.observe(latency.as_secs_f64());
    }

    /// Records one group commit of `records` records.
    pub fn record_group_commit(&self, records: u64) {
        // Exact up to 2^53 records per group, far beyond any limit.
        self.group_commit_records.observe(records as f64);
    }
}

/// HTTP server metrics (`http_*`), recorded by `switchyard-ingress`.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<HttpRequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, Buckets>,
}

impl HttpMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(REQUEST_DURATION_SECONDS),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status code",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to the last byte of a streamed response)",
            Unit::Seconds,
            metrics.request_duration.clone(),
        );
        metrics
    }

    /// Records one answered request.
    pub fn record_request(&self, route: &'static str, status: u16, duration: Duration) {
        self.requests
            .get_or_create(&HttpRequestLabels { route, status })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels { route })
            .observe(duration.as_secs_f64());
    }
}

/// Event publishing from the request path (`publish_*`), recorded by `switchyard-ingress`.
#[derive(Debug)]
pub struct PublishMetrics {
    queue_depth: prometheus_client::metrics::gauge::Gauge,
    spilled: prometheus_client::metrics::gauge::Gauge,
    unspilled: prometheus_client::metrics::gauge::Gauge,
    appended: prometheus_client::metrics::gauge::Gauge,
}

impl PublishMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            queue_depth: Default::default(),
            spilled: Default::default(),
            unspilled: Default::default(),
            appended: Default::default(),
        };
        registry.register(
            "publish_queue_depth",
            "Events waiting in the bounded publish queue",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "publish_spilled_events",
            "Events written to the durable local spill because the queue was full or the log refused them (monotonic)",
            metrics.spilled.clone(),
        );
        registry.register(
            "publish_unspilled_events",
            "Events re-sent from the spill to the log (monotonic)",
            metrics.unspilled.clone(),
        );
        registry.register(
            "publish_appended_events",
            "Events the publisher appended to the log (monotonic)",
            metrics.appended.clone(),
        );
        metrics
    }

    /// Sets the publisher's current figures (read from its counters periodically).
    pub fn set(&self, queue_depth: u64, spilled: u64, unspilled: u64, appended: u64) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.queue_depth.set(clamp(queue_depth));
        self.spilled.set(clamp(spilled));
        self.unspilled.set(clamp(unspilled));
        self.appended.set(clamp(appended));
    }
}

/// Shadow-mode mirroring (`mirror_*`), recorded by `switchyard-ingress`: the background calls
/// of a request to the router's choice whose answers never reach the client, and what they cost.
#[derive(Debug)]
pub struct MirrorMetrics {
    requests: Family<MirrorLabels, Counter>,
    spend_usd: Counter<f64, std::sync::atomic::AtomicU64>,
    unpriced: Counter,
}

impl MirrorMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            spend_usd: Counter::default(),
            unpriced: Counter::default(),
        };
        registry.register(
            "mirror_requests",
            "Shadow-mode mirrored calls completed, by status",
            metrics.requests.clone(),
        );
        registry.register(
            "mirror_spend_usd",
            "Spend on shadow-mode mirrored calls of priced models, in USD",
            metrics.spend_usd.clone(),
        );
        registry.register(
            "mirror_unpriced_requests",
            "Shadow-mode mirrored calls of models without a known price (their spend is unknown; each one closes its route's capped mirroring for the UTC day)",
            metrics.unpriced.clone(),
        );
        metrics
    }

    /// Records one completed mirrored call: how it ended and what it cost (`None`: the model
    /// has no known price).
    pub fn record_mirror(&self, status: &'static str, cost_usd: Option<f64>) {
        self.requests.get_or_create(&MirrorLabels { status }).inc();
        match cost_usd {
            Some(cost) if cost.is_finite() && cost >= 0.0 => {
                self.spend_usd.inc_by(cost);
            }
            Some(_) => {}
            None => {
                self.unpriced.inc();
            }
        }
    }
}

/// The routing table as ingress applies it (`routing_table_*`): how stale each applied
/// snapshot was (the newest input the projector had folded, to the moment this node swapped
/// the snapshot in: feedback in → table out) and the newest version applied.
#[derive(Debug)]
pub struct RoutingTableMetrics {
    staleness: Histogram,
    version: prometheus_client::metrics::gauge::Gauge,
}

/// Staleness of applied snapshots: 1 ms to about 9 minutes.
const STALENESS_SECONDS: Buckets = Buckets {
    start: 0.001,
    factor: 2.0,
    count: 20,
};

impl RoutingTableMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            staleness: STALENESS_SECONDS.histogram(),
            version: prometheus_client::metrics::gauge::Gauge::default(),
        };
        registry.register(
            "routing_table_staleness_seconds",
            "Event time of the newest input folded into an applied routing-table snapshot, to when this node applied it",
            metrics.staleness.clone(),
        );
        registry.register(
            "routing_table_version",
            "Newest routing-table version this node applied",
            metrics.version.clone(),
        );
        metrics
    }

    /// Records one applied snapshot.
    pub fn record_applied(&self, version: i64, staleness: std::time::Duration) {
        self.staleness.observe(staleness.as_secs_f64());
        self.version.set(version.max(self.version.get()));
    }
}

/// Stream-processor metrics (`processor_*`), recorded by `switchyard-processor` for every
/// processor, labelled by the processor's consumer group.
#[derive(Debug)]
pub struct ProcessorMetrics {
    records: Family<ProcessorTopicLabels, Counter>,
    dead_lettered: Family<ProcessorTopicLabels, Counter>,
    outputs: Family<ProcessorTopicLabels, Counter>,
    retries: Family<ProcessorStageLabels, Counter>,
    lag: Family<ProcessorTopicLabels, prometheus_client::metrics::gauge::Gauge>,
    event_time_lag: Family<
        ProcessorLabels,
        prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    >,
    batch_duration: Family<ProcessorLabels, Histogram, Buckets>,
    event_lag: Family<ProcessorLabels, Histogram, Buckets>,
}

impl ProcessorMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            records: Family::default(),
            dead_lettered: Family::default(),
            outputs: Family::default(),
            retries: Family::default(),
            lag: Family::default(),
            event_time_lag: Family::default(),
            batch_duration: Family::new_with_constructor(PROCESSOR_BATCH_SECONDS),
            event_lag: Family::new_with_constructor(PROCESSOR_EVENT_LAG_SECONDS),
        };
        registry.register(
            "processor_records",
            "Input records a processor folded into its state (durably applied), by input topic",
            metrics.records.clone(),
        );
        registry.register(
            "processor_dead_lettered_records",
            "Input records a processor sent to the dead-letter topic (undecodable or poison), by input topic",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "processor_output_events",
            "Events a processor appended to the log, by output topic",
            metrics.outputs.clone(),
        );
        registry.register(
            "processor_retries",
            "Transient failures a processor retried with backoff, by step",
            metrics.retries.clone(),
        );
        registry.register(
            "processor_lag_records",
            "Records between a processor's position and the high watermark of its partitions, by input topic",
            metrics.lag.clone(),
        );
        registry.register_with_unit(
            "processor_event_time_lag",
            "Clock time minus the event time of the last record a processor applied",
            Unit::Seconds,
            metrics.event_time_lag.clone(),
        );
        registry.register_with_unit(
            "processor_event_lag",
            "End-to-end lag of every input a processor applied: clock time at apply minus the input's event time (ingress: when the request was decided)",
            Unit::Seconds,
            metrics.event_lag.clone(),
        );
        registry.register_with_unit(
            "processor_batch_duration",
            "Time to process, append, apply and commit one batch",
            Unit::Seconds,
            metrics.batch_duration.clone(),
        );
        metrics
    }

    /// Records one applied batch: `records` input records of `topic` folded into state and
    /// `dead_lettered` of them sent to the dead-letter topic.
    pub fn record_inputs(
        &self,
        group: &'static str,
        topic: &'static str,
        records: u64,
        dead_lettered: u64,
    ) {
        let labels = ProcessorTopicLabels { group, topic };
        if records > 0 {
            self.records.get_or_create(&labels).inc_by(records);
        }
        if dead_lettered > 0 {
            self.dead_lettered
                .get_or_create(&labels)
                .inc_by(dead_lettered);
        }
    }

    /// Records `events` output events appended to `topic`.
    pub fn record_outputs(&self, group: &'static str, topic: &'static str, events: u64) {
        self.outputs
            .get_or_create(&ProcessorTopicLabels { group, topic })
            .inc_by(events);
    }

    /// Records one retried transient failure of `stage`.
    pub fn record_retry(&self, group: &'static str, stage: &'static str) {
        self.retries
            .get_or_create(&ProcessorStageLabels { group, stage })
            .inc();
    }

    /// Sets the lag (records not yet processed) of a processor on one input topic.
    pub fn set_lag(&self, group: &'static str, topic: &'static str, records: u64) {
        self.lag
            .get_or_create(&ProcessorTopicLabels { group, topic })
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// Sets how far behind the clock the event time of the last applied record is.
    pub fn set_event_time_lag(&self, group: &'static str, lag: Duration) {
        self.event_time_lag
            .get_or_create(&ProcessorLabels { group })
            .set(lag.as_secs_f64());
    }

    /// Records the end-to-end lag of one applied input.
    pub fn record_event_lag(&self, group: &'static str, lag: Duration) {
        self.event_lag
            .get_or_create(&ProcessorLabels { group })
            .observe(lag.as_secs_f64());
    }

    /// Records the duration of one batch.
    pub fn record_batch(&self, group: &'static str, duration: Duration) {
        self.batch_duration
            .get_or_create(&ProcessorLabels { group })
            .observe(duration.as_secs_f64());
    }
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    log: LogMetrics,
    http: HttpMetrics,
    publish: PublishMetrics,
    processor: ProcessorMetrics,
    mirror: MirrorMetrics,
    routing_table: RoutingTableMetrics,
}

/// The process's metrics registry. Cloning is cheap (an `Arc`); recording is lock-free for
/// plain counters and takes a read lock for labelled ones.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Returns a registry with every family registered and `build_info` set to this build's
    /// version.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        registry.register(
            "build",
            "Switchyard build information",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let log = LogMetrics::register(&mut registry);
        let http = HttpMetrics::register(&mut registry);
        let publish = PublishMetrics::register(&mut registry);
        let processor = ProcessorMetrics::register(&mut registry);
        let mirror = MirrorMetrics::register(&mut registry);
        let routing_table = RoutingTableMetrics::register(&mut registry);
        Self {
            inner: Arc::new(Inner {
                registry,
                log,
                http,
                publish,
                processor,
                mirror,
                routing_table,
            }),
        }
    }

    /// Returns the event log metrics.
    pub fn log(&self) -> &LogMetrics {
        &self.inner.log
    }

    /// Returns the event-publishing metrics.
    pub fn publish(&self) -> &PublishMetrics {
        &self.inner.publish
    }

    /// Returns the HTTP server metrics.
    pub fn http(&self) -> &HttpMetrics {
        &self.inner.http
    }

    /// Returns the stream-processor metrics.
    pub fn processor(&self) -> &ProcessorMetrics {
        &self.inner.processor
    }

    /// Returns the routing-table metrics.
    pub fn routing_table(&self) -> &RoutingTableMetrics {
        &self.inner.routing_table
    }

    /// Returns the shadow-mirror metrics.
    pub fn mirror(&self) -> &MirrorMetrics {
        &self.inner.mirror
    }

    /// Returns every family in the OpenMetrics text format; serve it with
    /// [`METRICS_CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
        {
            // Writing to a String cannot fail and our label values always encode; if that ever
            // changes, serve what was written rather than failing the scrape.
            tracing::error!(%error, "failed to encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_contains_every_family() {
        let metrics = Metrics::new();
        // Unlabelled families appear from the start; labelled ones once a series exists.
        let fresh = metrics.encode();
        assert!(
            fresh.contains("# TYPE log_append_batches counter"),
            "{fresh}"
        );
        assert!(!fresh.contains("http_requests_total{"), "{fresh}");

        metrics
            .log()
            .record_append("feedback", 1, Duration::from_millis(1));
        metrics
            .http()
            .record_request("/readyz", 503, Duration::from_millis(1));
        let text = metrics.encode();
        for family in [
            "# TYPE log_appended_records counter",
            "# TYPE log_append_batches counter",
            "# TYPE log_group_commit_records histogram",
            "# TYPE log_append_latency_seconds histogram",
            "# TYPE http_requests counter",
            "# TYPE http_request_duration_seconds histogram",
            "# TYPE build info",
        ] {
            assert!(text.contains(family), "missing `{family}` in:\n{text}");
        }
        assert!(
            text.contains(&format!(
                "build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn recorded_values_appear_with_their_labels() {
        let metrics = Metrics::new();
        let recorder = metrics.clone();
        recorder
            .log()
            .record_append("requests", 3, Duration::from_micros(120));
        recorder
            .log()
            .record_append("requests", 2, Duration::from_micros(80));
        recorder.log().record_group_commit(5);
        recorder
            .http()
            .record_request("/v1/chat/completions", 200, Duration::from_millis(30));

        let text = metrics.encode();
        for line in [
            "log_appended_records_total{topic=\"requests\"} 5",
            "log_append_batches_total 2",
            "log_group_commit_records_count 1",
            "log_append_latency_seconds_count 2",
            "http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1",
            "http_request_duration_seconds_count{route=\"/v1/chat/completions\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn processor_metrics_appear_with_group_and_topic() {
        let metrics = Metrics::new();
        let processor = metrics.processor();
        processor.record_inputs("decisions", "responses", 3, 1);
        processor.record_outputs("decisions", "feedback", 2);
        processor.record_retry("decisions", "apply");
        processor.set_lag("decisions", "responses", 7);
        processor.set_event_time_lag("decisions", Duration::from_millis(1500));
        processor.record_batch("decisions", Duration::from_millis(2));
        let text = metrics.encode();
        for line in [
            "processor_records_total{group=\"decisions\",topic=\"responses\"} 3",
            "processor_dead_lettered_records_total{group=\"decisions\",topic=\"responses\"} 1",
            "processor_output_events_total{group=\"decisions\",topic=\"feedback\"} 2",
            "processor_retries_total{group=\"decisions\",stage=\"apply\"} 1",
            "processor_lag_records{group=\"decisions\",topic=\"responses\"} 7",
            "processor_event_time_lag_seconds{group=\"decisions\"} 1.5",
            "processor_batch_duration_seconds_count{group=\"decisions\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn mirror_metrics_count_calls_by_status_and_sum_priced_spend() {
        let metrics = Metrics::new();
        let mirror = metrics.mirror();
        mirror.record_mirror("ok", Some(0.25));
        mirror.record_mirror("ok", Some(0.5));
        mirror.record_mirror("error", Some(0.0));
        mirror.record_mirror("ok", None);
        let text = metrics.encode();
        for line in [
            "mirror_requests_total{status=\"ok\"} 3",
            "mirror_requests_total{status=\"error\"} 1",
            "mirror_spend_usd_total 0.75",
            "mirror_unpriced_requests_total 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
