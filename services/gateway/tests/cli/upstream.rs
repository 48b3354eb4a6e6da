//! A configured OpenAI-compatible upstream (a local server speaking OpenAI's wire format stands
//! in for the paid provider): routing sends it the upstream model name and the key, and the
//! answer comes back with Switchyard's id and the served model.

use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use axum::Json;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::{Server, http, run};

/// Failures the fake upstream answers with, in order, before it answers normally:
/// (status, Retry-After header).
/// Scripted failures: (status, `Retry-After`, the error's `code` and `type`).
type Script = Arc<Mutex<Vec<(u16, Option<&'static str>, Option<&'static str>)>>>;

async fn fake_openai(
    seen: Arc<Mutex<Vec<(String, Value)>>>,
) -> anyhow::Result<std::net::SocketAddr> {
    scripted_openai(seen, Arc::new(Mutex::new(Vec::new()))).await
}

async fn scripted_openai(
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    script: Script,
) -> anyhow::Result<std::net::SocketAddr> {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let seen = Arc::clone(&seen);
            let script = Arc::clone(&script);
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                if let Ok(mut s) = seen.lock() {
                    s.push((auth, body.clone()));
                }
                if body["stream"] == true {
                    // Two chunks, then an error event: a failure after the stream started.
                    let chunk = |text: &str| {
                        format!(
                            "data: {}\n\n",
                            json!({"id": "up", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
                        )
                    };
                    let sse = format!(
                        "{}{}data: {}\n\n",
                        chunk("partial "),
                        chunk("answer"),
                        json!({"error": {"message": "upstream overloaded mid-stream", "type": "server_error", "param": null, "code": null}})
                    );
                    return ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], sse).into_response();
                }
                let failure = script.lock().ok().and_then(|mut s| (!s.is_empty()).then(|| s.remove(0)));
                if let Some((status, retry_after, code)) = failure {
                    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    let body = Json(json!({"error": {"message": "scripted failure", "type": code.unwrap_or("server_error"), "param": null, "code": code}}));
                    let mut response = (status, body).into_response();
                    if let Some(r) = retry_after {
                        response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static(r));
                    }
                    return response;
                }
                Json(json!({
                    "id": "chatcmpl-upstream",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from upstream", "refusal": null}, "finish_reason": "stop", "logprobs": null}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
                }))
                .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_routes_to_a_configured_openai_upstream() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = fake_openai(Arc::clone(&seen)).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("upstream.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-upstream-test\"\nbase_url = \"http://{upstream}/v1\"\n\n\
             [routes.default]\nbaseline = \"openai/gpt-4o-mini\"\ncandidates = [\"demo/small\"]\nmode = \"off\"\n"
        ),
    )?;
    let config_arg = config.to_str().context("path")?.to_owned();
    let dir_path = dir.path().to_owned();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(&dir_path, &["--config", &config_arg, "serve"])
    })
    .await??;
    let addr = server.addr;
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let (status, _, answer) = tokio::task::spawn_blocking(move || {
        http(addr, "POST", "/v1/chat/completions", Some(&body))
    })
    .await??;
    ensure!(status == 200, "{status} {answer}");
    let v: Value = serde_json::from_str(&answer)?;
    ensure!(
        v["model"] == "openai/gpt-4o-mini"
            && v["choices"][0]["message"]["content"] == "from upstream",
        "{v}"
    );
    ensure!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-") && id != "chatcmpl-upstream"),
        "our id, not the upstream's: {v}"
    );
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    ensure!(seen.len() == 1, "one upstream call: {seen:?}");
    ensure!(
        seen[0].0 == "Bearer sk-upstream-test",
        "the configured key is sent: {}",
        seen[0].0
    );
    ensure!(
        seen[0].1["model"] == "gpt-4o-mini",
        "the upstream model name is sent: {}",
        seen[0].1
    );
    drop(server);
    Ok(())
}

#[test]
fn a_bad_provider_table_is_one_line_naming_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[providers.openai]\nkind = \"openai\"\napi_kye = \"x\"\n",
    )?;
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap_or_default(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    )?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        stderr.lines().count() == 1
            && stderr.contains("providers.openai")
            && stderr.contains("api_kye"),
        "{stderr}"
    );
    Ok(())
}

