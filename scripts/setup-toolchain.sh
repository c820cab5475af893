#!/usr/bin/env bash
# Installs the toolchain pieces the tests need on a fresh machine. Every step checks first, so on a
# warm machine this takes a second.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! rustup component list --installed 2>/dev/null | grep -q '^rustfmt'; then
  rustup component add rustfmt
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
  rustup component add clippy
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# Browser tests: headless Chromium and its WebDriver, wasm-opt (binaryen) for the size budget,
# and wasm-bindgen-cli at exactly the wasm-bindgen version of Cargo.lock (the test runner and the
# bindings generator refuse a library of another version).
missing_debs=()
have chromium || missing_debs+=(chromium)
have chromedriver || missing_debs+=(chromium-driver)
have wasm-opt || missing_debs+=(binaryen)
if [ "${#missing_debs[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_debs[@]}"
fi
lock="$(dirname "$0")/../Cargo.lock"
wasm_bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$lock")"
if [ -z "$wasm_bindgen_version" ]; then
  echo "setup-toolchain: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  # --locked first; if a crate of the CLI's own lock file has been yanked from the registry since
  # its release, resolve that one afresh (the CLI's version stays exact either way).
  cargo install wasm-bindgen-cli --version "=$wasm_bindgen_version" --locked ||
    cargo install wasm-bindgen-cli --version "=$wasm_bindgen_version"
fi
