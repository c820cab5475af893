#!/usr/bin/env bash
# Tests the packed npm package of the browser SDK (scripts/build-npm.sh) in headless Chromium
# (Debian's; Playwright never downloads a browser): the relay on a temporary SQLite file on
# 127.0.0.1 serves the tarball's extracted contents and bindings/wasm/npm/test/page, and
# bindings/wasm/npm/test/package.test.mjs drives a visitor and an agent in separate contexts.
# Also checks that no shipped .d.ts uses `any` and that a typed use of the package
# (bindings/wasm/npm/test/types/usage.ts) compiles with tsc --strict.
#
# Leaves the relay's log and database in $SOTTO_NPM_TEST_DIR (default: a temporary directory,
# removed on success).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/npm-harness.sh
. scripts/lib/npm-harness.sh

scripts/setup-toolchain.sh
npm_harness_tools

target="${CARGO_TARGET_DIR:-target}"
dir="${SOTTO_NPM_TEST_DIR:-$(mktemp -d)}"
mkdir -p "$dir"
echo "== packing the npm package and building the relay" >&2
tarball="$(scripts/build-npm.sh "$dir/npm")"
cargo build -q -p sotto-relay
npm_harness_start "$target/debug/sotto-relay" "$tarball" "$dir"

echo "== declarations of the packed package: no any, and strict TypeScript against them" >&2
node scripts/lib/dts-any.mjs "$dir"/web/sotto-wasm/*.d.ts
# The package installed as an application would have it, and a typed use of it compiled.
rm -rf "$dir/ts"
mkdir -p "$dir/ts/node_modules/sotto-wasm"
tar -xzf "$tarball" -C "$dir/ts/node_modules/sotto-wasm" --strip-components=1
cp bindings/wasm/npm/test/types/tsconfig.json bindings/wasm/npm/test/types/usage.ts "$dir/ts/"
bindings/wasm/npm/test/node_modules/.bin/tsc -p "$dir/ts"

echo "== package tests (relay $RELAY, package $tarball)" >&2
status=0
SOTTO_NPM_RELAY="$RELAY" SOTTO_NPM_OTHER_ORIGIN="$OTHER_ORIGIN" SOTTO_NPM_WIDGET="$WIDGET_ID" SOTTO_NPM_CODE="$BOOTSTRAP_CODE" \
  timeout 300 node --test --test-concurrency=1 bindings/wasm/npm/test/package.test.mjs || status=$?
npm_harness_stop
if [ "$status" -eq 0 ] && [ -z "${SOTTO_NPM_TEST_DIR:-}" ]; then
  rm -rf "$dir"
else
  echo "relay log and database kept in $dir" >&2
fi
exit "$status"
