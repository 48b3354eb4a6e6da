//! Runs a set of roles in this process under one supervisor.
//!
//! `switchyard serve` runs them all on the embedded log and store; the role subcommands run one
//! each (the distributed mode). Shutdown (SIGTERM, SIGINT, or a failing role): readiness drops
//! to 503, the HTTP server stops accepting and drains in-flight requests, every role stops, and
//! the log is flushed and closed last.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_config::{Config, LogBackend};
use switchyard_events::Codec;
use switchyard_ingress::control::{ControlPlane, ControlWriter, follow};
use switchyard_ingress::{AppState, IngressConfig, NodeDescription, Readiness};
use switchyard_log::embedded::EmbeddedLog;
use switchyard_log::{AnyLog, EventLog};
use switchyard_runtime::{CancellationToken, Metrics, Supervisor};

use crate::cli::StreamName;

/// A role this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every role (single node).
    All,
    /// HTTP ingress.
    Ingress,
    /// One stream processor.
    Stream(StreamName),
    /// The routing-table projector.
    Projector,
    /// The Parquet sink.
    Sink,
}

impl Role {
    fn names(self) -> Vec<String> {
        match self {
            Role::All => vec![
                "ingress".into(),
                "stream:decisions".into(),
                "stream:session-nps".into(),
                "stream:judge".into(),
                "projector".into(),
                "sink".into(),
            ],
            Role::Ingress => vec!["ingress".into()],
            Role::Stream(name) => vec![format!("stream:{}", name.as_str())],
            Role::Projector => vec!["projector".into()],
            Role::Sink => vec!["sink".into()],
        }
    }
}

