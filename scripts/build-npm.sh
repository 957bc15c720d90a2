#!/usr/bin/env bash
# Builds the npm package `connect-medicare` into npm/dist/ from a clean tree, prints the
# payload a SPA ships (wasm + the JS layer with its loader: raw / gzip / brotli-11) and fails
# when it is over budget, then scans the package for canary secrets and fails on any hit.
#
#   scripts/build-npm.sh
#   cd npm && npm ci && npm run build      # the same, from the package's own directory
#
# Environment:
#   CM_PAYLOAD_BUDGET   brotli-11 bytes the payload may reach (default 20480 = 20 KB: the
#                       design's budget for a sign-in, which loads all of it today)
#   CM_CANARY_SECRETS   comma-separated strings that must not occur anywhere in the package
#                       (default: the canary client secret and tokens of the test broker)
#   CM_INLINE_THRESHOLD LLVM's inline threshold for the LTO build (default 40)
#   CM_WASM_OPT         wasm-opt's optimization passes (default: see below)
# The last two are there to compare choices, e.g. `CM_WASM_OPT=-Oz scripts/build-npm.sh`:
# every build prints the sizes.
#
# Steps: cargo (wasm-release profile: opt-level z, LTO, panic=abort; the SDK without `std`) → the
# pinned wasm-bindgen into npm/build/ (its module; its JS glue is not used) → wasm-opt -Oz,
# import and export names minified, the module's imports and exports checked against
# sdk-wasm/js/loader.js and the new names written into a copy of it → esbuild bundles and
# minifies the JS layer (npm/src/) with the loader into npm/dist/index.js and
# npm/dist/button.js, next to the wasm.
#
# Tools: the package's own devDependencies, from npm/node_modules/.bin (`cd npm && npm ci`, or
# scripts/setup.sh): esbuild, and wasm-opt from the npm `binaryen` package — never
# /usr/bin/wasm-opt: Debian's 108 emits broken modules. Besides them: cargo with the
# wasm32-unknown-unknown target, the pinned wasm-bindgen-cli in ~/.cargo/bin (scripts/setup.sh
# installs both), and node. The two checks at the end (tests/npm/payload.mjs and canary.mjs)
# use only Node's built-in modules: tests/node_modules is not needed.
#
# Packing does not build: npm/package.json's `prepack` only checks that every file the package
# lists is there (it fails with "run npm run build first" otherwise). A build needs cargo, the
# wasm32 target and wasm-bindgen-cli, and takes minutes; `npm pack` is run by the package tests
# (tests/npm/package.test.mjs), which must stay fast and work offline, and by `npm publish`,
# which must ship exactly the files that were built, measured and canary-scanned here. So:
# `npm run build`, then `npm pack` / `npm publish`. There is no `prepare` script either: it
# would run this build on every plain `npm install` inside npm/.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

wasm_opt=npm/node_modules/.bin/wasm-opt
esbuild=npm/node_modules/.bin/esbuild
for tool in "$wasm_opt" "$esbuild"; do
  [ -x "$tool" ] || { echo "build-npm: $tool is missing: run \`cd npm && npm ci\` (or scripts/setup.sh)" >&2; exit 1; }
done
pinned=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
# sdk-wasm names wasm-bindgen itself (without `std`): it must be the workspace's pin.
grep -q "^wasm-bindgen = { version = \"=$pinned\"" sdk-wasm/Cargo.toml \
  || { echo "build-npm: sdk-wasm/Cargo.toml must pin wasm-bindgen =$pinned like Cargo.toml" >&2; exit 1; }
