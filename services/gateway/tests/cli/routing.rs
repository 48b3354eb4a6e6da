//! The router over real HTTP: signed traces that verify against `/v1/keys`, the decisions read
//! model, explain as a dry run, and the rollout modes (shadow, canary, live).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use switchyard_events::{Codec, Event, RouteDecided, Topic};
use switchyard_log::EventLog;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_router::PublicKey;

use crate::{Server, http, http_with};

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn chat(server: &Server, headers: &[(&str, &str)]) -> anyhow::Result<(String, String, Value)> {
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let (status, head, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        headers,
    )?;
    ensure!(status == 200, "{status} {body}");
    let decision = header(&head, "x-switchyard-decision-id")
        .context("decision header")?
        .to_owned();
    let request = header(&head, "x-request-id")
        .context("request header")?
        .to_owned();
    Ok((decision, request, serde_json::from_str(&body)?))
}

/// Polls `GET /v1/decisions/{id}` until the read model has the decision and its response.
fn decision_record(server: &Server, id: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http(server.addr, "GET", &format!("/v1/decisions/{id}"), None)?;
        if status == 200 {
            let v: Value = serde_json::from_str(&body)?;
            if !v["response"].is_null() {
                return Ok(v);
            }
        } else {
            ensure!(status == 404, "{status} {body}");
        }
        ensure!(Instant::now() < deadline, "decision {id} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn public_key(server: &Server) -> anyhow::Result<PublicKey> {
    let (status, _, body) = http(server.addr, "GET", "/v1/keys", None)?;
    ensure!(status == 200, "{status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    let jwk = &v["keys"][0];
    ensure!(jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519", "{v}");
    Ok(PublicKey::from_jwk(jwk)?)
}

/// A config whose priors make demo/small clearly at least as good as the baseline, so the
/// router moves away from demo/large on day 0 (confidence from priors alone above 0.8).
fn config_with_mode(dir: &Path, mode: &str, canary: u8) -> anyhow::Result<String> {
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
    let config = dir.join("routing.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[routing]
priors_file = "{}"

[routes.default]
baseline = "demo/large"
candidates = ["demo/small", "demo/medium"]
mode = "{mode}"
canary_percent = {canary}
"#,
            priors.display()
        ),
    )?;
    Ok(config.to_str().context("utf-8 path")?.to_owned())
}

#[test]
fn traces_are_complete_signed_and_verify_against_the_published_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let (decision_id, request_id, _) = chat(&server, &[("accept-language", "de-DE, en;q=0.5")])?;
    let record = decision_record(&server, &decision_id)?;
    let trace = &record["decision"];
    for field in [
        "decision_id",
        "request_id",
        "route",
        "mode",
        "chosen_model",
        "baseline_model",
        "served_model",
        "reason",
        "phase",
        "confidence",
        "routing_table_version",
        "seed",
        "candidates",
        "signals",
        "constraints",
        "evidence",
        "reversible",
        "explanation",
        "explanation_language",
        "signature",
        "signing_key_id",
        "features",
        "score_weights",
    ] {
        ensure!(trace.get(field).is_some(), "trace lacks {field}: {trace}");
    }
    ensure!(trace["request_id"] == request_id.as_str(), "{trace}");
    ensure!(trace["explanation_language"] == "de", "{trace}");
    ensure!(
        trace["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("Route")),
        "{trace}"
    );
    let candidates = trace["candidates"].as_array().context("candidates")?;
    ensure!(
        candidates.len() == 3,
        "baseline and two candidates: {trace}"
    );
    ensure!(
        candidates.iter().all(|c| c["score"].is_number()),
        "every capable model is scored: {trace}"
    );
    ensure!(
        trace["signals"].as_array().is_some_and(|s| !s.is_empty()),
        "signal contributions: {trace}"
    );
    ensure!(
        record["response"]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "the gateway's attempts are joined: {record}"
    );

    let key = public_key(&server)?;
    let decided: RouteDecided = serde_json::from_value(trace.clone())?;
    ensure!(
        decided.signing_key_id == key.key_id,
        "{}",
        decided.signing_key_id
    );
    key.verify(&decided)
        .map_err(|e| anyhow::anyhow!("the trace verifies: {e}"))?;
    let mut tampered = decided.clone();
    tampered.served_model = switchyard_events::ModelName::new("demo/small");
    ensure!(key.verify(&tampered).is_err(), "a tampered trace fails");

    // The list endpoint finds it by route and by time window, org-scoped and paginated.
    let (status, _, body) = http(
        server.addr,
        "GET",
        "/v1/decisions?route=default&limit=10",
        None,
    )?;
    ensure!(status == 200, "{status} {body}");
    let list: Value = serde_json::from_str(&body)?;
    ensure!(
        list["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|r| r["decision_id"] == decision_id.as_str())),
        "{list}"
    );
    let (status, _, body) = http(server.addr, "GET", "/v1/decisions?bogus=1", None)?;
    ensure!(
        status == 400,
        "unknown filters are refused: {status} {body}"
    );
    let (status, _, body) = http(server.addr, "GET", "/v1/decisions/dec-nope", None)?;
    ensure!(status == 404, "{status} {body}");
    ensure!(body.contains("\"error\""), "OpenAI error shape: {body}");
    Ok(())
}

#[test]
fn explain_is_a_dry_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "explain me"}]})
        .to_string();
    let (status, _, body) = http_with(
        server.addr,
        "POST",
        "/v1/routing/explain",
        Some(&body),
        &[("accept-language", "ja")],
    )?;
    ensure!(status == 200, "{status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    ensure!(v["dry_run"] == true, "{v}");
    let decided: RouteDecided = serde_json::from_value(v["decision"].clone())?;
    ensure!(
        decided.explanation_language == "ja",
        "{}",
        decided.explanation
    );
    public_key(&server)?
        .verify(&decided)
        .map_err(|e| anyhow::anyhow!("explain traces are signed too: {e}"))?;
    let (status, _, body) = http(
        server.addr,
        "POST",
        "/v1/routing/explain",
        Some(r#"{"model": "auto"}"#),
    )?;
    ensure!(
        status == 400 && body.contains("\"error\""),
        "{status} {body}"
    );
    let (status, _) = server.terminate()?;
    ensure!(status.success(), "{status}");

    // Nothing was published: no request, decision or response mentions the explain request.
    let log = EmbeddedLog::open_dir(&dir.path().join("log"), EmbeddedOptions::default())?;
    let codec = Codec::new()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let count = rt.block_on(async {
        let mut n = 0usize;
        for topic in [Topic::Requests, Topic::Decisions, Topic::Responses] {
            for p in 0..log.partitions(topic) {
                let w = log.watermarks(topic, p).await?;
                let records = log.read(topic, p, w.start, 10_000).await?;
                for r in records {
                    if let Ok(
                        Event::RouteDecided(_)
                        | Event::RequestReceived(_)
                        | Event::ResponseCompleted(_),
                    ) = codec.decode(&r.value)
                    {
                        n += 1;
                    }
                }
            }
        }
        anyhow::Ok(n)
    })?;
    ensure!(count == 0, "explain published {count} events");
    Ok(())
}

#[test]
fn shadow_serves_the_baseline_and_records_the_choice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config_with_mode(dir.path(), "shadow", 0)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    let (decision_id, _, answer) = chat(&server, &[])?;
    ensure!(
        answer["model"] == "demo/large",
        "shadow serves the baseline: {answer}"
    );
    let record = decision_record(&server, &decision_id)?;
    let trace = &record["decision"];
    ensure!(
        trace["chosen_model"] == "demo/small"
            && trace["shadow_model"] == "demo/small"
            && trace["served_model"] == "demo/large"
            && trace["reason"] == "shadow",
        "{trace}"
    );
    Ok(())
}

