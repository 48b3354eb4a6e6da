//! The feedback loop end to end, in single-node mode (`switchyard serve`, one process): the
//! demo provider answers and the test plays the users and admins who know how good each model
//! is. A live route with baseline demo/large and candidate demo/small starts on the benchmark
//! priors (phase 0), learns from judge and admin scores (phase 1) and from session NPS (phase
//! 2), moves to demo/small once the evidence says it holds quality, and rolls back
//! automatically when demo/small's answers start being rated poorly.
//!
//! Event time in `serve` is the wall clock, so this runs in real time: every wait polls.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::{Server, http, http_with};

/// A prompt whose first 80 characters are 40 words: the demo judge grades an answer by its
/// length, and every demo model's answer to this one (which quotes those 80 characters) is
/// long enough for the top grade. The judge thus sees both models as equally good, which is
/// the known quality this test plays out (admins and users agree until the degradation).
pub(crate) fn prompt(i: usize) -> String {
    format!("{} question {i}", "a ".repeat(40).trim_end())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Creates an admin key of org `default` with the binary, before the server starts.
fn admin_key(dir: &Path) -> anyhow::Result<String> {
    crate::create_key(dir, &[], "default", &["--admin"])
}

/// A live route demo/large → demo/small with small learning thresholds. The priors file gives
/// demo/small the benchmark score of demo/large (the stand-ins' known quality: equally good),
/// so what holds the baseline on day 0 is the org evidence the constraints ask for.
pub(crate) fn config(dir: &Path) -> anyhow::Result<String> {
    let priors = dir.join("priors.toml");
    std::fs::write(
        &priors,
        r#"
[[prior]]
model = "demo/small"
category = "general"
score = 0.88
source = "test: demo/small is as good as demo/large"
as_of = "2026-11-24"
"#,
    )?;
    let config = dir.join("feedback-loop.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[routing]
priors_file = "{}"

[routing.learning]
phase1_min_samples = 10
phase2_min_samples = 3

[routes.default]
baseline = "demo/large"
candidates = ["demo/small"]
mode = "live"

[routes.default.constraints]
max_regression = 0.1
min_confidence = 0.8
min_samples = 10
rollback_threshold = 3

[judge]
sample_rate = 1.0
"#,
            priors.display()
        ),
    )?;
    Ok(config.to_str().context("utf-8 path")?.to_owned())
}

/// One chat request; returns (decision id, the answer).
pub(crate) fn chat(
    server: &Server,
    model: &str,
    content: &str,
    session: Option<&str>,
) -> anyhow::Result<(String, Value)> {
    let body =
        json!({"model": model, "messages": [{"role": "user", "content": content}]}).to_string();
    let headers: Vec<(&str, &str)> = session
        .map(|s| ("x-switchyard-session", s))
        .into_iter()
        .collect();
    let (status, head, body) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &headers,
    )?;
    ensure!(status == 200, "{status} {body}");
    let decision = header(&head, "x-switchyard-decision-id")
        .context("decision header")?
        .to_owned();
    Ok((decision, serde_json::from_str(&body)?))
}

/// Polls `GET /v1/decisions/{id}` until the read model has the decision and its response;
/// returns the trace.
pub(crate) fn trace(server: &Server, id: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http(server.addr, "GET", &format!("/v1/decisions/{id}"), None)?;
        if status == 200 {
            let v: Value = serde_json::from_str(&body)?;
            if !v["response"].is_null() {
                return Ok(v["decision"].clone());
            }
        } else {
            ensure!(status == 404, "{status} {body}");
        }
        ensure!(Instant::now() < deadline, "decision {id} never appeared");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Posts feedback that must be accepted.
pub(crate) fn feedback(server: &Server, key: Option<&str>, body: &Value) -> anyhow::Result<()> {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, _, text) = http_with(
        server.addr,
        "POST",
        "/v1/feedback",
        Some(&body.to_string()),
        &headers,
    )?;
    ensure!(status == 200, "{body} -> {status} {text}");
    Ok(())
}

