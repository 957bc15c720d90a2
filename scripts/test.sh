#!/usr/bin/env bash
# Runs every test of the project, installing what is missing first (scripts/setup.sh):
# formatting, clippy (native and wasm32), the native test suites (protocol, sandbox, broker),
# the doc tests, the fuzz targets (scripts/fuzz.sh: every committed input, then 10 s each),
# the protocol's golden tests and the SDK's tests inside headless Chromium
# (wasm-bindgen-test), the npm package build with its size and canary checks, the package
# as a consumer imports it, and the browser tests (the slice, the vanilla and React examples):
# Playwright driving Debian's Chromium through the real sandbox and broker.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

scripts/setup.sh

log "the repository stands on its own: no tracked file reads or names the team's reference shelf"
# The pattern is written so that this file does not match itself.
if git grep -nI -e '\.\./shared' -e '/work/[s]hared' -e '[D]ESIGN\.md' -e '[m]ission-anchors' -e '[T]OOLCHAIN\.md' -- . ; then
  echo "test.sh: the files above name a folder outside the repository: copy what they need into it (fixtures/)" >&2
  exit 1
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (native, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo clippy (the broker's and the SDK's fuzzing entry points); the fuzz targets' formatting"
cargo clippy -p connect-medicare-broker -p connect-medicare --features fuzzing --locked -- -D warnings
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

log "cargo clippy (wasm32: protocol and SDK; the SDK with its measure-only feature too)"
cargo clippy -p connect-medicare-protocol -p connect-medicare --target wasm32-unknown-unknown \
  --locked -- -D warnings
cargo clippy -p connect-medicare --target wasm32-unknown-unknown --features measure-gloo-net \
  --locked -- -D warnings

log "native tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

log "doc tests"
cargo test --workspace --doc --locked

log "fuzzing: every committed input replayed, then each target for ${CM_FUZZ_SECONDS:-10} s (scripts/fuzz.sh)"
scripts/fuzz.sh

wasm_log=$(mktemp)
trap 'rm -f "$wasm_log"' EXIT
for crate in connect-medicare-protocol connect-medicare; do
  log "$crate: wasm tests in headless Chromium (wasm-bindgen-test)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p "$crate" --target wasm32-unknown-unknown --lib --locked \
    2>&1 | tee "$wasm_log"
  # Plain #[test]s are silently skipped on wasm32: a run with nothing executed is a failure.
  if ! grep -q 'Running headless tests in Chrome' "$wasm_log" \
    || ! grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$wasm_log"; then
    echo "test.sh: $crate's browser run did not execute its tests in Chromium" >&2
    exit 1
  fi
done

# The size budgets are build-npm.sh's defaults (tests/npm/payload.mjs): a data page (the JS
# entry alone) and a sign-in (entry, sign-in chunk, wasm), brotli-11.
log "npm package: build, payload sizes, canary scan"
scripts/build-npm.sh

log "React example: npm ci, vite build (examples/react/dist and dist-dev)"
scripts/build-react-example.sh

log "npm package: its JS layer on the built module; as a consumer gets it (npm pack, import in Node, tsc, canary); the oauth4webapi differential"
cargo build -p connect-medicare-protocol --example verdicts --locked
(cd tests && node --test npm/)

log "browser tests: the JS layer in Chromium; Chromium through the real sandbox and broker (the slice, the examples)"
cargo build -p connect-medicare-sandbox -p connect-medicare-broker --bins --locked
(cd tests && node --test e2e/sdk-browser.mjs e2e/esbuild.mjs e2e/slice.mjs e2e/vanilla.mjs e2e/two-providers.mjs e2e/button.mjs \
  e2e/session-fixation.mjs e2e/react.mjs)
