//! The Bedrock adapter against a local server speaking the Converse API: the signed request
//! (the server recomputes the SigV4 signature from what it received, with the same crate, so a
//! body or header changed after signing fails), JSON answers, and `converse-stream` answers
//! framed in the AWS event-stream encoding by an encoder written here from the specification.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};
use switchyard_providers::types::{ChatChunk, FinishReason, Usage};
use switchyard_providers::{AnyProvider, Provider, ProviderConfig, ProviderErrorKind};

use crate::upstream::{Piece, Recorded, Reply, Upstream};
use crate::{collect, request, text};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE";
const REGION: &str = "eu-west-3";
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
fn bedrock(upstream: &Upstream) -> AnyProvider {
    let toml = format!(
        "kind = \"bedrock\"\nregion = \"{REGION}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\nsession_token = \"{SESSION_TOKEN}\"\nendpoint = \"{}\"\ntimeouts = {{ request_ms = 5000, first_byte_ms = 5000, idle_ms = 5000 }}\n",
        upstream.url("")
    );
    let config: ProviderConfig = toml::from_str(&toml).unwrap();
    assert_eq!(config.kind_name(), "bedrock");
    let p = config.build_named("aws").unwrap();
    assert!(matches!(p, AnyProvider::Bedrock(_)));
    p
}

/// Parses `x-amz-date` (`20240102T030405Z`).
fn amz_time(value: &str) -> Option<SystemTime> {
    let n = |range: std::ops::Range<usize>| value.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Checks a request's SigV4 signature as AWS would: the Authorization header's structure, then
/// the signature recomputed from the method, path, signed headers and body received.
fn verify_sigv4(r: &Recorded) -> Result<(), String> {
    let auth = r.header("authorization").ok_or("no authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("not SigV4: {auth}"))?;
    let fields: Vec<&str> = rest.split(", ").collect();
    let &[credential, signed_headers, signature] = fields.as_slice() else {
        return Err(format!("authorization fields: {auth}"));
    };
    let amz_date = r.header("x-amz-date").ok_or("no x-amz-date")?;
    let scope = format!(
        "Credential={ACCESS_KEY}/{}/{REGION}/bedrock/aws4_request",
        amz_date.get(..8).unwrap_or("")
    );
    if credential != scope {
        return Err(format!("credential scope {credential}, expected {scope}"));
    }
    let signature = signature
        .strip_prefix("Signature=")
        .filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| format!("signature field {signature}"))?;
    let names: Vec<&str> = signed_headers
        .strip_prefix("SignedHeaders=")
        .ok_or("no SignedHeaders")?
        .split(';')
        .collect();
    for required in ["host", "content-type", "x-amz-date", "x-amz-security-token"] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed: {signed_headers}"));
        }
    }
    if r.header("x-amz-security-token") != Some(SESSION_TOKEN) {
        return Err("wrong session token".into());
    }
    // The signer adds x-amz-date and the token itself (from the time and the credentials).
    let headers: Vec<(&str, &str)> = names
        .iter()
        .filter(|n| !matches!(**n, "x-amz-date" | "x-amz-security-token"))
        .map(|n| {
            Ok((
                *n,
                r.header(n)
                    .ok_or_else(|| format!("signed header {n} missing"))?,
            ))
        })
        .collect::<Result<_, String>>()?;
    let time = amz_time(amz_date).ok_or("bad x-amz-date")?;
    let identity = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some(SESSION_TOKEN.into()),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = r.header("host").ok_or("no host")?;
    let signable = SignableRequest::new(
        r.method.as_str(),
        format!("http://{host}{}", r.target),
        headers.into_iter(),
        SignableBody::Bytes(&r.raw),
    )
    .map_err(|e| e.to_string())?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    if expected == signature {
        Ok(())
    } else {
        Err(format!(
            "signature mismatch: got {signature}, expected {expected}"
        ))
    }
}

