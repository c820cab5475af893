#!/usr/bin/env bash
# Browser throughput of the message store path (core/client/tests/web_bench.rs) in headless
# Chromium: messages sealed and stored, and opened and stored, per second, on the memory and
# IndexedDB stores. Prints the figures; not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"

# Optimized code, as the package ships it (the test profile would measure debug code).
cargo test -p sotto-client --release --target wasm32-unknown-unknown --test web_bench -- --nocapture