wasm-bindgen --version | grep -qx "wasm-bindgen $pinned" \
  || { echo "build-npm: wasm-bindgen-cli $pinned is required: run scripts/setup.sh" >&2; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

# `cargo rustc --crate-type cdylib`, not `cargo build`: with the crate's two crate types
# (cdylib for the package, rlib for tests) cargo skips LTO, and the module is larger.
# LLVM's inliner at threshold 40 rather than opt-level z's default: a little less brotli
# (compare with CM_INLINE_THRESHOLD). Only this last rustc, which does the LTO, sees it.
log "cargo: release build of the SDK for wasm32 (opt-level z, LTO, panic=abort, no std)"
cargo rustc --profile wasm-release --locked --target wasm32-unknown-unknown -p connect-medicare --crate-type cdylib \
  --no-default-features -- -C "llvm-args=-inline-threshold=${CM_INLINE_THRESHOLD:-40}"

log "wasm-bindgen $pinned --target web"
rm -rf npm/build npm/dist
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir npm/build "$target_dir/wasm32-unknown-unknown/wasm-release/connect_medicare.wasm"

log "wasm-opt -Oz ($("$wasm_opt" --version)), then import and export names minified"
mkdir -p npm/dist
# wasm-bindgen's own JS glue is not shipped: the module exports one function of a string
# (see sdk-wasm/src/lib.rs), and sdk-wasm/js/loader.js is all the glue that needs. The loader
# speaks the pinned wasm-bindgen's ABI, so the module's imports and exports are checked to be
# exactly the ones it names. wasm-opt then renames them (and the import module) to a letter
# and prints the mapping, which is applied to the loader.
# --low-memory-unused: Rust leaves the first MiB below its data and stack, so wasm-opt may fold
# small constant addresses into loads and stores.
# --flatten --rereloop: Binaryen rebuilds the control flow, and -Oz then finds more; twice,
# as written here, is a little less brotli than plain -Oz (compare with CM_WASM_OPT=-Oz).
read -r -a passes <<< "${CM_WASM_OPT:---flatten --rereloop -Oz -Oz --flatten --rereloop -Oz}"
"$wasm_opt" "${passes[@]}" --low-memory-unused --converge --strip-debug --strip-producers \
  npm/build/connect_medicare_bg.wasm -o npm/build/optimized.wasm
# The last pass also drops the target_features section: only tools read it, not browsers.
"$wasm_opt" --minify-imports-and-exports-and-modules --strip-target-features \
  npm/build/optimized.wasm -o npm/dist/connect_medicare_bg.wasm > npm/build/names.json
node - npm/build/names.json npm/dist/connect_medicare_bg.wasm sdk-wasm/js/loader.js npm/build/loader.js <<'JS'
const { readFileSync, writeFileSync } = require('node:fs');
const [mapFile, wasmFile, loaderFile, outFile] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, 'utf8'));
const fail = (why) => {
  console.error(`build-npm: ${why}: sdk-wasm/js/loader.js no longer matches the module wasm-bindgen made`);
  process.exit(1);
};
const MODULE = './connect_medicare_bg.js';
const IMPORTS = ['__wbindgen_init_externref_table'];
const EXPORTS = ['memory', 'call', '__wbindgen_externrefs', '__wbindgen_malloc', '__wbindgen_free', '__wbindgen_start'];
// Exports the loader has no use for: wasm-bindgen's glue grows a string in place (the loader
// encodes it whole first), and two globals for `panic = "abort"` hooks.
const UNREAD = ['__wbindgen_realloc', '__abort_handler', '__instance_terminated'];
const same = (a, b) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
if (!same(map.imports.map(([m, n]) => `${m} ${n}`), IMPORTS.map((n) => `${MODULE} ${n}`))) {
  fail('imports ' + JSON.stringify(map.imports.map(([m, n]) => `${m} ${n}`)));
}
if (!same(map.exports.map(([n]) => n), [...EXPORTS, ...UNREAD])) fail('exports ' + JSON.stringify(map.exports.map(([n]) => n)));
let loader = readFileSync(loaderFile, 'utf8');
const swap = (from, to) => {
  const before = loader;
  loader = loader.replace(from, to);
  if (loader === before) fail(`${from} is not in the loader`);
};
// The import module's new name, as the minified module has it.
const [renamed] = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(wasmFile)));
swap(`'${MODULE}':`, `${JSON.stringify(renamed.module)}:`);
for (const [, name, short] of map.imports) swap(new RegExp(`\\b${name}:`, 'g'), `${JSON.stringify(short)}:`);
for (const [name, short] of map.exports) {
  if (!UNREAD.includes(name)) swap(new RegExp(`\\bwasm\\.${name}\\b`, 'g'), `wasm[${JSON.stringify(short)}]`);
}
const left = loader.match(/\bwasm\.\w+/g);
if (left) fail('unmapped exports ' + left.join(', '));
writeFileSync(outFile, loader);
JS

log "esbuild $("$esbuild" --version): bundle and minify the JS layer and the loader"
common=(--bundle --format=esm --platform=neutral --target=es2022 --minify --sourcemap --legal-comments=none --log-level=warning)
"$esbuild" npm/src/index.js "${common[@]}" --outfile=npm/dist/index.js
# The button shares the main entry's module instance (one wasm, one error class).
"$esbuild" npm/src/button.js "${common[@]}" --external:./index.js --outfile=npm/dist/button.js

# Both checks always print their figures; either one failing fails the build.
status=0
node tests/npm/payload.mjs npm || status=1
node tests/npm/canary.mjs npm || status=1
exit "$status"
