#!/usr/bin/env bash
# Runs a command with a fresh, in-memory Tansu broker (Kafka wire protocol) on a free port of
# 127.0.0.1, exported as SWITCHYARD_TEST_KAFKA_BOOTSTRAP; stops the broker afterwards and exits
# with the command's status.   Usage: scripts/with-tansu.sh CMD [ARGS...]
set -euo pipefail
(($#)) || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

TANSU="$("$(dirname "$0")/ensure-tansu.sh")"
START_TIMEOUT="${TANSU_START_TIMEOUT:-30}"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t tansu.XXXXXX.log)"
"$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
pid=$!

keep_log=""
stop_broker() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ -n "$keep_log" ]] || rm -f "$log"
}
trap stop_broker EXIT

fail() {
  echo "with-tansu: $1; last lines of the broker log ($log):" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

deadline=$((SECONDS + START_TIMEOUT))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || fail "tansu exited before accepting connections on 127.0.0.1:$port"
  ((SECONDS < deadline)) || fail "tansu did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s"
  sleep 0.1
done

export SWITCHYARD_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$port"
echo "with-tansu: broker at $SWITCHYARD_TEST_KAFKA_BOOTSTRAP (pid $pid)" >&2
status=0
"$@" || status=$?
if ((status != 0)); then
  keep_log=1
  echo "with-tansu: the command failed (exit $status); the broker log is kept at $log" >&2
fi
exit "$status"
