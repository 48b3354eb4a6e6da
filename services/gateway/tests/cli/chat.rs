//! The OpenAI-compatible API on the demo provider, over real HTTP, and the events it publishes.

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use switchyard_events::{Codec, Event, Topic};
use switchyard_log::EventLog;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};

use crate::{Server, http, http_with, run};

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn chat_completion_answers_in_openai_shape_with_ids() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let (status, head, body) = http(server.addr, "POST", "/v1/chat/completions", Some(&body))?;
    ensure!(status == 200, "{status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    let request_id = header(&head, "x-request-id").context("x-request-id")?;
    ensure!(
        v["id"] == request_id,
        "response id {} == x-request-id {request_id}",
        v["id"]
    );
    ensure!(
        header(&head, "x-switchyard-decision-id").is_some_and(|d| d.starts_with("dec-")),
        "{head}"
    );
    ensure!(
        v["object"] == "chat.completion" && v["model"] == "demo/large",
        "auto resolves to the baseline: {v}"
    );
    let choice = &v["choices"][0];
    ensure!(
        choice["finish_reason"] == "stop" && choice["message"]["role"] == "assistant",
        "{v}"
    );
    ensure!(
        choice["message"].get("refusal").is_some_and(Value::is_null),
        "refusal is present and null: {v}"
    );
    ensure!(
        choice.get("logprobs").is_some_and(Value::is_null),
        "logprobs is present and null: {v}"
    );
    ensure!(
        choice["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("simulated")),
        "the demo says it is simulated: {v}"
    );
    ensure!(
        v["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0),
        "{v}"
    );
    Ok(())
}

#[test]
fn streaming_sends_chunks_usage_only_when_asked_and_done() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    for include_usage in [false, true] {
        let mut req = json!({"model": "demo/small", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        if include_usage {
            req["stream_options"] = json!({"include_usage": true});
        }
        let (status, head, body) = http(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&req.to_string()),
        )?;
        ensure!(status == 200, "{status} {body}");
        ensure!(
            header(&head, "content-type").is_some_and(|c| c.starts_with("text/event-stream")),
            "{head}"
        );
        let events: Vec<&str> = body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .collect();
        ensure!(
            events.last() == Some(&"[DONE]"),
            "ends with [DONE]: {events:?}"
        );
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e))
            .collect::<Result<_, _>>()?;
        let id = header(&head, "x-request-id").context("x-request-id")?;
        ensure!(chunks.iter().all(|c| c["id"] == id
            && c["model"] == "demo/small"
            && c["object"] == "chat.completion.chunk"));
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        ensure!(text.contains("simulated"), "{text}");
        ensure!(
            chunks
                .iter()
                .any(|c| c["choices"][0]["finish_reason"] == "stop"),
            "a finish reason"
        );
        let usage_chunks = chunks.iter().filter(|c| c["usage"].is_object()).count();
        ensure!(
            usage_chunks == usize::from(include_usage),
            "include_usage={include_usage}: {usage_chunks} usage chunks"
        );
    }
    Ok(())
}

/// (body, extra headers, expected status, text the error must contain).
type Case = (String, Vec<(&'static str, &'static str)>, u16, &'static str);

#[test]
fn bad_requests_get_openai_errors_with_the_right_status() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let cases: Vec<Case> = vec![
        (json!({"model": "no/such", "messages": [{"role": "user", "content": "x"}]}).to_string(), vec![], 404, "model_not_found"),
        ("{not json".into(), vec![], 400, "invalid_request_error"),
        (json!({"model": "auto", "messages": []}).to_string(), vec![], 400, "messages"),
        (json!({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": 9}).to_string(), vec![], 400, "temperature"),
        (json!({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}).to_string(), vec![], 400, "invalid_request_error"),
        (json!({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).to_string(), vec![("x-switchyard-route", "nope")], 400, "unknown_route"),
        (json!({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).to_string(), vec![("authorization", "Bearer sk-sy-wrong")], 401, "invalid_api_key"),
        (json!({"model": "demo/small", "messages": [{"role": "user", "content": "x"}]}).to_string(), vec![("authorization", "Bearer not-a-switchyard-key")], 200, "chat.completion"),
        (json!({"model": "demo/embedding", "messages": [{"role": "user", "content": "x"}]}).to_string(), vec![], 400, "unsupported_request"),
    ];
    for (body, headers, want_status, want_text) in cases {
        let (status, _, answer) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&body),
            &headers,
        )?;
        ensure!(
            status == want_status,
            "{body} {headers:?}: status {status}, want {want_status}: {answer}"
        );
        let v: Value =
            serde_json::from_str(&answer).with_context(|| format!("not JSON: {answer}"))?;
        if want_status >= 400 {
            ensure!(
                v["error"]["message"].is_string()
                    && v["error"].get("type").is_some()
                    && v["error"].get("param").is_some()
                    && v["error"].get("code").is_some(),
                "{v}"
            );
        }
        ensure!(
            answer.contains(want_text),
            "{body}: {answer} lacks {want_text}"
        );
    }
    Ok(())
}

#[test]
fn oversized_bodies_get_413_and_required_auth_gets_401() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("small.toml");
    std::fs::write(
        &config,
        "[server]\nmax_body_bytes = 2048\n[auth]\nrequired = true\n",
    )?;
    let key_out = run(dir.path(), &["keys", "create", "--org", "acme"])?;
    let key = String::from_utf8(key_out.stdout)?
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let server = Server::start(
        dir.path(),
        &["--config", config.to_str().unwrap_or_default(), "serve"],
    )?;
    let ok = json!({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).to_string();
    let (status, _, body) = http(server.addr, "POST", "/v1/chat/completions", Some(&ok))?;
    ensure!(
        status == 401 && body.contains("invalid_api_key"),
        "no key: {status} {body}"
    );
    let auth = format!("Bearer {key}");
    let (status, _, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&ok),
        &[("authorization", &auth)],
    )?;
    ensure!(status == 200, "valid key: {status} {body}");
    let big = json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(4096)}]})
        .to_string();
    let (status, _, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&big),
        &[("authorization", &auth)],
    )?;
    ensure!(
        status == 413 && body.contains("request_too_large"),
        "oversized: {status} {body}"
    );
    Ok(())
}

