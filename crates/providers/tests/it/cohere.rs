//! The Cohere adapter against a local server speaking the v2 Chat and Embed APIs: what the
//! upstream receives and how its documented answers, event streams and errors translate back.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_providers::types::{EmbeddingRequest, FinishReason, Role};
use switchyard_providers::{
    AnyProvider, ChatChunk, CohereConfig, CohereProvider, Provider, ProviderConfig, ProviderError,
    ProviderErrorKind, TimeoutsConfig,
};

use crate::upstream::{Reply, Upstream};
use crate::{collect, request, text};

const KEY: &str = "co-test-key";

fn provider(upstream: &Upstream) -> CohereProvider {
    let mut config = CohereConfig::new(KEY);
    config.base_url = Some(upstream.url(""));
    config.timeouts = TimeoutsConfig {
        connect_ms: 2000,
        request_ms: 5000,
        first_byte_ms: 5000,
        idle_ms: 5000,
    };
    CohereProvider::new("cohere", &config).unwrap_or_else(|e| unreachable!("test provider: {e}"))
}

/// An SSE body as Cohere's v2 stream writes it: `event: <type>` then `data: <json>`.
fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or("message")
            )
        })
        .collect()
}

fn ok(items: Vec<Result<ChatChunk, ProviderError>>) -> Vec<ChatChunk> {
    items
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| unreachable!("unexpected error item: {e}")))
        .collect()
}

fn tool_args(chunks: &[ChatChunk], index: u32) -> String {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .filter(|t| t.index == index)
        .filter_map(|t| t.function.as_ref()?.arguments.clone())
        .collect()
}

fn finish_reasons(chunks: &[ChatChunk]) -> Vec<FinishReason> {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.finish_reason)
        .collect()
}

#[tokio::test]
async fn complete_sends_v2_chat_and_translates_the_answer() {
    let answer = json!({
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will look up the weather in Rome.",
            "tool_calls": [{"id": "get_weather_1byjy32y4hvq", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]
        },
        "usage": {"billed_units": {"input_tokens": 37, "output_tokens": 21},
            "tokens": {"input_tokens": 1092, "output_tokens": 57}}
    });
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let req = request(json!({
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Checking Paris.", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
            {"role": "user", "content": "And Rome?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required",
        "max_tokens": 500,
        "top_p": 0.9,
        "stop": "END"
    }));
    let r = provider(&upstream)
        .complete("command-a-03-2025", &req)
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v2/chat");
    assert_eq!(sent.header("authorization"), Some("Bearer co-test-key"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "command-a-03-2025",
            "stream": false,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "tool_plan": "Checking Paris.", "tool_calls": [{"id": "call_1",
                    "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
                {"role": "user", "content": "And Rome?"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "REQUIRED",
            "max_tokens": 500,
            "p": 0.9,
            "stop_sequences": ["END"]
        })
    );

    assert_eq!(r.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_eq!(r.model, "command-a-03-2025");
    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(
        choice.message.content.as_deref(),
        Some("I will look up the weather in Rome.")
    );
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (
            call.id.as_str(),
            call.function.name.as_str(),
            call.function.arguments.as_str()
        ),
        (
            "get_weather_1byjy32y4hvq",
            "get_weather",
            "{\"city\":\"Rome\"}"
        )
    );
    let usage = r.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (37, 21, 58),
        "billed units"
    );
}

#[tokio::test]
async fn json_modes_translate_to_response_format() {
    let answer = json!({"id": "r", "finish_reason": "COMPLETE", "message": {"role": "assistant",
        "content": [{"type": "text", "text": "{\"a\": 1}"}]},
        "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 4}}});
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let p = provider(&upstream);
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
    let r = p
        .complete(
            "command-a-03-2025",
            &request(json!({"response_format": {"type": "json_schema",
                "json_schema": {"name": "a", "schema": schema}}})),
        )
        .await
        .unwrap();
    p.complete(
        "command-a-03-2025",
        &request(json!({"response_format": {"type": "json_object"}})),
    )
    .await
    .unwrap();
    let sent = upstream.requests();
    assert_eq!(
        sent[0].body["response_format"],
        json!({"type": "json_object", "json_schema": schema})
    );
    assert_eq!(
        sent[1].body["response_format"],
        json!({"type": "json_object"})
    );
    assert_eq!(r.choices[0].message.content.as_deref(), Some("{\"a\": 1}"));
    assert_eq!(r.choices[0].finish_reason, FinishReason::Stop);
}

/// The documented stream of a tool plan and two tool calls.
fn tool_stream() -> String {
    sse(&[
        json!({"id": "29f14a5a-11de-4cae-9800-25e4747408ed", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will check "}}}),
        json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "both cities — ✓"}}}),
        json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
            "id": "get_weather_nsz5zm3w56q3", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\n    \"ci"}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "ty\": \"Tor"}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "onto\"\n}"}}}}}),
        json!({"type": "tool-call-end", "index": 0}),
        json!({"type": "tool-call-start", "index": 1, "delta": {"message": {"tool_calls": {
            "id": "get_weather_j3gdkbq5rca8", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}}}}),
        json!({"type": "tool-call-delta", "index": 1, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"city\": \"Mün"}}}}}),
        json!({"type": "tool-call-delta", "index": 1, "delta": {"message": {"tool_calls": {"function": {"arguments": "chen\"}"}}}}}),
        json!({"type": "tool-call-end", "index": 1}),
        json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
            "usage": {"billed_units": {"input_tokens": 37, "output_tokens": 28},
                "tokens": {"input_tokens": 913, "output_tokens": 83}}}}),
    ])
}

