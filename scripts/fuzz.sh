#!/usr/bin/env bash
# Runs the cargo-fuzz targets of sotto-core (core/fuzz) and of sotto-client (core/client/fuzz)
# one after another.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Defaults: 10 seconds, every target `cargo fuzz list` reports in either crate. Seeds in
# <crate>/fuzz/seeds/<target> are copied into the (gitignored) corpus <crate>/fuzz/corpus/<target>
# first. Prints the executions of each target and exits non-zero if any target crashed
# (artifacts: <crate>/fuzz/artifacts/<target>).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2; exit 2; }

seconds=10
if [[ $# -gt 0 ]]; then
  [[ $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
  seconds=$1
  shift
fi

wanted=("$@")
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

declare -a summary
failed=0
ran=0
for crate in core core/client; do
  cd "$root/$crate"
  mapfile -t listed < <(cargo +nightly fuzz list)
  targets=()
  for t in "${listed[@]}"; do
    if [[ ${#wanted[@]} -eq 0 ]] || printf '%s\n' "${wanted[@]}" | grep -qx "$t"; then
      targets+=("$t")
    fi
  done
  [[ ${#targets[@]} -gt 0 ]] || continue
  cargo +nightly fuzz build

  for t in "${targets[@]}"; do
    ran=$((ran + 1))
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    if [[ -d fuzz/seeds/$t ]]; then
      cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    fi

    printf '\n== %s (%ss)\n' "$t" "$seconds"
    log=$logs/$t.log
    status=0
    # libFuzzer reports on stderr; keep it visible and in the log.
    cargo +nightly fuzz run "$t" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 2>&1 | tee "$log" || status=$?

    # libFuzzer's last line on a clean run: "Done <N> runs in <S> second(s)".
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
    if [[ $status -eq 0 && -n $done_line ]]; then
      read -r _ runs _ _ secs _ <<<"$done_line"
      summary+=("$(printf '%-22s ok     %12s execs in %ss' "$t" "$runs" "$secs")")
    elif crash=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1); then
      failed=1
      summary+=("$(printf '%-22s CRASH  input: %s/%s' "$t" "$crate" "${crash#Test unit written to }")")
    else
      failed=1
      summary+=("$(printf '%-22s FAILED (exit %s, no libFuzzer result: build error?)' "$t" "$status")")
    fi
  done
done
[[ $ran -gt 0 ]] || { echo "no fuzz targets found" >&2; exit 1; }

printf '\n== fuzz summary (%ss per target)\n' "$seconds"
printf '%s\n' "${summary[@]}"
exit "$failed"