fn upstream_config(
    dir: &std::path::Path,
    upstream: std::net::SocketAddr,
) -> anyhow::Result<String> {
    let config = dir.join("upstream.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-upstream-test\"\nbase_url = \"http://{upstream}/v1\"\n\n\
             [gateway]\nretry_backoff_ms = 10\n\n\
             [routes.default]\nbaseline = \"openai/gpt-4o-mini\"\ncandidates = []\nmode = \"off\"\n"
        ),
    )?;
    Ok(config.to_str().context("path")?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_give_up_with_the_right_status() -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Script = Arc::new(Mutex::new(Vec::new()));
    let upstream = scripted_openai(Arc::clone(&seen), Arc::clone(&script)).await?;
    let dir = tempfile::tempdir()?;
    let config = upstream_config(dir.path(), upstream)?;
    let dir_path = dir.path().to_owned();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(&dir_path, &["--config", &config, "serve"])
    })
    .await??;
    let addr = server.addr;
    let ask = move || {
        let body =
            json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        http(addr, "POST", "/v1/chat/completions", Some(&body))
    };
    let calls = |seen: &Arc<Mutex<Vec<(String, Value)>>>| seen.lock().map(|s| s.len()).unwrap_or(0);

    // A 429 with a short Retry-After, then success: retried, served.
    if let Ok(mut s) = script.lock() {
        *s = vec![(429, Some("0"), None), (503, None, None)];
    }
    let (status, _, body) = tokio::task::spawn_blocking(ask).await??;
    ensure!(status == 200, "{status} {body}");
    ensure!(
        calls(&seen) == 3,
        "two failures retried, then served: {} calls",
        calls(&seen)
    );

    // A Retry-After longer than max_retry_after_ms is not slept on.
    if let Ok(mut s) = script.lock() {
        *s = vec![(429, Some("120"), None)];
    }
    let started = std::time::Instant::now();
    let (status, head, body) = tokio::task::spawn_blocking(ask).await??;
    ensure!(
        status == 429 && body.contains("rate_limit_error"),
        "{status} {body}"
    );
    ensure!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "did not sleep 120 s"
    );
    ensure!(
        calls(&seen) == 4,
        "one call, no retry: {} calls",
        calls(&seen)
    );
    ensure!(
        !head.to_ascii_lowercase().contains("x-should-retry: false"),
        "an upstream 429 may be retried by the client"
    );

    // Persistent 5xx: 1 + 2 retries, then 502 in OpenAI's shape.
    if let Ok(mut s) = script.lock() {
        *s = vec![(500, None, None), (500, None, None), (500, None, None)];
    }
    let (status, _, body) = tokio::task::spawn_blocking(ask).await??;
    ensure!(
        status == 502 && body.contains("upstream_error"),
        "{status} {body}"
    );
    ensure!(calls(&seen) == 7, "three attempts: {} calls", calls(&seen));

    // An upstream account out of quota: waiting cannot help, so no retry here, and the client
    // is told not to retry either (OpenAI's `insufficient_quota`, `x-should-retry: false`).
    if let Ok(mut s) = script.lock() {
        *s = vec![(429, None, Some("insufficient_quota"))];
    }
    let (status, head, body) = tokio::task::spawn_blocking(ask).await??;
    ensure!(
        status == 429 && body.contains("\"code\":\"insufficient_quota\""),
        "{status} {body}"
    );
    ensure!(
        head.to_ascii_lowercase().contains("x-should-retry: false"),
        "a quota 429 tells the SDKs not to retry: {head}"
    );
    ensure!(
        calls(&seen) == 8,
        "one call, no retry: {} calls",
        calls(&seen)
    );
    drop(server);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_stream_started_is_an_error_event_not_a_truncation()
-> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = fake_openai(Arc::clone(&seen)).await?;
    let dir = tempfile::tempdir()?;
    let config = upstream_config(dir.path(), upstream)?;
    let dir_path = dir.path().to_owned();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(&dir_path, &["--config", &config, "serve"])
    })
    .await??;
    let addr = server.addr;
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        let body = json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]}).to_string();
        http(addr, "POST", "/v1/chat/completions", Some(&body))
    })
    .await??;
    ensure!(status == 200, "{status} {body}");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    ensure!(
        !events.contains(&"[DONE]"),
        "no [DONE] after a failure: {events:?}"
    );
    let last: Value = serde_json::from_str(events.last().context("events")?)?;
    ensure!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("mid-stream")),
        "the last event is the error: {last}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    ensure!(
        text == "partial answer",
        "the chunks before the failure were delivered: {text:?}"
    );
    let sent = seen.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    ensure!(
        sent[0].1["stream_options"]["include_usage"] == true,
        "usage is always asked of the upstream: {}",
        sent[0].1
    );
    drop(server);
    Ok(())
}
