#!/usr/bin/env bash
# Builds the browser package (bindings/wasm through wasm-bindgen, optimised with wasm-opt) and
# assembles the web demo's static root: widget/, console/, shared/ and pkg/. Prints the root.
#
#   scripts/build-web.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR or target, then /web-demo)
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
out="${1:-$target/web-demo}"
package=sotto-wasm
lib=sotto_wasm

cargo build -q --profile wasm-release --target wasm32-unknown-unknown -p "$package" >&2
rm -rf "$out"
mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out/pkg" "$target/wasm32-unknown-unknown/wasm-release/$lib.wasm" >&2
if command -v wasm-opt >/dev/null 2>&1; then
  # Same feature set as scripts/wasm-size.sh: what rustc emits for wasm32 by default.
  wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out/pkg/${lib}_bg.wasm" -o "$out/pkg/${lib}_bg.wasm" >&2
fi
cp -r web-demo/widget web-demo/console web-demo/shared "$out/"
printf '%s\n' "$out"
