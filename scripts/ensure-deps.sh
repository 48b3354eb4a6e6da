#!/usr/bin/env bash
# Installs what the test suites need, idempotently, and caches it:
# - Debian packages listed in scripts/apt-packages.txt (only the missing ones; apt-get update
#   runs once, only when something is missing);
# - a Python venv at $1 with tests/requirements.txt (rebuilt only when the file changes).
# - the Node test clients in tests/node/node_modules (npm ci from the lock file);
# - the Tansu broker for the Kafka contract suite (scripts/ensure-tansu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-$HOME/.cache/switchyard/venv}"

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/apt-packages.txt
if ((${#missing[@]})); then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp="$VENV/.requirements.sha256"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "deps: creating Python venv at $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
# Node test clients (the official openai SDK), pinned by tests/node/package-lock.json.
if [[ ! -d tests/node/node_modules || tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]]; then
  echo "deps: installing Node test clients"
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi
scripts/ensure-tansu.sh >/dev/null
echo "deps: ok"
