//! `GET /v1/models` and `GET /v1/models/{id}`: `auto` and every model whose provider is
//! configured, in OpenAI's shape.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::authenticate;
use crate::chat::gateway_of;
use crate::{ApiError, AppState};

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    owned_by: &'a str,
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

/// Models are listed with a fixed creation time: the catalog's, not the request's.
const CREATED: i64 = 1_764_000_000;

pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let gateway = match gateway_of(&state) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = authenticate(&headers, &gateway.plane, gateway.auth_required) {
        return e.into_response();
    }
    let mut data = vec![Model {
        id: "auto",
        object: "model",
        created: CREATED,
        owned_by: "switchyard",
    }];
    data.extend(gateway.servable_models().map(|m| Model {
        id: &m.id,
        object: "model",
        created: CREATED,
        owned_by: m.provider(),
    }));
    Json(List {
        object: "list",
        data,
    })
    .into_response()
}

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let gateway = match gateway_of(&state) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = authenticate(&headers, &gateway.plane, gateway.auth_required) {
        return e.into_response();
    }
    if id == "auto" {
        return Json(Model {
            id: "auto",
            object: "model",
            created: CREATED,
            owned_by: "switchyard",
        })
        .into_response();
    }
    match gateway.servable_models().find(|m| m.id == id) {
        Some(m) => Json(Model {
            id: &m.id,
            object: "model",
            created: CREATED,
            owned_by: m.provider(),
        })
        .into_response(),
        None => ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{id}` does not exist or you do not have access to it."),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
        .into_response(),
    }
}
