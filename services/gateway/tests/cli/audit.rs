//! `switchyard audit` after real traffic through the HTTP API: it passes on an untouched data
//! directory (routes in live, canary and shadow mode, a pinned route, a route configured at run
//! time, constraints on a hash chain, routing-table snapshots), and fails naming the decision
//! when a decision in the log is tampered with, and naming the link when a constraints chain
//! is broken. An org in the shared learning pool audits clean while pool snapshots change under
//! its decisions (each trace names its pool snapshot), and fails when that name is rewritten.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use switchyard_events::{Codec, ConstraintsChanged, Event, ModelName, RouteDecided, Topic};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record};

use crate::{Server, http_with, run};

fn config(dir: &Path) -> anyhow::Result<String> {
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
    let config = dir.join("audit.toml");
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
mirror_fraction = 0.5

[routes.canary]
baseline = "demo/large"
candidates = ["demo/small"]
mode = "canary"
canary_percent = 50

[routes.pinned]
baseline = "demo/large"
candidates = ["demo/small"]
mode = "live"
"#,
            priors.display()
        ),
    )?;
    Ok(config.to_str().context("utf-8 path")?.to_owned())
}

fn call(server: &Server, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let (status, _, text) = http_with(server.addr, method, path, Some(&body.to_string()), &[])?;
    ensure!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn chat(server: &Server, route: &str, model: &str, session: &str, i: usize) -> anyhow::Result<()> {
    let body = json!({"model": model, "messages": [{"role": "user", "content": format!("question {i} on {route}")}]})
        .to_string();
    let (status, _, text) = http_with(
        server.addr,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[
            ("x-switchyard-route", route),
            ("x-switchyard-session", session),
        ],
    )?;
    ensure!(status == 200, "{route}: {status} {text}");
    Ok(())
}

fn audit(dir: &Path, config: &str) -> anyhow::Result<(bool, String, Value)> {
    let report = dir.join("report.json");
    let out = run(
        dir,
        &[
            "--config",
            config,
            "audit",
            "--from",
            "-1d",
            "--json",
            report.to_str().context("utf-8")?,
        ],
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    Ok((out.status.success(), text, report))
}

fn decisions(log: &EmbeddedLog, codec: &Codec) -> anyhow::Result<Vec<(RouteDecided, Vec<u8>)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut out = Vec::new();
        for p in 0..log.partitions(Topic::Decisions) {
            let w = log.watermarks(Topic::Decisions, p).await?;
            for r in log.read(Topic::Decisions, p, w.start, 100_000).await? {
                if let Event::RouteDecided(d) = codec.decode(&r.value)? {
                    out.push((d, r.key));
                }
            }
        }
        anyhow::Ok(out)
    })
}

/// Opens the embedded log in `log_dir`, runs `f` on it and closes it again (the server is
/// stopped: a test reads or appends to its log directly).
fn with_log<T>(
    log_dir: &Path,
    f: impl FnOnce(&EmbeddedLog) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let log = EmbeddedLog::open_dir(log_dir, EmbeddedOptions::default())?;
    let out = f(&log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(log.close())?;
    Ok(out)
}

fn append(log: &EmbeddedLog, topic: Topic, record: Record) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        log.append(topic, vec![record]).await?;
        log.flush().await?;
        anyhow::Ok(())
    })
}

