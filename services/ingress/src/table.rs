//! `GET /v1/routing/table`: which inputs the routing table this node routes the caller's org
//! with has folded, and when the node applied it.
//!
//! ```json
//! {"object": "routing.table", "org": "acme", "version": 1234, "generated_at": 1764000000123456,
//!  "applied_at": 1764000000234567, "source_offsets": {"feedback/3": 811, "decisions/0": 95}}
//! ```
//!
//! `source_offsets` maps `topic/partition` to the last offset the table folded; a feedback
//! answer's `log` (`{"topic", "partition", "offset"}`) is reflected in routing once
//! `source_offsets["feedback/<partition>"] >= offset` here. Times are microseconds (the table's
//! newest event time, and this node's clock when it swapped the table in). Before the
//! projector has published a table for the org, `version` is 0 and `source_offsets` empty.
//! Any key of the org may read it; the tables' statistics are not shown.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::auth::authenticate;
use crate::chat::gateway_of;
use crate::{ApiError, AppState};

/// `GET /v1/routing/table`.
pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let gateway = gateway_of(&state)?;
    let caller = authenticate(&headers, &gateway.plane, gateway.auth_required)?;
    let applied = gateway.router.applied.load();
    let answer = match applied.get(caller.org.as_str()) {
        Some(table) => json!({
            "object": "routing.table",
            "org": caller.org.as_str(),
            "version": table.version,
            "generated_at": table.generated_at,
            "applied_at": table.applied_at,
            "source_offsets": table.source_offsets,
        }),
        None => json!({
            "object": "routing.table",
            "org": caller.org.as_str(),
            "version": 0,
            "generated_at": null,
            "applied_at": null,
            "source_offsets": {},
        }),
    };
    Ok(Json(answer))
}
