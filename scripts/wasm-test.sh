#!/usr/bin/env bash
# Runs the browser tests of sotto-client in headless Chromium through wasm-bindgen-test-runner and
# ChromeDriver: tests/web.rs (the shared store suite against the memory and IndexedDB backends,
# the WebCrypto key wrapping, the Web Locks writer election) and tests/web_transport.rs (the
# fetch/WebSocket transport against a scripted peer on 127.0.0.1 that this script starts), and
# bindings/wasm/tests/browser.rs (the browser package through its JS interface).
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

# The transport tests' peer: built natively, started on a free loopback port, stopped on exit.
cargo build -q -p sotto-client --example transport_peer
peer_log="$(mktemp)"
target_dir="${CARGO_TARGET_DIR:-target}"
"$target_dir/debug/examples/transport_peer" >"$peer_log" 2>&1 &
peer_pid=$!
trap 'kill "$peer_pid" 2>/dev/null || true; rm -f "$peer_log"' EXIT
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$peer_log" && break
  sleep 0.1
done
peer_addr="$(sed -n 's/^listening on //p' "$peer_log")"
if [ -z "$peer_addr" ]; then
  echo "wasm-test: the transport peer did not start" >&2
  cat "$peer_log" >&2
  exit 1
fi
# Read by tests/web_transport.rs at build time (option_env!).
export SOTTO_TRANSPORT_PEER="$peer_addr"

cargo test -p sotto-client --target wasm32-unknown-unknown --test web --test web_transport -- "$@"
# The browser package as JavaScript sees it.
cargo test -p sotto-wasm --target wasm32-unknown-unknown --test browser -- "$@"
