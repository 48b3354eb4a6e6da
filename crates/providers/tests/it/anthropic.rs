//! The Anthropic adapter against a local server speaking the Messages API: what the upstream
//! receives (headers, system extraction, turns, tool blocks, images, the `max_tokens`
//! default) and how its documented JSON answers, event streams and errors translate back.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_providers::types::{FinishReason, Role};
use switchyard_providers::{
    AnthropicConfig, AnthropicProvider, AnyProvider, Catalog, ChatChunk, Provider, ProviderConfig,
    ProviderError, ProviderErrorKind, TimeoutsConfig,
};

use crate::upstream::{Piece, Reply, Upstream};
use crate::{collect, request, text};

const KEY: &str = "sk-ant-test-key";

fn timeouts() -> TimeoutsConfig {
    TimeoutsConfig {
        connect_ms: 2000,
        request_ms: 5000,
        first_byte_ms: 5000,
        idle_ms: 5000,
    }
}

/// A catalog that knows one Claude model (so the `max_tokens` default is deterministic,
/// whatever the shipped catalog holds).
fn catalog() -> Catalog {
    Catalog::parse(
        r#"
[[model]]
id = "anthropic/claude-sonnet-4-5"
input_per_mtok = 3.0
cached_input_per_mtok = 0.3
output_per_mtok = 15.0
source = "test"
as_of = "2025-11-01"
context_window = 200000
max_output = 64000
tools = true
json_schema = true
vision = true
"#,
    )
    .unwrap_or_else(|e| unreachable!("test catalog: {e}"))
}

fn provider(upstream: &Upstream) -> AnthropicProvider {
    let mut config = AnthropicConfig::new(KEY);
    config.base_url = Some(upstream.url(""));
    config.timeouts = timeouts();
    AnthropicProvider::new("anthropic", &config)
        .unwrap_or_else(|e| unreachable!("test provider: {e}"))
        .with_catalog(catalog())
}

/// An SSE body as Anthropic writes it: `event: <type>` then `data: <json>` per event.
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

/// Returns the usage of the one usage chunk, which must be last and without choices.
fn single_final_usage(chunks: &[ChatChunk]) -> switchyard_providers::types::Usage {
    let with_usage = chunks.iter().filter(|c| c.usage.is_some()).count();
    assert_eq!(with_usage, 1, "exactly one usage chunk");
    match chunks.last() {
        Some(last) if last.choices.is_empty() => last.usage.clone().unwrap_or_default(),
        _ => unreachable!("the usage chunk is last, without choices"),
    }
}

/// A conversation exercising every translation rule of the request.
fn conversation() -> Value {
    json!({
        "model": "switchyard/auto",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "user", "content": [
                {"type": "text", "text": "And this picture:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_01", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "{\"temp_c\": 21}"},
            {"role": "user", "content": "Thanks. Also Rome?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "auto",
        "temperature": 0.4,
        "stop": ["\n\nHuman:"],
        "user": "user-42"
    })
}

#[tokio::test]
async fn complete_sends_the_messages_api_shape_and_translates_the_answer() {
    let answer = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Rome next.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "Checking Rome."},
            {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 1000, "output_tokens": 64}
    });
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let p = provider(&upstream);
    let r = p
        .complete("claude-sonnet-4-5", &request(conversation()))
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.header("authorization"),
        None,
        "the key travels in x-api-key only"
    );
    let b = &sent.body;
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(
        b["system"],
        json!([{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use metric units."}])
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "text", "text": "And this picture:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "{\"temp_c\": 21}"},
                {"type": "text", "text": "Thanks. Also Rome?"}
            ]}
        ])
    );
    assert_eq!(
        b["tools"],
        json!([{"name": "get_weather", "description": "Current weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(b["tool_choice"], json!({"type": "auto"}));
    assert_eq!(b["max_tokens"], 64000, "the catalog's max_output");
    assert_eq!(b["stop_sequences"], json!(["\n\nHuman:"]));
    assert_eq!(b["temperature"], 0.4);
    assert_eq!(b["metadata"], json!({"user_id": "user-42"}));
    for absent in ["stream", "user", "stop", "tool_calls", "response_format"] {
        assert!(
            b.get(absent).is_none(),
            "{absent} is not an Anthropic field"
        );
    }

    assert_eq!(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(r.object, "chat.completion");
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(choice.message.content.as_deref(), Some("Checking Rome."));
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id, "toolu_02");
    assert_eq!(call.kind, "function");
    assert_eq!(call.function.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Rome"})
    );
    let usage = r.usage.unwrap();
    assert_eq!(
        usage.prompt_tokens, 1070,
        "input + cache reads + cache writes"
    );
    assert_eq!(usage.cached_tokens(), 1000);
    assert_eq!(usage.completion_tokens, 64);
    assert_eq!(usage.total_tokens, 1134);
}

#[tokio::test]
async fn max_tokens_comes_from_the_client_or_a_fallback() {
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 3, "output_tokens": 1}});
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let p = provider(&upstream);
    p.complete(
        "claude-sonnet-4-5",
        &request(json!({"max_completion_tokens": 77})),
    )
    .await
    .unwrap();
    p.complete("claude-sonnet-4-5-20250929", &request(json!({})))
        .await
        .unwrap();
    p.complete("claude-unknown-9", &request(json!({})))
        .await
        .unwrap();
    let sent: Vec<Value> = upstream
        .requests()
        .iter()
        .map(|r| r.body["max_tokens"].clone())
        .collect();
    assert_eq!(sent, vec![json!(77), json!(64000), json!(4096)]);
}

