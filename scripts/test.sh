#!/usr/bin/env bash
# Runs every check and test of the repository: the README's test command, and what CI runs.
# Installs missing toolchain pieces first (scripts/setup-toolchain.sh checks before installing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
scripts/setup-toolchain.sh

step "format"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "PostgreSQL for the relay tests (installed if missing, local cluster on 127.0.0.1)"
pg_url="$(scripts/postgres.sh start)"

nextest() { command -v cargo-nextest >/dev/null 2>&1; }

step "tests"
# The relay's multi-node test uses PostgreSQL through scripts/postgres.sh; the rest of the
# relay suite runs on SQLite here and on PostgreSQL below.
if nextest; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --doc
else
  cargo test --workspace
fi

step "relay tests on PostgreSQL (every in-process relay on its own database)"
if nextest; then
  SOTTO_TEST_POSTGRES="$pg_url" cargo nextest run -p sotto-relay --no-fail-fast
else
  SOTTO_TEST_POSTGRES="$pg_url" cargo test -p sotto-relay
fi
scripts/postgres.sh clean

step "relay API fuzzing (schemathesis against /openapi.json: no 5xx, responses match the schema)"
scripts/schemathesis.sh

step "bindings: generated files current, Python and Kotlin suites against a loopback relay"
scripts/test-bindings.sh

step "protocol core and client build for wasm32-unknown-unknown"
cargo build -p sotto-core --target wasm32-unknown-unknown
cargo build -p sotto-client --target wasm32-unknown-unknown

step "client clippy for wasm32 (the IndexedDB backend and the browser tests exist only there)"
cargo clippy -p sotto-client --target wasm32-unknown-unknown --lib --test web --test web_transport --test web_bench -- -D warnings
cargo clippy -p sotto-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p sotto-wasm --target wasm32-unknown-unknown --all-targets --features console -- -D warnings

step "browser package size budget (wasm-opt -Oz, then gzip -9: at most 262,000 bytes)"
scripts/wasm-size.sh

step "browser tests in headless Chromium"
scripts/wasm-test.sh

step "web demo end to end in headless Chromium (widget and agent console)"
scripts/e2e.sh

step "the packed npm package in headless Chromium (lazy loading, errors, visitor and agent)"
scripts/test-npm.sh

step "fuzz targets build and run briefly"
scripts/fuzz.sh "${SOTTO_FUZZ_SECONDS:-5}"

printf '\nall checks passed\n'
