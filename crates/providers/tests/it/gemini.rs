//! The Gemini API adapter against a local server speaking `generateContent`,
//! `streamGenerateContent?alt=sse` and `batchEmbedContents`: what Gemini receives, and how its
//! answers translate back.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_providers::types::{ChatChunk, EmbeddingRequest, FinishReason, Usage};
use switchyard_providers::{
    AnyProvider, Provider, ProviderConfig, ProviderError, ProviderErrorKind,
};

use crate::upstream::{Piece, Reply, Upstream};
use crate::{collect, request, text};

/// Returns a Gemini provider (built from TOML, as operators configure it) pointed at `upstream`.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
pub fn gemini(upstream: &Upstream) -> AnyProvider {
    let toml = format!(
        "kind = \"gemini\"\napi_key = \"AIza-test\"\nbase_url = \"{}\"\ntimeouts = {{ request_ms = 5000, first_byte_ms = 5000, idle_ms = 5000 }}\n",
        upstream.url("")
    );
    let config: ProviderConfig = toml::from_str(&toml).unwrap();
    let p = config.build_named("google").unwrap();
    assert!(matches!(p, AnyProvider::Gemini(_)));
    p
}

pub fn tool_request() -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":21}"},
            {"role": "user", "content": "and tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "additionalProperties": false,
                "properties": {"city": {"type": "string"}, "day": {"type": ["string", "null"]}},
                "required": ["city"]}}}],
        "tool_choice": "auto",
        "max_completion_tokens": 256,
        "temperature": 0.2,
        "stop": ["END"]
    })
}

/// Asserts the translated `GenerateContentRequest` of [`tool_request`].
pub fn assert_tool_request_body(body: &Value) {
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"text": "and tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                "day": {"type": "string", "nullable": true}}, "required": ["city"]}}]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 256, "temperature": 0.2, "stopSequences": ["END"]})
    );
    assert!(body.get("model").is_none() && body.get("messages").is_none());
}

/// A `GenerateContentResponse` with text, a function call (with a thought signature) and usage.
pub fn tool_answer() -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Checking tomorrow."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "day": "tomorrow"}},
                 "thoughtSignature": "c2lnbmF0dXJl"}
            ]},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
        }],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 18, "totalTokenCount": 170,
            "cachedContentTokenCount": 64, "thoughtsTokenCount": 32,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1"
    })
}

#[tokio::test]
async fn complete_translates_both_ways() {
    let upstream = Upstream::always(Reply::json(200, tool_answer()))
        .await
        .unwrap();
    let p = gemini(&upstream);
    let r = p
        .complete("gemini-2.5-flash", &request(tool_request()))
        .await
        .unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.target,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(sent.header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(
        !sent.target.contains("key="),
        "the key never travels in the URL"
    );
    assert_tool_request_body(&sent.body);

    assert_eq!(r.id, "chatcmpl-resp-1");
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.object, "chat.completion");
    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Checking tomorrow.")
    );
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Paris", "day": "tomorrow"})
    );
    assert!(call.id.ends_with("__thought__c2lnbmF0dXJl"), "{}", call.id);
    assert_eq!(
        r.usage.unwrap(),
        Usage::new(120, 50, 64, 32),
        "thinking counts as completion, as in OpenAI's usage"
    );

    // The call comes back in the next turn: its signature is restored on the functionCall part.
    let mut next = tool_request();
    next["messages"][2]["tool_calls"][0]["id"] = json!(call.id);
    next["messages"][3]["tool_call_id"] = json!(call.id);
    p.complete("gemini-2.5-flash", &request(next))
        .await
        .unwrap();
    let sent = upstream.requests().pop().unwrap();
    assert_eq!(
        sent.body["contents"][1]["parts"][0]["thoughtSignature"],
        "c2lnbmF0dXJl"
    );
    assert_eq!(
        sent.body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn images_json_mode_and_blocked_prompts() {
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}, "modelVersion": "gemini-2.5-pro"});
    let upstream = Upstream::always(Reply::json(200, blocked)).await.unwrap();
    let p = gemini(&upstream);
    let req = request(json!({
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.png"}}
        ]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "d", "strict": true,
            "schema": {"type": "object", "properties": {"animal": {"type": "string"}}, "required": ["animal"], "additionalProperties": false}}},
        "n": 2
    }));
    let r = p.complete("gemini-2.5-pro", &req).await.unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.body["contents"][0]["parts"],
        json!([
            {"text": "describe"},
            {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/cat.png"}}
        ])
    );
    assert_eq!(
        sent.body["generationConfig"],
        json!({"candidateCount": 2, "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object", "properties": {"animal": {"type": "string"}},
                "required": ["animal"], "additionalProperties": false}})
    );
    assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.choices[0].message.content, None);
    assert_eq!(r.usage.unwrap().prompt_tokens, 7);
}

