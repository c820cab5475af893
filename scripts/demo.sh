#!/usr/bin/env bash
# The main job: the relay on SQLite serving the web demo (agent console and widget), plus a
# sample company page that embeds the widget, on loopback. Installs what is missing, creates a
# tenant on first run, and prints the URLs to open. Ctrl-C stops everything.
#
# SOTTO_DEMO_DIR (default .demo) keeps the database between runs; SOTTO_DEMO_PORT (8080, the
# relay and widget), SOTTO_DEMO_HOST_PORT (8081, the company page) and SOTTO_DEMO_CONSOLE_PORT
# (8082, the agent console: its own origin, so the frameable widget never shares one with it)
# choose the ports.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${SOTTO_DEMO_DIR:-.demo}"
port="${SOTTO_DEMO_PORT:-8080}"
host_port="${SOTTO_DEMO_HOST_PORT:-8081}"
console_port="${SOTTO_DEMO_CONSOLE_PORT:-8082}"
relay="http://127.0.0.1:$port"
mkdir -p "$dir"

scripts/setup-toolchain.sh
missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "== building the relay and the browser package"
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p sotto-relay
bin="$target/release/sotto-relay"
web_root="$(scripts/build-web.sh "$dir/web")"
db="$dir/relay.sqlite"

if [[ ! -f "$dir/tenant.txt" ]]; then
  "$bin" tenant create --name "Acme Outdoor" --database "$db" >"$dir/tenant.txt"
fi
widget_id="$(sed -n 's/^widget_id: //p' "$dir/tenant.txt")"
code="$(sed -n 's/^bootstrap_code: //p' "$dir/tenant.txt")"
# The company page's origin may frame the widget (set each run: the port may change).
"$bin" tenant embed-origins --widget-id "$widget_id" --origin "http://127.0.0.1:$host_port" \
  --database "$db" >/dev/null

SOTTO_LISTEN="127.0.0.1:$port" SOTTO_CONSOLE_LISTEN="127.0.0.1:$console_port" \
  SOTTO_WEB_ROOT="$web_root" "$bin" serve --database "$db" &
relay_pid=$!
# The company's page lives on another origin, as it would in production.
mkdir -p "$dir/host"
python3 -m http.server "$host_port" --bind 127.0.0.1 --directory "$dir/host" >/dev/null 2>&1 &
host_pid=$!
trap 'kill "$relay_pid" "$host_pid" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

# shellcheck source=scripts/lib/wait-for-url.sh
. scripts/lib/wait-for-url.sh
wait_for_url "$relay/health" || true

for page in index demo; do
  sed -e "s|{{RELAY}}|$relay|g" -e "s|{{WIDGET_ID}}|$widget_id|g" -e "s|{{TEAM}}||g" \
    "web-demo/host/$page.html" >"$dir/host/$page.html"
done
host="http://127.0.0.1:$host_port/demo.html"

cat <<INFO

Sotto demo is running (relay on SQLite at $db).

  Agent console:  http://127.0.0.1:$console_port/console/?w=$widget_id&code=$code&host=$host&relay=$relay
    The first device creates the team; its Team page shows the embed snippet and a link to
    the company page below with the widget for that team. Other agents join from the console
    (in another browser profile) with the same widget id and the team reference; an admin adds
    their device id on the Team page.
  Company page:   $host?team=<team reference>

Health: $relay/health   API: $relay/openapi.json   (metrics: set SOTTO_METRICS_TOKEN)
Press Ctrl-C to stop.
INFO
wait "$relay_pid"
