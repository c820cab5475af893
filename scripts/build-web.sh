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
# shellcheck source=scripts/lib/wasm-package.sh
. scripts/lib/wasm-package.sh

rm -rf "$out"
mkdir -p "$out"

# The widget's visitors get the package without the console's calls; the console the full one.
build_wasm_package "$out/pkg"
build_wasm_package "$out/pkg-console" console
cp -r web-demo/widget web-demo/console web-demo/shared "$out/"
printf '%s\n' "$out"
