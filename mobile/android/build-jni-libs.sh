#!/usr/bin/env bash
# Builds libsotto_ffi.so for every Android ABI with cargo-ndk into
# sotto/src/main/jniLibs/<abi>/, where the Android Gradle plugin packages it.
#
#   mobile/android/build-jni-libs.sh             release build, all ABIs
#   ABIS="arm64-v8a" mobile/android/build-jni-libs.sh
#
# Needs the Android NDK (ANDROID_NDK_HOME, or the NDK under ANDROID_HOME) and rustup. Installs
# cargo-ndk and the Rust targets if they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

abis=(${ABIS:-arm64-v8a armeabi-v7a x86_64 x86})
# Android 7.0 (API 24), the module's minSdk.
platform=24

declare -A rust_target=(
  [arm64-v8a]=aarch64-linux-android
  [armeabi-v7a]=armv7-linux-androideabi
  [x86_64]=x86_64-linux-android
  [x86]=i686-linux-android
)

cargo ndk --version >/dev/null 2>&1 || cargo install cargo-ndk --locked
for abi in "${abis[@]}"; do
  t="${rust_target[$abi]:?unknown ABI $abi}"
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done

targets=()
for abi in "${abis[@]}"; do targets+=(-t "$abi"); done
cargo ndk "${targets[@]}" --platform "$platform" -o mobile/android/sotto/src/main/jniLibs \
  build --release -p sotto-ffi --lib

echo "build-jni-libs: $(find mobile/android/sotto/src/main/jniLibs -name 'libsotto_ffi.so' | wc -l) libraries"