pub async fn run(
    mut config: Config,
    roles: &[Role],
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let format = match config.telemetry.log_format {
        switchyard_config::LogFormat::Text => switchyard_runtime::LogFormat::Text,
        switchyard_config::LogFormat::Json => switchyard_runtime::LogFormat::Json,
    };
    switchyard_runtime::init_tracing(format, &config.telemetry.log_level)
        .context("cannot set up logging")?;

    let metrics = Metrics::new();
    let log = crate::backends::open_log(&config).await?;
    if let Some(embedded) = log.as_embedded() {
        let metrics = metrics.clone();
        embedded.set_commit_observer(Arc::new(move |commit| {
            metrics.log().record_group_commit(commit.records);
            for (topic, records) in &commit.by_topic {
                metrics
                    .log()
                    .record_append(topic.name(), *records, commit.took);
            }
        }));
    }
    let store = crate::backends::open_any_store(&config).await?;
    let codec =
        Arc::new(switchyard_registry::codec_for(config.schema_registry.url.as_deref()).await?);

    let supervisor = Supervisor::new();
    supervisor
        .shutdown_on_signals()
        .context("cannot install signal handlers")?;
    let shutdown = supervisor.shutdown_token();
    let readiness = Readiness::default();
    let publisher_stop = CancellationToken::new();

    // The control plane (API keys, routes, pins, constraints) is followed by every node that
    // serves HTTP; its writer is the admin API's direct path to the log.
    let plane = ControlPlane::new(&config.routes, &config.routing)
        .with_writer(ControlWriter::new(log.clone(), Arc::clone(&codec)));
    let (caught_up_tx, mut caught_up) = tokio::sync::watch::channel(false);
    supervisor.spawn(
        "control-plane",
        follow(
            log.clone(),
            Arc::clone(&codec),
            plane.clone(),
            caught_up_tx,
            shutdown.clone(),
        ),
    );
    if let Some(embedded) = log.as_embedded() {
        supervisor.spawn(
            "log-maintenance",
            maintain_log(
                embedded.clone(),
                config.log.retention_check_interval,
                shutdown.clone(),
            ),
        );
    }

    if let (LogBackend::Embedded(_), Some(embedded)) = (&config.log.backend, log.as_embedded()) {
        let socket = crate::control_socket::socket_path(&config.data_dir);
        let listener = crate::control_socket::bind(&socket)?;
        supervisor.spawn(
            "control-socket",
            crate::control_socket::serve(
                listener,
                socket,
                embedded.clone(),
                Arc::clone(&codec),
                plane.clone(),
                shutdown.clone(),
            ),
        );
    }

    let description = Arc::new(NodeDescription {
        roles: roles.iter().flat_map(|r| r.names()).collect(),
        log: log.backend_name().into(),
        store: format!("{:?}", config.store.backend)
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or("unknown")
            .to_lowercase(),
        version: env!("CARGO_PKG_VERSION").into(),
    });
    let serves_api = roles.iter().any(|r| matches!(r, Role::All | Role::Ingress));
    let gateway = if serves_api {
        let (gateway, rx) = build_gateway(
            &config,
            &codec,
            plane.clone(),
            &store,
            &metrics,
            request_partitions(&log),
        )?;
        // The publisher stops after the HTTP server has drained, so in-flight requests still
        // publish their events; whatever is left then goes to the durable spill.
        let publisher = gateway.publisher.clone();
        let (publish_log, publish_metrics) = (log.clone(), metrics.clone());
        let batch_max = config.gateway.publish_batch_max;
        let append_timeout = config.gateway.publish_append_timeout;
        let linger = config.gateway.publish_linger;
        let stop = publisher_stop.clone();
        supervisor.spawn("publisher", async move {
            switchyard_ingress::publish::run(
                publisher,
                rx,
                publish_log,
                batch_max,
                append_timeout,
                linger,
                publish_metrics,
                stop,
            )
            .await
        });
        let gateway = Arc::new(gateway);
        supervisor.spawn(
            "routing-table",
            switchyard_ingress::routing::follow_routing_table(
                log.clone(),
                Arc::clone(&codec),
                Arc::clone(&gateway),
                metrics.clone(),
                shutdown.clone(),
            ),
        );
        supervisor.spawn(
            "usage",
            switchyard_ingress::usage::share_usage(
                log.clone(),
                Arc::clone(&codec),
                Arc::clone(&gateway),
                config.gateway.usage_report_interval,
                shutdown.clone(),
            ),
        );
        Some(gateway)
    } else {
        None
    };
    let runs = |name: StreamName| {
        roles
            .iter()
            .any(|r| matches!(r, Role::All) || *r == Role::Stream(name))
    };
    // Stream processors run on threads of their own where this node also serves HTTP: a batch
    // that folds for milliseconds must not hold a worker a request is waiting for (the kernel
    // preempts between threads; tokio does not between tasks). Dropped (shut down in the
    // background) when `serve` returns, after the supervisor has stopped every processor.
    let processor_threads = ProcessorThreads::start(
        serves_api,
        config.server.processor_threads,
        config.server.processor_nice,
    )?;
    let on = processor_threads.handle();
    let deps = || switchyard_processor::ProcessorDeps {
        log: log.clone(),
        store: store.clone(),
        codec: Codec::clone(&codec),
        metrics: metrics.clone(),
        clock: Arc::new(switchyard_runtime::SystemClock) as switchyard_runtime::SharedClock,
    };
    if runs(StreamName::Decisions) {
        spawn_processor(
            &supervisor,
            "stream:decisions",
            switchyard_decisions::DecisionsProcessor,
            deps(),
            &shutdown,
            &on,
            config.server.processor_linger,
        );
    } else if serves_api {
        // An ingress without the decisions processor in its process (the distributed mode):
        // the decisions read model lives in this node's store, folded from the decisions topic
        // under a group of its own, so every replica answers lookups and exports.
        let group = format!("decisions-view-{}", node_id(&config.data_dir)?);
        spawn_processor(
            &supervisor,
            "decisions-view",
            switchyard_processor::Regrouped::new(switchyard_decisions::DecisionsProcessor, group),
            deps(),
            &shutdown,
            &on,
            config.server.processor_linger,
        );
    }
    if roles.iter().any(|r| {
        matches!(
            r,
            Role::All | Role::Projector | Role::Stream(StreamName::Regression)
        )
    }) {
        let projector = switchyard_projector::processor(
            switchyard_projector::ProjectorConfig::from_config(&config.routing, &config.routes)
                .with_pool(&config.learning_pool),
        )
        .map_err(|e| anyhow::anyhow!("config error: the projector: {e}"))?;
        spawn_processor(
            &supervisor,
            "projector",
            projector,
            deps(),
            &shutdown,
            &on,
            config.server.processor_linger,
        );
    }
    if runs(StreamName::Webhook) && !config.webhooks.orgs.is_empty() {
        let (log, codec, webhooks, stop) = (
            log.clone(),
            Arc::clone(&codec),
            config.webhooks.clone(),
            shutdown.clone(),
        );
        supervisor.spawn_on(
            "stream:webhook",
            async move {
                switchyard_webhook::run(log, codec, webhooks, stop)
                    .await
                    .map_err(anyhow::Error::from)
            },
            &on,
        );
    }
    if runs(StreamName::Judge) && config.judge.enabled {
        let (catalog, providers) = build_providers(&config)?;
        let judge =
            switchyard_judge::JudgeModel::resolve(&config.judge.model, &providers, &catalog)
                .map_err(|e| anyhow::anyhow!("config error: `judge.model`: {e}"))?;
        let (judge_deps, judge_config, stop) = (deps(), config.judge.clone(), shutdown.clone());
        supervisor.spawn_on(
            "stream:judge",
            async move {
                switchyard_judge::run(
                    judge_deps,
                    switchyard_judge::options(),
                    judge_config,
                    judge,
                    stop,
                )
                .await
                .map_err(anyhow::Error::from)
            },
            &on,
        );
    }
    if runs(StreamName::SessionNps) {
        spawn_processor(
            &supervisor,
            "stream:session-nps",
            switchyard_session_nps::processor(switchyard_session_nps::SessionNpsConfig {
                window: config.feedback.nps_window,
                retention: config.feedback.session_retention,
            }),
            deps(),
            &shutdown,
            &on,
            config.server.processor_linger,
        );
    }
    // The Parquet sink: the processor stages rows in the store, the writer closes them into
    // files. `POST /v1/sql` reads the same target, on nodes that serve the API.
    let runs_sink = roles.iter().any(|r| matches!(r, Role::All | Role::Sink));
    let sql: Option<switchyard_ingress::sql::SharedSqlBackend> = if config.sink.enabled {
        let objects = switchyard_sink::objects::open(&config.sink.target)
            .context("config error: `sink.url`")?;
        if runs_sink {
            spawn_processor(
                &supervisor,
                "sink",
                switchyard_sink::SinkProcessor::new(config.sink.text_orgs.clone()),
                deps(),
                &shutdown,
                &on,
                config.server.processor_linger,
            );
            let writer = switchyard_sink::Writer::new(
                store.clone(),
                std::sync::Arc::clone(&objects),
                switchyard_sink::writer_options(&config.sink),
            );
            let stop = shutdown.clone();
            supervisor.spawn_on(
                "sink-writer",
                async move {
                    use switchyard_runtime::Clock as _;
                    writer
                        .run(
                            || switchyard_runtime::SystemClock.now_micros(),
                            stop.cancelled(),
                        )
                        .await;
                    Ok(())
                },
                &on,
            );
        }
        serves_api.then(|| {
            Arc::new(crate::sql::EngineBackend(switchyard_sql::SqlEngine::new(
                objects,
            ))) as switchyard_ingress::sql::SharedSqlBackend
        })
    } else {
        if roles.contains(&Role::Sink) {
            tracing::warn!("`sink.enabled` is false: the sink role serves health and metrics only");
        }
        None
    };
    let state_mirrors = gateway.as_ref().map(|g| g.mirrors.clone());
    let state = AppState {
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        description,
        gateway,
        max_body_bytes: config.server.max_body_bytes,
        sql,
    };
    let router = switchyard_ingress::router(
        state,
        &IngressConfig {
            max_body_bytes: config.server.max_body_bytes,
        },
    );
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener.local_addr().context("listener address")?;
    {
        let (shutdown, publisher_stop) = (shutdown.clone(), publisher_stop.clone());
        // Shadow mirrors still in flight get half the grace to finish, so the events of their
        // billed calls are published before the publisher stops.
        let mirrors = state_mirrors;
        let mirror_grace = config.server.shutdown_grace / 2;
        supervisor.spawn("http", async move {
            let served = switchyard_ingress::run(listener, router, shutdown).await;
            if let Some(mirrors) = mirrors {
                let left = mirrors.drain(mirror_grace).await;
                if left > 0 {
                    tracing::warn!(
                        mirrors = left,
                        "shadow mirrors still running at shutdown were abandoned"
                    );
                }
            }
            publisher_stop.cancel();
            served
        });
    }

    // Ready once the control plane has caught up (keys created before start are known).
    {
        let readiness = readiness.clone();
        let shutdown = shutdown.clone();
        supervisor.spawn("readiness", async move {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = caught_up.wait_for(|c| *c) => { r.context("control plane follower stopped")?; }
            }
            readiness.set_ready();
            tracing::info!("ready");
            shutdown.cancelled().await;
            readiness.set_not_ready();
            Ok(())
        });
    }
    // A plain line on stderr, whatever the log format: scripts and tests read the address here.
    eprintln!(
        "switchyard: listening on http://{local} (data dir {})",
        config.data_dir.display()
    );

    let outcome = supervisor.wait(config.server.shutdown_grace).await;
    let closed = log.close().await.context("cannot flush the event log");
    if let LogBackend::Embedded(_) = config.log.backend {
        let _ = std::fs::remove_file(crate::control_socket::socket_path(&config.data_dir));
    }
    outcome.map_err(anyhow::Error::from)?;
    closed?;
    eprintln!("switchyard: stopped; event log flushed");
    Ok(())
}

