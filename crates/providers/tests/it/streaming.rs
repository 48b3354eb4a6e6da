//! Streams: text and tool-call deltas, usage in every dialect ending as one usage chunk, SSE
//! written at awkward cut points.

use serde_json::{Value, json};
use switchyard_providers::types::FinishReason;
use switchyard_providers::{ChatChunk, Provider, ProviderKind};

use crate::upstream::{Reply, Upstream};
use crate::{collect, request, text};

fn chunk(id: &str, model: &str, choices: Value) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp", "choices": choices})
}

fn delta(content: Value, finish: Value) -> Value {
    json!([{"index": 0, "delta": content, "logprobs": null, "finish_reason": finish}])
}

/// OpenAI's stream for a tool call after a bit of text, with the usage chunk asked for.
fn openai_tool_stream() -> String {
    let m = "gpt-4o";
    let events = [
        chunk(
            "c1",
            m,
            delta(
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            ),
        ),
        chunk(
            "c1",
            m,
            delta(json!({"content": "Let me check — "}), Value::Null),
        ),
        chunk("c1", m, delta(json!({"content": "météo ✓"}), Value::Null)),
        chunk(
            "c1",
            m,
            delta(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null,
            ),
        ),
        chunk(
            "c1",
            m,
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
                Value::Null,
            ),
        ),
        chunk(
            "c1",
            m,
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}),
                Value::Null,
            ),
        ),
        chunk("c1", m, delta(json!({}), json!("tool_calls"))),
        {
            let mut usage = chunk("c1", m, json!([]));
            usage["usage"] = json!({"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
            usage
        },
    ];
    // Comments (keep-alives), CRLF line ends, and [DONE].
    let mut s = String::from(": OPENROUTER PROCESSING\r\n\r\n");
    for e in events {
        s.push_str(&format!("data: {e}\r\n\r\n"));
    }
    s.push_str("data: [DONE]\r\n\r\n");
    s
}

fn ok(items: Vec<Result<ChatChunk, switchyard_providers::ProviderError>>) -> Vec<ChatChunk> {
    items
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| unreachable!("unexpected error item: {e}")))
        .collect()
}

/// Returns the usage of the one usage chunk, which must be last and without choices.
fn single_final_usage(chunks: &[ChatChunk]) -> Option<switchyard_providers::types::Usage> {
    let with_usage = chunks.iter().filter(|c| c.usage.is_some()).count();
    let last = chunks.last()?;
    (with_usage == 1 && last.choices.is_empty())
        .then(|| last.usage.clone())
        .flatten()
}

#[tokio::test]
async fn openai_stream_of_text_and_tool_call_deltas_cut_anywhere() {
    for every in [1, 7, 64, 100_000] {
        let upstream = Upstream::always(Reply::sse_cut(&openai_tool_stream(), every))
            .await
            .unwrap();
        let p = upstream
            .provider(ProviderKind::OpenAi, "/v1", "sk")
            .unwrap();
        let stream = p
            .stream("gpt-4o", &request(json!({"stream": true})))
            .await
            .unwrap();
        let chunks = ok(collect(stream).await);

        let sent = upstream.only_request().unwrap();
        assert_eq!(sent.body["stream"], true);
        assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
        assert_eq!(sent.header("accept"), Some("text/event-stream"));

        assert_eq!(
            text(&chunks),
            "Let me check — météo ✓",
            "pieces of {every} bytes"
        );
        let args: String = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .filter_map(|t| t.function.as_ref()?.arguments.clone())
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        let first_call = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .next()
            .unwrap();
        assert_eq!(first_call.id.as_deref(), Some("call_1"));
        assert_eq!(
            first_call.function.as_ref().unwrap().name.as_deref(),
            Some("get_weather")
        );
        let finish: Vec<FinishReason> = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.finish_reason)
            .collect();
        assert_eq!(finish, vec![FinishReason::ToolCalls]);
        let usage = single_final_usage(&chunks).unwrap();
        assert_eq!(usage.total_tokens, 35);
        assert!(chunks.iter().all(|c| c.id == "c1" && c.model == "gpt-4o"));
    }
}

#[tokio::test]
async fn a_client_that_did_not_ask_for_usage_still_gets_it_from_the_adapter() {
    // The gateway strips the usage chunk for such clients; the adapter always asks.
    let upstream = Upstream::always(Reply::sse_cut(&openai_tool_stream(), 4096))
        .await
        .unwrap();
    let p = upstream.provider(ProviderKind::Xai, "/v1", "xai").unwrap();
    let req = request(json!({"stream": true, "stream_options": {"include_usage": false}}));
    let chunks = ok(collect(p.stream("grok-4", &req).await.unwrap()).await);
    assert_eq!(
        upstream.only_request().unwrap().body["stream_options"],
        json!({"include_usage": true})
    );
    single_final_usage(&chunks).unwrap();
}

#[tokio::test]
async fn deepseek_stream_usage_carries_cache_hits() {
    let m = "deepseek-reasoner";
    let mut last = chunk("d", m, json!([]));
    last["usage"] = json!({"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540,
        "prompt_cache_hit_tokens": 448, "prompt_cache_miss_tokens": 52,
        "completion_tokens_details": {"reasoning_tokens": 30}});
    let events = [
        chunk(
            "d",
            m,
            delta(
                json!({"role": "assistant", "content": null, "reasoning_content": "hmm"}),
                Value::Null,
            ),
        ),
        chunk(
            "d",
            m,
            delta(json!({"content": "Paris: sunny"}), Value::Null),
        ),
        chunk("d", m, delta(json!({"content": ""}), json!("stop"))),
        last,
    ];
    let upstream = Upstream::always(Reply::sse(&events, true)).await.unwrap();
    let p = upstream.provider(ProviderKind::DeepSeek, "", "ds").unwrap();
    let chunks = ok(collect(
        p.stream(m, &request(json!({"max_tokens": 64})))
            .await
            .unwrap(),
    )
    .await);
    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(sent.body["max_tokens"], 64);
    assert_eq!(text(&chunks), "Paris: sunny");
    let usage = single_final_usage(&chunks).unwrap();
    assert_eq!((usage.cached_tokens(), usage.reasoning_tokens()), (448, 30));
}

