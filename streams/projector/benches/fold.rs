//! The projector's fold on a store that has seen a lot of traffic: what one batch of feedback
//! costs once the state store holds many overwritten, deleted and expired entries (an LSM
//! keeps every version and tombstone until a flush or compaction drops it, so a scan that
//! starts at a table's first key pays for all of them).
//!
//! - `busy`: 2000 requests rated over and over (as `make bench-feedback` does), 30k feedback
//!   folded in batches of 16 before measuring; one iteration = one batch of 64 more.
//! - `expired`: a 6 h window, 1 h buckets and 1 h of join grace; 6000 requests over 24 h of
//!   event time, so most of their join state and cells have expired; one iteration = one batch
//!   of 64 feedback on recent requests.
//!
//! `cargo bench -p switchyard-projector --bench fold`
#![expect(clippy::expect_used, reason = "benchmark setup")]

#[path = "../tests/it/support.rs"]
#[expect(dead_code, reason = "the integration tests' harness, partly used here")]
mod support;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_events::{Constraints, Event, FeedbackSource, ResponseStatus};
use switchyard_projector::ProjectorConfig;

use support::{BASE, CHEAP, HOUR, Harness, Req, SECOND, T0, test_config};

/// The binary's allocator (services/gateway/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: u32 = 8;

struct Scenario {
    harness: Harness,
    requests: Vec<Req>,
    /// Event time of the next feedback.
    now: i64,
    /// Feedback sent so far (ids).
    sent: u64,
    /// Spacing of feedback in event time.
    step: i64,
}

impl Scenario {
    fn feedback(&mut self, n: usize) -> Vec<Event> {
        (0..n)
            .map(|_| {
                let i = self.sent;
                self.sent += 1;
                self.now += self.step;
                // The most recent requests, round robin (a request's feedback id is stable,
                // so a new version replaces the previous rating as a rerating does).
                let recent = self.requests.len().min(2000);
                let req = &self.requests[self.requests.len() - recent + (i as usize % recent)];
                let score = if (i / recent as u64).is_multiple_of(2) {
                    1.0
                } else {
                    0.0
                };
                req.feedback(
                    &format!("fb-{}", req.request),
                    u32::try_from(i).unwrap_or(u32::MAX),
                    FeedbackSource::User,
                    score,
                    self.now,
                )
            })
            .collect()
    }
}

fn build(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    config: ProjectorConfig,
    requests: usize,
    span: i64,
    warm_feedback: usize,
) -> Scenario {
    rt.block_on(async {
        let mut harness = Harness::open(dir, config, PARTITIONS).expect("store");
        let mut reqs = Vec::with_capacity(requests);
        let mut events = Vec::with_capacity(requests * 2);
        let spacing = span / i64::try_from(requests).expect("count");
        for i in 0..requests {
            let at = T0 + spacing * i64::try_from(i).expect("index");
            let req = Req::new("acme", "r1", &format!("req-{i}"));
            let served = if i % 2 == 0 { BASE } else { CHEAP };
            events.push(req.decision(served, BASE, at));
            events.push(req.response(served, ResponseStatus::Ok, Some(0.001), 300, at + 1000));
            reqs.push(req);
        }
        harness.fold(&events, &[16]).await.expect("fold requests");
        let mut scenario = Scenario {
            harness,
            requests: reqs,
            now: T0 + span,
            sent: 0,
            step: SECOND / 1000,
        };
        let mut left = warm_feedback;
        while left > 0 {
            let n = left.min(4096);
            left -= n;
            let feedback = scenario.feedback(n);
            scenario
                .harness
                .fold(&feedback, &[16])
                .await
                .expect("fold feedback");
        }
        scenario
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("projector_fold");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    let busy_dir = tempfile::tempdir().expect("tempdir");
    let busy_config = ProjectorConfig {
        publish_interval: Duration::from_millis(500),
        ..test_config(Constraints::default())
    };
    let busy_config = ProjectorConfig {
        window: Duration::from_secs(24 * 3600),
        join_grace: Duration::from_secs(24 * 3600),
        ..busy_config
    };
    let busy = RefCell::new(build(
        &rt,
        busy_dir.path(),
        busy_config,
        2000,
        10 * SECOND,
        30_000,
    ));
    group.bench_function("busy/64_feedback", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut s = busy.borrow_mut();
                let feedback = s.feedback(64);
                let started = Instant::now();
                rt.block_on(s.harness.fold(&feedback, &[64])).expect("fold");
                total += started.elapsed();
            }
            total
        });
    });

    let expired_dir = tempfile::tempdir().expect("tempdir");
    let expired_config = ProjectorConfig {
        publish_interval: Duration::from_millis(500),
        join_grace: Duration::from_secs(3600),
        ..test_config(Constraints::default())
    };
    let expired = RefCell::new(build(
        &rt,
        expired_dir.path(),
        expired_config,
        6000,
        24 * HOUR,
        6000,
    ));
    group.bench_function("expired/64_feedback", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut s = expired.borrow_mut();
                let feedback = s.feedback(64);
                let started = Instant::now();
                rt.block_on(s.harness.fold(&feedback, &[64])).expect("fold");
                total += started.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