#[test]
fn models_and_embeddings_in_float_and_base64() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let (status, _, body) = http(server.addr, "GET", "/v1/models", None)?;
    ensure!(status == 200);
    let v: Value = serde_json::from_str(&body)?;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in ["auto", "demo/small", "demo/medium", "demo/large"] {
        ensure!(ids.contains(&id), "{id} listed: {ids:?}");
    }
    let (status, _, _) = http(server.addr, "GET", "/v1/models/demo/large", None)?;
    ensure!(status == 200, "a model id with a slash resolves");
    let (status, _, _) = http(server.addr, "GET", "/v1/models/nope", None)?;
    ensure!(status == 404);

    let float = json!({"model": "demo/embedding", "input": ["a", "b"]}).to_string();
    let (status, _, body) = http(server.addr, "POST", "/v1/embeddings", Some(&float))?;
    ensure!(status == 200, "{body}");
    let f: Value = serde_json::from_str(&body)?;
    let first: Vec<f64> = f["data"][0]["embedding"]
        .as_array()
        .context("floats")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    ensure!(f["data"].as_array().is_some_and(|d| d.len() == 2) && !first.is_empty());
    let b64 = json!({"model": "demo/embedding", "input": ["a", "b"], "encoding_format": "base64"})
        .to_string();
    let (_, _, body) = http(server.addr, "POST", "/v1/embeddings", Some(&b64))?;
    let b: Value = serde_json::from_str(&body)?;
    let text = b["data"][0]["embedding"]
        .as_str()
        .context("base64 string")?;
    let bytes = base64_decode(text)?;
    let decoded: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    ensure!(decoded.len() == first.len());
    ensure!(
        decoded
            .iter()
            .zip(&first)
            .all(|(a, b)| (a - b).abs() < 1e-6),
        "base64 decodes to the float vector"
    );
    Ok(())
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .context("base64 alphabet")? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_publishes_its_three_events() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let mut ids = Vec::new();
    for stream in [false, true] {
        let body = json!({"model": "auto", "stream": stream, "messages": [{"role": "user", "content": "events"}]}).to_string();
        let (status, head, _) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&body),
            &[("x-switchyard-session", "sess-1")],
        )?;
        ensure!(status == 200);
        ids.push(header(&head, "x-request-id").context("id")?.to_owned());
    }
    let (status, _) = server.terminate()?;
    ensure!(status.success());
    let log = EmbeddedLog::open_dir(&dir.path().join("log"), EmbeddedOptions::default())?;
    let codec = Codec::new()?;
    let mut seen: Vec<Event> = Vec::new();
    for topic in [Topic::Requests, Topic::Decisions, Topic::Responses] {
        for p in 0..log.partitions(topic) {
            let w = log.watermarks(topic, p).await?;
            for r in log.read(topic, p, w.start, 1000).await? {
                seen.push(codec.decode(&r.value)?);
            }
        }
    }
    log.close().await?;
    for id in &ids {
        let mine: Vec<&Event> = seen
            .iter()
            .filter(|e| match e {
                Event::RequestReceived(r) => r.request_id.as_str() == id,
                Event::RouteDecided(d) => d.request_id.as_str() == id,
                Event::ResponseCompleted(c) => c.request_id.as_str() == id,
                _ => false,
            })
            .collect();
        ensure!(mine.len() == 3, "request {id}: {} events", mine.len());
        for e in &mine {
            ensure!(e.partition_key().as_str() == "sess-1", "keyed by session");
        }
        let completed = mine
            .iter()
            .find_map(|e| {
                if let Event::ResponseCompleted(c) = e {
                    Some(c)
                } else {
                    None
                }
            })
            .context("completed")?;
        ensure!(
            completed.served_model.as_str() == "demo/large"
                && completed.cost_usd.is_some_and(|c| c.get() > 0.0),
            "{completed:?}"
        );
        ensure!(completed.usage.total_tokens > 0 && completed.attempts.len() == 1);
        let decided = mine
            .iter()
            .find_map(|e| {
                if let Event::RouteDecided(d) = e {
                    Some(d)
                } else {
                    None
                }
            })
            .context("decided")?;
        ensure!(
            decided.decision_id == completed.decision_id,
            "the response names its decision"
        );
        // The default route serves demo models only, so it records the texts the judge grades
        // (crates/config/default.toml, [judge]).
        let received = mine
            .iter()
            .find_map(|e| {
                if let Event::RequestReceived(r) = e {
                    Some(r)
                } else {
                    None
                }
            })
            .context("received")?;
        ensure!(
            received.prompt_text.as_deref() == Some("user: events"),
            "{received:?}"
        );
        ensure!(
            completed
                .completion_text
                .as_deref()
                .is_some_and(|t| t.contains("simulated")),
            "{completed:?}"
        );
    }
    Ok(())
}
