#!/usr/bin/env bash
# Instructions per 100-byte text sealed, sotto against vodozemac's Megolm, counted by callgrind:
# each side runs with 0 and with N messages and the difference is divided by N, so set-up cost
# drops out. Counts are repeatable on a loaded machine, unlike times.
#
#   scripts/count-seal-instructions.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
cargo build -q --release -p sotto-core --example seal_instructions
bin=${CARGO_TARGET_DIR:-target}/release/examples/seal_instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
declare -A per
for side in sotto megolm; do
  base=$(count "$side" 0)
  full=$(count "$side" "$n")
  per[$side]=$(( (full - base) / n ))
  printf '%-7s %12d instructions per message\n' "$side" "${per[$side]}"
done
awk -v s="${per[sotto]}" -v m="${per[megolm]}" 'BEGIN { printf "megolm / sotto = %.3f\n", m / s }'
