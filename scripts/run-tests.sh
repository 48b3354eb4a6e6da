#!/usr/bin/env bash
# Runs every test suite; exits non-zero if any fails. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-$HOME/.cache/switchyard/venv}"

echo "== Rust: unit, contract, crash and end-to-end tests (the log contract also on Kafka: Tansu)"
# The Kafka backend is a cargo feature; its contract suite needs a broker, which with-tansu.sh
# starts (in memory, on a free port) and names in SWITCHYARD_TEST_KAFKA_BOOTSTRAP.
if cargo nextest --version >/dev/null 2>&1; then
  scripts/with-tansu.sh cargo nextest run --workspace --profile ci --features switchyard-log/kafka
else
  scripts/with-tansu.sh cargo test --workspace --features switchyard-log/kafka
fi

echo "== OpenAI SDK conformance: the official Python and Node clients against the binary"
# Same features as the test build above, so nothing is compiled twice.
cargo build -p switchyard --features switchyard-log/kafka
export SWITCHYARD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/switchyard"
# With a broker: tests/python/test_kafka_avro.py runs `serve` on Kafka and reads its topics with
# confluent-kafka and fastavro (as any Kafka tool would).
scripts/with-tansu.sh "$VENV/bin/python" -m pytest -q tests/python
(cd tests/node && node --test)

echo "== schemathesis: OpenAI's spec against createChatCompletion, listModels, createEmbedding"
# Bounded (SCHEMATHESIS_SECONDS, default 90 s; fixed seed); fails on any 5xx or schema violation.
# The spec comes from ../shared (CI clones main with shared/ beside it); OPENAI_SPEC overrides.
spec="${OPENAI_SPEC:-$PWD/../shared/specs/openai/openapi.yaml}"
if [[ ! -f "$spec" ]]; then
  echo "schemathesis: OpenAI's spec is not at $spec: put shared/ beside the checkout or set OPENAI_SPEC" >&2
  exit 1
fi
repo="$PWD"
(cd "$(mktemp -d)" && PATH="$VENV/bin:$PATH" OPENAI_SPEC="$spec" "$VENV/bin/python" "$repo/tests/conformance/run_schemathesis.py")

echo "== compose file check (no Docker needed)"
"$VENV/bin/python" scripts/compose-check.py docker-compose.kafka.yml
