//! One decision with 20 candidates: scored, constrained, traced and signed.
//!
//! The target is p99 ≤ 20 µs for the whole of it. Traces are signed in batches by the
//! publisher (`switchyard_router::sign`, off the request path), so a decision's cost is its
//! request-path time (decide and trace), plus its trace's own signing work (its canonical
//! payload and the SHA-256 leaf hash of it), plus its share of its batch's shared work (the
//! Merkle tree, one Ed25519 signature, the proofs). That is how the product amortizes the
//! signature, and the benchmark amortizes it the same way: nothing else is shared or
//! precomputed. Criterion reports the means of each part; the explicit loops at the end print
//! per-decision p50/p99/p99.9 for batches of 1 (an idle gateway: every trace signed alone) and
//! 64 (under load), in the same run as the parts. They time each trace's own signing work per
//! trace, so a preemption lands on the decision it delays; the previous attribution (the whole
//! batch's signing time spread evenly over its traces) is printed beside it.
#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark setup and report"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_events::{
    Constraints, DecisionId, Envelope, EventId, OrgId, PartitionKey, PayloadFormat, RequestId,
    RouteDecided, Timestamp, TraceId,
};
use switchyard_providers::{Catalog, ModelInfo, Needs};
use switchyard_router::explain::Lang;
use switchyard_router::{
    Context, DecisionSigner, ModelStats, Prior, Priors, Request, RoutePolicy, RouteStats,
    SourceStat, TraceIds, build_trace, decide,
};

/// The binary's allocator (services/gateway/src/main.rs), so the benchmark allocates as
/// production does.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Fixture {
    /// The shipped catalog plus the benchmark's models: lookups cost what they cost in
    /// production.
    models: Catalog,
    priors: Priors,
    policy: RoutePolicy,
    stats: RouteStats,
    signer: DecisionSigner,
}

fn fixture() -> Fixture {
    let mut models = Vec::new();
    let mut priors = Priors::default();
    let mut stats = BTreeMap::new();
    for i in 0..21 {
        let id = format!("p/model-{i:02}");
        let price = 0.1 + f64::from(i) * 0.5;
        models.push(ModelInfo {
            id: id.clone(),
            input_per_mtok: Some(price),
            cached_input_per_mtok: None,
            output_per_mtok: Some(price * 4.0),
            source: "bench".into(),
            as_of: "2026-11-24".into(),
            context_window: 128_000,
            max_output: 16_000,
            tools: i % 5 != 0,
            json_schema: true,
            vision: false,
            embeddings: false,
        });
        priors.extend([Prior {
            model: id.clone(),
            category: "general".into(),
            score: 0.6 + f64::from(i) * 0.015,
            source: "bench".into(),
            as_of: "2026-11-24".into(),
        }]);
        let stat = |n: u64, mean: f64| SourceStat {
            samples: n,
            mean,
            variance: 0.03,
        };
        let mut m = ModelStats {
            requests: 5_000,
            successes: 4_900,
            errors: 60,
            judge: stat(1_500, 0.7 + f64::from(i) * 0.01),
            admin: stat(25, 0.75),
            nps: stat(300, 0.72),
            user: stat(40, 0.8),
            cost_mean_usd: Some(0.001 * price),
            p95_latency_ms: Some(800 + u64::from(i as u32) * 40),
            latency_samples: 5_000,
            ..ModelStats::default()
        };
        m.regressions.insert("0-5%".into(), u64::from(i as u32 % 3));
        stats.insert(id, m);
    }
    let mut policy = RoutePolicy::new(
        "bench",
        "p/model-20",
        (0..20).map(|i| format!("p/model-{i:02}")).collect(),
    );
    policy.constraints = Constraints {
        max_regression: Some(0.05),
        min_quality: Some(0.5),
        max_error_rate: Some(0.05),
        max_cost_increase: Some(0.0),
        max_cost_per_request: Some(0.05),
        max_p95_latency_ms: Some(1_500),
        min_confidence: Some(0.8),
        min_samples: Some(100),
        rollback_threshold: Some(2),
    };
    policy.validate().expect("valid");
    let (signer, _) = DecisionSigner::generate().expect("key");
    Fixture {
        models: {
            let mut catalog = Catalog::shipped().expect("shipped catalog");
            catalog.extend(models);
            catalog
        },
        priors,
        policy,
        stats: RouteStats { models: stats },
        signer,
    }
}

impl Fixture {
    fn context(&self) -> Context<'_> {
        Context {
            policy: &self.policy,
            stats: Some(&self.stats),
            table_version: 42,
            priors: &self.priors,
            models: &self.models,
            pin: None,
            mirror_budget_left: true,
        }
    }
}

fn request(needs: Needs) -> Request<'static> {
    Request {
        org: "acme",
        needs,
        seed: 7,
        canary_bucket: 1234,
    }
}

