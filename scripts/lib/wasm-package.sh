# Sourced, not run: the one recipe that turns bindings/wasm into a browser package, shared by
# scripts/build-web.sh (the web demo) and scripts/build-npm.sh (the npm package).
#
#   build_wasm_package OUT_DIR [FEATURES]
#
# Builds sotto-wasm (profile wasm-release, the cargo features given), optimises the module with
# wasm-opt when it is installed, and writes wasm-bindgen's `--target web` output (sotto_wasm.js,
# sotto_wasm_bg.wasm and their .d.ts files) into OUT_DIR. Cargo's and the tools' output goes to
# stderr. Expects the repository root as the working directory.

build_wasm_package() {
  local out="$1" features="${2:-}"
  local target="${CARGO_TARGET_DIR:-target}"
  local lib=sotto_wasm
  cargo build -q --profile wasm-release --target wasm32-unknown-unknown -p sotto-wasm \
    ${features:+--features "$features"} >&2
  local module="$target/wasm32-unknown-unknown/wasm-release/$lib.wasm"
  local work
  work="$(mktemp -d)"
  if command -v wasm-opt >/dev/null 2>&1; then
    # Optimise rustc's module before wasm-bindgen, not after: an older wasm-opt (Debian's 108)
    # rewrites the externref table wasm-bindgen adds into an anyref table, which browsers
    # refuse to fill with JS values. The feature set is scripts/wasm-size.sh's: rustc's wasm32
    # defaults.
    wasm-opt -Oz --strip-debug --strip-producers \
      --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$module" -o "$work/$lib.wasm" >&2
  else
    cp "$module" "$work/$lib.wasm"
  fi
  mkdir -p "$out"
  wasm-bindgen --target web --out-dir "$out" "$work/$lib.wasm" >&2
  rm -rf "$work"
}