#[test]
fn live_serves_the_choice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config_with_mode(dir.path(), "live", 0)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    let (_, _, answer) = chat(&server, &[])?;
    ensure!(
        answer["model"] == "demo/small",
        "live serves the choice: {answer}"
    );
    Ok(())
}

#[test]
fn canary_is_sticky_per_session() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config_with_mode(dir.path(), "canary", 50)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    let mut seen = BTreeSet::new();
    for session in 0..16 {
        let sid = format!("session-{session}");
        let models: BTreeSet<String> = (0..3)
            .map(|_| {
                chat(&server, &[("x-switchyard-session", sid.as_str())])
                    .map(|(_, _, a)| a["model"].as_str().unwrap_or("").to_owned())
            })
            .collect::<anyhow::Result<_>>()?;
        ensure!(
            models.len() == 1,
            "session {sid} switched models: {models:?}"
        );
        seen.extend(models);
    }
    ensure!(
        seen.len() == 2,
        "16 sessions at 50% land on both sides: {seen:?}"
    );
    Ok(())
}

#[test]
fn a_pin_and_a_constraints_change_through_the_api_change_what_serves() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config_with_mode(dir.path(), "live", 0)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    let (_, _, answer) = chat(&server, &[])?;
    ensure!(
        answer["model"] == "demo/small",
        "precondition: live routes: {answer}"
    );

    // Pin to the medium model: every request serves it, and the trace says so.
    let (status, _, body) = http(
        server.addr,
        "POST",
        "/v1/routes/default/pin",
        Some(r#"{"model": "demo/medium", "reason": "incident"}"#),
    )?;
    ensure!(status == 200, "{status} {body}");
    let (decision_id, _, answer) = chat(&server, &[])?;
    ensure!(answer["model"] == "demo/medium", "the pin serves: {answer}");
    let trace = decision_record(&server, &decision_id)?["decision"].clone();
    ensure!(
        trace["reason"] == "pinned" && trace["pin"]["model"] == "demo/medium",
        "{trace}"
    );
    let (status, _, body) = http(server.addr, "DELETE", "/v1/routes/default/pin", None)?;
    ensure!(status == 200 || status == 204, "{status} {body}");
    let (_, _, answer) = chat(&server, &[])?;
    ensure!(
        answer["model"] == "demo/small",
        "unpinned, routing resumes: {answer}"
    );

    // A constraint demo/small cannot meet (org samples it does not have) holds the baseline,
    // and the trace names the constraint and the chain head it was decided under.
    let (status, _, body) = http(
        server.addr,
        "PUT",
        "/v1/routes/default/constraints",
        Some(r#"{"max_regression": 0.05, "min_confidence": 0.8, "min_samples": 1000}"#),
    )?;
    ensure!(status == 200 || status == 201, "{status} {body}");
    let head: Value = serde_json::from_str(&body)?;
    let (decision_id, _, answer) = chat(&server, &[])?;
    ensure!(
        answer["model"] == "demo/large",
        "min_samples holds the baseline: {answer}"
    );
    let trace = decision_record(&server, &decision_id)?["decision"].clone();
    ensure!(trace["reason"] == "constraint_failed", "{trace}");
    ensure!(
        trace["constraints"].as_array().is_some_and(|c| c
            .iter()
            .any(|x| x["name"] == "min_samples" && x["passed"] == false)),
        "{trace}"
    );
    let hash = head["hash"]
        .as_str()
        .or_else(|| head["head"]["hash"].as_str());
    ensure!(
        hash.is_some_and(|h| trace["constraints_hash"] == h),
        "the trace names the chain head: {trace} vs {head}"
    );
    Ok(())
}

#[test]
fn rules_on_request_metadata_pick_the_route_after_the_header() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("rules.toml");
    std::fs::write(
        &config,
        r#"
[[routing.rules]]
route = "support"
metadata = { team = "support" }

[routes.support]
baseline = "demo/medium"
candidates = ["demo/small"]
mode = "off"
"#,
    )?;
    let config = config.to_str().context("utf-8 path")?.to_owned();
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    let ask = |metadata: Value, headers: &[(&str, &str)]| -> anyhow::Result<Value> {
        let body = json!({"model": "auto", "metadata": metadata,
            "messages": [{"role": "user", "content": "hello"}]})
        .to_string();
        let (status, _, body) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&body),
            headers,
        )?;
        ensure!(status == 200, "{status} {body}");
        Ok(serde_json::from_str(&body)?)
    };
    let a = ask(json!({"team": "support"}), &[])?;
    ensure!(
        a["model"] == "demo/medium",
        "the rule routes to support: {a}"
    );
    let b = ask(json!({"team": "sales"}), &[])?;
    ensure!(
        b["model"] == "demo/large",
        "no rule matches: the default route: {b}"
    );
    let c = ask(
        json!({"team": "support"}),
        &[("x-switchyard-route", "default")],
    )?;
    ensure!(
        c["model"] == "demo/large",
        "the header wins over rules: {c}"
    );
    Ok(())
}
