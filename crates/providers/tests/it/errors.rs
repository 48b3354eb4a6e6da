//! Failures: HTTP errors with the upstream's message and `Retry-After`, malformed answers,
//! errors and cuts in the middle of a stream, timeouts, refused connections.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_providers::{
    OpenAiCompatConfig, OpenAiCompatProvider, Provider, ProviderErrorKind, ProviderKind, Timeouts,
};

use crate::upstream::{Piece, Reply, Upstream};
use crate::{collect, request, text};

fn content_chunk(content: &str) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
}

fn sse_text(events: &[Value]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

#[tokio::test]
async fn an_exhausted_quota_is_not_a_rate_limit_and_is_not_retried() {
    let body = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
    let upstream = Upstream::always(Reply::json(429, body)).await.unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk")
        .unwrap();
    for err in [
        p.complete("gpt-4o", &request(json!({}))).await.unwrap_err(),
        p.stream("gpt-4o", &request(json!({}))).await.err().unwrap(),
    ] {
        assert_eq!(err.kind, ProviderErrorKind::QuotaExceeded);
        assert_eq!(err.status, Some(429));
        assert!(!err.is_retryable());
        assert_eq!(err.metric_label(), "quota_exceeded");
    }
}

#[tokio::test]
async fn rate_limits_carry_the_upstream_message_and_retry_after() {
    let body = json!({"error": {"message": "Rate limit reached for gpt-4o on tokens per min",
        "type": "tokens", "code": "rate_limit_exceeded"}});
    let upstream = Upstream::always(Reply::json(429, body).with_header("retry-after", "7"))
        .await
        .unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk")
        .unwrap();
    for err in [
        p.complete("gpt-4o", &request(json!({}))).await.unwrap_err(),
        p.stream("gpt-4o", &request(json!({}))).await.err().unwrap(),
    ] {
        assert_eq!(err.kind, ProviderErrorKind::RateLimited);
        assert_eq!(err.status, Some(429));
        assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            err.message,
            "Rate limit reached for gpt-4o on tokens per min"
        );
        assert_eq!(err.provider, "openai");
        assert!(err.is_retryable());
    }

    let dated = Upstream::always(
        Reply::json(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")
            .with_header("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
    )
    .await
    .unwrap();
    let p = dated
        .provider(ProviderKind::Groq, "/openai/v1", "gsk")
        .unwrap();
    let err = p.complete("m", &request(json!({}))).await.unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn http_statuses_are_classified() {
    let cases: [(u16, Value, ProviderErrorKind); 6] = [
        (
            500,
            json!({"error": {"message": "internal error"}}),
            ProviderErrorKind::Server,
        ),
        (
            503,
            json!({"error": "overloaded"}),
            ProviderErrorKind::Server,
        ),
        (
            401,
            json!({"error": {"message": "Incorrect API key provided"}}),
            ProviderErrorKind::Unauthorized,
        ),
        (
            404,
            json!({"error": {"message": "The model `x` does not exist"}}),
            ProviderErrorKind::NotFound,
        ),
        (
            400,
            json!({"error": {"message": "This model's maximum context length is 128000 tokens.", "code": "context_length_exceeded"}}),
            ProviderErrorKind::ContextLength,
        ),
        (
            422,
            json!({"object": "error", "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"]}]}}),
            ProviderErrorKind::BadRequest,
        ),
    ];
    for (status, body, kind) in cases {
        let upstream = Upstream::always(Reply::json(status, body)).await.unwrap();
        let p = upstream
            .provider(ProviderKind::Mistral, "/v1", "k")
            .unwrap();
        let err = p.complete("m", &request(json!({}))).await.unwrap_err();
        assert_eq!((err.kind, err.status), (kind, Some(status)), "{err}");
        assert!(!err.message.is_empty());
        assert_eq!(err.retry_after, None);
    }
}

