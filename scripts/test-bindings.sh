#!/usr/bin/env bash
# Tests the uniffi bindings (bindings/ffi) from other languages, each against a relay on
# loopback (the sotto-relay binary on an ephemeral port with a temporary SQLite file):
#
#   1. the generated Kotlin, Python and Swift files are current (scripts/bindings.sh --check);
#   2. Python: pytest on bindings/python/tests (the client flows, the example bot, and the
#      Python example of bindings/README.md);
#   3. Kotlin on the JVM: bindings/kotlin/tests compiled with kotlinc, together with the Kotlin
#      example of bindings/README.md, and run with JNA.
#
# Installs what is missing first, into ${SOTTO_CACHE:-~/.cache/sotto} (a warm machine skips it):
# kotlinc from the npm package kotlin-compiler, JNA from Debian's libjna-java, pytest in a venv.
# kotlinx-coroutines comes from the compiler's lib folder; Java 17 must be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

cache="${SOTTO_CACHE:-$HOME/.cache/sotto}"
target_dir="${CARGO_TARGET_DIR:-target}"
kotlin_version="2.4.20"
kotlin_home="$cache/kotlin-$kotlin_version/node_modules/kotlin-compiler"
jna_jar="/usr/share/java/jna.jar"
venv="$cache/pytest-venv"
# Every suite is bounded; a hung relay or client fails the run instead of stalling CI.
suite_timeout="${SOTTO_BINDINGS_TIMEOUT:-600}"

step "bindings toolchain"
mkdir -p "$cache"
if [[ ! -x "$venv/bin/pytest" ]]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q pytest
fi
if [[ ! -x "$kotlin_home/bin/kotlinc" ]]; then
  have npm || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; }
  npm install --no-audit --no-fund --prefix "$cache/kotlin-$kotlin_version" "kotlin-compiler@$kotlin_version"
fi
if [[ ! -f "$jna_jar" ]]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libjna-java
fi
have java || { echo "test-bindings: Java 17 is needed for the Kotlin tests" >&2; exit 1; }
coroutines_jar="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
stdlib_jar="$kotlin_home/lib/kotlin-stdlib.jar"

step "generated bindings are current"
scripts/bindings.sh --check

step "relay binary"
cargo build -p sotto-relay
export SOTTO_RELAY_BIN="$PWD/$target_dir/debug/sotto-relay"
[[ "$target_dir" = /* ]] && export SOTTO_RELAY_BIN="$target_dir/debug/sotto-relay"
lib_dir="$(dirname "$(realpath bindings/python/sotto/libsotto_ffi.so)")"

step "Python (pytest)"
(cd bindings/python && timeout "$suite_timeout" "$venv/bin/pytest" -q -p no:cacheprovider)

step "Kotlin on the JVM (with the README's Kotlin example)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# The example block follows the marker `<!-- readme-example: kotlin -->` in bindings/README.md.
{
  echo "package dev.sotto.tests"
  awk '/<!-- readme-example: kotlin -->/ { marked = 1; next }
       marked && /^```kotlin/ { inside = 1; next }
       inside && /^```/ { exit }
       inside { print }' bindings/README.md
} >"$build/ReadmeExample.kt"
grep -q "fun askSupport" "$build/ReadmeExample.kt" || {
  echo "test-bindings: bindings/README.md has no Kotlin example defining askSupport" >&2
  exit 1
}
classpath="$jna_jar:$coroutines_jar"
timeout "$suite_timeout" "$kotlin_home/bin/kotlinc" -nowarn -cp "$classpath" \
  mobile/android/sotto/src/main/kotlin/dev/sotto/sotto.kt \
  bindings/kotlin/tests/SottoTests.kt "$build/ReadmeExample.kt" \
  -d "$build/tests.jar"
timeout "$suite_timeout" java -Djna.library.path="$lib_dir" \
  -cp "$build/tests.jar:$classpath:$stdlib_jar" dev.sotto.tests.SottoTestsKt

printf '\nbindings: all checks passed\n'
