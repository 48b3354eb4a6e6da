//! The request prologue every `/v1` JSON endpoint shares, as an axum extractor: the gateway
//! must be running here, the caller authenticated, the body within the size limit and valid
//! JSON of the endpoint's type. Each failure is an OpenAI-shaped error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::auth::{Caller, authenticate};
use crate::chat::{body_error, gateway_of, parse_json};
use crate::gateway::Gateway;
use crate::{ApiError, AppState};

/// An authenticated, parsed API request.
#[derive(Debug)]
pub(crate) struct ApiRequest<T> {
    pub gateway: Arc<Gateway>,
    pub caller: Caller,
    pub headers: HeaderMap,
    pub body: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiRequest<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let gateway = gateway_of(state)?;
        let caller = authenticate(req.headers(), &gateway.plane, gateway.auth_required)?;
        // The headers move out (the body extractor needs only the body and the extensions that
        // carry the size limit): no copy of the header map per request.
        let (mut parts, body) = req.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_error(&r, state.max_body_bytes))?;
        let body = parse_json(&bytes)?;
        Ok(ApiRequest {
            gateway,
            caller,
            headers,
            body,
        })
    }
}
