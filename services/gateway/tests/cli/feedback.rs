//! `POST /v1/feedback` over real HTTP: thumbs, stars, session NPS, the admin source, bad
//! input, idempotent retries, decision ids, and the durable events on the log afterwards.

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use switchyard_events::{Codec, Event, FeedbackSource, FeedbackSubmitted, RawScale, Target, Topic};
use switchyard_log::EventLog;
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};

use crate::{Server, http_with, run};

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Creates a key with the binary (no server running yet); returns the secret.
fn create_key(dir: &std::path::Path, org: &str, admin: bool) -> anyhow::Result<String> {
    let mut args = vec!["keys", "create", "--org", org];
    if admin {
        args.push("--admin");
    }
    let out = run(dir, &args)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .last()
        .unwrap_or("")
        .to_owned())
}

/// Posts feedback with an optional key; returns (status, body as JSON).
fn post(
    server: &Server,
    key: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    let (status, _, text) = http_with(
        server.addr,
        "POST",
        "/v1/feedback",
        Some(&body.to_string()),
        &headers,
    )?;
    let value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    Ok((status, value))
}

/// Posts feedback that must be accepted; returns the answer.
fn accepted(server: &Server, key: Option<&str>, body: &Value) -> anyhow::Result<Value> {
    let (status, answer) = post(server, key, body, &[])?;
    ensure!(status == 200, "{body} -> {status} {answer}");
    ensure!(
        answer["object"] == "feedback" && answer["accepted"] == true,
        "{answer}"
    );
    ensure!(
        answer["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("fb-")),
        "{answer}"
    );
    Ok(answer)
}

/// Posts feedback that must be refused with `status` naming `param`.
fn refused(
    server: &Server,
    key: Option<&str>,
    body: &str,
    status: u16,
    param: Option<&str>,
) -> anyhow::Result<()> {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (got, _, text) = http_with(server.addr, "POST", "/v1/feedback", Some(body), &headers)?;
    ensure!(got == status, "{body} -> {got} {text}, expected {status}");
    let error: Value = serde_json::from_str(&text)?;
    ensure!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "OpenAI-shaped error: {text}"
    );
    ensure!(
        error["error"]["param"].as_str() == param,
        "{body}: param {} != {param:?}",
        error["error"]["param"]
    );
    Ok(())
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// Every `FeedbackSubmitted` recorded through the API (not derived by a processor).
async fn recorded(dir: &std::path::Path) -> anyhow::Result<Vec<FeedbackSubmitted>> {
    let log = EmbeddedLog::open_dir(&dir.join("log"), EmbeddedOptions::default())?;
    let codec = Codec::new()?;
    let mut out = Vec::new();
    for p in 0..log.partitions(Topic::Feedback) {
        let w = log.watermarks(Topic::Feedback, p).await?;
        for r in log.read(Topic::Feedback, p, w.start, 10_000).await? {
            let Event::FeedbackSubmitted(event) = codec.decode(&r.value)? else {
                anyhow::bail!("not feedback on the feedback topic");
            };
            ensure!(
                r.key == event.envelope.partition_key.as_str().as_bytes(),
                "record key is the event's partition key"
            );
            if event.derived_from.is_none() {
                out.push(event);
            }
        }
    }
    log.close().await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_normalised_idempotent_and_durable() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let user_key = create_key(dir.path(), "acme", false)?;
    let admin_key = create_key(dir.path(), "acme", true)?;
    let server = Server::start(dir.path(), &["serve"])?;

    // Thumbs up, keyless (org `default`); inferred scale.
    let thumbs = accepted(&server, None, &json!({"id": "chatcmpl-a", "score": 1}))?;
    ensure!(
        close(&thumbs["score"], 1.0) && thumbs["scale"] == "thumbs",
        "{thumbs}"
    );
    ensure!(
        thumbs["target"] == json!({"kind": "request", "request_id": "chatcmpl-a"})
            && thumbs["source"] == "user",
        "{thumbs}"
    );
    // Stars, inferred and explicit; a comment.
    let stars = accepted(
        &server,
        Some(&user_key),
        &json!({"id": "chatcmpl-b", "score": 4, "comment": "good, a bit slow"}),
    )?;
    ensure!(
        close(&stars["score"], 0.75) && stars["scale"] == "five_point",
        "{stars}"
    );
    let one_star = accepted(
        &server,
        Some(&user_key),
        &json!({"id": "chatcmpl-c", "score": 1, "scale": "stars"}),
    )?;
    ensure!(close(&one_star["score"], 0.0), "{one_star}");
    // Session NPS.
    let nps = accepted(
        &server,
        Some(&user_key),
        &json!({"session_id": "sess-1", "nps": 9}),
    )?;
    ensure!(
        close(&nps["score"], 0.9)
            && nps["source"] == "nps"
            && nps["target"] == json!({"kind": "session", "session_id": "sess-1"}),
        "{nps}"
    );

    // The admin source: admin keys only.
    let admin_body = json!({"id": "chatcmpl-b", "score": 0.2, "source": "admin"});
    let (status, error) = post(&server, Some(&user_key), &admin_body, &[])?;
    ensure!(
        status == 403 && error["error"]["param"] == "source",
        "{status} {error}"
    );
    let (status, _) = post(&server, None, &admin_body, &[])?;
    ensure!(status == 403, "anonymous callers are not admins: {status}");
    let admin = accepted(&server, Some(&admin_key), &admin_body)?;
    ensure!(
        admin["source"] == "admin" && admin["id"] != stars["id"],
        "{admin}"
    );

    // Idempotent: a retry gets the same id; a changed mind too (latest wins); another key or
    // source is other feedback.
    let retry = accepted(
        &server,
        Some(&user_key),
        &json!({"id": "chatcmpl-b", "score": 4, "comment": "good, a bit slow"}),
    )?;
    ensure!(retry["id"] == stars["id"], "{retry} vs {stars}");
    let changed = accepted(
        &server,
        Some(&user_key),
        &json!({"id": "chatcmpl-b", "score": -1}),
    )?;
    ensure!(
        changed["id"] == stars["id"] && close(&changed["score"], 0.0),
        "{changed}"
    );
    let nps_again = accepted(
        &server,
        Some(&user_key),
        &json!({"session_id": "sess-1", "nps": 3}),
    )?;
    ensure!(nps_again["id"] == nps["id"], "{nps_again}");
    let other_key = accepted(
        &server,
        Some(&admin_key),
        &json!({"id": "chatcmpl-b", "score": 4}),
    )?;
    ensure!(other_key["id"] != stars["id"]);

    // Bad input: 400 with the offending param.
    let long_comment = json!({"id": "r", "score": 1, "comment": "x".repeat(2_001)}).to_string();
    let cases: [(&str, Option<&str>); 11] = [
        (r#"{"score": 1}"#, Some("id")),
        (r#"{"id": "", "score": 1}"#, Some("id")),
        (r#"{"id": "r"}"#, Some("score")),
        (r#"{"id": "r", "score": "up"}"#, Some("score")),
        (r#"{"id": "r", "score": 7}"#, Some("scale")),
        (
            r#"{"id": "r", "score": 9, "scale": "stars"}"#,
            Some("score"),
        ),
        (
            r#"{"id": "r", "score": 1, "scale": "emoji"}"#,
            Some("scale"),
        ),
        (r#"{"id": "r", "score": 1, "mood": "happy"}"#, Some("mood")),
        (&long_comment, Some("comment")),
        (r#"{"session_id": "s", "nps": 11}"#, Some("nps")),
        (
            r#"{"session_id": "s", "id": "r", "nps": 1}"#,
            Some("session_id"),
        ),
    ];
    for (body, param) in cases {
        refused(&server, Some(&user_key), body, 400, param)?;
    }
    refused(&server, None, "not json", 400, None)?;
    refused(&server, None, r#"[1]"#, 400, None)?;
    refused(
        &server,
        Some("sk-sy-not-a-real-key"),
        r#"{"id": "r", "score": 1}"#,
        401,
        None,
    )?;

    // A decision id names the same request as its request id: same target, same feedback id.
    let chat =
        json!({"model": "auto", "messages": [{"role": "user", "content": "rate me"}]}).to_string();
    let (status, head, _) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat),
        &[
            ("x-switchyard-session", "sess-2"),
            ("authorization", &format!("Bearer {user_key}")),
        ],
    )?;
    ensure!(status == 200, "{head}");
    let request_id = header(&head, "x-request-id")
        .context("x-request-id")?
        .to_owned();
    let decision_id = header(&head, "x-switchyard-decision-id")
        .context("x-switchyard-decision-id")?
        .to_owned();
    let by_decision = accepted(
        &server,
        Some(&user_key),
        &json!({"id": decision_id, "score": 1}),
    )?;
    ensure!(
        by_decision["target"] == json!({"kind": "request", "request_id": request_id}),
        "{by_decision}"
    );
    let by_request = accepted(
        &server,
        Some(&user_key),
        &json!({"id": request_id, "score": 1}),
    )?;
    ensure!(
        by_request["id"] == by_decision["id"],
        "{by_request} vs {by_decision}"
    );
    // An unknown decision id cannot be resolved to a request: 404 after a short wait.
    refused(
        &server,
        Some(&user_key),
        r#"{"id": "dec-00000000-0000-7000-8000-000000000000", "score": 1}"#,
        404,
        Some("id"),
    )?;

    let (status, _) = server.terminate()?;
    ensure!(status.success());

    // Everything acknowledged is on the log, each acknowledgement one event.
    let events = recorded(dir.path()).await?;
    ensure!(events.len() == 11, "{} events: {events:#?}", events.len());
    let by_feedback_id = |id: &Value| -> Vec<&FeedbackSubmitted> {
        events
            .iter()
            .filter(|e| Some(e.feedback_id.as_str()) == id.as_str())
            .collect()
    };
    let session_ratings = by_feedback_id(&nps["id"]);
    ensure!(session_ratings.len() == 2);
    for rating in &session_ratings {
        ensure!(
            rating.envelope.partition_key.as_str() == "sess-1",
            "keyed by session"
        );
        ensure!(rating.source == FeedbackSource::Nps && rating.raw_scale == RawScale::Nps);
        ensure!(rating.envelope.org.as_str() == "acme");
    }
    let stars_events = by_feedback_id(&stars["id"]);
    ensure!(stars_events.len() == 3, "stars, retry, changed mind");
    let latest = stars_events
        .iter()
        .max_by_key(|e| (e.envelope.event_time, e.envelope.event_id))
        .context("latest")?;
    ensure!(
        latest.raw_score == -1.0 && latest.normalized_score.get() == 0.0,
        "the changed mind is the latest: {latest:?}"
    );
    let first = stars_events
        .iter()
        .find(|e| e.comment.is_some())
        .context("the comment is kept")?;
    ensure!(first.comment.as_deref() == Some("good, a bit slow"));
    let thumbs_event = by_feedback_id(&thumbs["id"]);
    ensure!(
        thumbs_event.len() == 1
            && thumbs_event[0].envelope.org.as_str() == "default"
            && thumbs_event[0].envelope.partition_key.as_str() == "chatcmpl-a"
    );
    let resolved = by_feedback_id(&by_decision["id"]);
    ensure!(resolved.len() == 2);
    for event in resolved {
        ensure!(
            event.target
                == Target::Request {
                    request_id: request_id.as_str().into()
                },
            "{event:?}"
        );
    }
    let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &events {
        *sources.entry(event.source.as_str()).or_default() += 1;
    }
    ensure!(
        sources == BTreeMap::from([("admin", 1), ("nps", 2), ("user", 8)]),
        "{sources:?}"
    );
    Ok(())
}

/// The newest routing table of `org` on the log: (route, model) → (admin samples, admin mean).
async fn admin_signals(
    dir: &std::path::Path,
    org: &str,
) -> anyhow::Result<BTreeMap<(String, String), (i64, f64)>> {
    let log = EmbeddedLog::open_dir(&dir.join("log"), EmbeddedOptions::default())?;
    let codec = Codec::new()?;
    let mut newest = None;
    for p in 0..log.partitions(Topic::RoutingTable) {
        let w = log.watermarks(Topic::RoutingTable, p).await?;
        for r in log.read(Topic::RoutingTable, p, w.start, 100_000).await? {
            if let Event::RoutingTableUpdated(table) = codec.decode(&r.value)?
                && table.envelope.org.as_str() == org
            {
                newest = Some(table);
            }
        }
    }
    log.close().await?;
    let mut out = BTreeMap::new();
    for route in newest.context("a routing table for the org")?.routes {
        for stats in route.models {
            if let Some(admin) = stats
                .sources
                .iter()
                .find(|s| s.source == FeedbackSource::Admin)
            {
                out.insert(
                    (
                        route.route.as_str().to_owned(),
                        stats.model.as_str().to_owned(),
                    ),
                    (admin.samples, admin.mean),
                );
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_rate_a_model_on_a_route() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let user_key = create_key(dir.path(), "acme", false)?;
    let admin_key = create_key(dir.path(), "acme", true)?;
    let other_admin = create_key(dir.path(), "acme", true)?;
    let server = Server::start(dir.path(), &["serve"])?;

    let rating = json!({"route": "default", "model": "demo/small", "score": 0.2});
    // Admin keys only, whatever the source says; OpenAI-shaped 403.
    for body in [
        rating.clone(),
        json!({"route": "default", "model": "demo/small", "score": 0.2, "source": "admin"}),
    ] {
        let (status, error) = post(&server, Some(&user_key), &body, &[])?;
        ensure!(
            status == 403
                && error["error"]["code"] == "insufficient_permissions"
                && error["error"]["type"] == "invalid_request_error"
                && error["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("admin key")),
            "{status} {error}"
        );
    }
    let first = accepted(&server, Some(&admin_key), &rating)?;
    ensure!(
        first["target"] == json!({"kind": "pair", "route": "default", "model": "demo/small"})
            && first["source"] == "admin"
            && close(&first["score"], 0.2),
        "{first}"
    );
    // Idempotent per (pair, source, key): a changed mind keeps the id; another key, another
    // model or another org is other feedback.
    let changed = accepted(
        &server,
        Some(&admin_key),
        &json!({"route": "default", "model": "demo/small", "score": 4, "scale": "stars"}),
    )?;
    ensure!(
        changed["id"] == first["id"] && close(&changed["score"], 0.75),
        "{changed}"
    );
    let second = accepted(
        &server,
        Some(&other_admin),
        &json!({"route": "default", "model": "demo/small", "score": 0.25}),
    )?;
    ensure!(second["id"] != first["id"], "{second}");
    let baseline = accepted(
        &server,
        Some(&admin_key),
        &json!({"route": "default", "model": "demo/large", "score": 1}),
    )?;
    ensure!(baseline["id"] != first["id"], "{baseline}");
    // Keyless callers are not admins for feedback (as for the `admin` source).
    let (status, _) = post(&server, None, &rating, &[])?;
    ensure!(status == 403, "anonymous: {status}");

    // Bad input.
    let cases: [(&str, u16, Option<&str>); 7] = [
        (
            r#"{"route": "nope", "model": "demo/small", "score": 1}"#,
            404,
            Some("route"),
        ),
        (
            r#"{"route": "default", "model": "demo/tiny", "score": 1}"#,
            400,
            Some("model"),
        ),
        (r#"{"route": "default", "score": 1}"#, 400, Some("model")),
        (r#"{"model": "demo/small", "score": 1}"#, 400, Some("route")),
        (
            r#"{"route": "default", "model": "demo/small"}"#,
            400,
            Some("score"),
        ),
        (
            r#"{"route": "default", "model": "demo/small", "score": 1, "source": "user"}"#,
            400,
            Some("source"),
        ),
        (
            r#"{"route": "default", "model": "demo/small", "id": "r", "score": 1}"#,
            400,
            Some("id"),
        ),
    ];
    for (body, status, param) in cases {
        refused(&server, Some(&admin_key), body, status, param)?;
    }

    // The projector folds the ratings into the pair's admin signal: the newest rating per key,
    // both keys, nothing on the models nobody rated.
    let expected = (2, (0.75 + 0.25) / 2.0);
    // Snapshots are throttled by event time (500 ms): a few chat requests of the org, spaced
    // out, move it on so the last ratings are published.
    let auth = format!("Bearer {admin_key}");
    let chat =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(600));
        let (status, _, text) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(&chat),
            &[("authorization", &auth)],
        )?;
        ensure!(status == 200, "{text}");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // The routing table this node applied has folded the last rating: its feedback offset
    // reaches the rating's position on the log.
    let log = &second["log"];
    ensure!(log["topic"] == "feedback", "{second}");
    let partition = log["partition"].as_u64().context("log.partition")?;
    let offset = log["offset"].as_i64().context("log.offset")?;
    let (status, _, text) = http_with(
        server.addr,
        "GET",
        "/v1/routing/table",
        None,
        &[("authorization", &auth)],
    )?;
    ensure!(status == 200, "{text}");
    let table: Value = serde_json::from_str(&text)?;
    ensure!(
        table["org"] == "acme"
            && table["version"].as_i64().is_some_and(|v| v > 0)
            && table["applied_at"].as_i64().is_some()
            && table["source_offsets"][format!("feedback/{partition}")]
                .as_i64()
                .is_some_and(|o| o >= offset),
        "{table} vs {log}"
    );
    // Another org has no table yet.
    let (status, _, text) = http_with(server.addr, "GET", "/v1/routing/table", None, &[])?;
    ensure!(status == 200, "{text}");
    let empty: Value = serde_json::from_str(&text)?;
    ensure!(
        empty["org"] == "default" && empty["version"] == 0,
        "{empty}"
    );
    let (status, _) = server.terminate()?;
    ensure!(status.success());
    let signals = admin_signals(dir.path(), "acme").await?;
    let small = signals
        .get(&("default".to_owned(), "demo/small".to_owned()))
        .copied()
        .context("an admin signal for (default, demo/small)")?;
    ensure!(
        small.0 == expected.0 && (small.1 - expected.1).abs() < 1e-9,
        "{signals:?}"
    );
    ensure!(
        signals.get(&("default".to_owned(), "demo/large".to_owned())) == Some(&(1, 1.0)),
        "{signals:?}"
    );
    ensure!(
        !signals.contains_key(&("default".to_owned(), "demo/medium".to_owned())),
        "{signals:?}"
    );

    // On the log: pair targets, keyed by the route, model named.
    let events = recorded(dir.path()).await?;
    let pairs: Vec<&FeedbackSubmitted> = events
        .iter()
        .filter(|e| matches!(e.target, Target::Pair { .. }))
        .collect();
    ensure!(pairs.len() == 4, "{pairs:#?}");
    for event in pairs {
        ensure!(event.source == FeedbackSource::Admin);
        ensure!(event.envelope.partition_key.as_str() == "pair/default");
        ensure!(
            event
                .route
                .as_ref()
                .is_some_and(|r| r.as_str() == "default")
        );
        ensure!(event.model.is_some());
    }
    Ok(())
}
