//! switchyard-ingress: the HTTP front door.
//!
//! Place in the pipeline: clients (OpenAI SDKs, agents, operators) → this axum router → the
//! router/provider path (gateway issue) and the event log. Ingress is stateless: everything it
//! knows comes from the log (control plane, routing table), so any number of replicas serve
//! any request.
//!
//! Built so far: liveness (`GET /healthz`), readiness (`GET /readyz`, 503 while starting or
//! draining), Prometheus metrics (`GET /metrics`), and OpenAI-shaped errors for unknown routes
//! and oversized bodies. `run` serves until the shutdown token fires, then stops accepting
//! connections and drains in-flight requests.

pub mod audit;
pub mod auth;
mod chat;
pub mod control;
pub mod decode;
mod embeddings;
mod error;
pub mod export;
mod extract;
pub mod feedback;
pub mod gateway;
mod health;
pub mod limits;
pub mod mirror;
mod models;
pub mod pool;
pub mod publish;
pub mod routes;
pub mod routing;
pub mod sql;
mod table;
mod traces;
pub mod usage;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use switchyard_runtime::Metrics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

/// Whether the node should receive traffic: set once every role is up, cleared when draining.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the node ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Marks the node not ready (starting or draining).
    pub fn set_not_ready(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// Returns whether the node is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Readiness flag (see [`Readiness`]).
    pub readiness: Readiness,
    /// The process's metrics.
    pub metrics: Metrics,
    /// The deployment mode and backends, reported by `/readyz`.
    pub description: Arc<NodeDescription>,
    /// The OpenAI-compatible API, on nodes that run the ingress role.
    pub gateway: Option<Arc<gateway::Gateway>>,
    /// Largest accepted request body (for the 413 message).
    pub max_body_bytes: usize,
    /// SQL over the Parquet exports (`POST /v1/sql`), where the sink runs.
    pub sql: Option<sql::SharedSqlBackend>,
}

/// What `/readyz` reports about the node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeDescription {
    /// The roles this process runs.
    pub roles: Vec<String>,
    /// The event-log backend (`embedded`, `memory`, `kafka`).
    pub log: String,
    /// The state-store backend.
    pub store: String,
    /// The binary's version.
    pub version: String,
}

/// Ingress settings.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

/// Returns the ingress router.
pub fn router(state: AppState, config: &IngressConfig) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/v1/chat/completions",
            axum::routing::post(chat::chat_completions),
        )
        .route(
            "/v1/embeddings",
            axum::routing::post(embeddings::embeddings),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/feedback", axum::routing::post(feedback::submit))
        .route("/v1/keys", get(traces::keys))
        .route("/v1/routing/explain", axum::routing::post(traces::explain))
        .route("/v1/routing/table", get(table::get))
        .route("/v1/decisions", get(traces::list))
        .route("/v1/decisions/{id}", get(traces::get))
        .route("/v1/export/decisions", get(export::decisions))
        .route("/v1/sql", axum::routing::post(sql::query))
        .route("/v1/models/{*id}", get(models::get))
        .route("/v1/routes", get(routes::list))
        .route("/v1/routes/{route}", get(routes::get).put(routes::put))
        .route(
            "/v1/routes/{route}/constraints",
            get(routes::get_constraints).put(routes::put_constraints),
        )
        .route(
            "/v1/routes/{route}/pin",
            axum::routing::post(routes::pin).delete(routes::unpin),
        )
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// Serves the router on `listener` until `shutdown` fires, then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(%local, "ingress listening");
    // TCP_NODELAY: a streamed chunk must leave at once, not wait for Nagle's 40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    tracing::info!("ingress drained");
    Ok(())
}
