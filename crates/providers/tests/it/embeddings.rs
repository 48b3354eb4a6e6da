//! Embeddings: floats requested whatever the client asked, the answer translated.

use serde_json::json;
use switchyard_providers::types::EmbeddingRequest;
use switchyard_providers::{Provider, ProviderErrorKind, ProviderKind};

use crate::upstream::{Reply, Upstream};

fn embedding_request() -> EmbeddingRequest {
    serde_json::from_value(json!({
        "model": "switchyard/embed",
        "input": ["hello", "world"],
        "encoding_format": "base64",
        "dimensions": 3,
        "user": "u"
    }))
    .unwrap_or_else(|e| unreachable!("test request: {e}"))
}

#[tokio::test]
async fn embeddings_are_requested_as_floats_and_translated() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]},
                {"object": "embedding", "index": 1, "embedding": [0.0, 1.0, -1.0]}
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4, "total_tokens": 4}
        }),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk")
        .unwrap();
    let r = p
        .embed("text-embedding-3-small", &embedding_request())
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/v1/embeddings");
    assert_eq!(sent.header("authorization"), Some("Bearer sk"));
    assert_eq!(sent.body["model"], "text-embedding-3-small");
    assert_eq!(sent.body["encoding_format"], "float");
    assert_eq!(sent.body["dimensions"], 3);
    assert_eq!(sent.body["input"], json!(["hello", "world"]));
    assert_eq!(sent.body["user"], "u");

    assert_eq!(r.data.len(), 2);
    assert_eq!(r.data[0].embedding, vec![0.1f32, -0.2, 0.3]);
    assert_eq!(r.data[1].index, 1);
    assert_eq!(r.usage.prompt_tokens, 4);
    assert_eq!(r.model, "text-embedding-3-small");
}

#[tokio::test]
async fn azure_embeddings_use_the_deployment_url_and_sparse_answers_are_completed() {
    let upstream = Upstream::always(Reply::json(
        200,
        // Some providers omit `object`, `index` and `total_tokens`.
        json!({"data": [{"embedding": [0.5, 0.5]}], "usage": {"prompt_tokens": 2}}),
    ))
    .await
    .unwrap();
    let mut config = switchyard_providers::OpenAiCompatConfig::new(ProviderKind::Azure, "az");
    config.base_url = Some(upstream.url(""));
    let p = switchyard_providers::OpenAiCompatProvider::new(config).unwrap();
    let r = p.embed("emb-deploy", &embedding_request()).await.unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.target,
        "/openai/deployments/emb-deploy/embeddings?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some("az"));
    assert_eq!(r.object, "list");
    assert_eq!(r.model, "emb-deploy");
    assert_eq!(
        (r.data[0].index, r.data[0].object.as_str()),
        (0, "embedding")
    );
    assert_eq!((r.usage.prompt_tokens, r.usage.total_tokens), (2, 2));
}

#[tokio::test]
async fn providers_without_embeddings_refuse_without_calling() {
    let upstream = Upstream::always(Reply::json(404, json!({"error": "no"})))
        .await
        .unwrap();
    for kind in [
        ProviderKind::Groq,
        ProviderKind::Perplexity,
        ProviderKind::DeepSeek,
    ] {
        let p = upstream.provider(kind, "/v1", "k").unwrap();
        let err = p.embed("m", &embedding_request()).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Unsupported, "{kind:?}");
    }
    assert!(upstream.requests().is_empty());

    // A base64 answer to a float request is refused rather than misread.
    let b64 = Upstream::always(Reply::json(
        200,
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "AAAA"}],
            "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
    ))
    .await
    .unwrap();
    let p = b64.provider(ProviderKind::Mistral, "/v1", "k").unwrap();
    let err = p
        .embed("mistral-embed", &embedding_request())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
}
