#!/usr/bin/env bash
# Runs the browser tests of sotto-client (core/client/tests/web.rs: the shared store suite against
# the memory and IndexedDB backends, the WebCrypto key wrapping, the Web Locks writer election) in
# headless Chromium through wasm-bindgen-test-runner and ChromeDriver.
#
# Needs what scripts/setup-toolchain.sh installs (chromium, chromium-driver, wasm-bindgen-cli).
# Extra arguments go to the test binary (a name filter, --nocapture).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in chromium chromedriver wasm-bindgen-test-runner; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "wasm-test: $tool is missing; run scripts/setup-toolchain.sh" >&2
    exit 1
  fi
done

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
# Chromium's flags: headless, no sandbox (CI runs as root), and no background connections (the
# machine's network is closed and every refused connection slows the start).
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"

cargo test -p sotto-client --target wasm32-unknown-unknown --test web -- "$@"
