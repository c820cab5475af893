#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the relay's tests, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh [start]   installs PostgreSQL (Debian package) if missing, creates the
#                                 cluster if missing, starts it if stopped, and prints the
#                                 administrative URL (for SOTTO_TEST_POSTGRES); idempotent
#   scripts/postgres.sh clean     drops the databases the tests created (sotto_relay_test_*)
#   scripts/postgres.sh stop      stops it
#
# The cluster lives in $SOTTO_PG_DIR (default /tmp/sotto-postgres) on port $SOTTO_PG_PORT
# (default 55432), apart from any system cluster. It trusts every local connection and runs
# with fsync off: it holds test data only. Everything but the URL goes to stderr.
set -euo pipefail

dir="${SOTTO_PG_DIR:-/tmp/sotto-postgres}"
port="${SOTTO_PG_PORT:-55432}"
url="postgres://postgres@127.0.0.1:${port}/postgres"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$d" && -x "$d/initdb" ]]; then
    printf '%s\n' "$d"
  fi
}

bin="$(pg_bin)"
if [[ -z "$bin" ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    log "PostgreSQL is not installed; install the Debian package 'postgresql' (as root) or set SOTTO_TEST_POSTGRES"
    exit 1
  fi
  log "installing the Debian package postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin="$(pg_bin)"
  [[ -n "$bin" ]] || { log "postgresql installed but initdb not found"; exit 1; }
fi

# PostgreSQL refuses to run as root: as root, the cluster belongs to the package's postgres user.
as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { as_owner "$bin/pg_ctl" status -D "$dir" >/dev/null 2>&1; }

case "${1:-start}" in
  stop)
    if [[ -f "$dir/PG_VERSION" ]] && running; then
      as_owner "$bin/pg_ctl" stop -D "$dir" -m fast -w >&2
    fi
    exit 0
    ;;
  clean)
    if [[ -f "$dir/PG_VERSION" ]] && running; then
      "$bin/psql" -q -At -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "SELECT datname FROM pg_database WHERE datname LIKE 'sotto\_relay\_test\_%'" |
        while read -r db; do
          # A database still in use (another run) stays.
          "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
        done
    fi
    exit 0
    ;;
  start) ;;
  *)
    log "usage: $0 [start|clean|stop]"
    exit 2
    ;;
esac

if [[ ! -f "$dir/PG_VERSION" ]]; then
  log "creating a cluster in $dir"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres:postgres "$dir"
  fi
  as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-sync >&2
fi

if ! running; then
  log "starting on 127.0.0.1:$port"
  as_owner "$bin/pg_ctl" start -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=300" >&2
fi

# The server accepts connections (pg_ctl -w waited for it; this also catches a server on the
# port that is not ours).
for _ in $(seq 1 50); do
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
    printf '%s\n' "$url"
    exit 0
  fi
  sleep 0.2
done
log "PostgreSQL did not accept connections on 127.0.0.1:$port (see $dir/server.log)"
exit 1
