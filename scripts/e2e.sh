#!/usr/bin/env bash
# End-to-end tests of the web demo in headless Chromium (Debian's; Playwright never downloads a
# browser): the relay on a temporary SQLite file serving the widget and console on 127.0.0.1, a
# company page with the widget on another loopback port, and web-demo/tests driving both.
#
# Leaves the relay's log and database in $SOTTO_E2E_DIR (default: a temporary directory, removed
# on success). Screenshots go to web-demo/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-toolchain.sh
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -d web-demo/node_modules/playwright-core ]; then
  (cd web-demo && npm ci --no-audit --no-fund)
fi

target="${CARGO_TARGET_DIR:-target}"
echo "== building the relay and the web root" >&2
dir="${SOTTO_E2E_DIR:-$(mktemp -d)}"
mkdir -p "$dir"
cargo build -q -p sotto-relay
bin="$target/debug/sotto-relay"
web_root="$(scripts/build-web.sh "$dir/web")"
db="$dir/relay.sqlite"
log="$dir/relay.log"
rm -f "$db" "$db"-* "$log"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port="$(free_port)"
host_port="$(free_port)"
relay="http://127.0.0.1:$port"

tenant="$("$bin" tenant create --name "E2E Outdoor" --embed-origin "http://127.0.0.1:$host_port" \
  --database "$db")"
widget_id="$(sed -n 's/^widget_id: //p' <<<"$tenant")"
code="$(sed -n 's/^bootstrap_code: //p' <<<"$tenant")"

SOTTO_LISTEN="127.0.0.1:$port" SOTTO_WEB_ROOT="$web_root" SOTTO_LOG="${SOTTO_LOG:-debug}" \
  "$bin" serve --database "$db" >"$log" 2>&1 &
relay_pid=$!
mkdir -p "$dir/host"
python3 -m http.server "$host_port" --bind 127.0.0.1 --directory "$dir/host" >/dev/null 2>&1 &
host_pid=$!
cleanup() {
  kill "$relay_pid" "$host_pid" 2>/dev/null || true
  wait "$relay_pid" "$host_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# shellcheck source=scripts/lib/wait-for-url.sh
. scripts/lib/wait-for-url.sh
wait_for_url "$relay/health" || true
if ! curl -sf "$relay/console/" >/dev/null; then
  echo "e2e: the relay at $relay does not serve the web root (see $log)" >&2
  exit 1
fi
sed -e "s|{{RELAY}}|$relay|g" -e "s|{{WIDGET_ID}}|$widget_id|g" -e "s|{{TEAM}}||g" \
  web-demo/host/demo.html >"$dir/host/demo.html"

echo "== browser tests (relay $relay, company page http://127.0.0.1:$host_port)" >&2
status=0
SOTTO_E2E_RELAY="$relay" SOTTO_E2E_HOST="http://127.0.0.1:$host_port/demo.html" \
  SOTTO_E2E_WIDGET="$widget_id" SOTTO_E2E_CODE="$code" \
  SOTTO_E2E_DB="$db" SOTTO_E2E_LOG="$log" \
  timeout 600 node --test --test-concurrency=1 web-demo/tests/ || status=$?
if [ "$status" -eq 0 ] && [ -z "${SOTTO_E2E_DIR:-}" ]; then
  cleanup
  rm -rf "$dir"
else
  echo "relay log and database kept in $dir" >&2
fi
exit "$status"
