#!/usr/bin/env bash
# The browser package's size budget: its optimized wasm (wasm-opt -Oz, then gzip -9) must be at
# most 262 KB (262,000 bytes). Prints the sizes; fails over budget.
#
#   scripts/wasm-size.sh              builds the package's main module exactly as the npm package
#                                     and the widget ship it (scripts/lib/wasm-package.sh: profile
#                                     wasm-release, wasm-opt -Oz, wasm-bindgen --target web) and
#                                     measures that file, gzip -9
#   scripts/wasm-size.sh FILE.wasm    optimizes a module built elsewhere with wasm-opt -Oz and
#                                     measures it the same way (for example the *_bg.wasm of
#                                     another npm package, to compare)
#
# SOTTO_WASM_BUDGET_BYTES overrides the budget (only to experiment; CI uses the default).
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${SOTTO_WASM_BUDGET_BYTES:-262000}"
for tool in wasm-opt gzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "wasm-size: $tool is missing; run scripts/setup-toolchain.sh" >&2
    exit 1
  fi
done

work="${CARGO_TARGET_DIR:-target}/wasm-size"
mkdir -p "$work"

if [ $# -ge 1 ]; then
  module="$1"
  if [ ! -f "$module" ]; then
    echo "wasm-size: no such file: $module" >&2
    exit 1
  fi
  optimized="$work/optimized.wasm"
  # The features rustc enables by default for wasm32-unknown-unknown; wasm-opt must accept them
  # and may keep using them (every current browser supports them).
  wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$module" -o "$optimized"
else
  if ! command -v wasm-bindgen >/dev/null 2>&1; then
    echo "wasm-size: wasm-bindgen is missing; run scripts/setup-toolchain.sh" >&2
    exit 1
  fi
  # shellcheck source=scripts/lib/wasm-package.sh
  . scripts/lib/wasm-package.sh
  rm -rf "$work/pkg"
  build_wasm_package "$work/pkg"
  module="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/sotto_wasm.wasm"
  optimized="$work/pkg/sotto_wasm_bg.wasm"
fi

raw=$(wc -c <"$module")
opt=$(wc -c <"$optimized")
gz=$(gzip -9 -c "$optimized" | wc -c)

printf 'module:            %s\n' "$module"
printf 'as built:          %9d bytes\n' "$raw"
printf 'wasm-opt -Oz:      %9d bytes (%s)\n' "$opt" "$optimized"
printf 'then gzip -9:      %9d bytes (%d.%d KB; budget %d bytes)\n' \
  "$gz" $((gz / 1000)) $(((gz % 1000) / 100)) "$budget"

if [ "$gz" -gt "$budget" ]; then
  echo "wasm-size: over budget by $((gz - budget)) bytes" >&2
  exit 1
fi
echo "within budget"
