#!/usr/bin/env bash
# Assembles the npm package of the browser SDK (bindings/wasm) and packs it:
#   - wasm/       the visitor and agent client (no `console` feature: the size-budgeted module)
#   - wasm-team/  the same with the team-management calls (`--features console`)
#   - index.js, team.js, loader.js: the lazy entry points (bindings/wasm/npm/)
#   - index.d.ts, team.d.ts: the loader's declarations followed by wasm-bindgen's declarations
#     of the classes and types (its low-level init API, typed with `any`, is left out: the
#     entry points hide it)
# Fails if a shipped declaration file uses `any`. Prints the path of the .tgz.
#
#   scripts/build-npm.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR or target, then /npm)
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
out="${1:-$target/npm}"
# shellcheck source=scripts/lib/wasm-package.sh
. scripts/lib/wasm-package.sh

for tool in wasm-bindgen npm node; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-npm: $tool is missing (scripts/setup-toolchain.sh installs wasm-bindgen; apt-get install nodejs npm)" >&2
    exit 1
  fi
done

stage="$out/package"
rm -rf "$out"
mkdir -p "$stage"

build_wasm_package "$stage/wasm"
build_wasm_package "$stage/wasm-team" console

# types FILE.d.ts GENERATED.d.ts: the entry's declarations, then the generated ones up to the
# loader section wasm-bindgen writes for `--target web` (InitInput, InitOutput, initSync, the
# default export).
types() {
  local dest="$1" generated="$2"
  if ! grep -q '^export type InitInput' "$generated"; then
    echo "build-npm: $generated has no InitInput section; wasm-bindgen's output changed" >&2
    exit 1
  fi
  {
    cat bindings/wasm/npm/entry.d.ts
    sed '/^export type InitInput/,$d' "$generated"
  } >"$dest"
}
types "$stage/index.d.ts" "$stage/wasm/sotto_wasm.d.ts"
types "$stage/team.d.ts" "$stage/wasm-team/sotto_wasm.d.ts"
rm -f "$stage"/wasm*/*.d.ts "$stage"/wasm*/.gitignore

cp bindings/wasm/npm/index.js bindings/wasm/npm/team.js bindings/wasm/npm/loader.js "$stage/"
cp bindings/wasm/README.md "$stage/README.md"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
SOTTO_VERSION="$version" node -e '
  const fs = require("fs");
  const path = process.argv[1];
  const manifest = JSON.parse(fs.readFileSync("bindings/wasm/npm/package.json", "utf8"));
  manifest.version = process.env.SOTTO_VERSION;
  fs.writeFileSync(path, JSON.stringify(manifest, null, 2) + "\n");
' "$stage/package.json"

# No `any` in what TypeScript users see (comments aside).
if node scripts/lib/dts-any.mjs "$stage"/*.d.ts >&2; then :; else
  echo "build-npm: a shipped declaration file uses any" >&2
  exit 1
fi

tarball="$(cd "$stage" && npm pack --silent --pack-destination "$(cd .. && pwd)")"
printf '%s\n' "$out/$tarball"