fn ids() -> TraceIds {
    let request_id = RequestId::new("req-0193");
    TraceIds {
        envelope: Envelope {
            event_id: EventId::now_v7(),
            org: OrgId::new("acme"),
            event_time: Timestamp::from_micros(1_764_000_000_000_000),
            trace_id: TraceId::new("trace"),
            partition_key: PartitionKey::session_or_request(None, &request_id),
        },
        decision_id: DecisionId::new("dec-0193"),
        request_id,
        session_id: None,
    }
}

/// Decides and builds the (unsigned) trace: the request path.
fn trace(f: &Fixture, needs: Needs) -> RouteDecided {
    let outcome = decide(&f.context(), &request(needs)).expect("decides");
    build_trace(ids(), &f.policy, Some(&f.stats), &needs, &outcome, Lang::En)
}

/// Per-decision samples of a run, sorted, in nanoseconds.
struct Samples {
    /// Request path + the trace's own signing work + its share of the batch's: the figure.
    total: Vec<u64>,
    /// Request path + an even share of the whole batch's signing (the attribution before the
    /// trace's own signing work was timed per trace): a preemption anywhere in the batch
    /// spreads over all its traces.
    spread: Vec<u64>,
    /// Request path (decide + trace).
    path: Vec<u64>,
    /// The trace's own signing work (payload + leaf hash).
    own: Vec<u64>,
    /// The batch's shared work per trace (tree, one signature, proofs), one per batch.
    shared: Vec<u64>,
    /// `total` of the decisions whose batch the scheduler did not preempt (no involuntary
    /// context switch from the first decision to the signature): what the code costs, without
    /// the time the core was given to other processes.
    unpreempted: Vec<u64>,
    /// Batches, and batches preempted.
    batches: (usize, usize),
}

