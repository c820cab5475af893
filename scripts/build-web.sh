#!/usr/bin/env bash
# Builds the browser package (bindings/wasm through wasm-bindgen, optimised with wasm-opt) and
# assembles the web demo's static root: widget/, console/, shared/, pkg/ (the widget's package)
# and pkg-console/ (with the console feature). Prints the root.
#
#   scripts/build-web.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR or target, then /web-demo)
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
out="${1:-$target/web-demo}"
package=sotto-wasm
lib=sotto_wasm

rm -rf "$out"
mkdir -p "$out"

# package DIR [FEATURES]: builds the package (with the cargo features given) into $out/DIR.
package() {
  local dir="$1" features="${2:-}"
  cargo build -q --profile wasm-release --target wasm32-unknown-unknown -p "$package" \
    ${features:+--features "$features"} >&2
  local module="$target/wasm32-unknown-unknown/wasm-release/$lib.wasm"
  if command -v wasm-opt >/dev/null 2>&1; then
    # Optimise rustc's module before wasm-bindgen, not after: an older wasm-opt (Debian's 108)
    # rewrites the externref table wasm-bindgen adds into an anyref table, which browsers
    # refuse to fill with JS values. The feature set is scripts/wasm-size.sh's: rustc's wasm32
    # defaults.
    mkdir -p "$target/web-demo-opt"
    wasm-opt -Oz --strip-debug --strip-producers \
      --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$module" -o "$target/web-demo-opt/$lib.wasm" >&2
    module="$target/web-demo-opt/$lib.wasm"
  fi
  wasm-bindgen --target web --out-dir "$out/$dir" "$module" >&2
}
# The widget's visitors get the package without the console's calls; the console the full one.
package pkg
package pkg-console console
cp -r web-demo/widget web-demo/console web-demo/shared "$out/"
printf '%s\n' "$out"
