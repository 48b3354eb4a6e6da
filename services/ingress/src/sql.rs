//! `POST /v1/sql`: SQL over the Parquet exports, for admin keys, scoped to the key's org.
//!
//! Ingress does not know how queries run: the binary hands it a [`SqlBackend`] (DataFusion over
//! the sink's files, `crates/sql`). The org comes from the authenticated key, never from the
//! request, and the backend gives the query only that org's tables.
//!
//! Request: `{"query": "SELECT ..."}`. Answer: `{"object": "sql.result", "columns": [{"name",
//! "type"}], "row_count": n, "rows": [{column: value}]}`. SQL that does not parse or plan, or
//! is not a read-only query: 400 with the engine's message (`code: "invalid_sql"`); a key that
//! is not an admin key: 403.

use std::fmt::Debug;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::authenticate;
use crate::chat::{body_error, gateway_of};
use crate::{ApiError, AppState};

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlFailure {
    /// The client's SQL is wrong or not allowed: the engine's message.
    Invalid(String),
    /// The engine could not read the files.
    Failed(String),
}

/// Runs read-only SQL over one org's exported tables.
pub trait SqlBackend: Send + Sync + Debug + 'static {
    /// Runs `sql` over `org`'s tables only; returns the answer document.
    fn query<'a>(&'a self, org: &'a str, sql: &'a str) -> BoxFuture<'a, Result<Value, SqlFailure>>;
}

/// The shared backend handle.
pub type SharedSqlBackend = Arc<dyn SqlBackend>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

fn invalid(message: String, code: &'static str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message,
        kind: "invalid_request_error",
        param: Some("query".into()),
        code: Some(code),
    }
}

/// `POST /v1/sql`.
pub(crate) async fn query(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let gateway = gateway_of(&state)?;
    let caller = authenticate(&headers, &gateway.plane, gateway.auth_required)?;
    let may = caller.admin || (!gateway.auth_required && caller.key_id.as_str() == "anonymous");
    if !may {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message:
                "POST /v1/sql needs an admin key (`switchyard keys create --org ORG --admin`)."
                    .into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("insufficient_permissions"),
        });
    }
    let Some(backend) = state.sql.clone() else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: "SQL is not available on this node (the Parquet sink is disabled).".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("unknown_url"),
        });
    };
    let body = body.map_err(|e| body_error(&e, state.max_body_bytes))?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        invalid(
            format!("The body must be {{\"query\": \"SELECT ...\"}}: {e}"),
            "invalid_json",
        )
    })?;
    if request.query.trim().is_empty() {
        return Err(invalid("`query` is empty.".into(), "invalid_sql"));
    }
    match backend.query(caller.org.as_str(), &request.query).await {
        Ok(answer) => Ok(Json(answer)),
        Err(SqlFailure::Invalid(message)) => Err(invalid(message, "invalid_sql")),
        Err(SqlFailure::Failed(message)) => {
            tracing::warn!(error = %message, "SQL query failed");
            Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!("The query could not be run: {message}"),
                kind: "server_error",
                param: None,
                code: Some("sql_unavailable"),
            })
        }
    }
}
