#!/usr/bin/env bash
# Builds the uniffi library (bindings/ffi, crate sotto-ffi) and generates its Kotlin, Python
# and Swift bindings from the built cdylib (library mode) into the places they are committed:
#
#   bindings/python/sotto/sotto.py                          Python module
#   mobile/android/sotto/src/main/kotlin/dev/sotto/sotto.kt  Kotlin (Android and the JVM)
#   mobile/ios/Sources/Sotto/Sotto.swift                     Swift
#   mobile/ios/ffi-headers/{SottoFFI.h,module.modulemap}     C header for the XCFramework
#
# and links the built library next to the Python module (git-ignored).
#
#   scripts/bindings.sh            build and (re)generate
#   scripts/bindings.sh --check    build, generate into a temporary directory and fail if the
#                                  committed files differ (CI)
#   SOTTO_FFI_PROFILE=release      build with the release profile (default: dev)
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ "${1:-}" == "--check" ]] && check=true

profile="${SOTTO_FFI_PROFILE:-dev}"
target_dir="${CARGO_TARGET_DIR:-target}"
out_profile=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
case "$(uname -s)" in
  Darwin) lib_file="libsotto_ffi.dylib" ;;
  *) lib_file="libsotto_ffi.so" ;;
esac
lib="$target_dir/$out_profile/$lib_file"
bindgen="$target_dir/$out_profile/uniffi-bindgen"

cargo build --profile "$profile" -p sotto-ffi --features cli --lib --bin uniffi-bindgen

gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
# --no-format: the output must not depend on which formatters a machine has installed.
"$bindgen" generate --no-format --config bindings/ffi/bindgen.toml --library "$lib" \
  -l kotlin -l python -l swift -o "$gen" >/dev/null

# generated file -> committed path
declare -A files=(
  ["sotto.py"]="bindings/python/sotto/sotto.py"
  ["dev/sotto/sotto.kt"]="mobile/android/sotto/src/main/kotlin/dev/sotto/sotto.kt"
  ["Sotto.swift"]="mobile/ios/Sources/Sotto/Sotto.swift"
  ["SottoFFI.h"]="mobile/ios/ffi-headers/SottoFFI.h"
  ["SottoFFI.modulemap"]="mobile/ios/ffi-headers/module.modulemap"
)

status=0
for generated in "${!files[@]}"; do
  committed="${files[$generated]}"
  if [[ ! -f "$gen/$generated" ]]; then
    echo "bindings: uniffi-bindgen did not write $generated" >&2
    exit 1
  fi
  if $check; then
    if ! cmp -s "$gen/$generated" "$committed"; then
      echo "bindings: $committed is not current (run scripts/bindings.sh and commit)" >&2
      diff -u "$committed" "$gen/$generated" 2>/dev/null | head -20 >&2 || true
      status=1
    fi
  else
    mkdir -p "$(dirname "$committed")"
    cp "$gen/$generated" "$committed"
  fi
done

ln -sf "$(realpath "$lib")" bindings/python/sotto/"$lib_file"

if $check; then
  [[ $status -eq 0 ]] && echo "bindings: generated files are current"
  exit $status
fi
echo "bindings: generated from $lib"