/// Encodes an event-stream message with string headers (prelude, CRCs, headers, payload).
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap());
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(12 + h.len() + payload.len() + 4).unwrap();
    let mut m = total.to_be_bytes().to_vec();
    m.extend_from_slice(&u32::try_from(h.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32fast::hash(&m);
    m.extend_from_slice(&prelude_crc.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    let crc = crc32fast::hash(&m);
    m.extend_from_slice(&crc.to_be_bytes());
    m
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

fn event_stream(bytes: &[u8], every: usize) -> Reply {
    let mut pieces = Vec::new();
    for piece in bytes.chunks(every.max(1)) {
        pieces.push(Piece::Bytes(piece.to_vec()));
        pieces.push(Piece::Sleep(Duration::from_millis(1)));
    }
    Reply::StreamOf("application/vnd.amazon.eventstream", pieces)
}

/// Answers with `reply` when the signature checks out, as AWS's 403 otherwise.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure here is the test failing"
)]
async fn signed_upstream(reply: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Upstream {
    Upstream::start(move |r: &Recorded| match verify_sigv4(r) {
        Ok(()) => reply(r),
        Err(why) => Reply::json(403, json!({"message": format!("The request signature we calculated does not match the signature you provided. ({why})")}))
            .with_header("x-amzn-errortype", "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
    })
    .await
    .unwrap()
}

fn tool_request() -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "weather where this photo was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "tooluse_abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_abc", "content": "{\"temp_c\":21}"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 512, "temperature": 0.1, "top_p": 0.9, "stop": "###"
    })
}

fn assert_tool_request_body(body: &Value) {
    assert_eq!(
        *body,
        json!({
            "system": [{"text": "be brief"}],
            "messages": [
                {"role": "user", "content": [
                    {"text": "weather where this photo was taken?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"text": "Let me check."},
                    {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "{\"temp_c\":21}"}]}}
                ]}
            ],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.1, "topP": 0.9, "stopSequences": ["###"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather by city",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}}
            }
        })
    );
}

#[tokio::test]
async fn converse_is_signed_and_translated_both_ways() {
    let upstream = signed_upstream(|_| {
        Reply::json(200, json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "It is sunny in Paris."},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {"city": "Lyon"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 100, "outputTokens": 20, "totalTokens": 420, "cacheReadInputTokens": 250, "cacheWriteInputTokens": 50},
            "metrics": {"latencyMs": 812}
        }))
    })
    .await;
    let p = bedrock(&upstream);
    let r = p.complete(MODEL, &request(tool_request())).await.unwrap();

    let sent = upstream.only_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.target,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_tool_request_body(&sent.body);
    verify_sigv4(&sent).unwrap();

    // A body or a signed header changed after signing no longer verifies.
    let mut tampered = sent.clone();
    tampered.raw = tampered.raw.replace_range_for_test(b"Paris", b"Rome!");
    assert!(verify_sigv4(&tampered).unwrap_err().contains("mismatch"));
    let mut tampered = sent.clone();
    tampered
        .headers
        .insert("content-type", "text/plain".parse().unwrap());
    assert!(verify_sigv4(&tampered).is_err());
    let mut tampered = sent.clone();
    tampered.target = tampered.target.replace("converse", "converse-stream");
    assert!(verify_sigv4(&tampered).is_err());

    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        choice.message.content.as_deref(),
        Some("It is sunny in Paris.")
    );
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.arguments.as_str()),
        ("tooluse_2", "{\"city\":\"Lyon\"}")
    );
    assert_eq!(r.model, MODEL);
    assert_eq!(
        r.usage.unwrap(),
        Usage::new(400, 20, 250, 0),
        "cache reads and writes count as prompt"
    );
}

trait ReplaceForTest {
    fn replace_range_for_test(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceForTest for Vec<u8> {
    fn replace_range_for_test(mut self, from: &[u8], to: &[u8]) -> Vec<u8> {
        if let Some(at) = self.windows(from.len()).position(|w| w == from) {
            self[at..at + from.len()].copy_from_slice(to);
        }
        self
    }
}

fn stream_body() -> Vec<u8> {
    let mut b = event(
        "messageStart",
        json!({"role": "assistant", "p": "abcdefgh"}),
    );
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Sunny, "}, "p": "ab"}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "24°C ☀."}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    b.extend(event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_7", "name": "get_weather"}}})));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"ci"}}}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "ty\": \"Nice\"}"}}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
    b.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    b.extend(event("metadata", json!({"usage": {"inputTokens": 40, "outputTokens": 25, "totalTokens": 75, "cacheReadInputTokens": 10},
        "metrics": {"latencyMs": 400}})));
    b
}