#[test]
fn the_audit_passes_after_real_traffic_and_names_tampered_decisions_and_broken_links()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config(dir.path())?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    // Run-time changes, each an input the audit must rebuild from the log.
    call(
        &server,
        "PUT",
        "/v1/routes/default/constraints",
        json!({"max_regression": 0.05, "min_confidence": 0.5, "rollback_threshold": 3}),
    )?;
    call(
        &server,
        "POST",
        "/v1/routes/pinned/pin",
        json!({"model": "demo/small", "reason": "incident", "note": "audit test"}),
    )?;
    call(
        &server,
        "PUT",
        "/v1/routes/runtime",
        json!({"baseline": "demo/large", "candidates": ["demo/small"], "mode": "live"}),
    )?;
    for round in 0..2 {
        for i in 0..6 {
            let session = format!("s-{round}-{i}");
            for route in ["default", "canary", "pinned", "runtime"] {
                chat(&server, route, "auto", &session, i)?;
            }
        }
        chat(&server, "default", "demo/small", "named", round)?;
        // Let the projector publish routing-table snapshots that the next round reads.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let (status, _) = server.terminate()?;
    ensure!(status.success(), "server exit {status}");

    // What the traffic covered, read from the log.
    let codec = Codec::new()?;
    let log_dir = dir.path().join("log");
    let traced = with_log(&log_dir, |log| decisions(log, &codec))?;
    ensure!(
        traced.len() == 2 * (6 * 4 + 1),
        "every request decided: {}",
        traced.len()
    );
    let reasons: Vec<&str> = traced.iter().map(|(d, _)| d.reason.as_str()).collect();
    ensure!(
        reasons.contains(&"pinned"),
        "a pinned decision: {reasons:?}"
    );
    ensure!(
        reasons.contains(&"canary_in") || reasons.contains(&"canary_out"),
        "a canary decision: {reasons:?}"
    );
    ensure!(
        reasons.contains(&"shadow"),
        "a shadow decision: {reasons:?}"
    );
    ensure!(
        traced.iter().any(|(d, _)| d.route_version > 0),
        "a decision on a route configured at run time"
    );
    ensure!(
        traced.iter().any(|(d, _)| !d.constraints_hash.is_empty()),
        "a decision under a constraints chain"
    );
    ensure!(
        traced.iter().any(|(d, _)| d.routing_table_version > 0),
        "a decision that read a routing-table snapshot"
    );

    // Untouched: the audit passes and recomputes every routed decision exactly.
    let (ok, text, report) = audit(dir.path(), &config)?;
    ensure!(ok, "the audit of an untouched data dir passes: {text}");
    ensure!(text.contains("audit passed"), "{text}");
    let n = traced.len() as u64;
    ensure!(report["decisions"] == n, "{report}");
    ensure!(report["signatures_verified"] == n, "{report}");
    ensure!(report["named_model"] == 2, "{report}");
    ensure!(report["recomputed"] == n - 2, "{report}");
    ensure!(
        report["chains"] == 1 && report["chain_links"] == 1,
        "{report}"
    );

    // A decision rewritten in the log with the same id: another served model.
    let (victim, key) = traced
        .iter()
        .find(|(d, _)| d.reason == "canary_in" || d.reason == "routed")
        .or_else(|| traced.iter().find(|(d, _)| d.reason == "pinned"))
        .cloned()
        .context("a routed decision")?;
    let mut forged = victim.clone();
    forged.served_model = ModelName::new("demo/medium");
    forged.envelope.event_id = switchyard_events::EventId::now_v7();
    with_log(&log_dir, |log| {
        append(
            log,
            Topic::Decisions,
            Record::new(key, codec.encode(&Event::RouteDecided(forged))?),
        )
    })?;
    let (ok, text, report) = audit(dir.path(), &config)?;
    ensure!(!ok, "a tampered decision fails the audit: {text}");
    let id = victim.decision_id.as_str();
    ensure!(
        text.contains(id),
        "the failure names the decision {id}: {text}"
    );
    let findings = report["findings"].as_array().context("findings")?;
    ensure!(
        findings.iter().any(|f| f["decision_id"] == id
            && f["field"] == "served_model"
            && f["recorded"] == "demo/medium"),
        "served_model expected vs recorded: {report}"
    );
    ensure!(
        findings
            .iter()
            .any(|f| f["decision_id"] == id && f["field"] == "signature"),
        "the forged trace's signature fails: {report}"
    );

    // A constraints change that does not extend the chain (a wrong prev_hash).
    let link = {
        let log = EmbeddedLog::open_dir(&log_dir, EmbeddedOptions::default())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let head = rt.block_on(async {
            for p in 0..log.partitions(Topic::Constraints) {
                let w = log.watermarks(Topic::Constraints, p).await?;
                for r in log.read(Topic::Constraints, p, w.start, 100).await? {
                    if let Event::ConstraintsChanged(c) = codec.decode(&r.value)? {
                        return anyhow::Ok((c, r.key));
                    }
                }
            }
            anyhow::bail!("no constraints change in the log")
        })?;
        let (head, key): (ConstraintsChanged, Vec<u8>) = head;
        let mut next = head.clone();
        next.sequence = 1;
        next.prev_hash = "0".repeat(64);
        next.hash = ConstraintsChanged::compute_hash(
            &next.prev_hash,
            &next.constraints,
            &next.route,
            next.sequence,
        );
        next.envelope.event_id = switchyard_events::EventId::now_v7();
        append(
            &log,
            Topic::Constraints,
            Record::new(key, codec.encode(&Event::ConstraintsChanged(next.clone()))?),
        )?;
        rt.block_on(log.close())?;
        next.hash
    };
    let (ok, text, report) = audit(dir.path(), &config)?;
    ensure!(!ok, "a broken chain fails the audit: {text}");
    ensure!(
        report["findings"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["field"] == "constraints_chain" && f["recorded"]["hash"] == link.as_str())),
        "the broken link is named: {report}"
    );
    Ok(())
}

