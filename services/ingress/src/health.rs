//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

/// Liveness: the process is up and serving HTTP.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: 200 once every role is running, 503 while starting or draining.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let ready = state.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "node": &*state.description,
    });
    (status, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            switchyard_runtime::METRICS_CONTENT_TYPE,
        )],
        state.metrics.encode(),
    )
        .into_response()
}
