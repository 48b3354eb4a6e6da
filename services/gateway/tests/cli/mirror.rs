//! Shadow mode's mirroring over real HTTP: the client gets the baseline's answer, the router's
//! choice is called in the background, billed and shown in the decision's trace, and the
//! route's daily spend cap stops mirroring once reached.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::{Server, http, http_with};

/// A shadow route whose priors make demo/small the router's choice over the demo/large
/// baseline, mirroring every request (`mirror_fraction = 1`), with an optional daily cap.
fn shadow_config(dir: &Path, cap_usd: Option<f64>) -> anyhow::Result<String> {
    let priors = dir.join("priors.toml");
    std::fs::write(
        &priors,
        r#"
[[prior]]
model = "demo/small"
category = "general"
score = 0.95
source = "test: a prior that makes demo/small the best model"
as_of = "2026-11-24"
"#,
    )?;
    let cap = cap_usd.map_or_else(String::new, |c| format!("mirror_daily_cap_usd = {c}"));
    let config = dir.join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[routing]
priors_file = "{}"

[routes.default]
baseline = "demo/large"
candidates = ["demo/small", "demo/medium"]
mode = "shadow"
mirror_fraction = 1.0
{cap}
"#,
            priors.display()
        ),
    )?;
    Ok(config.to_str().context("utf-8 path")?.to_owned())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends one `auto` chat request; returns the decision id and the body (for a stream, the raw
/// SSE text).
fn chat(server: &Server, stream: bool) -> anyhow::Result<(String, String)> {
    let body = json!({
        "model": "auto",
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string();
    let (status, head, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[],
    )?;
    ensure!(status == 200, "{status} {body}");
    let decision = header(&head, "x-switchyard-decision-id")
        .context("decision header")?
        .to_owned();
    Ok((decision, body))
}

/// Polls `GET /v1/decisions/{id}` until `ready` holds for the record.
fn record_when(server: &Server, id: &str, ready: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http(server.addr, "GET", &format!("/v1/decisions/{id}"), None)?;
        if status == 200 {
            let record: Value = serde_json::from_str(&body)?;
            if ready(&record) {
                return Ok(record);
            }
            ensure!(
                Instant::now() < deadline,
                "decision {id} never got there: {record}"
            );
        } else {
            ensure!(status == 404, "{status} {body}");
            ensure!(Instant::now() < deadline, "decision {id} never appeared");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_shadow_response(record: &Value) -> bool {
    !record["response"].is_null() && !record["shadow_response"].is_null()
}

/// Checks that a record shows a completed, priced mirror on demo/small beside the baseline's
/// response.
fn check_mirrored(record: &Value) -> anyhow::Result<()> {
    let trace = &record["decision"];
    ensure!(
        trace["mirrored"] == true
            && trace["shadow_model"] == "demo/small"
            && trace["served_model"] == "demo/large",
        "{trace}"
    );
    ensure!(
        record["response"]["served_model"] == "demo/large",
        "{record}"
    );
    let shadow = &record["shadow_response"];
    ensure!(shadow["served_model"] == "demo/small", "{shadow}");
    ensure!(shadow["status"] == "ok", "{shadow}");
    ensure!(shadow["latency_ms"].is_i64(), "{shadow}");
    ensure!(
        shadow["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "the mirror is billed: {shadow}"
    );
    ensure!(
        shadow["attempts"].as_array().is_some_and(|a| a.len() == 1),
        "one attempt: {shadow}"
    );
    Ok(())
}

#[test]
fn a_mirror_is_billed_and_shown_in_the_trace_but_never_reaches_the_client() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = shadow_config(dir.path(), None)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;

    let (decision_id, body) = chat(&server, false)?;
    let answer: Value = serde_json::from_str(&body)?;
    ensure!(
        answer["model"] == "demo/large",
        "the client gets the baseline: {answer}"
    );
    check_mirrored(&record_when(&server, &decision_id, has_shadow_response)?)?;

    // Streamed: the client's stream is the baseline's alone; the mirror follows it.
    let (decision_id, body) = chat(&server, true)?;
    ensure!(
        body.contains("\"model\":\"demo/large\"") && !body.contains("demo/small"),
        "{body}"
    );
    ensure!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    check_mirrored(&record_when(&server, &decision_id, has_shadow_response)?)?;

    let (status, _, metrics) = http(server.addr, "GET", "/metrics", None)?;
    ensure!(status == 200, "{status}");
    ensure!(
        metrics.contains("mirror_requests_total{status=\"ok\"} 2"),
        "{metrics}"
    );
    let spend = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mirror_spend_usd_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    ensure!(spend.is_some_and(|s| s > 0.0), "{metrics}");
    Ok(())
}

#[test]
fn the_daily_cap_stops_mirroring_once_spent() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Less than any call costs: the first mirror spends it all.
    let config = shadow_config(dir.path(), Some(0.000_001))?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;

    let (first, _) = chat(&server, false)?;
    // The mirror is charged before its response is published, so once the read model shows
    // it, the cap is spent.
    check_mirrored(&record_when(&server, &first, has_shadow_response)?)?;

    for _ in 0..3 {
        let (decision_id, body) = chat(&server, false)?;
        let answer: Value = serde_json::from_str(&body)?;
        ensure!(answer["model"] == "demo/large", "{answer}");
        let record = record_when(&server, &decision_id, |r| !r["response"].is_null())?;
        let trace = &record["decision"];
        ensure!(
            trace["mirrored"] == false && trace["shadow_model"] == "demo/small",
            "the cap is spent: recorded, not mirrored: {trace}"
        );
        ensure!(record["shadow_response"].is_null(), "{record}");
    }
    let (_, _, metrics) = http(server.addr, "GET", "/metrics", None)?;
    ensure!(
        metrics.contains("mirror_requests_total{status=\"ok\"} 1"),
        "{metrics}"
    );
    Ok(())
}

/// An OpenAI-compatible upstream that answers after `delay`.
async fn slow_openai(delay: Duration) -> anyhow::Result<std::net::SocketAddr> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({
                "id": "chatcmpl-slow",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "slow", "refusal": null},
                             "finish_reason": "stop", "logprobs": null}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A SIGTERM right after the client's answer waits for the mirror still in flight (within half
/// the shutdown grace), so the billed call's `ResponseCompleted` is in the log after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_mirror_in_flight() -> anyhow::Result<()> {
    let upstream = slow_openai(Duration::from_millis(1500)).await?;
    let dir = tempfile::tempdir()?;
    let priors = dir.path().join("priors.toml");
    std::fs::write(
        &priors,
        r#"
[[prior]]
model = "openai/gpt-4o-mini"
category = "general"
score = 0.99
source = "test: a prior that makes the slow upstream's model the router's choice"
as_of = "2026-11-25"
"#,
    )?;
    let config = dir.path().join("slow-mirror.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[providers.openai]
kind = "openai"
api_key = "sk-upstream-test"
base_url = "http://{upstream}/v1"

[routing]
priors_file = "{}"

[routes.default]
baseline = "demo/large"
candidates = ["openai/gpt-4o-mini"]
mode = "shadow"
mirror_fraction = 1.0
"#,
            priors.display()
        ),
    )?;
    let config = config.to_str().context("utf-8 path")?.to_owned();
    let data = dir.path().to_owned();
    let decision = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let server = Server::start(&data, &["--config", &config, "serve"])?;
        let (decision, body) = chat(&server, false)?;
        ensure!(
            body.contains("demo/large"),
            "the client gets the baseline: {body}"
        );
        let started = Instant::now();
        let (status, _) = server.terminate()?;
        ensure!(status.success(), "{status}");
        ensure!(
            started.elapsed() >= Duration::from_millis(1000),
            "shutdown took {:?}: it did not wait for the 1.5 s mirror",
            started.elapsed()
        );
        // Restarted, the decision shows the mirror's billed answer.
        let server = Server::start(&data, &["--config", &config, "serve"])?;
        let record = record_when(&server, &decision, has_shadow_response)?;
        let shadow = &record["shadow_response"];
        ensure!(
            shadow["served_model"] == "openai/gpt-4o-mini" && shadow["status"] == "ok",
            "{shadow}"
        );
        Ok(decision)
    })
    .await??;
    ensure!(decision.starts_with("dec-"));
    Ok(())
}
