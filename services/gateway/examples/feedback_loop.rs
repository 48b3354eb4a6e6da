//! Feedback accepted → routing table applied at ingress, on a single node (`switchyard serve`).
//!
//! Starts the real binary on a fresh data directory, records `DECISIONS` routed chat requests,
//! then sends user feedback about them open-loop at `RATE` per second for `SECS` seconds over
//! keep-alive connections. Every feedback answer names where the event landed on the log
//! (`log.partition`, `log.offset`); a poller reads `GET /v1/routing/table`, which says which
//! inputs the table the ingress routes with has folded (`source_offsets`) and when the node
//! swapped it in (`applied_at`, the server's clock). A feedback's latency is the `applied_at`
//! of the first table whose `feedback/<partition>` offset reaches it, minus the moment its
//! `200` reached the client (same machine, same wall clock): accepted → applied, per feedback.
//!
//! `make bench-feedback` = `cargo build --release -p switchyard` then
//! `cargo run --release -p switchyard --example feedback_loop` (a release example: it shares
//! the release build of the binary it measures). Environment: `SWITCHYARD_BIN` (default: the
//! `switchyard` beside the example's directory, i.e. `target/release/switchyard`), `RATE`
//! (1000), `SECS` (30), `DECISIONS` (2000), `CONNECTIONS` (32).

#![expect(
    clippy::print_stdout,
    reason = "a benchmark binary reports its figures on stdout"
)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use support::{Conn, Server, binary, env_or};
use tokio::sync::Mutex;

/// The wall clock, as the server reads it (the same machine): microseconds since the epoch.
fn now_micros() -> i64 {
    use switchyard_runtime::Clock as _;
    switchyard_runtime::SystemClock.now_micros()
}

fn start(data_dir: &std::path::Path) -> Result<Server> {
    let mut cmd = Command::new(binary()?);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHYARD__TELEMETRY__LOG_LEVEL", "warn");
    support::spawn(cmd)
}

/// A feedback the server accepted: where it is on the log, and when the client got the 200.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    index: u64,
    partition: u64,
    offset: i64,
    at: i64,
}

/// A table the poller saw applied.
#[derive(Debug, Clone)]
struct Applied {
    applied_at: i64,
    offsets: BTreeMap<u64, i64>,
}

