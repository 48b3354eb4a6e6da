//! Encode and decode throughput of the Confluent-framed Avro codec, per event kind, on the
//! frozen sample of each kind's latest schema version. Run with `make bench-codec`.

#![expect(
    clippy::panic,
    reason = "a benchmark that cannot set up has nothing to measure"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_events::{Codec, EventKind};

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
        let mut buf = Vec::with_capacity(bytes.len() * 2);
        group.bench_function(BenchmarkId::new("encode", kind.name()), |b| {
            b.iter(|| {
                buf.clear();
                codec
                    .encode_into(std::hint::black_box(&event), &mut buf)
                    .unwrap_or_else(|e| panic!("{e}"));
            });
        });
        group.bench_function(BenchmarkId::new("decode", kind.name()), |b| {
            b.iter(|| {
                codec
                    .decode(std::hint::black_box(&bytes))
                    .unwrap_or_else(|e| panic!("{e}"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
