//! The distributed mode's pipeline: events/s one ingress publishes to Kafka, and the end-to-end
//! lag from a request's decision at ingress to its events being applied by a processor, with
//! the single-node deployment (`switchyard serve`, embedded log) measured the same way in the
//! same run as the baseline.
//!
//! Per deployment:
//! - **throughput**: `CONNECTIONS` keep-alive clients send chat requests back to back for `SECS`
//!   seconds; events/s = the ingress's `publish_appended_events` growth over the window (the
//!   events the log acknowledged), req/s = answers received;
//! - **lag**: requests open-loop at `RATE`/s for `SECS` seconds; the `decisions` processor's
//!   `processor_event_lag_seconds` histogram (clock at apply minus the input's event time, per
//!   input) is read before and after, and p50/p99 interpolated from the difference. Bucket
//!   bounds grow by 25 %, which bounds the error of a percentile.
//!
//! Kafka: `switchyard ingress` and `switchyard stream decisions` as two processes on the broker
//! in `SWITCHYARD_TEST_KAFKA_BOOTSTRAP` (`make bench-kafka` starts Tansu for it). The binary
//! must be built with the `kafka` feature (`make bench-kafka` does).

#![expect(
    clippy::print_stdout,
    reason = "a benchmark binary reports its figures on stdout"
)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;
use support::{Conn, Server, binary, env_or};

fn start(data_dir: &Path, config: Option<&Path>, role: &[&str]) -> Result<Server> {
    let mut cmd = Command::new(binary()?);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(role)
        .args(["--listen", "127.0.0.1:0"])
        .env(
            "SWITCHYARD__TELEMETRY__LOG_LEVEL",
            "error,librdkafka=off,rdkafka=off",
        )
        // The pipeline is measured, not the demo models' simulated latencies.
        .env("SWITCHYARD__PROVIDERS__DEMO__INSTANT", "true");
    support::spawn(cmd)
}

async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut conn = Conn::open(addr).await?;
    let (status, _, body) = conn.send("GET", path, None).await?;
    Ok((status, body))
}

async fn ready(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if matches!(get(addr, "/readyz").await, Ok((200, _))) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{addr} not ready within 90 s")
}