/// A single-org configuration whose org shares the learning pool (`min_orgs = 1`, so one org
/// makes a pool; `prior_strength = 2`, so the pool moves the priors). `share = false` writes
/// the same configuration with the org private.
fn pool_config(dir: &Path, share: bool) -> anyhow::Result<String> {
    let priors = dir.join("priors.toml");
    std::fs::write(
        &priors,
        r#"
[[prior]]
model = "demo/small"
category = "general"
score = 0.6
source = "test: a prior the pool's observations move"
as_of = "2026-11-24"
"#,
    )?;
    let config = dir.join(if share { "pool.toml" } else { "private.toml" });
    let orgs = if share {
        "[orgs.default]\nlearning_pool = \"share\"\n"
    } else {
        ""
    };
    std::fs::write(
        &config,
        format!(
            r#"
[routing]
priors_file = "{}"

[routes.default]
baseline = "demo/large"
candidates = ["demo/small", "demo/medium"]
mode = "live"

[judge]
sample_rate = 1.0

{orgs}
[learning_pool]
min_orgs = 1
prior_strength = 2.0
"#,
            priors.display()
        ),
    )?;
    Ok(config.to_str().context("utf-8 path")?.to_owned())
}

/// Asks until decisions have read at least three different learning-pool snapshots. The judge
/// grades every answer; its scores are the org's quality observations, which the projector
/// folds into the org's table and the pool, publishing at most every 500 ms of event time.
fn ask_until_three_pool_snapshots(server: &Server) -> anyhow::Result<()> {
    use crate::feedback_loop::{chat as ask, prompt, trace};
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut seen = std::collections::BTreeSet::new();
    let mut i = 0;
    while seen.len() < 3 {
        ensure!(
            std::time::Instant::now() < deadline,
            "decisions read fewer than three pool snapshots: {seen:?}"
        );
        i += 1;
        let (id, _) = ask(server, "auto", &prompt(i), Some(&format!("s-{}", i % 4)))?;
        if let Some(v) = trace(server, &id)?["pool_version"].as_i64() {
            seen.insert(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Learning-pool snapshots (org `*pool` on `routing-table`) in the log, by version.
fn pool_versions(log: &EmbeddedLog, codec: &Codec) -> anyhow::Result<Vec<i64>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut out = Vec::new();
        for p in 0..log.partitions(Topic::RoutingTable) {
            let w = log.watermarks(Topic::RoutingTable, p).await?;
            for r in log.read(Topic::RoutingTable, p, w.start, 100_000).await? {
                if let Event::RoutingTableUpdated(t) = codec.decode(&r.value)?
                    && t.envelope.org.as_str() == switchyard_router::POOL_ORG
                {
                    out.push(t.version);
                }
            }
        }
        anyhow::Ok(out)
    })
}

/// An org in the shared learning pool decides on priors blended with whichever pool snapshot
/// its node had applied; the trace names that snapshot (`pool_version`) and the audit
/// recomputes every decision with the same blend while pool snapshots change during the run.
/// A decision whose pool version is rewritten, or a pool version recorded for an org that
/// (by the configuration) does not share, fails the audit.
#[test]
fn the_audit_recomputes_decisions_of_an_org_in_the_learning_pool() -> anyhow::Result<()> {
    use std::collections::BTreeSet;

    let dir = tempfile::tempdir()?;
    let config = pool_config(dir.path(), true)?;
    let server = Server::start(dir.path(), &["--config", &config, "serve"])?;
    ask_until_three_pool_snapshots(&server)?;
    let (status, _) = server.terminate()?;
    ensure!(status.success(), "server exit {status}");

    let codec = Codec::new()?;
    let log_dir = dir.path().join("log");
    let (traced, pools) = with_log(&log_dir, |log| {
        Ok((decisions(log, &codec)?, pool_versions(log, &codec)?))
    })?;
    let recorded: BTreeSet<i64> = traced.iter().filter_map(|(d, _)| d.pool_version).collect();
    ensure!(
        recorded.len() >= 3 && recorded.iter().all(|v| pools.contains(v)),
        "decisions name pool snapshots that are in the log: {recorded:?} of {pools:?}"
    );

    // Untouched: every decision recomputes exactly, with the pool snapshot it read.
    let (ok, text, report) = audit(dir.path(), &config)?;
    ensure!(ok, "the audit of a pool member's decisions passes: {text}");
    let n = traced.len() as u64;
    ensure!(report["decisions"] == n, "{report}");
    ensure!(report["signatures_verified"] == n, "{report}");
    ensure!(report["recomputed"] == n, "{report}");

    // The same log audited with the org private: it must never have read the pool.
    let private = pool_config(dir.path(), false)?;
    let (ok, text, report) = audit(dir.path(), &private)?;
    ensure!(
        !ok,
        "a private org's decision that read the pool fails: {text}"
    );
    let findings = report["findings"].as_array().context("findings")?;
    ensure!(
        findings
            .iter()
            .filter(|f| f["field"] == "pool_version" && f["expected"].is_null())
            .count()
            == traced
                .iter()
                .filter(|(d, _)| d.pool_version.is_some())
                .count(),
        "each pooled decision is named: {report}"
    );

    // A pooled decision rewritten to claim the shipped priors.
    let (victim, key) = traced
        .iter()
        .rev()
        .find(|(d, _)| d.pool_version.is_some())
        .cloned()
        .context("a pooled decision")?;
    let mut forged = victim.clone();
    forged.pool_version = None;
    forged.envelope.event_id = switchyard_events::EventId::now_v7();
    with_log(&log_dir, |log| {
        append(
            log,
            Topic::Decisions,
            Record::new(key, codec.encode(&Event::RouteDecided(forged))?),
        )
    })?;
    let (ok, text, report) = audit(dir.path(), &config)?;
    ensure!(!ok, "a tampered pool version fails the audit: {text}");
    let id = victim.decision_id.as_str();
    let findings = report["findings"].as_array().context("findings")?;
    ensure!(
        findings
            .iter()
            .any(|f| f["decision_id"] == id && f["field"] == "signature"),
        "the forged trace's signature fails: {report}"
    );
    ensure!(
        findings
            .iter()
            .any(|f| f["decision_id"] == id && f["field"] != "signature"),
        "recomputed on the shipped priors, the forged decision differs: {report}"
    );
    ensure!(
        report["recomputed"] == n,
        "every other decision still recomputes: {report}"
    );
    Ok(())
}

/// The same on Kafka (`serve` over the broker of `make test`): the audit reads the pool's
/// snapshots from the Kafka `routing-table` topic and recomputes every pool member's decision;
/// audited with the org private, the pooled decisions fail.
#[test]
fn the_audit_recomputes_learning_pool_decisions_on_kafka() -> anyhow::Result<()> {
    let brokers = crate::distributed::bootstrap()?;
    let dir = tempfile::tempdir()?;
    let kafka = crate::distributed::kafka_section(&brokers);
    let mut configs = Vec::new();
    for share in [true, false] {
        let config = pool_config(dir.path(), share)?;
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&kafka);
        std::fs::write(&config, text)?;
        configs.push(config);
    }
    let server = Server::start(dir.path(), &["--config", &configs[0], "serve"])?;
    ask_until_three_pool_snapshots(&server)?;
    let (status, _) = server.terminate()?;
    ensure!(status.success(), "server exit {status}");

    let (ok, text, report) = audit(dir.path(), &configs[0])?;
    ensure!(
        ok,
        "the audit of a pool member's decisions on Kafka passes: {text}"
    );
    let n = report["decisions"].as_u64().context("decisions")?;
    ensure!(n >= 3, "{report}");
    ensure!(report["signatures_verified"] == n, "{report}");
    ensure!(report["recomputed"] == n, "{report}");

    let (ok, text, report) = audit(dir.path(), &configs[1])?;
    ensure!(
        !ok,
        "a private org's pooled decisions fail on Kafka: {text}"
    );
    let findings = report["findings"].as_array().context("findings")?;
    let pooled = findings
        .iter()
        .filter(|f| f["field"] == "pool_version" && f["expected"].is_null())
        .count();
    ensure!(
        pooled >= 3 && findings.len() == pooled,
        "only the pooled decisions fail: {report}"
    );
    Ok(())
}