/// An admin rating (0..1) of one decision.
pub(crate) fn rate(server: &Server, admin: &str, decision: &str, score: f64) -> anyhow::Result<()> {
    feedback(
        server,
        Some(admin),
        &json!({"id": decision, "score": score, "scale": "unit", "source": "admin"}),
    )
}

/// Sends routed requests until one's trace satisfies `done`; returns that trace. Polling with
/// real requests (not a dry-run explain) also keeps the projector's inputs moving: it publishes
/// at most once per 500 ms of event time, on an input.
pub(crate) fn poll_traces(
    server: &Server,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut i = 0;
    loop {
        i += 1;
        let (id, _) = chat(server, "auto", &prompt(1000 + i), None)?;
        let t = trace(server, &id)?;
        if done(&t) {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {timeout:?}; last trace: {t}");
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Whether a trace's constraint checks have `name` failed.
pub(crate) fn failed(trace: &Value, name: &str) -> bool {
    trace["constraints"]
        .as_array()
        .is_some_and(|c| c.iter().any(|x| x["name"] == name && x["passed"] == false))
}

/// Per-source (samples, value) of a trace's signals, for failure messages.
fn signals(trace: &Value) -> String {
    trace["signals"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| format!("{}:{}@{}", x["source"], x["samples"], x["value"]))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[test]
fn the_route_learns_moves_to_the_cheaper_model_and_rolls_back_when_it_degrades()
-> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let admin = admin_key(dir.path())?;
    let config = config(dir.path())?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;

    // 1. Day 0: benchmark priors only. demo/small's prior equals demo/large's, but it has no
    //    org samples, so min_samples holds the baseline.
    let mut day0 = Vec::new();
    for i in 0..5 {
        let (id, answer) = chat(&server, "auto", &prompt(i), Some("sess-day0"))?;
        ensure!(
            answer["model"] == "demo/large",
            "day 0 serves the baseline: {answer}"
        );
        day0.push(id);
    }
    let first = trace(&server, &day0[0])?;
    ensure!(first["phase"] == 0, "day 0 is phase 0: {first}");
    ensure!(
        first["served_model"] == "demo/large" && first["reason"] == "constraint_failed",
        "day 0: {first}"
    );
    ensure!(
        failed(&first, "min_samples") && !failed(&first, "min_confidence"),
        "the priors alone are confident; the org evidence is missing: {first}"
    );
    ensure!(
        first["signals"].as_array().is_some_and(|s| s
            .iter()
            .all(|x| x["source"] == "benchmark" || x["samples"] == 0)),
        "phase 0 scores on the priors: {first}"
    );

    // 2. Judge and admin: the judge grades every response (sample_rate 1); an admin rates the
    //    baseline's day-0 answers. Once the route has 10 judge+admin samples the projector's
    //    snapshot puts it in phase 1; demo/small still has no samples of its own.
    for id in &day0 {
        rate(&server, &admin, id, 0.9)?;
    }
    let phase1 = poll_traces(&server, "phase 1", Duration::from_secs(20), |t| {
        t["phase"] == 1
    })?;
    ensure!(
        phase1["served_model"] == "demo/large" && phase1["reason"] != "routed",
        "phase 1 without evidence on demo/small holds the baseline: {phase1}"
    );
    ensure!(
        phase1["routing_table_version"]
            .as_i64()
            .is_some_and(|v| v > 0),
        "phase 1 comes from a projector snapshot: {phase1}"
    );
    ensure!(
        phase1["signals"].as_array().is_some_and(|s| s
            .iter()
            .any(|x| x["source"] == "judge" && x["samples"].as_u64().is_some_and(|n| n > 0))),
        "the judge's scores are in the blend: {} / {phase1}",
        signals(&phase1)
    );
    // Staleness of applied snapshots (feedback in -> table out) is a metric.
    let (status, _, metrics) = crate::http(server.addr, "GET", "/metrics", None)?;
    ensure!(status == 200, "{status}");
    let applied = metrics
        .lines()
        .find_map(|l| l.strip_prefix("routing_table_staleness_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    ensure!(
        applied.is_some_and(|n| n > 0),
        "applied snapshots are measured: {applied:?}"
    );

    // The test evaluates demo/small: requests that name it, on the same route, in a session.
    // The admin rates them as good as the baseline's.
    let mut small = Vec::new();
    for i in 0..4 {
        let (id, answer) = chat(&server, "demo/small", &prompt(100 + i), Some("sess-small"))?;
        ensure!(answer["model"] == "demo/small", "{answer}");
        small.push(id);
    }
    for id in &small {
        rate(&server, &admin, id, 0.9)?;
    }
    // 3. Session NPS: both sessions' users answer 9. Session-NPS propagation turns that into
    //    feedback on every decision of the sessions: phase 2, and demo/small reaches
    //    min_samples (4 judge + 4 admin + 4 NPS). The route moves to the cheaper model.
    for session in ["sess-day0", "sess-small"] {
        feedback(&server, None, &json!({"session_id": session, "nps": 9}))?;
    }
    let mut saw_phase2 = None;
    let routed = poll_traces(
        &server,
        "routed to demo/small",
        Duration::from_secs(25),
        |t| {
            if t["phase"] == 2 && saw_phase2.is_none() {
                saw_phase2 = Some(t.clone());
            }
            t["served_model"] == "demo/small"
        },
    )?;
    let phase2 = saw_phase2.context("phase 2 seen")?;
    ensure!(
        phase2["signals"].as_array().is_some_and(|s| s
            .iter()
            .any(|x| x["source"] == "nps" && x["samples"].as_u64().is_some_and(|n| n > 0))),
        "session NPS is in the blend: {} / {phase2}",
        signals(&phase2)
    );
    ensure!(
        routed["phase"] == 2
            && routed["reason"] == "routed"
            && routed["chosen_model"] == "demo/small",
        "the route moves to demo/small in phase 2: {routed}"
    );

    // 4. Degradation: demo/small's answers are now rated 0.1 by the admin, far below the
    //    baseline's 0.9, in the current event-time bucket. The projector counts the
    //    regressions and, at rollback_threshold (3), pins the route back to demo/large.
    for i in 0..6 {
        let (id, answer) = chat(&server, "auto", &prompt(200 + i), None)?;
        ensure!(answer["model"] == "demo/small", "still routed: {answer}");
        rate(&server, &admin, &id, 0.1)?;
    }
    let auth = format!("Bearer {admin}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pin = loop {
        let (status, _, body) = http_with(
            server.addr,
            "GET",
            "/v1/routes/default",
            None,
            &[("authorization", &auth)],
        )?;
        ensure!(status == 200, "{status} {body}");
        let route: Value = serde_json::from_str(&body)?;
        if !route["pin"].is_null() {
            break route["pin"].clone();
        }
        ensure!(
            Instant::now() < deadline,
            "no automatic rollback within 20 s: {route}"
        );
        // An input for the projector's throttled publishing (served by demo/small, unrated).
        chat(&server, "auto", &prompt(300), None)?;
        std::thread::sleep(Duration::from_millis(150));
    };
    ensure!(
        pin["reason"] == "auto_rollback"
            && pin["model"] == "demo/large"
            && pin["pinned_by"] == "switchyard",
        "{pin}"
    );
    ensure!(
        pin["expires_at"]
            .as_i64()
            .is_some_and(|at| at > pin["pinned_at"].as_i64().unwrap_or(i64::MAX)),
        "an automatic rollback lapses: {pin}"
    );
    let (id, answer) = chat(&server, "auto", &prompt(400), None)?;
    ensure!(answer["model"] == "demo/large", "rolled back: {answer}");
    let after = trace(&server, &id)?;
    ensure!(
        after["served_model"] == "demo/large"
            && after["reason"] == "pinned"
            && after["pin"]["reason"] == "auto_rollback",
        "{after}"
    );
    eprintln!("feedback loop end to end: {:?}", started.elapsed());
    Ok(())
}
