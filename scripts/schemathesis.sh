#!/usr/bin/env bash
# Property-based fuzzing of the relay's HTTP API with schemathesis (from PyPI), against the
# OpenAPI document the relay serves at /openapi.json. Every default check runs (no 5xx, status
# codes, content types, headers and bodies conform to the document, invalid input is refused,
# unauthenticated calls are refused, ...) except `positive_data_acceptance`: the document cannot
# express that a valid request needs real signed protocol objects, so schema-valid random data
# is rightly refused with 400.
#
# Two passes over every operation, with bounded examples:
#   1. as the tenant's owner device, with the real team and conversation ids in every path (so
#      the handlers' logic is reached, not just their 404); deleting that conversation is left
#      to pass 2, or it would turn the rest of the pass into 404s;
#   2. as a visitor device, with generated ids.
#
# The relay runs from the debug build on a temporary SQLite file on 127.0.0.1 with rate limits
# off. Environment: SOTTO_SCHEMATHESIS_EXAMPLES (default 50 per operation and phase),
# SOTTO_SCHEMATHESIS_SEED (default random; the seed is printed), SOTTO_SCHEMATHESIS_VENV,
# SOTTO_RELAY_BIN (another relay build).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

version="4.32.5"
venv="${SOTTO_SCHEMATHESIS_VENV:-$HOME/.cache/sotto/schemathesis-venv}"
examples="${SOTTO_SCHEMATHESIS_EXAMPLES:-50}"
target="${CARGO_TARGET_DIR:-$repo/target}"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "$@"
}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $version\$"; then
  log "installing schemathesis $version into $venv"
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  # Debian's python3 makes virtual environments only with python3-venv installed.
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "schemathesis==$version"
fi

cargo build -q -p sotto-relay --bin sotto-relay --example sotto-load
relay_bin="${SOTTO_RELAY_BIN:-$target/debug/sotto-relay}"
load_bin="$target/debug/examples/sotto-load"

work="$(mktemp -d)"
relay_pid=""
cleanup() {
  if [[ -n "$relay_pid" ]]; then
    kill "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

db="$work/relay.sqlite"
"$relay_bin" tenant create --name fuzz --database "$db" >"$work/tenant.txt"
widget_id="$(awk '/^widget_id:/ {print $2}' "$work/tenant.txt")"
bootstrap_code="$(awk '/^bootstrap_code:/ {print $2}' "$work/tenant.txt")"

SOTTO_RATE_PER_ADDRESS=0 SOTTO_RATE_PER_DEVICE=0 SOTTO_LOG="warn,sotto_relay::server=info" \
  "$relay_bin" serve --listen 127.0.0.1:0 --database "$db" 2>"$work/relay.log" &
relay_pid=$!
addr=""
for _ in $(seq 1 200); do
  addr="$(grep -o 'addr=[0-9.:]*' "$work/relay.log" | head -n 1 | cut -d= -f2 || true)"
  [[ -n "$addr" ]] && break
  kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { log "the relay did not start"; cat "$work/relay.log" >&2; exit 1; }
base="http://$addr"

"$load_bin" fixture --relay "$base" --widget-id "$widget_id" --bootstrap-code "$bootstrap_code" >"$work/fixture.json"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/fixture.json" "$1"; }

cat >"$work/pinned.toml" <<TOML
[parameters]
"path.team_id" = "$(field team_id)"
"path.conversation_id" = "$(field conversation_id)"
TOML
printf '\n' >"$work/plain.toml"

seed_args=()
if [[ -n "${SOTTO_SCHEMATHESIS_SEED:-}" ]]; then
  seed_args=(--seed "$SOTTO_SCHEMATHESIS_SEED")
fi

run() {
  local config="$1" token="$2"
  shift 2
  # From the work directory, so schemathesis' caches land there. One worker: hypothesis'
  # source inspection is not thread-safe on every Python.
  (cd "$work" && "$venv/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
    -H "Authorization: Bearer $token" \
    --exclude-checks positive_data_acceptance \
    --max-examples "$examples" --workers 1 \
    --suppress-health-check filter_too_much,too_slow \
    --request-timeout 10 \
    "${seed_args[@]}" "$@")
}

log "pass 1: owner device, real ids"
run "$work/pinned.toml" "$(field owner_token)" --exclude-name "DELETE /v1/conversations/{conversation_id}"
log "pass 2: visitor device, generated ids"
run "$work/plain.toml" "$(field visitor_token)"

if grep -q "panicked" "$work/relay.log"; then
  log "the relay panicked:"
  cat "$work/relay.log" >&2
  exit 1
fi
log "no failures"
