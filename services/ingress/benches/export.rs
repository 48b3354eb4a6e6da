//! The JSONL decision export: rows/s of `GET /v1/export/decisions`'s body (read model pages,
//! JSON serialisation, SHA-256, optional gzip), against the bare read-model page scan the export
//! is built on (the baseline, measured in the same run).
//!
//! `cargo bench -p switchyard-ingress --bench export` (rows: `SWITCHYARD_EXPORT_BENCH_ROWS`,
//! default 100000; the read model is filled through the real decisions processor first).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark: a broken setup should stop it loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use switchyard_decisions::{DecisionFilter, DecisionQueries, DecisionsProcessor};
use switchyard_events::{Codec, DecisionId, Event, EventId, OrgId, RequestId, Timestamp};
use switchyard_ingress::export::{decisions_jsonl, gzip_stream};
use switchyard_processor::Inline;
use switchyard_store::EmbeddedStore;

fn sample() -> Event {
    let hex_text = include_str!("../../../schemas/samples/route_decided/v3.bin.hex");
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    let codec = Codec::new().expect("schemas");
    codec
        .decode(&hex::decode(clean).expect("hex"))
        .expect("the frozen sample decodes")
}

fn bench(c: &mut Criterion) {
    let rows: u64 = std::env::var("SWITCHYARD_EXPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = EmbeddedStore::temporary().expect("store");
    let Event::RouteDecided(base) = sample() else {
        panic!("not a decision")
    };
    let started = std::time::Instant::now();
    rt.block_on(async {
        let mut inline = Inline::new(store.clone());
        for i in 0..rows {
            let mut d = base.clone();
            d.envelope.org = OrgId::new("acme");
            d.envelope.event_id = EventId::now_v7();
            d.envelope.event_time = Timestamp::from_micros(1_764_000_000_000_000 + i as i64 * 1000);
            d.decision_id = DecisionId::new(format!("dec-{i:08}"));
            d.request_id = RequestId::new(format!("req-{i:08}"));
            inline
                .step(&DecisionsProcessor, &Event::RouteDecided(d))
                .await
                .expect("fold");
        }
    });
    eprintln!(
        "filled the read model with {rows} decisions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let queries = DecisionQueries::new(store);
    let org = OrgId::new("acme");

    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("read_model_pages (baseline)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut cursor: Option<String> = None;
                let mut n = 0usize;
                loop {
                    let page = queries
                        .list(&org, &DecisionFilter::default(), cursor.as_deref(), 500)
                        .await
                        .expect("page");
                    n += black_box(page.items).len();
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                assert_eq!(n as u64, rows);
            });
        });
    });
    group.bench_function("jsonl", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut s = Box::pin(decisions_jsonl(
                    queries.clone(),
                    org.clone(),
                    DecisionFilter::default(),
                ));
                let mut n = 0u64;
                while let Some(chunk) = s.next().await {
                    n += black_box(chunk.expect("chunk")).rows;
                }
                assert_eq!(n, rows);
            });
        });
    });
    group.bench_function("jsonl_gzip", |b| {
        b.iter(|| {
            rt.block_on(async {
                let plain =
                    decisions_jsonl(queries.clone(), org.clone(), DecisionFilter::default())
                        .map(|c| c.map(|c| c.bytes));
                let mut s = Box::pin(gzip_stream(plain));
                let mut bytes = 0usize;
                while let Some(chunk) = s.next().await {
                    bytes += black_box(chunk.expect("chunk")).len();
                }
                assert!(bytes > 0);
            });
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