#[tokio::test]
async fn malformed_answers_are_invalid_responses() {
    for body in [
        "{\"id\": \"x\", \"choices\": [",
        "<html>gateway</html>",
        "[1, 2]",
    ] {
        let upstream = Upstream::always(Reply::Full {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into(),
        })
        .await
        .unwrap();
        let p = upstream
            .provider(ProviderKind::Together, "/v1", "k")
            .unwrap();
        let err = p.complete("m", &request(json!({}))).await.unwrap_err();
        assert_eq!(
            err.kind,
            ProviderErrorKind::InvalidResponse,
            "{body}: {err}"
        );
        assert!(!err.is_retryable());
    }
    // A 200 carrying an error object is that error.
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"error": {"message": "model is loading", "code": 503}}),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::DeepInfra, "/v1/openai", "k")
        .unwrap();
    let err = p.complete("m", &request(json!({}))).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ProviderErrorKind::Server, Some(503))
    );
    assert_eq!(err.message, "model is loading");
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream_with_an_err() {
    let mut text_events = sse_text(&[content_chunk("Hel"), content_chunk("lo")]);
    text_events.push_str(
        "data: {\"error\":{\"message\":\"The server had an error while processing your request\",\"type\":\"server_error\"}}\n\n",
    );
    text_events.push_str(&sse_text(&[content_chunk("never")]));
    text_events.push_str("data: [DONE]\n\n");
    let upstream = Upstream::always(Reply::sse_cut(&text_events, 13))
        .await
        .unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk")
        .unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert_eq!(items.len(), 3, "two chunks, the error, nothing after");
    let chunks: Vec<_> = items[..2].iter().map(|i| i.clone().unwrap()).collect();
    assert_eq!(text(&chunks), "Hello");
    let err = items[2].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert_eq!(
        err.message,
        "The server had an error while processing your request"
    );

    // The `event: error` form (named SSE event).
    let mut named = sse_text(&[content_chunk("a")]);
    named.push_str("event: error\ndata: {\"error\":{\"message\":\"quota\",\"code\":429}}\n\n");
    let upstream = Upstream::always(Reply::sse_cut(&named, 1000))
        .await
        .unwrap();
    let p = upstream
        .provider(ProviderKind::Fireworks, "/inference/v1", "fw")
        .unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    let err = items[1].clone().unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ProviderErrorKind::RateLimited, Some(429))
    );
}

#[tokio::test]
async fn an_error_before_the_first_token_is_an_err_of_stream_itself() {
    let upstream = Upstream::always(Reply::Stream(vec![Piece::Bytes(
        b"data: {\"error\":{\"message\":\"overloaded\",\"code\":529}}\n\n".to_vec(),
    )]))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::OpenAi, "/v1", "sk")
        .unwrap();
    let err = p.stream("m", &request(json!({}))).await.err().unwrap();
    assert_eq!(
        (err.kind, err.status),
        (ProviderErrorKind::Server, Some(529))
    );
    assert!(
        err.is_retryable(),
        "nothing was delivered: the router may fail over"
    );
}

#[tokio::test]
async fn a_malformed_chunk_mid_stream_is_an_err_item() {
    let mut body = sse_text(&[content_chunk("ok")]);
    body.push_str("data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n");
    body.push_str("data: [DONE]\n\n");
    let upstream = Upstream::always(Reply::sse_cut(&body, 5)).await.unwrap();
    let p = upstream
        .provider(ProviderKind::Cerebras, "/v1", "csk")
        .unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    let err = items[1].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
    assert!(err.message.contains("malformed stream chunk"), "{err}");
}

