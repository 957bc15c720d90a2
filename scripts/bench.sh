#!/usr/bin/env bash
# The benchmark (separate from the tests): installs what it needs when missing (nginx-light,
# wrk, linux-perf, the peers' npm packages), builds the release broker and the npm package, then prints one
# Markdown table per part, every figure beside its reference measured in the same run:
#
#   proxy   — direct vs nginx attaching a token vs axum + reqwest alone vs the broker, static
#             upstream (cm-bench)
#   memory  — RSS idle and at its peak under 64 streams, the broker and axum + reqwest alone
#             (cm-bench)
#   store   — session lookup with 100,000 sessions, SQLite and PostgreSQL (cm-bench)
#   paging  — every claim of one beneficiary, 200 ms latency, Blue Button's throttle (cm-bench
#             driving bench/paging.mjs)
#   payload — a SPA's bytes beside fhirclient, oidc-client-ts, oauth4webapi (bench/payload.mjs)
#   profile — where the broker spends a small read: perf samples of it (cm-bench)
#
#   scripts/bench.sh [parts…]          e.g. scripts/bench.sh proxy paging
#   CM_BENCH_WRITE=1 scripts/bench.sh  also writes the tables into BENCHMARKS.md
#
# CM_BENCH_SECONDS (default 5) and CM_BENCH_REPEATS (default 3) set each load run's length
# and how many runs a median is taken of. Linux, 2 CPUs or more: the proxies run on CPU 0, the
# upstream and the load tool on CPU 1. About 15 minutes on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '==> %s\n' "$*" >&2; }

scripts/setup.sh --bench
log "building the release broker and the benchmark"
cargo build --release --locked -p connect-medicare-broker -p connect-medicare-system-tests
log "building the npm package"
scripts/build-npm.sh >/dev/null

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(proxy memory store paging payload profile)
native=()
payload=0
for part in "${parts[@]}"; do
  case "$part" in
    proxy | memory | store | paging | profile) native+=("$part") ;;
    payload) payload=1 ;;
    *) echo "bench: unknown part $part (proxy, memory, store, paging, payload, profile)" >&2; exit 2 ;;
  esac
done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(rustc --version | cut -d' ' -f1-2), Node $(node --version)."
  echo
  if [ ${#native[@]} -gt 0 ]; then
    release="${CARGO_TARGET_DIR:-target}/release"
    "$release/cm-bench" "$release/connect-medicare-broker" "${native[@]}"
  fi
  if [ "$payload" = 1 ]; then
    node bench/payload.mjs
  fi
} | tee "$out"

if [ "${CM_BENCH_WRITE:-0}" = 1 ]; then
  scripts/write-below-marker.sh BENCHMARKS.md '<!-- scripts/bench.sh writes below this line -->' "$out"
fi
