//! Durable appends per second on the embedded log with group commit (fdatasync per group).
//!
//! Shapes measured, all with 256-byte events (about the size of an encoded RequestReceived):
//! - `1_producer/batch_1`: one producer awaiting each single-event append (latency-bound: one
//!   fsync per event, the floor);
//! - `1_producer/batch_64`: one producer appending 64 events per call (what the ingress
//!   publisher does: it drains its queue into one append), one call in flight;
//! - `1_producer/batch_64_inflight_8`: the same producer keeping 8 calls in flight, as a Kafka
//!   producer does (`max.in.flight`); the single writer keeps them in order;
//! - `8_producers/batch_1` and `8_producers/batch_64`: eight concurrent producers sharing the
//!   writer, so their appends share group commits.
//!
//! Run with `make bench-log` (or `cargo bench -p switchyard-log --bench append`).

#![expect(
    clippy::panic,
    reason = "a benchmark that cannot set up has nothing to measure"
)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record, Topic};

const EVENT_BYTES: usize = 256;

fn append_events(
    log: &EmbeddedLog,
    rt: &tokio::runtime::Runtime,
    producers: usize,
    batch: usize,
    in_flight: usize,
    total: u64,
) -> Duration {
    let per_producer = (total as usize / producers).max(batch);
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..producers {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                use futures::StreamExt;
                let payload = vec![b'x'; EVENT_BYTES];
                let calls = per_producer.div_ceil(batch);
                let appends = futures::stream::iter(0..calls).map(|call| {
                    let records: Vec<Record> = (0..batch)
                        .map(|i| {
                            Record::new(
                                format!("session-{p}-{}", (call * batch + i) % 1024),
                                payload.clone(),
                            )
                        })
                        .collect();
                    let log = log.clone();
                    async move { log.append(Topic::Requests, records).await }
                });
                let mut results = appends.buffered(in_flight);
                while let Some(result) = results.next().await {
                    if result.is_err() {
                        break;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        start.elapsed()
    })
}

fn bench_append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let log = EmbeddedLog::open_dir(dir.path(), EmbeddedOptions::default())
        .unwrap_or_else(|e| panic!("open: {e}"));
    let mut group = c.benchmark_group("embedded_log_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for (producers, batch, in_flight, events) in [
        (1usize, 1usize, 1usize, 2_000u64),
        (1, 64, 1, 200_000),
        (1, 64, 8, 400_000),
        (8, 1, 1, 20_000),
        (8, 64, 1, 400_000),
    ] {
        group.throughput(Throughput::Elements(events));
        let id = BenchmarkId::new(
            format!(
                "{producers}_producer{}",
                if producers > 1 { "s" } else { "" }
            ),
            if in_flight > 1 {
                format!("batch_{batch}_inflight_{in_flight}")
            } else {
                format!("batch_{batch}")
            },
        );
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += append_events(&log, &rt, producers, batch, in_flight, events);
                }
                total
            });
        });
    }
    group.finish();
    let stats = log.stats();
    eprintln!(
        "group commits: {}, records: {} ({:.1} records per fsync)",
        stats
            .group_commits
            .load(std::sync::atomic::Ordering::Relaxed),
        stats
            .appended_records
            .load(std::sync::atomic::Ordering::Relaxed),
        stats
            .appended_records
            .load(std::sync::atomic::Ordering::Relaxed) as f64
            / stats
                .group_commits
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(1) as f64
    );
    let _ = rt.block_on(log.close());
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
