#!/usr/bin/env bash
# Builds the React example (examples/react, Vite + React) against the built npm package:
# installs its Node packages from its lockfile (npm ci, only when missing or stale), then
#   examples/react/dist/      the production build: what a user deploys, and what the broker
#                             serves in the demo and the end-to-end test
#   examples/react/dist-dev/  React's development build (StrictMode double-invokes effects
#                             only there), for the end-to-end test's one-completion check
# Both run under the broker's strict CSP: no inline script or style in index.html, and the
# wasm is a file of the site. Run scripts/build-npm.sh first (the example depends on
# "connect-medicare": "file:../../npm", i.e. npm/dist).
#
#   scripts/build-react-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

[ -f npm/dist/connect_medicare_bg.wasm ] \
  || { echo "build-react-example: npm/dist is missing: run scripts/build-npm.sh first" >&2; exit 1; }

cd examples/react
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing the Node packages of examples/react"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "vite build: examples/react/dist (production)"
npx --no-install vite build --logLevel warn
log "vite build: examples/react/dist-dev (React development build, StrictMode active)"
NODE_ENV=development npx --no-install vite build --outDir dist-dev --logLevel warn

# The CSP allows no inline script or style: the built pages must not need any.
for page in dist/index.html dist-dev/index.html; do
  if grep -Eq '<script(>|[^>]*[^/]>[^<])|<style|style=' "$page" \
    || ! grep -Eq '<script type="module" crossorigin src="/assets/[^"]+\.js"></script>' "$page"; then
    echo "build-react-example: $page has inline script or style, or no module script file" >&2
    exit 1
  fi
done
# The package's sign-in chunk stays a chunk of its own (loaded on connect and on the callback
# only), next to the wasm it loads; the app's entry chunk does not name the wasm.
for build in dist dist-dev; do
  ls "$build"/assets/connect_medicare_bg-*.wasm >/dev/null 2>&1 \
    || { echo "build-react-example: Vite did not emit connect_medicare_bg.wasm into $build" >&2; exit 1; }
  ls "$build"/assets/signin-*.js >/dev/null 2>&1 \
    || { echo "build-react-example: Vite did not emit the lazy sign-in chunk into $build" >&2; exit 1; }
  if grep -l 'connect_medicare_bg' "$build"/assets/index-*.js >/dev/null 2>&1; then
    echo "build-react-example: $build's entry chunk names the wasm: the sign-in chunk is not lazy" >&2
    exit 1
  fi
done
# No secret of the test broker may end up in what the app ships.
for build in dist dist-dev; do
  node ../../tests/npm/canary.mjs "$build"
done
log "built examples/react/dist and examples/react/dist-dev"