fn ok(items: Vec<Result<ChatChunk, switchyard_providers::ProviderError>>) -> Vec<ChatChunk> {
    items
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| unreachable!("unexpected error item: {e}")))
        .collect()
}

#[tokio::test]
async fn converse_stream_frames_cut_anywhere_become_chunks() {
    let body = stream_body();
    for every in [1, 7, 64, 1_000_000] {
        let bytes = body.clone();
        let upstream = signed_upstream(move |_| event_stream(&bytes, every)).await;
        let p = bedrock(&upstream);
        let chunks = ok(collect(p.stream(MODEL, &request(tool_request())).await.unwrap()).await);

        let sent = upstream.only_request().unwrap();
        assert_eq!(
            sent.target,
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
        assert_tool_request_body(&sent.body);
        verify_sigv4(&sent).unwrap();

        assert_eq!(text(&chunks), "Sunny, 24°C ☀.", "pieces of {every}");
        assert_eq!(
            chunks[0].choices[0].delta.role,
            Some(switchyard_providers::types::Role::Assistant)
        );
        let calls: Vec<_> = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .flat_map(|c| c.delta.tool_calls.iter().flatten())
            .collect();
        assert_eq!(calls[0].id.as_deref(), Some("tooluse_7"));
        assert_eq!(
            calls[0].function.as_ref().unwrap().name.as_deref(),
            Some("get_weather")
        );
        assert!(calls.iter().all(|c| c.index == 0));
        let args: String = calls
            .iter()
            .filter_map(|c| c.function.as_ref()?.arguments.clone())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Nice"})
        );
        let finishes: Vec<_> = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.finish_reason)
            .collect();
        assert_eq!(finishes, vec![FinishReason::ToolCalls]);
        assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 1);
        let last = chunks.last().unwrap();
        assert!(last.choices.is_empty());
        assert_eq!(last.usage.clone().unwrap(), Usage::new(50, 25, 10, 0));
        assert!(
            chunks
                .iter()
                .all(|c| c.id == chunks[0].id && c.model == MODEL)
        );
    }
}

#[tokio::test]
async fn throttling_and_http_errors_are_classified() {
    let upstream = signed_upstream(|_| {
        Reply::json(
            429,
            json!({"message": "Too many requests, please wait before trying again."}),
        )
        .with_header(
            "x-amzn-errortype",
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        )
        .with_header("retry-after", "2")
    })
    .await;
    let p = bedrock(&upstream);
    for err in [
        p.complete(MODEL, &request(json!({}))).await.unwrap_err(),
        p.stream(MODEL, &request(json!({}))).await.err().unwrap(),
    ] {
        assert_eq!(
            (err.kind, err.status),
            (ProviderErrorKind::RateLimited, Some(429))
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(
            err.message,
            "Too many requests, please wait before trying again."
        );
        assert!(err.is_retryable());
    }

    let cases = [
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ProviderErrorKind::ContextLength,
        ),
        (
            400,
            "ValidationException",
            "The model returned the following errors: temperature: range: 0..1",
            ProviderErrorKind::BadRequest,
        ),
        (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            ProviderErrorKind::Unauthorized,
        ),
        (
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
            ProviderErrorKind::NotFound,
        ),
        (
            408,
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
            ProviderErrorKind::Timeout,
        ),
        (
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
            ProviderErrorKind::Server,
        ),
    ];
    for (status, kind, message, want) in cases {
        let upstream = signed_upstream(move |_| {
            Reply::json(status, json!({"message": message})).with_header("x-amzn-errortype", kind)
        })
        .await;
        let err = bedrock(&upstream)
            .complete(MODEL, &request(json!({})))
            .await
            .unwrap_err();
        assert_eq!((err.kind, err.message.as_str()), (want, message), "{kind}");
    }

    // A wrong secret is refused by the server's own signature check.
    let upstream = signed_upstream(|_| Reply::json(200, json!({}))).await;
    let toml = format!(
        "kind = \"bedrock\"\nregion = \"{REGION}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"wrong\"\nsession_token = \"{SESSION_TOKEN}\"\nendpoint = \"{}\"\n",
        upstream.url("")
    );
    let config: ProviderConfig = toml::from_str(&toml).unwrap();
    let err = config
        .build()
        .unwrap()
        .complete(MODEL, &request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Unauthorized);
    assert!(err.message.contains("signature"), "{err}");
}

