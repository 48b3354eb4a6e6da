//! Exports of decision traces.
//!
//! `GET /v1/export/decisions?from=&to=&route=&gzip=true` streams the caller's org's decisions
//! as JSONL ([`jsonl`]): each line is the record `GET /v1/decisions/{id}` returns (the signed
//! trace joined with its outcome and feedback), newest first like the list API, then a trailer
//! line with the row count and the SHA-256 of every byte before it. `from`/`to` take the
//! forms of [`time::parse_time`] (`from` inclusive, `to` exclusive); `gzip=true` compresses the
//! stream (the hash stays over the uncompressed JSONL). The body is produced page by page (at
//! most [`PAGE`] records in memory); if the read model fails mid-way the connection is cut,
//! and the export, lacking its trailer, fails `switchyard export verify`.

pub mod jsonl;
pub mod time;

use std::io::Write;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use switchyard_decisions::{DecisionFilter, DecisionQueries, QueryError};
use switchyard_events::{OrgId, RouteName};
use switchyard_store::StateStore;

use crate::auth::authenticate;
use crate::chat::gateway_of;
use crate::{ApiError, AppState};

pub use jsonl::{Trailer, TrailerHasher, Verified, VerifyError, verify};
pub use time::parse_time;

/// Records read from the read model per page (the most held in memory at once).
pub const PAGE: usize = 500;

/// One chunk of an export: bytes to write and the rows they carry (0 for the trailer).
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Uncompressed JSONL bytes.
    pub bytes: Bytes,
    /// Rows in them.
    pub rows: u64,
}

struct Pager<S> {
    queries: DecisionQueries<S>,
    org: OrgId,
    filter: DecisionFilter,
    cursor: Option<String>,
    hasher: Option<TrailerHasher>,
}

/// Streams the JSONL export (rows, then the trailer) of `org`'s decisions matching `filter`
/// (route and time window), newest first, one chunk per page of the read model.
pub fn decisions_jsonl<S: StateStore + Clone>(
    queries: DecisionQueries<S>,
    org: OrgId,
    filter: DecisionFilter,
) -> impl Stream<Item = Result<Chunk, QueryError>> + Send + 'static {
    let pager = Pager {
        queries,
        org,
        filter,
        cursor: None,
        hasher: Some(TrailerHasher::new()),
    };
    futures::stream::try_unfold(pager, |mut pager| async move {
        loop {
            let Some(hasher) = pager.hasher.as_mut() else {
                return Ok(None);
            };
            let page = pager
                .queries
                .list(&pager.org, &pager.filter, pager.cursor.as_deref(), PAGE)
                .await?;
            let mut out = Vec::with_capacity(page.items.len() * 2048);
            for item in &page.items {
                hasher
                    .push_row(item, &mut out)
                    .map_err(|e| QueryError::Corrupt(format!("cannot serialise a record: {e}")))?;
            }
            let rows = page.items.len() as u64;
            match page.next_cursor {
                Some(cursor) => {
                    pager.cursor = Some(cursor);
                    if rows == 0 {
                        continue;
                    }
                }
                None => {
                    if let Some(hasher) = pager.hasher.take() {
                        out.extend_from_slice(&hasher.finish());
                    }
                }
            }
            return Ok(Some((
                Chunk {
                    bytes: Bytes::from(out),
                    rows,
                },
                pager,
            )));
        }
    })
}

/// Gzip-compresses a stream of chunks as it flows (one gzip member; the compressor's state is
/// the only buffer).
pub fn gzip_stream<E: Send + 'static>(
    input: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let input = Box::pin(input);
    futures::stream::unfold(Some((input, encoder)), |state| async move {
        let (mut input, mut encoder) = state?;
        loop {
            match input.next().await {
                Some(Ok(bytes)) => {
                    // Writing into a Vec cannot fail.
                    let _ = encoder.write_all(&bytes);
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((input, encoder))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    let out = encoder.finish().unwrap_or_default();
                    return Some((Ok(Bytes::from(out)), None));
                }
            }
        }
    })
}

/// The query string of `GET /v1/export/decisions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    route: Option<String>,
    gzip: Option<bool>,
}

/// Builds the filter of an export; errors name the parameter.
pub fn export_filter(
    from: Option<&str>,
    to: Option<&str>,
    route: Option<&str>,
    now_micros: i64,
) -> Result<DecisionFilter, (String, &'static str)> {
    let from = from
        .map(|t| parse_time(t, now_micros).map_err(|e| (format!("Invalid `from`: {e}."), "from")))
        .transpose()?;
    let to = to
        .map(|t| parse_time(t, now_micros).map_err(|e| (format!("Invalid `to`: {e}."), "to")))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(("`from` must not be after `to`.".into(), "from"));
    }
    if route.is_some_and(str::is_empty) {
        return Err(("`route` must not be empty.".into(), "route"));
    }
    Ok(DecisionFilter {
        route: route.map(RouteName::new),
        from,
        to,
        ..DecisionFilter::default()
    })
}

/// `GET /v1/export/decisions`.
pub(crate) async fn decisions(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let gateway = gateway_of(&state)?;
    let caller = authenticate(&headers, &gateway.plane, gateway.auth_required)?;
    let Query(query) = query.map_err(|e| ApiError::invalid(format!("{}.", e.body_text()), None))?;
    let filter = export_filter(
        query.from.as_deref(),
        query.to.as_deref(),
        query.route.as_deref(),
        gateway.clock.now_micros(),
    )
    .map_err(|(message, param)| ApiError::invalid(message, Some(param)))?;
    let queries = gateway.decisions.clone().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "This node has no decisions read model: run the `decisions` stream role against the same store (single-node `serve` runs it).".into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("no_read_model"),
    })?;
    let org = caller.org.clone();
    let stream = decisions_jsonl(queries, caller.org, filter).map(move |chunk| {
        chunk.map(|c| c.bytes).map_err(|e| {
            tracing::warn!(org = %org, error = %e, "decision export failed mid-stream; the connection is cut (no trailer)");
            std::io::Error::other(e.to_string())
        })
    });
    let gzip = query.gzip.unwrap_or(false);
    let body = if gzip {
        Body::from_stream(gzip_stream(stream))
    } else {
        Body::from_stream(stream)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if gzip {
        // The file is gzip (what `verify` reads), not a transfer encoding a client would undo.
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/gzip"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"decisions.jsonl.gz\""),
        );
    } else {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"decisions.jsonl\""),
        );
    }
    Ok(response)
}