/// The documented stream of a text answer followed by a tool call, with thinking first.
fn tool_stream() -> String {
    sse(&[
        json!({"type": "message_start", "message": {"id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "stop_sequence": null, "stop_reason": null, "content": [],
            "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 2048, "output_tokens": 2}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants Rome."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "ping"}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay, let me check — "}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "météo ✓"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"ci"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "ty\": \"Ro"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "me\", \"unit\": \"°C\"}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use",
            "id": "toolu_02", "name": "get_time", "input": {}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 89}}),
        json!({"type": "message_stop"}),
    ])
}

#[tokio::test]
async fn stream_of_thinking_text_and_tool_calls_cut_anywhere() {
    for every in [1, 7, 64, 100_000] {
        let upstream = Upstream::always(Reply::sse_cut(&tool_stream(), every))
            .await
            .unwrap();
        let p = provider(&upstream);
        let stream = p
            .stream(
                "claude-sonnet-4-5",
                &request(json!({"stream": true, "max_tokens": 1024})),
            )
            .await
            .unwrap();
        let chunks = ok(collect(stream).await);

        let sent = upstream.only_request().unwrap();
        assert_eq!(sent.body["stream"], true);
        assert_eq!(sent.body["max_tokens"], 1024);
        assert!(sent.body.get("stream_options").is_none());
        assert_eq!(sent.header("accept"), Some("text/event-stream"));
        assert_eq!(sent.header("x-api-key"), Some(KEY));

        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(
            text(&chunks),
            "Okay, let me check — météo ✓",
            "pieces of {every} bytes"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&tool_args(&chunks, 0)).unwrap(),
            json!({"city": "Rome", "unit": "°C"})
        );
        assert_eq!(tool_args(&chunks, 1), "{}");
        let starts: Vec<_> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .filter(|t| t.id.is_some())
            .map(|t| {
                (
                    t.index,
                    t.id.clone().unwrap(),
                    t.function.clone().unwrap().name.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            starts,
            vec![
                (
                    0,
                    "toolu_01T1x1fJ34qAmk2tNTrN7Up6".to_owned(),
                    "get_weather".to_owned()
                ),
                (1, "toolu_02".to_owned(), "get_time".to_owned())
            ]
        );
        assert_eq!(finish_reasons(&chunks), vec![FinishReason::ToolCalls]);
        let usage = single_final_usage(&chunks);
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens()
            ),
            (2520, 89, 2048)
        );
        assert!(
            chunks.iter().all(|c| c.id == "msg_014p7gG3wDgGV9EUtLvnow3U"
                && c.model == "claude-sonnet-4-5-20250929")
        );
    }
}

