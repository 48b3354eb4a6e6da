//! `POST /v1/embeddings`, float and base64 (the official SDKs ask for base64 by default: the
//! little-endian f32 bytes of each vector, base64-encoded).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use switchyard_providers::{EmbeddingRequest, Provider};

use crate::ApiError;
use crate::chat::provider_error;
use crate::extract::ApiRequest;

pub(crate) async fn embeddings(
    request: ApiRequest<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let ApiRequest {
        gateway,
        caller,
        body: mut req,
        ..
    } = request;
    // Counted against the key's limits: the request now, its tokens once the upstream reports
    // them (an embedding's usage is its input, known only then).
    let admitted_at = match gateway.admit(&caller, 0) {
        Ok(at) => at,
        Err(limited) => return Ok((*limited).into_response()),
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("encoding_format must be `float` or `base64`, got `{other}`."),
                Some("encoding_format"),
            ));
        }
    };
    let model = gateway
        .servable_models()
        .find(|m| m.id == req.model && m.embeddings)
        .cloned()
        .ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The embedding model `{}` does not exist or you do not have access to it.",
                req.model
            ),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        })?;
    let provider = gateway
        .provider(&model)
        .cloned()
        .ok_or_else(|| ApiError::invalid("provider not configured".into(), Some("model")))?;
    req.encoding_format = Some("float".into());
    let response = provider
        .embed(model.upstream_name(), &req)
        .await
        .map_err(|e| provider_error(&e))?;
    if caller.limits.is_limited() {
        gateway
            .limits
            .settle(&caller.key_id, 0, response.usage.total_tokens, admitted_at);
    }
    let data: Vec<Value> = response
        .data
        .iter()
        .map(|e| {
            let embedding = if base64 {
                let bytes: Vec<u8> = e.embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(e.embedding)
            };
            json!({"object": "embedding", "index": e.index, "embedding": embedding})
        })
        .collect();
    Ok(
        Json(json!({"object": "list", "data": data, "model": model.id, "usage": response.usage}))
            .into_response(),
    )
}
