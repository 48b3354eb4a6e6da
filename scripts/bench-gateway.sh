#!/usr/bin/env bash
# The gateway-overhead benchmark (../shared/bench): Switchyard beside LiteLLM and Portkey against
# the same fake upstream, gateway pinned to one core as the harness pins the peers. Routing is
# on (model auto through the decision path) and events are published to the embedded log.
# Usage: scripts/bench-gateway.sh  (env: CONCURRENCY, DURATION, MODE, TARGETS as the harness)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="${BENCH_DIR:-$PWD/../shared/bench}"
[[ -x "$BENCH/run.sh" ]] || { echo "bench: the harness is not at $BENCH (set BENCH_DIR)" >&2; exit 1; }
"$BENCH/install-peers.sh"
cargo build --release -p switchyard --features switchyard-log/kafka
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/switchyard"
data="$(mktemp -d)"
taskset -c 1 "$bin" --data-dir "$data" --config bench/gateway.toml serve &
pid=$!
# Stop the gateway and wait for it to drain before its data dir goes (deleting it under a live
# store floods the log with the store's cleanup warnings).
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf 127.0.0.1:18110/healthz >/dev/null && break; sleep 0.1; done
EXTRA_TARGET="switchyard=http://127.0.0.1:18110/v1/chat/completions" EXTRA_PID=$pid EXTRA_MODEL=auto \
  TARGETS="${TARGETS:-direct,litellm,portkey}" "$BENCH/run.sh"
echo "bench: switchyard published $(curl -s 127.0.0.1:18110/metrics | awk '/^publish_appended_events /{print $2}') events"