#[tokio::test]
async fn stream_of_tool_plan_and_tool_calls_cut_anywhere() {
    for every in [1, 7, 64, 100_000] {
        let upstream = Upstream::always(Reply::sse_cut(&tool_stream(), every))
            .await
            .unwrap();
        let p = provider(&upstream);
        let chunks = ok(collect(
            p.stream("command-a-03-2025", &request(json!({"stream": true})))
                .await
                .unwrap(),
        )
        .await);
        let sent = upstream.only_request().unwrap();
        assert_eq!(sent.body["stream"], true);
        assert!(sent.body.get("stream_options").is_none());
        assert_eq!(sent.header("accept"), Some("text/event-stream"));

        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(
            text(&chunks),
            "I will check both cities — ✓",
            "pieces of {every} bytes"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&tool_args(&chunks, 0)).unwrap(),
            json!({"city": "Toronto"})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&tool_args(&chunks, 1)).unwrap(),
            json!({"city": "München"})
        );
        let ids: Vec<String> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .filter_map(|t| t.id.clone())
            .collect();
        assert_eq!(
            ids,
            ["get_weather_nsz5zm3w56q3", "get_weather_j3gdkbq5rca8"]
        );
        assert_eq!(finish_reasons(&chunks), vec![FinishReason::ToolCalls]);
        let last = chunks.last().unwrap();
        assert!(last.choices.is_empty());
        assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 1);
        let usage = last.usage.clone().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (37, 28));
        assert!(
            chunks
                .iter()
                .all(|c| c.id == "29f14a5a-11de-4cae-9800-25e4747408ed")
        );
    }
}

#[tokio::test]
async fn stream_of_text_with_max_tokens() {
    let body = sse(&[
        json!({"id": "g", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [],
            "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Large language"}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " models"}}}}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "MAX_TOKENS",
            "usage": {"billed_units": {"input_tokens": 4, "output_tokens": 3}, "tokens": {"input_tokens": 70, "output_tokens": 3}}}}),
    ]);
    let upstream = Upstream::always(Reply::sse_cut(&body, 13)).await.unwrap();
    let chunks = ok(collect(
        provider(&upstream)
            .stream(
                "command-r7b-12-2024",
                &request(json!({"max_completion_tokens": 3})),
            )
            .await
            .unwrap(),
    )
    .await);
    assert_eq!(upstream.only_request().unwrap().body["max_tokens"], 3);
    assert_eq!(text(&chunks), "Large language models");
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::Length]);
    assert_eq!(
        chunks.last().unwrap().usage.clone().unwrap().total_tokens,
        7
    );
}

#[tokio::test]
async fn http_errors_carry_the_message_and_retry_after() {
    let upstream = Upstream::always(
        Reply::json(429, json!({"id": "e1", "message": "You are using a Trial key, which is limited to 10 API calls / minute."}))
            .with_header("retry-after", "30"),
    )
    .await
    .unwrap();
    let p = provider(&upstream);
    for err in [
        p.complete("command-a-03-2025", &request(json!({})))
            .await
            .unwrap_err(),
        p.stream("command-a-03-2025", &request(json!({})))
            .await
            .err()
            .unwrap(),
    ] {
        assert_eq!(err.kind, ProviderErrorKind::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
        assert!(
            err.message.starts_with("You are using a Trial key"),
            "{err}"
        );
    }
    for (status, kind) in [
        (401, ProviderErrorKind::Unauthorized),
        (404, ProviderErrorKind::NotFound),
        (500, ProviderErrorKind::Server),
        (503, ProviderErrorKind::Server),
    ] {
        let upstream = Upstream::always(Reply::json(status, json!({"id": "e", "message": "nope"})))
            .await
            .unwrap();
        let err = provider(&upstream)
            .complete("command-a-03-2025", &request(json!({})))
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.status, err.message.as_str()),
            (kind, Some(status), "nope")
        );
    }
}