/// Seconds of unmeasured feedback sent after the measured window.
const TAIL_SECS: u64 = 2;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let rate: u64 = env_or("RATE", 1000);
    let secs: u64 = env_or("SECS", 30);
    let decisions: usize = env_or("DECISIONS", 2000);
    let connections: usize = env_or("CONNECTIONS", 32);
    let dir = tempfile::tempdir()?;
    let server = start(dir.path())?;
    let addr = server.addr;
    eprintln!("bench-feedback: switchyard on {addr}; recording {decisions} decisions");

    // Decisions to rate.
    let chat =
        json!({"model": "auto", "messages": [{"role": "user", "content": "rate me"}]}).to_string();
    let ids = Arc::new(Mutex::new(Vec::with_capacity(decisions)));
    let mut tasks = Vec::new();
    for worker in 0..connections.min(16) {
        let ids = Arc::clone(&ids);
        let chat = chat.clone();
        let share =
            decisions / connections.min(16) + usize::from(worker < decisions % connections.min(16));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            for _ in 0..share {
                let (status, _, body) = conn
                    .send("POST", "/v1/chat/completions", Some(&chat))
                    .await?;
                ensure!(status == 200, "chat: {status} {body}");
                let answer: Value = serde_json::from_str(&body)?;
                let id = answer["id"].as_str().context("completion id")?.to_owned();
                ids.lock().await.push(id);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().await));
    // Let the projector fold the decisions first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The poller: every table the ingress applies for the org.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let applied = Arc::new(Mutex::new(Vec::<Applied>::new()));
    let poller = {
        let stop = Arc::clone(&stop);
        let applied = Arc::clone(&applied);
        tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut last_version = -1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _, body) = conn.send("GET", "/v1/routing/table", None).await?;
                ensure!(status == 200, "routing table: {status} {body}");
                let table: Value = serde_json::from_str(&body)?;
                let version = table["version"].as_i64().unwrap_or(0);
                if version != last_version {
                    last_version = version;
                    let mut offsets = BTreeMap::new();
                    if let Some(map) = table["source_offsets"].as_object() {
                        for (key, offset) in map {
                            if let (Some(p), Some(o)) =
                                (key.strip_prefix("feedback/"), offset.as_i64())
                            {
                                offsets.insert(p.parse()?, o);
                            }
                        }
                    }
                    applied.lock().await.push(Applied {
                        applied_at: table["applied_at"].as_i64().unwrap_or(0),
                        offsets,
                    });
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        })
    };

    // Open-loop feedback at `rate`/s: a dispatcher schedules, `connections` workers send.
    // The measured feedback, then a tail of `TAIL_SECS` more at the same rate: snapshots are
    // throttled by event time, so the inputs of the last interval before traffic stops wait for
    // the next input (see streams/projector); the tail keeps every measured feedback followed
    // by traffic, as in steady state.
    let measured = rate * secs;
    let total = rate * (secs + TAIL_SECS);
    eprintln!(
        "bench-feedback: {measured} feedback at {rate}/s over {connections} connections (+{TAIL_SECS} s unmeasured tail)"
    );
    let (tx, rx) = async_channel(connections * 4);
    let accepted = Arc::new(Mutex::new(Vec::<Accepted>::with_capacity(total as usize)));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let rx = rx.clone();
        let ids = Arc::clone(&ids);
        let accepted = Arc::clone(&accepted);
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            while let Ok(i) = rx.recv().await {
                let id = &ids[i as usize % ids.len()];
                let score = if (i / ids.len() as u64).is_multiple_of(2) {
                    1
                } else {
                    -1
                };
                let body = json!({"id": id, "score": score}).to_string();
                let (status, _, text) = conn.send("POST", "/v1/feedback", Some(&body)).await?;
                let at = now_micros();
                ensure!(status == 200, "feedback: {status} {text}");
                let answer: Value = serde_json::from_str(&text)?;
                accepted.lock().await.push(Accepted {
                    index: i,
                    partition: answer["log"]["partition"]
                        .as_u64()
                        .context("log.partition")?,
                    offset: answer["log"]["offset"].as_i64().context("log.offset")?,
                    at,
                });
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for i in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        if tx.send(i).await.is_err() {
            bail!("every feedback worker stopped");
        }
    }
    drop(tx);
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed().mul_f64(measured as f64 / total as f64);
    // Give the last feedback time to be folded and applied, then stop polling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.await??;

    let accepted: Vec<Accepted> = accepted
        .lock()
        .await
        .iter()
        .filter(|a| a.index < measured)
        .copied()
        .collect();
    let applied = applied.lock().await.clone();
    let mut latencies = Vec::with_capacity(accepted.len());
    let mut missing = 0usize;
    for a in &accepted {
        let first = applied
            .iter()
            .find(|t| t.offsets.get(&a.partition).is_some_and(|o| *o >= a.offset));
        match first {
            Some(t) => latencies.push((t.applied_at - a.at).max(0) as f64 / 1000.0),
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let achieved = accepted.len() as f64 / elapsed.as_secs_f64();
    println!(
        "feedback accepted -> routing table applied at ingress (single node, switchyard serve)"
    );
    println!(
        "  offered {rate}/s for {secs} s; accepted {} in {:.1} s = {achieved:.0}/s; tables applied: {}",
        accepted.len(),
        elapsed.as_secs_f64(),
        applied.len()
    );
    println!(
        "  latency ms: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}  (never applied: {missing})",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    drop(server);
    Ok(())
}

/// A bounded multi-consumer channel of feedback indices.
fn async_channel(capacity: usize) -> (Sender, Receiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (Sender(tx), Receiver(Arc::new(Mutex::new(rx))))
}

struct Sender(tokio::sync::mpsc::Sender<u64>);

impl Sender {
    async fn send(&self, i: u64) -> Result<(), ()> {
        self.0.send(i).await.map_err(|_| ())
    }
}

#[derive(Clone)]
struct Receiver(Arc<Mutex<tokio::sync::mpsc::Receiver<u64>>>);

impl Receiver {
    async fn recv(&self) -> Result<u64, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}
