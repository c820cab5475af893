#!/usr/bin/env bash
# Benchmarks the packed npm package in headless Chromium: the time from `init` (the first call
# into the lazy package) to a new visitor's first message acknowledged by the relay, with its
# steps (module load, register, open a conversation, send), over SOTTO_BENCH_RUNS (default 10)
# fresh browser contexts. The relay is the release build on a temporary SQLite file on
# 127.0.0.1, serving the extracted tarball (uncompressed) from the same origin. Prints the
# figures; not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/npm-harness.sh
. scripts/lib/npm-harness.sh

scripts/setup-toolchain.sh
npm_harness_tools

target="${CARGO_TARGET_DIR:-target}"
dir="$(mktemp -d)"
echo "== packing the npm package and building the relay (release)" >&2
tarball="$(scripts/build-npm.sh "$dir/npm")"
cargo build -q --release -p sotto-relay
SOTTO_LOG="${SOTTO_LOG:-warn}" npm_harness_start "$target/release/sotto-relay" "$tarball" "$dir"
printf '== relay %s; module %s bytes (%s gzip -9)\n' "$RELAY" \
  "$(wc -c <"$dir/web/sotto-wasm/wasm/sotto_wasm_bg.wasm")" \
  "$(gzip -9 -c "$dir/web/sotto-wasm/wasm/sotto_wasm_bg.wasm" | wc -c)" >&2
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

status=0
SOTTO_NPM_RELAY="$RELAY" SOTTO_NPM_WIDGET="$WIDGET_ID" SOTTO_NPM_CODE="$BOOTSTRAP_CODE" \
  timeout 600 node bindings/wasm/npm/test/bench-init.mjs || status=$?
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
npm_harness_stop
rm -rf "$dir"
exit "$status"
