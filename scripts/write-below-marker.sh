#!/usr/bin/env bash
# Replaces everything below the marker line of a Markdown file with a report, keeping what is
# above it: how scripts/bench.sh writes BENCHMARKS.md and scripts/hostile.sh writes SECURITY.md.
#
#   scripts/write-below-marker.sh FILE MARKER REPORT
set -euo pipefail
file=$1 marker=$2 report=$3
grep -qxF "$marker" "$file" || { echo "$file has no line: $marker" >&2; exit 1; }
{ awk -v m="$marker" '{ print } $0 == m { exit }' "$file"; echo; cat "$report"; } >"$file.new"
mv "$file.new" "$file"
echo "==> wrote $file" >&2