fn sse_body(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect()
}

pub fn stream_events() -> Vec<Value> {
    vec![
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Tomorrow: "}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120}, "modelVersion": "gemini-2.5-flash", "responseId": "s-1"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "sunny ☀, "}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 6, "totalTokenCount": 126}, "modelVersion": "gemini-2.5-flash", "responseId": "s-1"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "24°C."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 14, "totalTokenCount": 144, "thoughtsTokenCount": 10},
            "modelVersion": "gemini-2.5-flash", "responseId": "s-1"}),
    ]
}

fn ok(items: Vec<Result<ChatChunk, ProviderError>>) -> Vec<ChatChunk> {
    items
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| unreachable!("unexpected error item: {e}")))
        .collect()
}

/// Asserts the chunks of [`stream_events`]: text, the tool call, one finish, one usage chunk.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
pub fn assert_stream_chunks(chunks: &[ChatChunk]) {
    assert_eq!(text(chunks), "Tomorrow: sunny ☀, 24°C.");
    let calls: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].index, 0);
    assert!(
        calls[0]
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with("call_"))
    );
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!(
        (f.name.as_deref(), f.arguments.as_deref()),
        (Some("get_weather"), Some("{\"city\":\"Lyon\"}"))
    );
    let finishes: Vec<FinishReason> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.finish_reason)
        .collect();
    assert_eq!(finishes, vec![FinishReason::ToolCalls]);
    let with_usage: Vec<&ChatChunk> = chunks.iter().filter(|c| c.usage.is_some()).collect();
    assert_eq!(with_usage.len(), 1);
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty() && last.usage.is_some());
    assert_eq!(last.usage.clone().unwrap(), Usage::new(120, 24, 0, 10));
    assert!(
        chunks
            .iter()
            .all(|c| c.object == "chat.completion.chunk" && c.model == "gemini-2.5-flash")
    );
}

#[tokio::test]
async fn stream_translates_sse_cut_anywhere() {
    let body = sse_body(&stream_events());
    for every in [1, 5, 33, 100_000] {
        let upstream = Upstream::always(Reply::sse_cut(&body, every))
            .await
            .unwrap();
        let p = gemini(&upstream);
        let chunks = ok(collect(
            p.stream("gemini-2.5-flash", &request(tool_request()))
                .await
                .unwrap(),
        )
        .await);
        let sent = upstream.only_request().unwrap();
        assert_eq!(
            sent.target,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(sent.header("accept"), Some("text/event-stream"));
        assert_tool_request_body(&sent.body);
        assert_stream_chunks(&chunks);
        assert!(
            chunks.iter().all(|c| c.id == "chatcmpl-s-1"),
            "pieces of {every}"
        );
    }
}

#[tokio::test]
async fn rate_limits_carry_retry_info_for_complete_and_stream() {
    let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "21s"}
    ]}});
    let upstream = Upstream::always(Reply::json(429, body)).await.unwrap();
    let p = gemini(&upstream);
    for err in [
        p.complete("m", &request(json!({}))).await.unwrap_err(),
        p.stream("m", &request(json!({}))).await.err().unwrap(),
    ] {
        assert_eq!(
            (err.kind, err.status),
            (ProviderErrorKind::RateLimited, Some(429))
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(21)));
        assert!(
            err.message.starts_with("You exceeded your current quota"),
            "{err}"
        );
        assert_eq!(err.provider, "google");
        assert!(err.is_retryable());
    }

    // A Retry-After header wins over the body.
    let upstream = Upstream::always(
        Reply::json(503, json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}))
            .with_header("retry-after", "3"),
    )
    .await
    .unwrap();
    let err = gemini(&upstream)
        .complete("m", &request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.retry_after),
        (ProviderErrorKind::Server, Some(Duration::from_secs(3)))
    );

    let upstream = Upstream::always(Reply::json(400, json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
        "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."}})))
        .await
        .unwrap();
    let err = gemini(&upstream)
        .complete("m", &request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::ContextLength);
    let upstream = Upstream::always(Reply::json(
        403,
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
        "message": "API key not valid. Please pass a valid API key."}}),
    ))
    .await
    .unwrap();
    let err = gemini(&upstream)
        .complete("m", &request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unauthorized);
}

