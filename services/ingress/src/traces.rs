//! Decision traces over HTTP: the signing keys, the dry-run explain, and the decisions read
//! model.
//!
//! - `GET /v1/keys`: the public keys that verify trace signatures, as a JWK set (no auth:
//!   public keys are public).
//! - `POST /v1/routing/explain`: the decision a chat request would get, signed, with no
//!   provider call and no event published.
//! - `GET /v1/decisions/{id}` (a decision id or the request id a client saw) and
//!   `GET /v1/decisions?route=&session=&from=&to=&quality_below=&latency_above_ms=&cursor=&limit=`:
//!   traces joined with their outcome and feedback, org-scoped, newest first, paginated.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchyard_decisions::{DecisionFilter, QueryError};
use switchyard_events::{RequestId, RouteName, SessionId, Timestamp, TraceId};
use switchyard_providers::ChatRequest;

use crate::auth::authenticate;
use crate::chat::gateway_of;
use crate::extract::ApiRequest;
use crate::gateway::SESSION_HEADER;
use crate::{ApiError, AppState};

/// `GET /v1/keys`.
pub(crate) async fn keys(State(state): State<AppState>) -> Response {
    match gateway_of(&state) {
        Ok(gateway) => Json(serde_json::json!({
            "keys": [gateway.router.signer.public_key().to_jwk()],
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/routing/explain`.
pub(crate) async fn explain(request: ApiRequest<ChatRequest>) -> Result<Response, ApiError> {
    let ApiRequest {
        gateway,
        caller,
        headers,
        body: req,
    } = request;
    let decision = gateway.decide(&caller, &headers, &req)?;
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(SessionId::new);
    // A dry run: the request id is the decision's own, marked as such, and nothing is
    // published.
    let request_id = RequestId::new(format!("explain-{}", decision.id.as_str()));
    let mut trace = gateway.decided_event(
        &caller,
        &decision,
        &request_id,
        session.as_ref(),
        &TraceId::new(request_id.as_str()),
    );
    crate::publish::sign_or_mark(&gateway.router.signer, [&mut trace]);
    Ok(Json(serde_json::json!({
        "object": "routing.explanation",
        "dry_run": true,
        "decision": trace,
    }))
    .into_response())
}

fn query_error(e: &QueryError) -> ApiError {
    if e.is_client_error() {
        ApiError::invalid(format!("{e}."), None)
    } else {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("The decisions store is unavailable ({e}); retry shortly."),
            kind: "server_error",
            param: None,
            code: Some("store_unavailable"),
        }
    }
}

fn no_store() -> ApiError {
    ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "This node has no decisions read model: run the `decisions` stream role against the same store (single-node `serve` runs it).".into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("no_read_model"),
    }
}

/// `GET /v1/decisions/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let gateway = gateway_of(&state)?;
    let caller = authenticate(&headers, &gateway.plane, gateway.auth_required)?;
    let queries = gateway.decisions.as_ref().ok_or_else(no_store)?;
    match queries.lookup(&caller.org, &id).await {
        Ok(Some(record)) => Ok(Json(record).into_response()),
        Ok(None) => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "No decision `{id}` in your organisation (decisions appear a few milliseconds after the response)."
            ),
            kind: "invalid_request_error",
            param: Some("id".into()),
            code: Some("decision_not_found"),
        }),
        Err(e) => Err(query_error(&e)),
    }
}

/// The query string of `GET /v1/decisions` (times in microseconds since the Unix epoch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    route: Option<String>,
    session: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    quality_below: Option<f64>,
    latency_above_ms: Option<i64>,
    cursor: Option<String>,
    limit: Option<usize>,
}

impl ListQuery {
    fn filter(&self) -> DecisionFilter {
        DecisionFilter {
            route: self.route.as_deref().map(RouteName::new),
            session: self.session.as_deref().map(SessionId::new),
            from: self.from.map(Timestamp::from_micros),
            to: self.to.map(Timestamp::from_micros),
            quality_below: self.quality_below,
            latency_above_ms: self.latency_above_ms,
        }
    }
}

/// `GET /v1/decisions`.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let gateway = gateway_of(&state)?;
    let caller = authenticate(&headers, &gateway.plane, gateway.auth_required)?;
    let Query(query) = query.map_err(|e| ApiError::invalid(format!("{}.", e.body_text()), None))?;
    let queries = gateway.decisions.as_ref().ok_or_else(no_store)?;
    let page = queries
        .list(
            &caller.org,
            &query.filter(),
            query.cursor.as_deref(),
            query.limit.unwrap_or(50),
        )
        .await
        .map_err(|e| query_error(&e))?;
    Ok(Json(serde_json::json!({
        "object": "list",
        "data": page.items,
        "next_cursor": page.next_cursor,
        "has_more": page.next_cursor.is_some(),
    }))
    .into_response())
}