/// Returns this thread's involuntary context switches so far (Linux), `None` elsewhere.
fn involuntary_switches() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Per-decision cost of the whole path with batches of `batch`, done as the gateway and its
/// publisher do it: each decision's request-path time (decide + trace), plus its own signing
/// work (payload and leaf hash: `Batch::add`, timed per trace), plus its share of the batch's
/// shared work (`Batch::finish`: tree, one Ed25519 signature, proofs; timed per batch and
/// divided evenly).
fn per_decision_samples(f: &Fixture, needs: Needs, batch: usize, decisions: usize) -> Samples {
    let mut s = Samples {
        total: Vec::with_capacity(decisions),
        spread: Vec::with_capacity(decisions),
        path: Vec::with_capacity(decisions),
        own: Vec::with_capacity(decisions),
        shared: Vec::with_capacity(decisions / batch + 1),
        unpreempted: Vec::with_capacity(decisions),
        batches: (0, 0),
    };
    let mut traces = Vec::with_capacity(batch);
    let mut paths = Vec::with_capacity(batch);
    let mut owns = Vec::with_capacity(batch);
    while s.total.len() < decisions {
        traces.clear();
        paths.clear();
        owns.clear();
        let switches = involuntary_switches();
        for _ in 0..batch {
            let start = Instant::now();
            traces.push(black_box(trace(f, black_box(needs))));
            paths.push(start.elapsed().as_nanos() as u64);
        }
        let batch_start = Instant::now();
        let mut signing = f.signer.batch();
        for t in traces.iter_mut() {
            let start = Instant::now();
            signing.add(t);
            owns.push(start.elapsed().as_nanos() as u64);
        }
        let start = Instant::now();
        signing.finish().expect("signs");
        let shared = start.elapsed().as_nanos() as u64 / batch as u64;
        let spread = batch_start.elapsed().as_nanos() as u64 / batch as u64;
        black_box(&traces);
        let preempted = switches.is_none() || involuntary_switches() != switches;
        s.batches.0 += 1;
        s.batches.1 += usize::from(preempted);
        for (path, own) in paths.iter().zip(&owns) {
            s.total.push(path + own + shared);
            s.spread.push(path + spread);
            if !preempted {
                s.unpreempted.push(path + own + shared);
            }
        }
        s.path.extend_from_slice(&paths);
        s.own.extend_from_slice(&owns);
        s.shared.push(shared);
    }
    for v in [
        &mut s.total,
        &mut s.spread,
        &mut s.path,
        &mut s.own,
        &mut s.shared,
        &mut s.unpreempted,
    ] {
        v.sort_unstable();
    }
    s
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let needs = Needs {
        input_tokens: 1_200,
        max_output_tokens: 400,
        tools: true,
        ..Needs::default()
    };
    assert_eq!(trace(&f, needs).candidates.len(), 21);
    let mut signed = trace(&f, needs);
    f.signer.sign(&mut signed).expect("signs");
    println!(
        "signing payload of the benchmark's trace: v1 {} bytes, v2 {} bytes",
        signed.signing_payload().expect("payload").len(),
        signed.signing_payload_as(PayloadFormat::V2).len()
    );

    c.bench_function("decide_20_candidates", |b| {
        let (ctx, req) = (f.context(), request(needs));
        b.iter(|| black_box(decide(black_box(&ctx), black_box(&req)).expect("decides")));
    });
    c.bench_function("decide_and_trace_20_candidates", |b| {
        b.iter(|| black_box(trace(&f, black_box(needs))));
    });
    c.bench_function("signing_payload_only", |b| {
        let trace = trace(&f, needs);
        b.iter(|| black_box(trace.signing_payload().expect("payload").len()));
    });
    c.bench_function("payload_and_leaf_hash", |b| {
        let trace = trace(&f, needs);
        b.iter(|| {
            black_box(switchyard_router::sign::leaf_hash(
                &trace.signing_payload().expect("payload"),
            ))
        });
    });
    // Signing payload v2 (what traces are signed with since schema v5); the two above are v1,
    // each into a new buffer. These write into one reused buffer, as `sign::Batch::add` does,
    // and pass it through `black_box`, so that no store can be optimized away; the last is v1
    // the same way, for the comparison.
    c.bench_function("signing_payload_v2_only", |b| {
        let trace = trace(&f, needs);
        let mut payload = Vec::new();
        b.iter(|| {
            trace.write_signing_payload_as(PayloadFormat::V2, &mut payload);
            black_box(&payload);
        });
    });
    for (name, format) in [
        ("payload_v2_and_leaf_hash", PayloadFormat::V2),
        ("payload_v1_and_leaf_hash_reused_buffer", PayloadFormat::V1),
    ] {
        c.bench_function(name, |b| {
            let trace = trace(&f, needs);
            let mut payload = Vec::new();
            b.iter(|| {
                trace.write_signing_payload_as(format, &mut payload);
                black_box(switchyard_router::sign::leaf_hash(black_box(&payload)))
            });
        });
    }
    for batch in [1usize, 64] {
        c.bench_function(&format!("sign_batch_of_{batch}_per_trace"), |b| {
            let traces: Vec<RouteDecided> = (0..batch).map(|_| trace(&f, needs)).collect();
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let mut batch_traces = traces.clone();
                    let start = Instant::now();
                    f.signer.sign_batch(batch_traces.iter_mut()).expect("signs");
                    total += start.elapsed() / batch as u32;
                    black_box(&batch_traces);
                }
                total
            });
        });
    }
    c.bench_function("ed25519_sign_1kib", |b| {
        let (signer, _) = DecisionSigner::generate().expect("key");
        let payload = vec![7u8; 1024];
        b.iter(|| black_box(signer.sign_bytes(black_box(&payload)).len()));
    });

    // Tail latency per decision, from explicit loops (criterion reports means): a batch of one
    // (an idle gateway: every trace signed alone) and of 64 (under load).
    // Not when profiling (`--profile-time`): the profile is then of the chosen benchmark alone.
    if std::env::args().any(|a| a == "--profile-time") {
        return;
    }
    for batch in [1usize, 64] {
        let s = per_decision_samples(&f, needs, batch, 64_000);
        let q =
            |v: &[u64], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1e3;
        println!(
            "decide+trace+sign per decision, 20 candidates, batches of {batch}, {} decisions: \
             p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            s.total.len(),
            q(&s.total, 0.50),
            q(&s.total, 0.99),
            q(&s.total, 0.999)
        );
        println!(
            "  of which request path (decide + trace) p50 {:.1} µs, p99 {:.1} µs; own signing \
             work (payload + leaf) p50 {:.1} µs, p99 {:.1} µs; share of the batch's shared \
             work p50 {:.1} µs, p99 {:.1} µs",
            q(&s.path, 0.5),
            q(&s.path, 0.99),
            q(&s.own, 0.5),
            q(&s.own, 0.99),
            q(&s.shared, 0.5),
            q(&s.shared, 0.99)
        );
        println!(
            "  with the whole batch's signing time spread evenly over its traces: p50 {:.1} µs, \
             p99 {:.1} µs, p99.9 {:.1} µs",
            q(&s.spread, 0.50),
            q(&s.spread, 0.99),
            q(&s.spread, 0.999)
        );
        if s.unpreempted.is_empty() {
            println!("  every batch was preempted: no figure without preemption");
        } else {
            println!(
                "  decisions in batches the scheduler did not preempt ({} of {} batches were): \
                 p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
                s.batches.1,
                s.batches.0,
                q(&s.unpreempted, 0.50),
                q(&s.unpreempted, 0.99),
                q(&s.unpreempted, 0.999)
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
