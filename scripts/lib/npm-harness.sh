# Sourced, not run: what scripts/test-npm.sh and scripts/wasm-bench-init.sh share. Serves the
# packed sotto-wasm package from a relay on 127.0.0.1 next to the test page of
# bindings/wasm/npm/test, the way an application would load it.
#
#   npm_harness_tools                      installs node/npm and the test's playwright-core and
#                                          typescript (its lock file) if missing
#   npm_harness_start RELAY_BIN TGZ DIR    extracts TGZ, lays out DIR/web, creates a tenant in
#                                          DIR/relay.sqlite and starts the relay; serves DIR/web
#                                          from a second loopback origin the relay allows (CORS);
#                                          sets RELAY, OTHER_ORIGIN, WIDGET_ID, BOOTSTRAP_CODE,
#                                          RELAY_LOG
#   npm_harness_stop                       stops the relay and the second server (also on exit)
# Expects the repository root as the working directory.

npm_harness_tools() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  if [ ! -d bindings/wasm/npm/test/node_modules/playwright-core ] ||
    [ ! -x bindings/wasm/npm/test/node_modules/.bin/tsc ]; then
    (cd bindings/wasm/npm/test && npm ci --no-audit --no-fund)
  fi
}

npm_harness_start() {
  local bin="$1" tarball="$2" dir="$3"
  local web="$dir/web"
  rm -rf "$web" "$dir/relay.sqlite" "$dir"/relay.sqlite-* "$dir/relay.log"
  mkdir -p "$web/sotto-wasm" "$web/npm-test" "$web/elsewhere"
  # What npm would install: the tarball's package/ directory.
  tar -xzf "$tarball" -C "$web/sotto-wasm" --strip-components=1
  cp bindings/wasm/npm/test/page/index.html "$web/npm-test/"
  # The entry points' paths from the package's own "exports", so a wrong map there fails the tests.
  node -e '
    const fs = require("fs");
    const [manifestPath, page, out] = process.argv.slice(1);
    const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
    const source = fs.readFileSync(page, "utf8").replace(/\{\{ENTRY:([^}]+)\}\}/g, (_, path) => {
      const target = manifest.exports[path];
      if (!target || typeof target.default !== "string") throw new Error(`no export ${path}`);
      return "/sotto-wasm/" + target.default.replace(/^\.\//, "");
    });
    fs.writeFileSync(out, source);
  ' "$web/sotto-wasm/package.json" bindings/wasm/npm/test/page/harness.js "$web/npm-test/harness.js"
  # A copy of the main module elsewhere, for the wasm URL override.
  cp "$web/sotto-wasm/wasm/sotto_wasm_bg.wasm" "$web/elsewhere/sotto.wasm"

  local db="$dir/relay.sqlite" port tenant
  RELAY_LOG="$dir/relay.log"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  RELAY="http://127.0.0.1:$port"
  tenant="$("$bin" tenant create --name "Package Test" --database "$db")"
  WIDGET_ID="$(sed -n 's/^widget_id: //p' <<<"$tenant")"
  BOOTSTRAP_CODE="$(sed -n 's/^bootstrap_code: //p' <<<"$tenant")"
  # The same files from a second loopback origin, which the relay allows to call its API
  # (CORS), as an integrator's own site would be.
  local other_port
  other_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  OTHER_ORIGIN="http://127.0.0.1:$other_port"
  python3 -m http.server "$other_port" --bind 127.0.0.1 --directory "$web" >/dev/null 2>&1 &
  NPM_HARNESS_OTHER_PID=$!
  SOTTO_LISTEN="127.0.0.1:$port" SOTTO_WEB_ROOT="$web" SOTTO_LOG="${SOTTO_LOG:-info}" \
    SOTTO_CORS_ORIGINS="$OTHER_ORIGIN" \
    "$bin" serve --database "$db" >"$RELAY_LOG" 2>&1 &
  NPM_HARNESS_RELAY_PID=$!
  trap npm_harness_stop EXIT INT TERM
  # shellcheck source=scripts/lib/wait-for-url.sh
  . scripts/lib/wait-for-url.sh
  wait_for_url "$RELAY/health" || true
  if ! wait_for_url "$OTHER_ORIGIN/npm-test/index.html"; then
    echo "npm harness: the second origin $OTHER_ORIGIN does not serve the test page" >&2
    return 1
  fi
  if ! curl -sf "$RELAY/npm-test/index.html" >/dev/null; then
    echo "npm harness: the relay at $RELAY does not serve the test page (see $RELAY_LOG)" >&2
    return 1
  fi
}

npm_harness_stop() {
  if [ -n "${NPM_HARNESS_OTHER_PID:-}" ]; then
    kill "$NPM_HARNESS_OTHER_PID" 2>/dev/null || true
    wait "$NPM_HARNESS_OTHER_PID" 2>/dev/null || true
    NPM_HARNESS_OTHER_PID=
  fi
  if [ -n "${NPM_HARNESS_RELAY_PID:-}" ]; then
    kill "$NPM_HARNESS_RELAY_PID" 2>/dev/null || true
    wait "$NPM_HARNESS_RELAY_PID" 2>/dev/null || true
    NPM_HARNESS_RELAY_PID=
  fi
}
