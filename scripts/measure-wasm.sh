#!/usr/bin/env bash
# Measures what the crates left out of the SDK's wasm module would cost: builds the module and
# wasm-bindgen's glue three ways through the same steps as scripts/build-npm.sh
# (scripts/wasm-module.sh) and prints their brotli-11 sizes, each as a ratio to the shipped one:
#   shipped          without `std` (as scripts/build-npm.sh builds it)
#   std              with the standard library (its panic and formatting paths)
#   gloo-net + serde with `std`, plus an export reading /v1/config with gloo-net, serde and
#                    serde-wasm-bindgen (the `measure-gloo-net` feature, sdk-wasm/src/measure.rs)
# docs/architecture.md ("The wasm boundary") gives the decision these figures support.
#
#   scripts/measure-wasm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
source scripts/wasm-module.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

variants=(shipped std gloo-net)
declare -A flags=([shipped]="--no-default-features" [std]="" [gloo-net]="--features measure-gloo-net")
for variant in "${variants[@]}"; do
  read -r -a args <<< "${flags[$variant]}"
  wasm_module "$work/$variant" "${args[@]}"
  "$esbuild" "$work/$variant/connect_medicare.js" --minify --format=esm --log-level=warning \
    --outfile="$work/$variant/glue.min.js"
done

node - "$work" "${variants[@]}" <<'JS'
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { brotliCompressSync, constants } = require('node:zlib');
const [work, ...variants] = process.argv.slice(2);
const brotli = (file) => {
  const bytes = readFileSync(file);
  return brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }).length;
};
const rows = variants.map((v) => {
  const wasm = brotli(join(work, v, 'connect_medicare_bg.wasm'));
  const glue = brotli(join(work, v, 'glue.min.js'));
  return { v, wasm, glue, total: wasm + glue };
});
const [reference] = rows;
console.log('wasm module + glue, brotli-11 bytes      wasm    glue   total   vs shipped');
for (const r of rows) {
  console.log(`  ${r.v.padEnd(34)} ${String(r.wasm).padStart(7)} ${String(r.glue).padStart(7)} ${String(r.total).padStart(7)}   ${(r.total / reference.total).toFixed(2)}×`);
}
JS
