#!/usr/bin/env bash
# The hostile suite's totals, as SECURITY.md reports them: runs the broker's hostile-class test
# files (the table of attacks in broker/tests/hostile.rs and the security, session, upstream-fault,
# limit, race, replica and kill -9 tests beside it) and the fuzz targets (scripts/fuzz.sh), then
# prints one table. Every test here also runs in the README's test command; this command counts.
#
#   scripts/hostile.sh                     print the totals
#   CM_HOSTILE_WRITE=1 scripts/hostile.sh  also write them into SECURITY.md
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }
scripts/setup.sh

# The files whose every test is an attack or a fault, and what each holds.
files=(hostile security sessions resilience operations disconnect_race replicas refresh_lease panic logs binary)
# The upstream faults among them: throttling (both Retry-After forms), 5xx, drops, timeouts,
# oversized and unasked-for gzip bodies (resilience), a disconnect racing a refresh, bursts at
# expiry across replicas.
fault_files=(resilience disconnect_race replicas refresh_lease)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=()
for file in "${files[@]}"; do args+=(--test "$file"); done
log "the hostile-class tests (one at a time: they print what they held)"
started=$(date +%s)
cargo nextest run -p connect-medicare-broker --locked --no-capture --no-fail-fast "${args[@]}" \
  >"$out/tests.log" 2>&1 || { tail -n 60 "$out/tests.log" >&2; echo "hostile: a test failed" >&2; exit 1; }
tests_seconds=$(($(date +%s) - started))

log "the fuzz targets"
started=$(date +%s)
scripts/fuzz.sh >"$out/fuzz.log" 2>&1 || { tail -n 60 "$out/fuzz.log" >&2; exit 1; }
fuzz_seconds=$(($(date +%s) - started))

passed() { grep -cE "^ +PASS \[.*connect-medicare-broker::($1) " "$out/tests.log" || true; }
all=$(IFS='|'; passed "${files[*]}")
faults=$(IFS='|'; passed "${fault_files[*]}")
cases=$(grep -c '^hostile: ' "$out/tests.log" | tr -d ' ')
lost=$(sed -n 's/^hostile: durability .*sessions lost: \([0-9]*\)$/\1/p' "$out/tests.log" | awk '{ n += $1 } END { print n + 0 }')
kills=$(grep -c '^hostile: durability ' "$out/tests.log" | tr -d ' ')
fuzz_line=$(grep '^==> fuzzing: ' "$out/fuzz.log" | sed 's/^==> //')
targets=$(grep -cE '^\| [a-z_]+ \| [0-9]' "$out/fuzz.log" | tr -d ' ')

{
  echo "Measured $(date -u +%Y-%m-%d) by \`scripts/hostile.sh\` (tests ${tests_seconds} s, fuzzing ${fuzz_seconds} s with its build)."
  echo
  echo "Every line held: a test or a fuzz target that fails stops the command before this report."
  echo
  echo "| what | count |"
  echo "| --- | --- |"
  echo "| attack cases of \`broker/tests/hostile.rs\` and the kill -9 tests, each with its safe outcome | $cases |"
  echo "| hostile-class tests (${#files[@]} files of \`broker/tests/\`) | $all |"
  echo "| of which upstream faults survived (throttling, 5xx, drops, timeouts, hostile bodies, races, replicas) | $faults |"
  echo "| sessions lost to \`kill -9\` under load ($kills kills: the SQLite broker, one of two replicas on PostgreSQL) | $lost |"
  echo "| fuzz targets, every committed input replayed, then ${CM_FUZZ_SECONDS:-10} s each | $targets |"
  echo
  echo "By class (\`broker/tests/hostile.rs\`; durability is the kill -9 tests of \`binary.rs\` and \`replicas.rs\`):"
  echo
  echo "| class | cases |"
  echo "| --- | --- |"
  grep '^hostile: ' "$out/tests.log" | cut -d'|' -f1 | sed 's/^hostile: *//; s/ *$//' | sort | uniq -c |
    awk '{ printf "| %s | %s |\n", $2, $1 }'
  echo
  echo "Fuzzing: ${fuzz_line#fuzzing: }."
  echo
  sed -n '/^| target |/,$p' "$out/fuzz.log"
} >"$out/report"
cat "$out/report"

if [ "${CM_HOSTILE_WRITE:-0}" = 1 ]; then
  scripts/write-below-marker.sh SECURITY.md '<!-- scripts/hostile.sh writes below this line -->' "$out/report"
fi