/// The threads stream processors run on (see `run`): a runtime of their own where the node
/// also serves HTTP, else the caller's.
struct ProcessorThreads(Option<tokio::runtime::Runtime>);

impl ProcessorThreads {
    /// `threads` 0: half the cores, at least one (processors fold batches; requests keep the
    /// rest). `nice` is the threads' scheduling niceness (0: the same as the request threads).
    fn start(separate: bool, threads: usize, nice: i32) -> anyhow::Result<Self> {
        if !separate {
            return Ok(Self(None));
        }
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sy-processor")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()
            .context("cannot start the processor threads")?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

/// Makes the calling thread `nice` (Linux schedules threads, so this thread only): a request
/// thread that wakes up then preempts a processor folding a batch instead of waiting out its
/// time slice, on a core both share. Raising niceness needs no privilege; a failure is logged.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), nice) {
        tracing::warn!(error = %e, nice, "cannot lower the priority of a processor thread");
    }
}

impl Drop for ProcessorThreads {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's task would panic; nothing runs on it by now.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs a stream processor under the supervisor until shutdown, on `on`.
fn spawn_processor<P: switchyard_processor::Processor>(
    supervisor: &Supervisor,
    name: &'static str,
    processor: P,
    deps: switchyard_processor::ProcessorDeps<AnyLog, switchyard_store::AnyStore>,
    shutdown: &CancellationToken,
    on: &tokio::runtime::Handle,
    linger: Duration,
) {
    let runtime = switchyard_processor::ProcessorRuntime::new(
        processor,
        deps,
        switchyard_processor::ProcessorOptions {
            linger,
            ..switchyard_processor::ProcessorOptions::default()
        },
    );
    let stop = shutdown.clone();
    supervisor.spawn_on(
        name,
        async move { runtime.run(stop).await.map_err(anyhow::Error::from) },
        on,
    );
}

/// Returns this node's id, kept in `<data_dir>/node-id` (created on first start), so a restarted
/// node resumes its own consumer groups.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let file = data_dir.join("node-id");
    match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
    let id = switchyard_events::EventId::now_v7().to_string();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::write(&file, &id).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(id)
}