#[tokio::test]
async fn json_object_answers_through_the_forced_tool_and_streams_as_content() {
    let stream = sse(&[
        json!({"type": "message_start", "message": {"id": "msg_j", "type": "message", "role": "assistant",
            "model": "claude-haiku-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use",
            "id": "toolu_j", "name": "json_object_response", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"answer\": "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "42}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 12}}),
        json!({"type": "message_stop"}),
    ]);
    let upstream = Upstream::always(Reply::sse_cut(&stream, 5)).await.unwrap();
    let p = provider(&upstream);
    let req = request(json!({"response_format": {"type": "json_object"}}));
    let chunks = ok(collect(p.stream("claude-haiku-4-5", &req).await.unwrap()).await);
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.body["tools"][0]["name"], "json_object_response");
    assert_eq!(
        sent.body["tool_choice"],
        json!({"type": "tool", "name": "json_object_response"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text(&chunks)).unwrap(),
        json!({"answer": 42})
    );
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.tool_calls.is_none())
    );
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::Stop]);
    assert_eq!(single_final_usage(&chunks).completion_tokens, 12);
}

#[tokio::test]
async fn json_schema_uses_structured_outputs() {
    let answer = json!({"id": "msg_s", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "{\"city\":\"Rome\"}"}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 6}});
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let p = provider(&upstream);
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": false});
    let r = p
        .complete(
            "claude-sonnet-4-5",
            &request(json!({"response_format": {"type": "json_schema",
                "json_schema": {"name": "city", "strict": true, "schema": schema}}})),
        )
        .await
        .unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.body["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}})
    );
    assert!(sent.body.get("tools").is_none());
    assert_eq!(
        r.choices[0].message.content.as_deref(),
        Some("{\"city\":\"Rome\"}")
    );
    assert_eq!(r.choices[0].finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn refusals_surface_as_content_filter() {
    let answer = json!({"id": "msg_r", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": "refusal", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 0}});
    let upstream = Upstream::always(Reply::json(200, answer)).await.unwrap();
    let r = provider(&upstream)
        .complete("claude-sonnet-4-5", &request(json!({})))
        .await
        .unwrap();
    assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
    assert!(
        r.choices[0]
            .message
            .refusal
            .as_deref()
            .unwrap()
            .contains("refusal")
    );

    let stream = sse(&[
        json!({"type": "message_start", "message": {"id": "msg_r", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Here is how"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": null},
            "usage": {"output_tokens": 3}}),
        json!({"type": "message_stop"}),
    ]);
    let upstream = Upstream::always(Reply::sse_cut(&stream, 4096))
        .await
        .unwrap();
    let chunks = ok(collect(
        provider(&upstream)
            .stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap(),
    )
    .await);
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::ContentFilter]);
    let last_choice = chunks[chunks.len() - 2].choices[0].clone();
    assert!(last_choice.delta.refusal.is_some());
    single_final_usage(&chunks);
}

#[tokio::test]
async fn rate_limits_and_overload_are_classified_with_retry_after() {
    let body = json!({"type": "error", "error": {"type": "rate_limit_error",
        "message": "Number of request tokens has exceeded your per-minute rate limit"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
    let upstream = Upstream::always(Reply::json(429, body).with_header("retry-after", "12"))
        .await
        .unwrap();
    let p = provider(&upstream);
    for err in [
        p.complete("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap_err(),
        p.stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .err()
            .unwrap(),
    ] {
        assert_eq!(err.kind, ProviderErrorKind::RateLimited);
        assert_eq!(err.status, Some(429));
        assert_eq!(err.retry_after, Some(Duration::from_secs(12)));
        assert_eq!(
            err.message,
            "Number of request tokens has exceeded your per-minute rate limit"
        );
        assert!(err.is_retryable());
    }

    let cases = [
        (
            529,
            "overloaded_error",
            "Overloaded",
            ProviderErrorKind::Server,
        ),
        (
            500,
            "api_error",
            "Internal server error",
            ProviderErrorKind::Server,
        ),
        (
            401,
            "authentication_error",
            "invalid x-api-key",
            ProviderErrorKind::Unauthorized,
        ),
        (
            404,
            "not_found_error",
            "model: claude-nope",
            ProviderErrorKind::NotFound,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208532 tokens > 200000 maximum",
            ProviderErrorKind::ContextLength,
        ),
    ];
    for (status, kind, message, want) in cases {
        let body = json!({"type": "error", "error": {"type": kind, "message": message}});
        let upstream = Upstream::always(Reply::json(status, body)).await.unwrap();
        let p = provider(&upstream);
        for err in [
            p.complete("claude-sonnet-4-5", &request(json!({})))
                .await
                .unwrap_err(),
            p.stream("claude-sonnet-4-5", &request(json!({})))
                .await
                .err()
                .unwrap(),
        ] {
            assert_eq!((err.kind, err.status), (want, Some(status)), "{err}");
            assert_eq!(err.message, message);
        }
    }
}

fn start_and_text() -> Vec<Value> {
    vec![
        json!({"type": "message_start", "message": {"id": "msg_e", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Partial"}}),
    ]
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_an_error() {
    let mut events = start_and_text();
    events.push(
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    // Anything after the error is ignored.
    events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ghost"}}));
    let upstream = Upstream::always(Reply::sse_cut(&sse(&events), 11))
        .await
        .unwrap();
    let items = collect(
        provider(&upstream)
            .stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    let (last, chunks) = items.split_last().unwrap();
    let chunks: Vec<ChatChunk> = chunks.iter().cloned().map(Result::unwrap).collect();
    assert_eq!(text(&chunks), "Partial");
    let err = last.clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert_eq!(err.message, "overloaded_error: Overloaded");
    assert!(err.is_retryable());

    // An error before the first token is an error of `stream` itself: the router can fail over.
    let upstream = Upstream::always(Reply::sse_cut(
        &sse(&[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]),
        4096,
    ))
    .await
    .unwrap();
    let err = provider(&upstream)
        .stream("claude-sonnet-4-5", &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ProviderErrorKind::Server);
}

#[tokio::test]
async fn malformed_events_and_cut_streams_never_end_silently() {
    // A malformed event.
    let mut body = sse(&start_and_text());
    body.push_str("event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n");
    let upstream = Upstream::always(Reply::sse_cut(&body, 4096)).await.unwrap();
    let items = collect(
        provider(&upstream)
            .stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        items.last().unwrap().clone().unwrap_err().kind,
        ProviderErrorKind::InvalidResponse
    );

    // The body ends before message_stop.
    let upstream = Upstream::always(Reply::sse_cut(&sse(&start_and_text()), 4096))
        .await
        .unwrap();
    let items = collect(
        provider(&upstream)
            .stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
    assert!(err.message.contains("message_stop"), "{err}");

    // The connection breaks mid-stream.
    let upstream = Upstream::always(Reply::Stream(vec![
        Piece::Bytes(sse(&start_and_text()).into_bytes()),
        Piece::Sleep(Duration::from_millis(20)),
        Piece::Reset,
    ]))
    .await
    .unwrap();
    let items = collect(
        provider(&upstream)
            .stream("claude-sonnet-4-5", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert!(items.last().unwrap().is_err());
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
}

#[tokio::test]
async fn configured_from_toml_with_a_name_base_url_and_headers() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "msg_c", "type": "message", "role": "assistant", "model": "claude-opus-4-1",
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
            "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}}),
    ))
    .await
    .unwrap();
    let toml_text = format!(
        "kind = \"anthropic\"\napi_key = \"sk-ant-secret-9\"\nbase_url = \"{}\"\nextra_headers = {{ \"anthropic-beta\" = \"context-1m-2025-08-07\" }}\ndefault_max_tokens = 2048\ntimeouts = {{ first_byte_ms = 3000 }}\n",
        upstream.url("/proxy/")
    );
    let config: ProviderConfig = toml::from_str(&toml_text).unwrap();
    assert_eq!(config.kind_name(), "anthropic");
    assert!(!format!("{config:?}").contains("sk-ant-secret-9"));
    let built = config.build_named("claude-eu").unwrap();
    assert!(matches!(built, AnyProvider::Anthropic(_)));
    assert_eq!(built.name(), "claude-eu");
    assert!(!format!("{built:?}").contains("sk-ant-secret-9"));
    built
        .complete("claude-model-not-in-any-catalog", &request(json!({})))
        .await
        .unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.target, "/proxy/v1/messages");
    assert_eq!(sent.header("anthropic-beta"), Some("context-1m-2025-08-07"));
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-secret-9"));
    assert_eq!(sent.body["max_tokens"], 2048);

    let err = built
        .embed(
            "x",
            &serde_json::from_value(json!({"model": "x", "input": "hi"})).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert!(
        toml::from_str::<ProviderConfig>(
            "kind = \"anthropic\"\napi_key = \"k\"\nbase_ulr = \"x\"\n"
        )
        .is_err()
    );
}
