#!/usr/bin/env bash
# Builds the npm package `connect-medicare` into npm/dist/ from a clean tree, prints what a SPA
# ships (raw / gzip / brotli-11) — a data page (the JS main entry) and a sign-in (the entry, the
# lazy sign-in chunk with wasm-bindgen's glue, and the wasm) — and fails when either is over
# its budget, then scans the package for canary secrets and fails on any hit.
#
#   scripts/build-npm.sh
#   cd npm && npm ci && npm run build      # the same, from the package's own directory
#
# Environment:
#   CM_DATA_PAGE_BUDGET brotli-11 bytes a data page may load (default 5120 = 5 KB)
#   CM_SIGN_IN_BUDGET   brotli-11 bytes a sign-in may load beyond the entry (default: see tests/npm/payload.mjs)
#   CM_CANARY_SECRETS   comma-separated strings that must not occur anywhere in the package
#                       (default: the canary client secret and tokens of the test broker)
#   CM_INLINE_THRESHOLD, CM_WASM_OPT: build choices to compare, e.g.
#                       `CM_WASM_OPT=-Oz scripts/build-npm.sh` (see scripts/wasm-module.sh);
#                       every build prints the sizes.
#
# Steps: cargo (wasm-release profile: opt-level z, LTO, panic=abort; the SDK without `std`) → the
# pinned wasm-bindgen --target web into npm/build/ (its module and its glue) → wasm-opt -Oz
# into npm/dist/ → esbuild bundles and minifies the JS layer (npm/src/) into
# npm/dist/index.js, with the glue split into the chunk npm/dist/signin.js that the entry
# imports on first use, and npm/dist/button.js — all next to the wasm.
#
# Tools: see scripts/wasm-module.sh (esbuild and wasm-opt from npm/node_modules/.bin, cargo
# with the wasm32 target, the pinned wasm-bindgen-cli; scripts/setup.sh installs them all), and
# node. The two checks at the end (tests/npm/payload.mjs and canary.mjs)
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

# The wasm module and wasm-bindgen's glue, into npm/build/ (scripts/wasm-module.sh; the same
# steps scripts/measure-wasm.sh measures variants with).
source scripts/wasm-module.sh
rm -rf npm/build npm/dist
wasm_module npm/build --no-default-features
mkdir -p npm/dist
cp npm/build/connect_medicare_bg.wasm npm/dist/

log "esbuild $("$esbuild" --version): bundle and minify the JS layer; the glue as a lazy chunk"
common=(--bundle --format=esm --platform=neutral --target=es2022 --minify --sourcemap --legal-comments=none --log-level=warning)
# The main entry, and the sign-in chunk it imports on first use (npm/src/signin.js: the glue),
# which loads connect_medicare_bg.wasm next to itself (`new URL(…, import.meta.url)`).
"$esbuild" npm/src/index.js "${common[@]}" --splitting --outdir=npm/dist --chunk-names='[name]'
[ "$(cd npm/dist && ls -- *.js | tr '\n' ' ')" = "index.js signin.js " ] \
  || { echo "build-npm: esbuild made other files than dist/index.js and dist/signin.js: $(ls npm/dist)" >&2; exit 1; }
grep -q 'new URL("connect_medicare_bg.wasm",import.meta.url)' npm/dist/signin.js \
  || { echo "build-npm: dist/signin.js no longer finds the wasm next to itself" >&2; exit 1; }
# The button shares the main entry's module instance (one client class, one error class).
"$esbuild" npm/src/button.js "${common[@]}" --external:./index.js --outfile=npm/dist/button.js
# So does the React entry; React itself is the app's (an optional peer dependency).
"$esbuild" npm/src/react.js "${common[@]}" --external:./index.js --external:react --outfile=npm/dist/react.js

# The API reference, generated from the types (npm/docs/api/, shipped in the package).
log "typedoc $(npm/node_modules/.bin/typedoc --version | head -1): the API reference in npm/docs/api"
rm -rf npm/docs/api
(cd npm && node_modules/.bin/typedoc --logLevel Warn)

# Both checks always print their figures; either one failing fails the build.
status=0
node tests/npm/payload.mjs npm || status=1
node tests/npm/canary.mjs npm || status=1
exit "$status"