/// Applies retention and compaction periodically.
async fn maintain_log(
    log: EmbeddedLog,
    every: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                match log.enforce_retention().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "log retention and compaction"),
                    Err(e) => tracing::warn!(error = %e, "log retention failed; retrying at the next tick"),
                }
            }
        }
    }
}

/// Builds the OpenAI-compatible gateway: providers, catalog, routes, the event publisher.
/// Builds the model catalog (shipped rows plus `[[models]]`) and the configured providers.
pub(crate) fn build_providers(
    config: &Config,
) -> anyhow::Result<(
    switchyard_providers::Catalog,
    std::collections::HashMap<String, switchyard_providers::AnyProvider>,
)> {
    use switchyard_providers::{Catalog, ModelInfo, ProviderConfig};
    let mut catalog = Catalog::shipped().context("the shipped model catalog")?;
    let mut extra = Vec::new();
    for (i, row) in config.models.iter().enumerate() {
        let model: ModelInfo = row
            .deserialize()
            .map_err(|e| anyhow::anyhow!("config error: `models[{i}]`: {e}"))?;
        extra.push(model);
    }
    catalog.extend(extra);
    let mut providers = std::collections::HashMap::new();
    for (name, table) in &config.providers {
        let provider: ProviderConfig = table
            .deserialize()
            .map_err(|e| anyhow::anyhow!("config error: `providers.{name}`: {e}"))?;
        let built = provider
            .build_named(name)
            .map_err(|e| anyhow::anyhow!("config error: `providers.{name}`: {e}"))?;
        providers.insert(name.clone(), built);
    }
    Ok((catalog, providers))
}

