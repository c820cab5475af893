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

step "tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --doc
else
  cargo test --workspace
fi

step "protocol core and client build for wasm32-unknown-unknown"
cargo build -p sotto-core --target wasm32-unknown-unknown
cargo build -p sotto-client --target wasm32-unknown-unknown

step "client clippy for wasm32 (the IndexedDB backend and the browser tests exist only there)"
cargo clippy -p sotto-client --target wasm32-unknown-unknown --lib --test web --test web_transport --test web_bench -- -D warnings
cargo clippy -p sotto-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p sotto-wasm --target wasm32-unknown-unknown --all-targets --features console -- -D warnings

step "browser tests in headless Chromium"
scripts/wasm-test.sh

step "web demo end to end in headless Chromium (widget and agent console)"
scripts/e2e.sh

step "fuzz targets build and run briefly"
scripts/fuzz.sh "${SOTTO_FUZZ_SECONDS:-5}"

printf '\nall checks passed\n'