#[tokio::test]
async fn mistral_usage_on_the_finishing_chunk_is_split_off() {
    // Mistral rejects stream_options and sends usage with the last delta.
    let m = "mistral-large-latest";
    let mut finishing = chunk("m", m, delta(json!({"content": "!"}), json!("stop")));
    finishing["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12});
    let events = [
        chunk(
            "m",
            m,
            delta(json!({"role": "assistant", "content": "Hi"}), Value::Null),
        ),
        chunk("m", m, delta(json!({"content": " there"}), Value::Null)),
        finishing,
    ];
    let upstream = Upstream::always(Reply::sse(&events, true)).await.unwrap();
    let p = upstream
        .provider(ProviderKind::Mistral, "/v1", "m")
        .unwrap();
    let chunks = ok(collect(
        p.stream(
            m,
            &request(
                json!({"max_completion_tokens": 10, "stream_options": {"include_usage": true}}),
            ),
        )
        .await
        .unwrap(),
    )
    .await);
    let sent = upstream.only_request().unwrap();
    assert!(
        sent.body.get("stream_options").is_none(),
        "Mistral answers 422 to it"
    );
    assert_eq!(sent.body["max_tokens"], 10);
    assert_eq!(text(&chunks), "Hi there!");
    assert_eq!(chunks.len(), 4, "three deltas and the usage chunk");
    assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(single_final_usage(&chunks).unwrap().total_tokens, 12);
}

#[tokio::test]
async fn groq_x_groq_usage_and_perplexity_running_usage_and_citations() {
    let mut groq_last = chunk("g", "llama", delta(json!({}), json!("stop")));
    groq_last["x_groq"] = json!({"id": "req_1", "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}});
    let upstream = Upstream::always(Reply::sse(
        &[
            chunk(
                "g",
                "llama",
                delta(json!({"role": "assistant", "content": "ok"}), Value::Null),
            ),
            groq_last,
        ],
        true,
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Groq, "/openai/v1", "gsk")
        .unwrap();
    let chunks = ok(collect(p.stream("llama", &request(json!({}))).await.unwrap()).await);
    assert_eq!(single_final_usage(&chunks).unwrap().total_tokens, 13);

    // Perplexity: cumulative usage and the citations on every chunk.
    let pchunk = |content: &str, finish: Value, completion: u64| {
        let mut c = chunk(
            "p",
            "sonar",
            delta(json!({"role": "assistant", "content": content}), finish),
        );
        c["citations"] = json!(["https://example.com/a"]);
        c["usage"] = json!({"prompt_tokens": 5, "completion_tokens": completion, "total_tokens": 5 + completion});
        c
    };
    let upstream = Upstream::always(Reply::sse(
        &[
            pchunk("Sunny", Value::Null, 1),
            pchunk(" [1].", Value::Null, 3),
            pchunk("", json!("stop"), 4),
        ],
        true,
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Perplexity, "", "pplx")
        .unwrap();
    let chunks = ok(collect(
        p.stream(
            "sonar",
            &request(json!({"stream_options": {"include_usage": true}})),
        )
        .await
        .unwrap(),
    )
    .await);
    assert!(
        upstream
            .only_request()
            .unwrap()
            .body
            .get("stream_options")
            .is_none()
    );
    assert_eq!(text(&chunks), "Sunny [1].");
    let annotated: Vec<&ChatChunk> = chunks
        .iter()
        .filter(|c| c.choices.iter().any(|ch| ch.delta.annotations.is_some()))
        .collect();
    assert_eq!(annotated.len(), 1, "citations are delivered once");
    assert_eq!(
        annotated[0].choices[0].delta.annotations.clone().unwrap(),
        vec![json!({"type": "url_citation", "url_citation": {"url": "https://example.com/a"}})]
    );
    let usage = single_final_usage(&chunks).unwrap();
    assert_eq!(usage.completion_tokens, 4, "the last running total");
}

#[tokio::test]
async fn azure_prompt_filter_chunk_without_choices_is_skipped() {
    let filter = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]});
    let upstream = Upstream::always(Reply::sse(
        &[
            filter,
            chunk(
                "a",
                "gpt-4o",
                delta(
                    json!({"role": "assistant", "content": "Hello"}),
                    Value::Null,
                ),
            ),
            chunk("a", "gpt-4o", delta(json!({}), json!("stop"))),
        ],
        true,
    ))
    .await
    .unwrap();
    let mut config = switchyard_providers::OpenAiCompatConfig::new(ProviderKind::Azure, "az");
    config.base_url = Some(upstream.url(""));
    let p = switchyard_providers::OpenAiCompatProvider::new(config).unwrap();
    let chunks = ok(collect(p.stream("gpt-4o", &request(json!({}))).await.unwrap()).await);
    let sent = upstream.only_request().unwrap();
    assert_eq!(
        sent.target,
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(text(&chunks), "Hello");
    assert_eq!(chunks.len(), 2, "no usage reported, none invented");
}
