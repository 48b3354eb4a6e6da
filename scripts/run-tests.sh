#!/usr/bin/env bash
# Runs every test suite; exits non-zero if any fails. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-$HOME/.cache/switchyard/venv}"

echo "== Rust: unit, contract, crash and end-to-end tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile ci
else
  cargo test --workspace
fi

echo "== compose file check (no Docker needed)"
"$VENV/bin/python" scripts/compose-check.py docker-compose.kafka.yml
