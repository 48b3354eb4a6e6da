//! Encode and decode throughput of the Confluent-framed Avro codec, per event kind, on the
//! frozen sample of each kind's latest schema version, plus a RouteDecided over 21 candidates
//! (the gateway's largest event). `encode`/`decode` are the direct writer and reader the codec
//! uses, `encode_reference`/`decode_reference` the generic `Value` paths they replaced (apache-avro's
//! `GenericDatumWriter`/`GenericDatumReader`), measured in the same run. Run with
//! `make bench-codec`.

#![expect(
    clippy::panic,
    reason = "a benchmark that cannot set up has nothing to measure"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_events::{Candidate, Codec, Event, EventKind, ModelName};

fn sample_bytes(kind: EventKind) -> Vec<u8> {
    let path = format!(
        "{}/../../schemas/samples/{}/v{}.bin.hex",
        env!("CARGO_MANIFEST_DIR"),
        kind.snake_name(),
        kind.latest_version()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench_codec(c: &mut Criterion) {
    let codec = Codec::new().unwrap_or_else(|e| panic!("codec: {e}"));
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    for kind in EventKind::ALL {
        let bytes = sample_bytes(*kind);
        let event = codec
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        bench_encode(&mut group, &codec, kind.name(), &event);
        bench_decode(&mut group, &codec, kind.name(), &bytes);
    }
    // The gateway's largest event: a decision over 21 candidates (~6 KB).
    let bytes = sample_bytes(EventKind::RouteDecided);
    if let Ok(Event::RouteDecided(mut decided)) = codec.decode(&bytes) {
        let template = decided
            .candidates
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("the RouteDecided sample has no candidate"));
        decided.candidates = (0..21)
            .map(|i| Candidate {
                model: ModelName::new(format!("provider-{i}/model-name-{i}")),
                ..template.clone()
            })
            .collect();
        let event = Event::RouteDecided(decided);
        bench_encode(&mut group, &codec, "RouteDecided/21-candidates", &event);
        let framed = codec.encode(&event).unwrap_or_else(|e| panic!("{e}"));
        bench_decode(&mut group, &codec, "RouteDecided/21-candidates", &framed);
    }
    group.finish();
}

/// Benches the direct writer (`encode`) and the generic `Value` path (`encode_reference`) on
/// the same event, one after the other in the same run.
fn bench_encode(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    codec: &Codec,
    name: &str,
    event: &Event,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    group.bench_function(BenchmarkId::new("encode", name), |b| {
        b.iter(|| {
            buf.clear();
            codec
                .encode_into(std::hint::black_box(event), &mut buf)
                .unwrap_or_else(|e| panic!("{e}"));
        });
    });
    // What a publisher does: a fresh, owned record per event.
    group.bench_function(BenchmarkId::new("encode_owned", name), |b| {
        b.iter(|| {
            codec
                .encode(std::hint::black_box(event))
                .unwrap_or_else(|e| panic!("{e}"))
        });
    });
    group.bench_function(BenchmarkId::new("encode_reference", name), |b| {
        b.iter(|| {
            buf.clear();
            codec
                .encode_reference(std::hint::black_box(event), &mut buf)
                .unwrap_or_else(|e| panic!("{e}"));
        });
    });
}

/// Benches `decode` (the direct reader for a latest-version record) and `decode_reference`
/// (apache-avro's `GenericDatumReader` into a `Value`, then converted) on the same bytes.
fn bench_decode(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    codec: &Codec,
    name: &str,
    bytes: &[u8],
) {
    group.bench_function(BenchmarkId::new("decode", name), |b| {
        b.iter(|| {
            codec
                .decode(std::hint::black_box(bytes))
                .unwrap_or_else(|e| panic!("{e}"))
        });
    });
    group.bench_function(BenchmarkId::new("decode_reference", name), |b| {
        b.iter(|| {
            codec
                .decode_reference(std::hint::black_box(bytes))
                .unwrap_or_else(|e| panic!("{e}"))
        });
    });
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