/// A counter or gauge without labels from /metrics.
async fn metric(addr: SocketAddr, name: &str) -> Result<f64> {
    let (_, text) = get(addr, "/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// The cumulative buckets (upper bound → count) of the decisions processor's lag histogram.
async fn lag_buckets(addr: SocketAddr) -> Result<BTreeMap<u64, f64>> {
    let (_, text) = get(addr, "/metrics").await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("processor_event_lag_seconds_bucket{") else {
            continue;
        };
        if !rest.contains("group=\"decisions\"") {
            continue;
        }
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(le) = labels
            .split("le=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
        else {
            continue;
        };
        // Bounds as integer nanoseconds, so the map orders them; +Inf is the largest.
        let bound = if le == "+Inf" {
            u64::MAX
        } else {
            (le.parse::<f64>()? * 1e9) as u64
        };
        out.insert(bound, value.trim().parse()?);
    }
    ensure!(
        !out.is_empty(),
        "no processor_event_lag_seconds for group decisions"
    );
    Ok(out)
}

/// The `p` quantile (0..1) of the observations between two cumulative snapshots, linearly
/// interpolated inside its bucket; in milliseconds.
fn quantile(before: &BTreeMap<u64, f64>, after: &BTreeMap<u64, f64>, p: f64) -> f64 {
    let delta: Vec<(u64, f64)> = after
        .iter()
        .map(|(b, n)| (*b, n - before.get(b).copied().unwrap_or(0.0)))
        .collect();
    let total = delta.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 {
        return f64::NAN;
    }
    let target = p * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for (bound, count) in delta {
        let upper = if bound == u64::MAX {
            prev_bound * 1.25
        } else {
            bound as f64 / 1e6
        };
        if count >= target {
            let share = if count > prev_count {
                (target - prev_count) / (count - prev_count)
            } else {
                1.0
            };
            return prev_bound + share * (upper - prev_bound);
        }
        prev_bound = upper;
        prev_count = count;
    }
    prev_bound
}

fn body(i: u64) -> String {
    json!({"model": "auto", "messages": [{"role": "user", "content": format!("question {i}")}]})
        .to_string()
}

/// Closed loop: `connections` clients back to back for `secs`; returns (answers, events/s).
async fn throughput(ingress: SocketAddr, connections: usize, secs: u64) -> Result<(f64, f64)> {
    let before = metric(ingress, "publish_appended_events").await?;
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let answered = Arc::clone(&answered);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(ingress).await?;
            let mut i = c as u64 * 10_000_000;
            while Instant::now() < stop {
                i += 1;
                let (status, _, _) = conn
                    .send("POST", "/v1/chat/completions", Some(&body(i)))
                    .await?;
                ensure!(status == 200, "status {status}");
                answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = metric(ingress, "publish_appended_events").await?;
    Ok((
        answered.load(Ordering::Relaxed) as f64 / elapsed,
        (after - before) / elapsed,
    ))
}

/// Open loop at `rate`/s for `secs`; returns the lag p50 and p99 in ms.
async fn lag(
    ingress: SocketAddr,
    processor: SocketAddr,
    rate: u64,
    secs: u64,
) -> Result<(f64, f64)> {
    let before = lag_buckets(processor).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<u64>(rate as usize * secs as usize + 1);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let rx = Arc::clone(&rx);
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(ingress).await?;
            loop {
                let next = rx.lock().await.recv().await;
                let Some(i) = next else { break };
                let (status, _, _) = conn
                    .send("POST", "/v1/chat/completions", Some(&body(i)))
                    .await?;
                ensure!(status == 200, "status {status}");
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    for i in 0..rate * secs {
        tokio::time::sleep_until(started + interval * i as u32).await;
        tx.send(1_000_000_000 + i).await.ok();
    }
    drop(tx);
    for w in workers {
        w.await??;
    }
    // Let the processor apply the last inputs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = lag_buckets(processor).await?;
    Ok((
        quantile(&before, &after, 0.5),
        quantile(&before, &after, 0.99),
    ))
}

/// Waits until the decisions processor has applied the backlog the closed loop left: its lag
/// histogram's count stops growing for 2 s (no load is running).
async fn drained(processor: SocketAddr) -> Result<()> {
    let count = || async {
        let buckets = lag_buckets(processor).await?;
        Ok::<_, anyhow::Error>(buckets.get(&u64::MAX).copied().unwrap_or(0.0))
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = count().await?;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = count().await?;
        if now == last {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the processor did not catch up in 600 s"
        );
        last = now;
    }
}

struct Figures {
    req_s: f64,
    events_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(ingress: SocketAddr, processor: SocketAddr) -> Result<Figures> {
    let (connections, secs, rate) = (
        env_or("CONNECTIONS", 32usize),
        env_or("SECS", 10u64),
        env_or("RATE", 500u64),
    );
    // Warm-up: connections, the routing table, the consumer groups.
    throughput(ingress, 4, 2).await?;
    let (req_s, events_s) = throughput(ingress, connections, secs).await?;
    drained(processor).await?;
    let (p50_ms, p99_ms) = lag(ingress, processor, rate, secs).await?;
    Ok(Figures {
        req_s,
        events_s,
        p50_ms,
        p99_ms,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let bootstrap = std::env::var("SWITCHYARD_TEST_KAFKA_BOOTSTRAP")
        .context("SWITCHYARD_TEST_KAFKA_BOOTSTRAP is not set (run `make bench-kafka`)")?;
    let root = tempfile::tempdir()?;

    eprintln!("bench-kafka: single node (serve, embedded log)");
    let single = {
        let serve = start(&root.path().join("serve"), None, &["serve"])?;
        ready(serve.addr).await?;
        measure(serve.addr, serve.addr).await?
    };

    eprintln!("bench-kafka: distributed (ingress + stream decisions on Kafka at {bootstrap})");
    let prefix = format!("bench{}.", std::process::id());
    let config = root.path().join("kafka.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nurl = \"kafka://{bootstrap}\"\ntopic_prefix = \"{prefix}\"\n\n[log.kafka]\n\
             group_prefix = \"{prefix}\"\npartitions = 4\nreplication_factor = 1\n\
             session_timeout_ms = 2000\nheartbeat_interval_ms = 500\ntansu_workarounds = true\n"
        ),
    )?;
    let distributed = {
        let stream = start(
            &root.path().join("decisions"),
            Some(&config),
            &["stream", "decisions"],
        )?;
        let ingress = start(&root.path().join("ingress"), Some(&config), &["ingress"])?;
        ready(stream.addr).await?;
        ready(ingress.addr).await?;
        measure(ingress.addr, stream.addr).await?
    };

    println!(
        "| deployment | req/s (closed loop) | events/s published | lag p50 | lag p99 (at {}/s) |",
        env_or("RATE", 500u64)
    );
    println!("| --- | --- | --- | --- | --- |");
    for (name, f) in [
        ("single node: serve, embedded log", &single),
        (
            "distributed: ingress + stream decisions, Kafka (Tansu)",
            &distributed,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} ms | {:.1} ms |",
            f.req_s, f.events_s, f.p50_ms, f.p99_ms
        );
    }
    println!(
        "\nKafka / embedded: events/s {:.2}x, lag p99 {:.2}x",
        distributed.events_s / single.events_s,
        distributed.p99_ms / single.p99_ms
    );
    Ok(())
}
