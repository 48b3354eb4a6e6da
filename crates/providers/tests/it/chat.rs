//! Non-streaming chat completions: what each provider receives, and how its answer translates.

use serde_json::{Value, json};
use switchyard_providers::types::{FinishReason, Role};
use switchyard_providers::{
    AnyProvider, Provider, ProviderConfig, ProviderErrorKind, ProviderKind,
};

use crate::request;
use crate::upstream::{Reply, Upstream};

fn completion(model: &str, usage: Value) -> Value {
    json!({
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_1",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
                }]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": usage
    })
}

#[tokio::test]
async fn openai_receives_the_upstream_model_and_max_completion_tokens() {
    let upstream = Upstream::always(Reply::json(
        200,
        completion(
            "gpt-4o-2024-08-06",
            json!({"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60,
                   "prompt_tokens_details": {"cached_tokens": 32, "audio_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": 4}}),
        ),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk-test")
        .unwrap();
    let req = request(json!({
        "max_tokens": 50,
        "temperature": 0.2,
        "user": "u-1",
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto"
    }));
    let r = p.complete("gpt-4o", &req).await.unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body["model"], "gpt-4o",
        "the model is the upstream name"
    );
    assert_eq!(sent.body["max_completion_tokens"], 50);
    assert!(sent.body.get("max_tokens").is_none());
    assert!(sent.body.get("stream").is_none() && sent.body.get("stream_options").is_none());
    assert_eq!(sent.body["user"], "u-1", "unknown fields pass through");
    assert_eq!(sent.body["tool_choice"], "auto");
    assert_eq!(sent.body["messages"][1]["content"], "weather in Paris?");

    assert_eq!(r.id, "chatcmpl-123");
    assert_eq!(r.model, "gpt-4o-2024-08-06");
    assert_eq!(r.choices[0].finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.choices[0].message.role, Role::Assistant);
    let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.arguments, "{\"city\":\"Paris\"}");
    let usage = r.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (50, 10));
    assert_eq!((usage.cached_tokens(), usage.reasoning_tokens()), (32, 4));
}

#[tokio::test]
async fn azure_uses_deployment_urls_and_the_api_key_header() {
    let upstream = Upstream::always(Reply::json(
        200,
        completion(
            "gpt-4o",
            json!({"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}),
        ),
    ))
    .await
    .unwrap();
    let toml = format!(
        "kind = \"azure\"\napi_key = \"az-key\"\nendpoint = \"{}\"\ndeployments = {{ \"gpt-4o\" = \"prod-4o\" }}\n",
        upstream.url("")
    );
    let config: ProviderConfig = toml::from_str(&toml).unwrap();
    let p = config.build_named("azure-eu").unwrap();
    assert!(matches!(p, AnyProvider::OpenAiCompat(_)));
    assert_eq!(p.name(), "azure-eu");
    p.complete("gpt-4o", &request(json!({"max_tokens": 9})))
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.target,
        "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some("az-key"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["max_completion_tokens"], 9);
}

#[tokio::test]
async fn deepseek_cache_hits_become_cached_tokens() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({
            "id": "d-1", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny.",
                "reasoning_content": "thinking..."}, "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020,
                "prompt_cache_hit_tokens": 896, "prompt_cache_miss_tokens": 104,
                "completion_tokens_details": {"reasoning_tokens": 12}}
        }),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::DeepSeek, "", "ds-key")
        .unwrap();
    let r = p
        .complete(
            "deepseek-chat",
            &request(json!({"max_completion_tokens": 100})),
        )
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/chat/completions");
    assert_eq!(sent.body["max_tokens"], 100, "DeepSeek takes max_tokens");
    assert!(sent.body.get("max_completion_tokens").is_none());

    assert_eq!(r.choices[0].message.content.as_deref(), Some("Sunny."));
    let usage = r.usage.unwrap();
    assert_eq!(usage.cached_tokens(), 896);
    assert_eq!(usage.reasoning_tokens(), 12);
    assert_eq!(usage.total_tokens, 1020);
}

