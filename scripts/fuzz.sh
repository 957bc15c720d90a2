#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo-fuzz, coverage-guided libFuzzer, on stable Rust without a
# sanitizer): builds them, replays every committed input — the seed corpus (fuzz/corpus/, from
# the fixtures: fuzz/seeds.py) and the inputs that once failed (fuzz/regressions/) — then fuzzes
# each target for CM_FUZZ_SECONDS seconds (default 10). The test command runs it as it is.
#
#   scripts/fuzz.sh                             replay, then 10 s per target
#   CM_FUZZ_SECONDS=600 scripts/fuzz.sh proxy   a longer run of one target
#   CM_FUZZ_KEEP=1 scripts/fuzz.sh              keep the new inputs found in fuzz/corpus/
#
# A failure leaves its input under target/fuzz/artifacts/<target>/: copy it into
# fuzz/regressions/<target>/ with the fix, and a test where the parser lives.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

# cargo-fuzz (pinned) and a C++ compiler for libFuzzer.
scripts/setup.sh

seconds=${CM_FUZZ_SECONDS:-10}
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
triple=$(rustc -vV | sed -n 's/^host: //p')
cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

log "building ${#targets[@]} fuzz targets (instrumented, no sanitizer) into $target_dir"
started=$(date +%s)
# `cargo fuzz build` takes one target, or builds them all.
one=()
[ ${#targets[@]} -eq 1 ] && one=("${targets[0]}")
cargo fuzz build --sanitizer none --target-dir "$target_dir" "${one[@]}"
built=$(($(date +%s) - started))

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '| target | inputs replayed | new inputs | runs | seconds |\n| --- | --- | --- | --- | --- |\n' >"$scratch/table"
total_inputs=0
total_runs=0
for target in "${targets[@]}"; do
  bin="$target_dir/$triple/release/$target"
  artifacts="$target_dir/artifacts/$target/"
  mkdir -p "$artifacts" "corpus/$target" "regressions/$target"
  inputs=$(find "corpus/$target" "regressions/$target" -type f | wc -l)
  log "$target: replaying $inputs inputs"
  "$bin" -runs=0 -artifact_prefix="$artifacts" "corpus/$target" "regressions/$target" \
    >"$scratch/$target.replay" 2>&1 || { cat "$scratch/$target.replay" >&2; exit 1; }
  # New inputs go to the first directory: a scratch one, unless CM_FUZZ_KEEP=1.
  new="$scratch/$target"
  [ "${CM_FUZZ_KEEP:-0}" = 1 ] && new="corpus/$target"
  mkdir -p "$new"
  before=$(find "$new" -type f | wc -l)
  log "$target: fuzzing for $seconds s"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts" -print_final_stats=1 "$new" "corpus/$target" "regressions/$target" \
    >"$scratch/$target.log" 2>&1 || { tail -n 40 "$scratch/$target.log" >&2; echo "fuzz: $target failed; the input is in $artifacts" >&2; exit 1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log" | tail -1)
  found=$(($(find "$new" -type f | wc -l) - before))
  printf '| %s | %s | %s | %s | %s |\n' "$target" "$inputs" "$found" "${runs:-0}" "$seconds" >>"$scratch/table"
  total_inputs=$((total_inputs + inputs))
  total_runs=$((total_runs + ${runs:-0}))
done

log "fuzzing: ${#targets[@]} targets, built in ${built} s, $total_inputs committed inputs replayed, $total_runs runs, no failure"
cat "$scratch/table"