#[tokio::test]
async fn stream_failures_are_errs_never_silent_truncations() {
    let events = stream_events();
    // An error event before anything: an Err of `stream` itself (the router may fail over).
    let upstream = Upstream::always(Reply::Stream(vec![Piece::Bytes(
        sse_body(&[
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
        ])
        .into_bytes(),
    )]))
    .await
    .unwrap();
    let err = gemini(&upstream)
        .stream("m", &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.kind, err.status),
        (ProviderErrorKind::Server, Some(503))
    );

    // An error event mid-stream: the chunks so far, then one Err.
    let mut body = sse_body(&events[..2]);
    body.push_str(&sse_body(&[json!({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}})]));
    let upstream = Upstream::always(Reply::sse_cut(&body, 11)).await.unwrap();
    let items = collect(
        gemini(&upstream)
            .stream("m", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(items.len(), 3);
    assert_eq!(text(&ok(items[..2].to_vec())), "Tomorrow: sunny ☀, ");
    let err = items[2].clone().unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ProviderErrorKind::Server, "An internal error has occurred.")
    );

    // Cut short: the body ends before any finishReason.
    let upstream = Upstream::always(Reply::sse_cut(&sse_body(&events[..2]), 7))
        .await
        .unwrap();
    let items = collect(
        gemini(&upstream)
            .stream("m", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(items.len(), 3);
    let err = items[2].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
    assert!(err.message.contains("before the answer finished"), "{err}");

    // The connection drops mid-event.
    let upstream = Upstream::always(Reply::Stream(vec![
        Piece::Bytes(sse_body(&events[..1]).into_bytes()),
        Piece::Sleep(Duration::from_millis(20)),
        Piece::Bytes(b"data: {\"candidates\": [{\"content\"".to_vec()),
        Piece::Sleep(Duration::from_millis(20)),
        Piece::Reset,
    ]))
    .await
    .unwrap();
    let items = collect(
        gemini(&upstream)
            .stream("m", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert!(items[0].is_ok());
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    assert!(items.last().unwrap().is_err());

    // A malformed event.
    let mut body = sse_body(&events[..1]);
    body.push_str("data: {\"candidates\": [{\"content\": \n\n");
    body.push_str(&sse_body(&events[1..]));
    let upstream = Upstream::always(Reply::sse_cut(&body, 9)).await.unwrap();
    let items = collect(
        gemini(&upstream)
            .stream("m", &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(items.len(), 2);
    let err = items[1].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
    assert!(err.message.contains("malformed stream event"), "{err}");

    // A JSON answer to a streaming request is not a stream.
    let upstream = Upstream::always(Reply::json(200, tool_answer()))
        .await
        .unwrap();
    let err = gemini(&upstream)
        .stream("m", &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
}

#[tokio::test]
async fn embeddings_use_batch_embed_contents() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"embeddings": [{"values": [0.25, -0.5, 1.0]}, {"values": [0.0, 0.5, -1.0]}]}),
    ))
    .await
    .unwrap();
    let p = gemini(&upstream);
    let req: EmbeddingRequest = serde_json::from_value(json!({
        "model": "google/gemini-embedding-001", "input": ["hello", "world"], "dimensions": 3
    }))
    .unwrap();
    let r = p.embed("gemini-embedding-001", &req).await.unwrap();
    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.target,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(
        sent.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 3},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 3}
        ]})
    );
    assert_eq!(r.data.len(), 2);
    assert_eq!(r.data[1].index, 1);
    assert_eq!(r.data[0].embedding, vec![0.25f32, -0.5, 1.0]);
    assert_eq!(r.model, "gemini-embedding-001");

    let tokens: EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": [[1, 2, 3]]})).unwrap();
    let err = p.embed("gemini-embedding-001", &tokens).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unsupported);
    assert_eq!(
        upstream.requests().len(),
        1,
        "nothing sent for token inputs"
    );
}

#[test]
fn config_requires_a_key_and_keeps_it_out_of_debug_output() {
    let config: ProviderConfig =
        toml::from_str("kind = \"gemini\"\napi_key = \"AIza-secret-1\"\n").unwrap();
    assert_eq!(config.kind_name(), "gemini");
    let p = config.build().unwrap();
    assert_eq!(p.name(), "gemini");
    for text in [format!("{config:?}"), format!("{p:?}")] {
        assert!(!text.contains("AIza-secret-1"), "{text}");
    }
    let empty: ProviderConfig = toml::from_str("kind = \"gemini\"\napi_key = \" \"\n").unwrap();
    assert!(empty.build().is_err());
    assert!(
        toml::from_str::<ProviderConfig>("kind = \"gemini\"\napi_key = \"k\"\nbase_ulr = \"x\"\n")
            .is_err()
    );
}
