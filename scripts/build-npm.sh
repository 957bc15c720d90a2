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
# Steps: cargo (release profile: opt-level z, LTO, panic=abort) → the pinned wasm-bindgen
# --target web into npm/build/ → wasm-opt -Oz → esbuild bundles and minifies the JS layer
# (npm/src/) with the glue into npm/dist/index.js and npm/dist/button.js, next to the wasm.
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
wasm-bindgen --version | grep -qx "wasm-bindgen $pinned" \
  || { echo "build-npm: wasm-bindgen-cli $pinned is required: run scripts/setup.sh" >&2; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

# `cargo rustc --crate-type cdylib`, not `cargo build`: with the crate's two crate types
# (cdylib for the package, rlib for tests) cargo skips LTO, and the module is 20% larger.
log "cargo: release build of the SDK for wasm32 (opt-level z, LTO, panic=abort)"
cargo rustc --release --locked --target wasm32-unknown-unknown -p connect-medicare --crate-type cdylib

log "wasm-bindgen $pinned --target web"
rm -rf npm/build npm/dist
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir npm/build "$target_dir/wasm32-unknown-unknown/release/connect_medicare.wasm"

log "wasm-opt -Oz ($("$wasm_opt" --version))"
mkdir -p npm/dist
"$wasm_opt" -Oz --strip-debug --strip-producers npm/build/connect_medicare_bg.wasm \
  -o npm/dist/connect_medicare_bg.wasm

# The wasm imports its error class from a snippet whose folder name wasm-bindgen hashes; the
# JS layer imports that very module through this re-export, so the bundle holds one class and
# `instanceof ConnectMedicareError` holds for every failure.
error_snippet=$(cd npm/build && ls snippets/*/js/error.js)
printf "export { ConnectMedicareError } from './%s';\n" "$error_snippet" > npm/build/error.js

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
