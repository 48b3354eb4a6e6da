//! One decision with 20 candidates: scored, constrained, traced and signed.
//!
//! The target is p99 ≤ 20 µs for the whole of it. Traces are signed in batches by the
//! publisher (`switchyard_router::sign`), so a decision's cost is its request-path time (decide
//! and trace) plus its share of its batch's signing. Criterion reports the means of each part;
//! the explicit loops at the end print per-decision p50/p99/p99.9 for batches of 1 (an idle
//! gateway) and 64 (under load), in the same run as the parts.
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
    Constraints, DecisionId, Envelope, EventId, OrgId, PartitionKey, RequestId, RouteDecided,
    Timestamp, TraceId,
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

/// Per-decision cost of the whole path with batches of `batch`: each decision's request-path
/// time (decide + trace) plus its share of signing its batch (payload, leaf hash, tree and one
/// signature). Returns the sorted samples in nanoseconds, and the sorted request-path times and
/// batch shares they add up from (where a tail comes from).
fn per_decision_samples(
    f: &Fixture,
    needs: Needs,
    batch: usize,
    decisions: usize,
) -> [Vec<u64>; 3] {
    let mut samples = Vec::with_capacity(decisions);
    let mut paths = Vec::with_capacity(decisions);
    let mut shares = Vec::with_capacity(decisions / batch + 1);
    let mut traces = Vec::with_capacity(batch);
    let mut times = Vec::with_capacity(batch);
    while samples.len() < decisions {
        traces.clear();
        times.clear();
        for _ in 0..batch {
            let start = Instant::now();
            traces.push(black_box(trace(f, black_box(needs))));
            times.push(start.elapsed().as_nanos() as u64);
        }
        let start = Instant::now();
        f.signer.sign_batch(traces.iter_mut()).expect("signs");
        let share = start.elapsed().as_nanos() as u64 / batch as u64;
        black_box(&traces);
        samples.extend(times.iter().map(|t| t + share));
        paths.extend_from_slice(&times);
        shares.push(share);
    }
    for v in [&mut samples, &mut paths, &mut shares] {
        v.sort_unstable();
    }
    [samples, paths, shares]
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
    for batch in [1usize, 64] {
        let [samples, paths, shares] = per_decision_samples(&f, needs, batch, 64_000);
        let quantile =
            |v: &[u64], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1e3;
        let q = |p: f64| quantile(&samples, p);
        println!(
            "decide+trace+sign per decision, 20 candidates, batches of {batch}, {} decisions: \
             p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            samples.len(),
            q(0.50),
            q(0.99),
            q(0.999)
        );
        println!(
            "  of which request path (decide + trace) p50 {:.1} µs, p99 {:.1} µs; \
             share of the batch signature p50 {:.1} µs, p99 {:.1} µs",
            quantile(&paths, 0.5),
            quantile(&paths, 0.99),
            quantile(&shares, 0.5),
            quantile(&shares, 0.99)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
