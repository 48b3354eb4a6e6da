//! `switchyard replay` on the embedded log: every record of a topic from an offset or a time,
//! decoded, one JSON line each; a bound stops it; bad arguments are one clear error. (The
//! distributed test replays a Kafka topic the same way.)

use anyhow::ensure;
use serde_json::Value;

use crate::{Server, http_with, run};

fn lines(out: &std::process::Output) -> anyhow::Result<Vec<Value>> {
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())?
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[test]
fn replay_prints_every_decision_and_stops_at_its_bound() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["serve"])?;
    let body = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
    let mut ids = Vec::new();
    // One session: its events share a partition, so `--to 1` below has records to leave out
    // (six sessionless requests could each land on a partition of their own).
    for _ in 0..6 {
        let (status, _, text) = http_with(
            server.addr,
            "POST",
            "/v1/chat/completions",
            Some(body),
            &[("x-switchyard-session", "replayed")],
        )?;
        ensure!(status == 200, "{status} {text}");
        let v: Value = serde_json::from_str(&text)?;
        ids.push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    // SIGTERM drains the publisher: every event is on the log when the server is gone.
    let (status, _) = server.terminate()?;
    ensure!(status.success());

    let all = lines(&run(dir.path(), &["replay", "--topic", "decisions"])?)?;
    ensure!(all.len() == 6, "{} decisions replayed", all.len());
    for id in &ids {
        ensure!(
            all.iter().any(|l| l["event"]["type"] == "RouteDecided"
                && l["event"]["request_id"] == id.as_str()
                && l["topic"] == "decisions"),
            "{id} not replayed"
        );
    }
    // --to 1: offset 0 of the session's partition only.
    let first = lines(&run(
        dir.path(),
        &["replay", "--topic", "decisions", "--to", "1"],
    )?)?;
    ensure!(
        first.len() == 1 && first.iter().all(|l| l["offset"] == 0),
        "{first:?}"
    );
    // A time: from an hour ago is everything; from now on is nothing.
    let hour = lines(&run(
        dir.path(),
        &["replay", "--topic", "requests", "--from", "-1h"],
    )?)?;
    ensure!(hour.len() == 6, "{}", hour.len());
    let later = lines(&run(
        dir.path(),
        &["replay", "--topic", "requests", "--from", "now"],
    )?)?;
    ensure!(later.is_empty(), "{later:?}");

    let bad = run(dir.path(), &["replay", "--topic", "nope"])?;
    let err = String::from_utf8_lossy(&bad.stderr);
    ensure!(
        !bad.status.success() && err.contains("--topic nope: not a topic"),
        "{err}"
    );
    let bad = run(
        dir.path(),
        &["replay", "--topic", "decisions", "--from", "yesterday-ish"],
    )?;
    ensure!(!bad.status.success(), "a bad time is refused");
    Ok(())
}
