#!/usr/bin/env bash
# Builds SottoFFI.xcframework for the Swift package (macOS with Xcode and rustup):
# the sotto-ffi static library for iOS devices (arm64), the iOS simulator (arm64, x86_64) and
# macOS (arm64, x86_64, for `swift test`), with the generated C header and module map.
#
#   mobile/ios/build-xcframework.sh            release build
#
# Run scripts/bindings.sh first if bindings/ffi changed (it regenerates Sources/Sotto and
# ffi-headers/, which this packages).
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ "$(uname -s)" == Darwin ]] || { echo "build-xcframework: needs macOS with Xcode" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "build-xcframework: needs Xcode (xcodebuild)" >&2; exit 1; }

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done

target_dir="${CARGO_TARGET_DIR:-target}"
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0
for t in "${targets[@]}"; do
  # The crate is a cdylib for the other platforms; iOS links statically.
  cargo rustc --release -p sotto-ffi --lib --target "$t" --crate-type staticlib
done

out="mobile/ios/build"
rm -rf "$out" mobile/ios/SottoFFI.xcframework
mkdir -p "$out/ios-sim" "$out/macos"
lipo -create "$target_dir/aarch64-apple-ios-sim/release/libsotto_ffi.a" \
  "$target_dir/x86_64-apple-ios/release/libsotto_ffi.a" -output "$out/ios-sim/libsotto_ffi.a"
lipo -create "$target_dir/aarch64-apple-darwin/release/libsotto_ffi.a" \
  "$target_dir/x86_64-apple-darwin/release/libsotto_ffi.a" -output "$out/macos/libsotto_ffi.a"

headers="mobile/ios/ffi-headers"
xcodebuild -create-xcframework \
  -library "$target_dir/aarch64-apple-ios/release/libsotto_ffi.a" -headers "$headers" \
  -library "$out/ios-sim/libsotto_ffi.a" -headers "$headers" \
  -library "$out/macos/libsotto_ffi.a" -headers "$headers" \
  -output mobile/ios/SottoFFI.xcframework
rm -rf "$out"
echo "build-xcframework: mobile/ios/SottoFFI.xcframework"
