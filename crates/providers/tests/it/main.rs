//! Integration tests of the provider adapters against real local HTTP servers that speak each
//! wire format (house style 4.7: no mocked traits). One binary: modules below.

mod anthropic;
mod base_urls;
mod bedrock;
mod chat;
mod cohere;
mod embeddings;
mod errors;
mod gemini;
mod streaming;
mod upstream;
mod vertex;

use serde_json::{Value, json};
use switchyard_providers::types::ChatRequest;
use switchyard_providers::{ChatChunk, ChunkStream, ProviderError};

/// Returns a request as a client sends it (the Switchyard model id in `model`).
pub fn request(extra: Value) -> ChatRequest {
    let mut body = json!({
        "model": "switchyard/auto",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Paris?"}
        ]
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(body).unwrap_or_else(|e| unreachable!("test request: {e}"))
}

/// Drains a stream.
pub async fn collect(stream: ChunkStream) -> Vec<Result<ChatChunk, ProviderError>> {
    use futures::StreamExt;
    stream.collect().await
}

/// Returns the text of the content deltas.
pub fn text(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.content.clone())
        .collect()
}