#[tokio::test]
async fn a_stream_cut_without_done_is_never_a_silent_truncation() {
    // A clean end of the HTTP body, but no [DONE].
    let body = sse_text(&[content_chunk("The answer is"), content_chunk(" 4")]);
    let upstream = Upstream::always(Reply::sse_cut(&body, 9)).await.unwrap();
    let p = upstream
        .provider(ProviderKind::SambaNova, "/v1", "k")
        .unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert_eq!(items.len(), 3);
    let err = items[2].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
    assert!(err.message.contains("[DONE]"), "{err}");

    // The connection dropped mid-event.
    let upstream = Upstream::always(Reply::Stream(vec![
        Piece::Bytes(sse_text(&[content_chunk("partial")]).into_bytes()),
        Piece::Sleep(Duration::from_millis(20)),
        Piece::Bytes(b"data: {\"id\":\"c\",\"cho".to_vec()),
        Piece::Sleep(Duration::from_millis(20)),
        Piece::Reset,
    ]))
    .await
    .unwrap();
    let p = upstream.provider(ProviderKind::Nebius, "/v1", "k").unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert!(items[0].is_ok());
    let last = items.last().unwrap().clone().unwrap_err();
    assert!(
        matches!(
            last.kind,
            ProviderErrorKind::Transport | ProviderErrorKind::InvalidResponse
        ),
        "{last}"
    );
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
}

fn with_timeouts(
    upstream: &Upstream,
    first_byte_ms: u64,
    idle_ms: u64,
) -> anyhow::Result<OpenAiCompatProvider> {
    let mut config = OpenAiCompatConfig::new(ProviderKind::Novita, "k");
    config.base_url = Some(upstream.url("/openai/v1"));
    config.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_millis(300),
        first_byte: Duration::from_millis(first_byte_ms),
        idle: Duration::from_millis(idle_ms),
    };
    Ok(OpenAiCompatProvider::new(config)?)
}

#[tokio::test]
async fn timeouts_before_the_first_token_between_chunks_and_for_whole_calls() {
    // Headers never come in time.
    let slow = Upstream::always(Reply::Delayed(
        Duration::from_secs(30),
        Box::new(Reply::json(200, json!({}))),
    ))
    .await
    .unwrap();
    let p = with_timeouts(&slow, 200, 5_000).unwrap();
    let started = std::time::Instant::now();
    let err = p.stream("m", &request(json!({}))).await.err().unwrap();
    assert_eq!(err.kind, ProviderErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = p.complete("m", &request(json!({}))).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());

    // Headers come, the first event does not.
    let silent = Upstream::always(Reply::Stream(vec![
        Piece::Bytes(b": waiting\n\n".to_vec()),
        Piece::Sleep(Duration::from_secs(30)),
    ]))
    .await
    .unwrap();
    let p = with_timeouts(&silent, 200, 5_000).unwrap();
    let err = p.stream("m", &request(json!({}))).await.err().unwrap();
    assert_eq!(err.kind, ProviderErrorKind::Timeout);
    assert!(err.message.contains("first token"), "{err}");

    // The stream starts, then stalls.
    let stalling = Upstream::always(Reply::Stream(vec![
        Piece::Bytes(sse_text(&[content_chunk("one")]).into_bytes()),
        Piece::Sleep(Duration::from_secs(30)),
    ]))
    .await
    .unwrap();
    let p = with_timeouts(&stalling, 5_000, 200).unwrap();
    let items = collect(p.stream("m", &request(json!({}))).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    let err = items[1].clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Timeout);
    assert!(err.message.contains("stalled"), "{err}");
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = OpenAiCompatConfig::new(ProviderKind::OpenAi, "k");
    config.base_url = Some(format!("http://{addr}/v1"));
    let p = OpenAiCompatProvider::new(config).unwrap();
    let err = p.complete("m", &request(json!({}))).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
    assert!(err.is_retryable());
    let err = p.stream("m", &request(json!({}))).await.err().unwrap();
    assert_eq!(err.kind, ProviderErrorKind::Transport);
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_is_not_a_stream() {
    let upstream = Upstream::always(Reply::json(
        200,
        json!({"id": "x", "object": "chat.completion", "choices": []}),
    ))
    .await
    .unwrap();
    let p = upstream
        .provider(ProviderKind::Ai21, "/studio/v1", "k")
        .unwrap();
    let err = p.stream("m", &request(json!({}))).await.err().unwrap();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
}