#[tokio::test]
async fn stream_exceptions_cuts_and_corrupt_frames_end_with_one_err() {
    let body = stream_body();
    // An exception before the first token: an Err of `stream` itself.
    let upstream = signed_upstream(|_| {
        event_stream(
            &exception(
                "throttlingException",
                "Too many tokens, please wait before trying again.",
            ),
            5,
        )
    })
    .await;
    let err = bedrock(&upstream)
        .stream(MODEL, &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.kind, err.status),
        (ProviderErrorKind::RateLimited, Some(429))
    );
    assert!(err.message.contains("Too many tokens"), "{err}");

    // An exception mid-stream: the chunks so far, one Err, nothing after.
    let mut mid = body[..body.len() / 2].to_vec();
    let whole_events = {
        // Cut at a frame boundary: decode lengths from the preludes.
        let mut at = 0;
        while at + 4 <= mid.len() {
            let len = u32::from_be_bytes([mid[at], mid[at + 1], mid[at + 2], mid[at + 3]]) as usize;
            if at + len > mid.len() {
                break;
            }
            at += len;
        }
        at
    };
    mid.truncate(whole_events);
    mid.extend(exception(
        "modelStreamErrorException",
        "The model stream failed.",
    ));
    mid.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "never"}}),
    ));
    let upstream = signed_upstream(move |_| event_stream(&mid, 9)).await;
    let items = collect(
        bedrock(&upstream)
            .stream(MODEL, &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert!(err.is_retryable());
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    assert!(!text(&ok(items[..items.len() - 1].to_vec())).contains("never"));

    // Cut short (inside a frame, and between frames before messageStop).
    for cut in [body.len() - 10, whole_events] {
        let short = body[..cut].to_vec();
        let upstream = signed_upstream(move |_| event_stream(&short, 13)).await;
        let items = collect(
            bedrock(&upstream)
                .stream(MODEL, &request(json!({})))
                .await
                .unwrap(),
        )
        .await;
        let err = items.last().unwrap().clone().unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Transport, "cut at {cut}");
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }

    // A corrupt frame (a flipped payload byte fails the message CRC).
    let mut corrupt = body.clone();
    let at = corrupt.len() - 30;
    corrupt[at] ^= 0x20;
    let upstream = signed_upstream(move |_| event_stream(&corrupt, 64)).await;
    let items = collect(
        bedrock(&upstream)
            .stream(MODEL, &request(json!({})))
            .await
            .unwrap(),
    )
    .await;
    let err = items.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
    assert!(err.message.contains("CRC"), "{err}");

    // A JSON answer where an event stream was expected.
    let upstream = signed_upstream(|_| Reply::json(200, json!({"output": {}}))).await;
    let err = bedrock(&upstream)
        .stream(MODEL, &request(json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ProviderErrorKind::InvalidResponse);
}

#[test]
fn config_defaults_and_secrets() {
    let config: ProviderConfig = toml::from_str(
        "kind = \"bedrock\"\nregion = \"us-east-1\"\naccess_key_id = \"AKIA1\"\nsecret_access_key = \"top-secret-key\"\nsession_token = \"tok-secret\"\n",
    )
    .unwrap();
    let p = config.build().unwrap();
    assert_eq!(p.name(), "bedrock");
    for text in [format!("{config:?}"), format!("{p:?}")] {
        assert!(
            !text.contains("top-secret-key") && !text.contains("tok-secret"),
            "{text}"
        );
    }
    let AnyProvider::Bedrock(b) = p else {
        unreachable!("bedrock")
    };
    assert_eq!(
        b.converse_url("amazon.nova-pro-v1:0", true).as_str(),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse-stream"
    );
    for bad in [
        "kind = \"bedrock\"\nregion = \"\"\naccess_key_id = \"a\"\nsecret_access_key = \"s\"\n",
        "kind = \"bedrock\"\nregion = \"us-east-1\"\naccess_key_id = \"a\"\nsecret_access_key = \" \"\n",
    ] {
        let config: ProviderConfig = toml::from_str(bad).unwrap();
        assert!(config.build().is_err());
    }
    assert!(
        toml::from_str::<ProviderConfig>(
            "kind = \"bedrock\"\nregion = \"r\"\naccess_key_id = \"a\"\n"
        )
        .is_err()
    );
}
