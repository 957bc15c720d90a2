#!/usr/bin/env bash
# Builds the npm package `connect-medicare` into npm/dist/ from a clean tree, prints the
# payload a SPA ships (wasm + JS glue + JS layer: raw / gzip / brotli-11) and fails when it is
# over budget, then scans the package for canary secrets and fails on any hit.
#
#   scripts/build-npm.sh
#
# Environment:
#   CM_PAYLOAD_BUDGET   brotli-11 bytes the payload may reach (default 15360 = 15 KB)
#   CM_CANARY_SECRETS   comma-separated strings that must not occur anywhere in the package
#                       (default: the canary client secret and tokens of the test broker)
#
# Steps: cargo (release profile: opt-level z, LTO, panic=abort; the SDK without `std`) → the
# pinned wasm-bindgen --target web into npm/build/ → wasm-opt -Oz, import and export names
# minified (and the glue told) → esbuild bundles and minifies the JS layer (npm/src/) with
# the glue into npm/dist/index.js and npm/dist/button.js, next to the wasm.
# Tools come from tests/node_modules (wasm-opt from the npm `binaryen` package — never
# /usr/bin/wasm-opt: Debian's 108 emits broken modules — and esbuild) and ~/.cargo/bin
# (wasm-bindgen). Run scripts/setup.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

wasm_opt=tests/node_modules/.bin/wasm-opt
esbuild=tests/node_modules/.bin/esbuild
for tool in "$wasm_opt" "$esbuild"; do
  [ -x "$tool" ] || { echo "build-npm: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done
pinned=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
# sdk-wasm names wasm-bindgen itself (without `std`): it must be the workspace's pin.
grep -q "^wasm-bindgen = { version = \"=$pinned\"" sdk-wasm/Cargo.toml \
  || { echo "build-npm: sdk-wasm/Cargo.toml must pin wasm-bindgen =$pinned like Cargo.toml" >&2; exit 1; }
wasm-bindgen --version | grep -qx "wasm-bindgen $pinned" \
  || { echo "build-npm: wasm-bindgen-cli $pinned is required: run scripts/setup.sh" >&2; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

# `cargo rustc --crate-type cdylib`, not `cargo build`: with the crate's two crate types
# (cdylib for the package, rlib for tests) cargo skips LTO, and the module is 20% larger.
# LLVM's inliner at threshold 40 rather than opt-level z's default: ~1% less brotli, measured
# (higher values grow the module again). Only this last rustc, which does the LTO, sees it.
log "cargo: release build of the SDK for wasm32 (opt-level z, LTO, panic=abort, no std)"
cargo rustc --release --locked --target wasm32-unknown-unknown -p connect-medicare --crate-type cdylib \
  --no-default-features -- -C llvm-args=-inline-threshold=40

log "wasm-bindgen $pinned --target web"
rm -rf npm/build npm/dist
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir npm/build "$target_dir/wasm32-unknown-unknown/release/connect_medicare.wasm"

log "wasm-opt -Oz ($("$wasm_opt" --version)), then import and export names minified"
mkdir -p npm/dist
# wasm-bindgen names every import `__wbg_<name>_<16 hex digits>`: ~60 hashes that no
# compressor can shrink, once in the module and once in the glue. wasm-opt renames imports,
# exports and the import module to a letter or two and prints the mapping, which is then
# applied to the glue (the `wasm.<export>` reads and the import object's keys).
# --low-memory-unused: Rust leaves the first MiB below its data and stack, so wasm-opt may fold
# small constant addresses into loads and stores.
"$wasm_opt" -Oz --low-memory-unused --converge --strip-debug --strip-producers \
  npm/build/connect_medicare_bg.wasm -o npm/build/optimized.wasm
# The last pass also drops the target_features section: only tools read it, not browsers.
"$wasm_opt" --minify-imports-and-exports-and-modules --strip-target-features \
  npm/build/optimized.wasm -o npm/dist/connect_medicare_bg.wasm > npm/build/names.json
node - npm/build/names.json npm/build/connect_medicare.js <<'JS'
const { readFileSync, writeFileSync } = require('node:fs');
const [mapFile, glueFile] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, 'utf8'));
let glue = readFileSync(glueFile, 'utf8');
const swap = (from, to, what) => {
  const before = glue;
  glue = glue.replace(from, to);
  if (glue === before) throw new Error(`build-npm: ${what} not found in the glue`);
};
const modules = new Set(map.imports.map(([module]) => module));
if (modules.size !== 1) throw new Error('build-npm: expected one import module, got ' + [...modules].join(', '));
// The import object: one module (renamed "a" by wasm-opt), one key per import.
swap(`"${[...modules][0]}": import0`, '"a": import0', 'the import module');
for (const [, name, short] of map.imports) swap(new RegExp(`\\b${name}:`, 'g'), `${JSON.stringify(short)}:`, name);
// Exports the glue reads; some (an abort hook, say) it never does.
for (const [name, short] of map.exports) {
  glue = glue.replace(new RegExp(`\\bwasm\\.${name}\\b`, 'g'), `wasm[${JSON.stringify(short)}]`);
}
const left = glue.match(/\bwasm\.(?!__wbg)\w+/g);
if (left) throw new Error('build-npm: unmapped exports in the glue: ' + left.join(', '));
writeFileSync(glueFile, glue);
JS

# The wasm imports its error class from a snippet whose folder name wasm-bindgen hashes; the
# JS layer imports that very module (the class and `brokerError`) through this re-export, so
# the bundle holds one class and `instanceof ConnectMedicareError` holds for every failure.
error_snippet=$(cd npm/build && ls snippets/*/js/error.js)
printf "export { ConnectMedicareError, brokerError } from './%s';\n" "$error_snippet" > npm/build/error.js

log "esbuild $("$esbuild" --version): bundle and minify the JS layer and the glue"
common=(--bundle --format=esm --platform=neutral --target=es2022 --minify --sourcemap --legal-comments=none --log-level=warning)
"$esbuild" npm/src/index.js "${common[@]}" --outfile=npm/dist/index.js
# The button shares the main entry's module instance (one wasm, one error class).
"$esbuild" npm/src/button.js "${common[@]}" --external:./index.js --outfile=npm/dist/button.js

# Both checks always print their figures; either one failing fails the build.
status=0
node tests/npm/payload.mjs npm || status=1
node tests/npm/canary.mjs npm || status=1
exit "$status"