#[tokio::test]
async fn failures_mid_stream_end_it_with_an_error() {
    let start =
        json!({"id": "g", "type": "message-start", "delta": {"message": {"role": "assistant"}}});
    let text_delta = json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Part"}}}});

    // message-end reports an error.
    let body = sse(&[
        start.clone(),
        text_delta.clone(),
        json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "inference failed"}}),
    ]);
    let upstream = Upstream::always(Reply::sse_cut(&body, 9)).await.unwrap();
    let items = collect(
        provider(&upstream)
            .stream("command-a-03-2025", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        text(
            &items[..items.len() - 1]
                .iter()
                .cloned()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        ),
        "Part"
    );
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert!(err.message.contains("inference failed"), "{err}");

    // A malformed event.
    let mut body = sse(&[start.clone(), text_delta.clone()]);
    body.push_str(
        "event: content-delta\ndata: {\"type\": \"content-delta\", \"delta\": {\"mess\n\n",
    );
    let upstream = Upstream::always(Reply::sse_cut(&body, 4096)).await.unwrap();
    let items = collect(
        provider(&upstream)
            .stream("command-a-03-2025", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        items.last().unwrap().clone().unwrap_err().kind,
        ProviderErrorKind::InvalidResponse
    );
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);

    // The body ends before message-end.
    let upstream = Upstream::always(Reply::sse_cut(&sse(&[start, text_delta]), 4096))
        .await
        .unwrap();
    let items = collect(
        provider(&upstream)
            .stream("command-a-03-2025", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
    assert!(err.message.contains("message-end"), "{err}");

    // A JSON error answered to a streaming request fails `stream` itself.
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "e", "message": "invalid request: model not found"}),
    ))
    .await
    .unwrap();
    let err = provider(&upstream)
        .stream("command-a-03-2025", &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(err.message, "invalid request: model not found");
}

#[tokio::test]
async fn embeddings_use_v2_embed_with_floats() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "da6e531f-54c6-4a73-bf92-f60566d8d753", "response_type": "embeddings_by_type",
            "embeddings": {"float": [[0.016296387, -0.008354187, -0.04699707], [-0.0112, 0.02, 0.5]]},
            "texts": ["hello", "goodbye"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}}}),
    ))
    .await
    .unwrap();
    let p = provider(&upstream);
    let req: EmbeddingRequest = serde_json::from_value(json!({"model": "switchyard/embed",
        "input": ["hello", "goodbye"], "encoding_format": "base64", "dimensions": 3}))
    .unwrap();
    let r = p.embed("embed-v4.0", &req).await.unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/v2/embed");
    assert_eq!(sent.header("authorization"), Some("Bearer co-test-key"));
    assert_eq!(
        sent.body,
        json!({"model": "embed-v4.0", "texts": ["hello", "goodbye"], "input_type": "search_document",
            "embedding_types": ["float"], "output_dimension": 3})
    );
    assert_eq!(r.object, "list");
    assert_eq!(r.model, "embed-v4.0");
    assert_eq!(r.data.len(), 2);
    assert_eq!(
        r.data[0].embedding,
        vec![0.016_296_387, -0.008_354_187, -0.046_997_07]
    );
    assert_eq!(
        (r.data[1].index, r.data[1].object.as_str()),
        (1, "embedding")
    );
    assert_eq!((r.usage.prompt_tokens, r.usage.total_tokens), (2, 2));
}

#[tokio::test]
async fn configured_from_toml() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "e", "embeddings": {"float": [[1.0]]}, "meta": {"billed_units": {"input_tokens": 1}}}),
    ))
    .await
    .unwrap();
    let toml_text = format!(
        "kind = \"cohere\"\napi_key = \"co-secret-7\"\nbase_url = \"{}\"\nembedding_input_type = \"clustering\"\n",
        upstream.url("")
    );
    let config: ProviderConfig = toml::from_str(&toml_text).unwrap();
    assert_eq!(config.kind_name(), "cohere");
    let built = config.build().unwrap();
    assert!(matches!(built, AnyProvider::Cohere(_)));
    assert_eq!(built.name(), "cohere");
    assert!(!format!("{built:?}").contains("co-secret-7"));
    built
        .embed(
            "embed-v4.0",
            &serde_json::from_value(json!({"model": "x", "input": "hi"})).unwrap(),
        )
        .await
        .unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.body["input_type"], "clustering");
    assert_eq!(sent.body["texts"], json!(["hi"]));
    let empty_key =
        toml::from_str::<ProviderConfig>("kind = \"cohere\"\napi_key = \" \"\n").unwrap();
    assert!(empty_key.build().is_err());
}