/// Loads the benchmark priors: the shipped rows plus `routing.priors_file`.
pub(crate) fn load_priors(config: &Config) -> anyhow::Result<switchyard_router::Priors> {
    let mut priors =
        switchyard_router::Priors::shipped().context("the shipped benchmark priors")?;
    if let Some(file) = &config.routing.priors_file {
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "config error: `routing.priors_file`: cannot read {}",
                file.display()
            )
        })?;
        let extra = switchyard_router::Priors::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "config error: `routing.priors_file` ({}): {e}",
                file.display()
            )
        })?;
        priors.extend(extra.rows().cloned());
    }
    Ok(priors)
}

/// Returns the partition count of the request-path topics. A session's requests, responses,
/// decisions, feedback and judge scores must share partitions (processors join them per
/// partition), so the topics must have equal counts; a mismatch is logged loudly.
fn request_partitions<L: switchyard_log::EventLog>(log: &L) -> u32 {
    use switchyard_events::Topic;
    let partitions = log.partitions(Topic::Requests);
    for topic in [
        Topic::Responses,
        Topic::Decisions,
        Topic::Feedback,
        Topic::JudgeScores,
    ] {
        let other = log.partitions(topic);
        if other != partitions {
            tracing::error!(
                requests = partitions,
                %topic,
                partitions = other,
                "request-path topics have different partition counts: feedback and judge scores \
                 of a session can reach a processor that does not hold its decisions; give them \
                 all the same count"
            );
        }
    }
    partitions
}

fn build_gateway(
    config: &Config,
    codec: &Codec,
    plane: ControlPlane,
    store: &switchyard_store::AnyStore,
    metrics: &Metrics,
    request_partitions: u32,
) -> anyhow::Result<(
    switchyard_ingress::gateway::Gateway,
    tokio::sync::mpsc::Receiver<switchyard_events::Event>,
)> {
    let (catalog, providers) = build_providers(config)?;
    let mut routes = std::collections::BTreeMap::new();
    for route in &config.routes {
        for model in std::iter::once(&route.baseline).chain(&route.candidates) {
            let Some(info) = catalog.get(model) else {
                anyhow::bail!(
                    "config error: `routes.{}` names model `{model}`, which is not in the model catalog",
                    route.name
                );
            };
            if !providers.contains_key(info.provider()) {
                anyhow::bail!(
                    "config error: `routes.{}` names model `{model}`, but provider `{}` is not configured",
                    route.name,
                    info.provider()
                );
            }
        }
        routes.insert(route.name.clone(), route.clone());
    }
    let priors = load_priors(config)?;
    let signer = Arc::new(crate::signing::load_signer(&config.routing.signing_key)?);
    let router =
        switchyard_ingress::routing::RouterState::new(&config.routing, priors, Arc::clone(&signer))
            .with_pool(&config.learning_pool);
    let spill = match &config.log.backend {
        LogBackend::Memory => switchyard_ingress::publish::Spill::temporary()?,
        _ => switchyard_ingress::publish::Spill::open(&config.data_dir.join("spill"))?,
    };
    let (publisher, rx) = switchyard_ingress::publish::Publisher::new(
        config.gateway.publish_queue_capacity,
        spill,
        codec.clone(),
    );
    let publisher = publisher.with_signer(signer);
    let gateway = switchyard_ingress::gateway::Gateway {
        providers,
        catalog,
        routes,
        publisher,
        plane,
        auth_required: config.auth.required,
        clock: Arc::new(switchyard_runtime::SystemClock),
        retry: switchyard_ingress::gateway::RetryPolicy {
            retries: config.gateway.retries,
            backoff: config.gateway.retry_backoff,
            max_retry_after: config.gateway.max_retry_after,
            first_token_timeout: config.gateway.first_token_timeout,
        },
        router,
        decisions: Some(switchyard_decisions::DecisionQueries::new(store.clone())),
        mirrors: switchyard_ingress::mirror::Mirrors::new(metrics.clone()),
        limits: switchyard_ingress::limits::RateLimiter::new(node_id(&config.data_dir)?)
            .with_budgets(config.orgs.iter().filter_map(|(org, o)| {
                o.daily_budget_micro_usd
                    .map(|b| (switchyard_events::OrgId::new(org.as_str()), b))
            })),
        request_partitions,
    };
    Ok((gateway, rx))
}