#[tokio::test]
async fn mistral_gets_max_tokens_random_seed_and_no_unknown_hints() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({
            "id": "m-1", "object": "chat.completion", "created": 1, "model": "mistral-small-latest",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "tool_calls": null},
                "finish_reason": "model_length"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 64, "total_tokens": 71}
        }),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Mistral, "/v1", "m-key")
        .unwrap();
    let r = p
        .complete(
            "mistral-small-latest",
            &request(json!({"max_completion_tokens": 64, "seed": 42, "service_tier": "auto", "store": false})),
        )
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/v1/chat/completions");
    assert_eq!(sent.body["max_tokens"], 64);
    assert_eq!(sent.body["random_seed"], 42);
    for absent in ["max_completion_tokens", "seed", "service_tier", "store"] {
        assert!(sent.body.get(absent).is_none(), "{absent} must not be sent");
    }
    assert_eq!(r.choices[0].finish_reason, FinishReason::Length);
    assert_eq!(r.choices[0].message.tool_calls, None);
}

#[tokio::test]
async fn perplexity_citations_become_url_citation_annotations() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({
            "id": "p-1", "model": "sonar", "created": 1, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "It is sunny [1]."}}],
            "citations": ["https://example.com/weather", "https://example.org/paris"],
            "search_results": [{"title": "Paris weather", "url": "https://example.com/weather", "date": null}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10,
                "search_context_size": "low", "citation_tokens": 300}
        }),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Perplexity, "", "pplx")
        .unwrap();
    let r = p
        .complete("sonar", &request(json!({"seed": 1, "max_tokens": 30})))
        .await
        .unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/chat/completions");
    assert!(sent.body.get("seed").is_none());
    assert_eq!(sent.body["max_tokens"], 30);
    let annotations = r.choices[0].message.annotations.clone().unwrap();
    assert_eq!(
        annotations,
        vec![
            json!({"type": "url_citation", "url_citation": {"url": "https://example.com/weather", "title": "Paris weather"}}),
            json!({"type": "url_citation", "url_citation": {"url": "https://example.org/paris"}}),
        ]
    );
    assert_eq!(r.usage.unwrap().total_tokens, 10);

    // Tools are refused up front (Perplexity would ignore them silently).
    let tools = request(json!({"tools": [{"type": "function", "function": {"name": "f"}}]}));
    let err = p.complete("sonar", &tools).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert_eq!(upstream.requests().len(), 1, "nothing was sent");
}

#[tokio::test]
async fn groq_refuses_n_above_one_without_calling_and_strips_names() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "g", "object": "chat.completion", "created": 1, "model": "llama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Groq, "/openai/v1", "gsk")
        .unwrap();
    let err = p
        .complete("llama", &request(json!({"n": 2})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert!(!err.is_retryable());
    assert!(upstream.requests().is_empty());

    let named = request(json!({
        "messages": [{"role": "user", "content": "hi", "name": "alice"}],
        "max_completion_tokens": 5, "max_tokens": 6
    }));
    p.complete("llama", &named).await.unwrap();
    let sent = upstream.only_request().unwrap();
    assert!(sent.body["messages"][0].get("name").is_none());
    assert_eq!(
        (
            sent.body["max_completion_tokens"].clone(),
            sent.body["max_tokens"].clone()
        ),
        (json!(5), json!(6)),
        "Groq takes both limits as given"
    );
}

#[tokio::test]
async fn extra_headers_are_sent_and_every_hosted_kind_posts_the_same_shape() {
    for kind in ProviderKind::ALL {
        if kind == ProviderKind::Azure {
            continue; // covered above: different URL and auth
        }
        let upstream = Upstream::always(Reply::json(
            200,
            json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}),
        ))
        .await
        .unwrap();
        let toml = format!(
            "kind = \"{}\"\napi_key = \"key-{}\"\nbase_url = \"{}\"\nextra_headers = {{ \"X-Team\" = \"search\" }}\n",
            kind.name(),
            kind.name(),
            upstream.url("/base")
        );
        let config: ProviderConfig = toml::from_str(&toml).unwrap();
        let p = config.build().unwrap();
        let r = p.complete("m", &request(json!({}))).await.unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("ok"));
        assert_eq!(r.usage, None, "{kind:?}: no usage reported, none invented");
        let sent = upstream.only_request().unwrap();
        assert_eq!(sent.target, "/base/chat/completions", "{kind:?}");
        let bearer = format!("Bearer key-{}", kind.name());
        assert_eq!(sent.header("authorization"), Some(bearer.as_str()));
        assert_eq!(sent.header("x-team"), Some("search"));
        assert_eq!(sent.body["model"], "m");
    }
}
