#!/usr/bin/env bash
# Runs every test of the project, installing what is missing first (scripts/setup.sh):
# formatting, clippy (native and wasm32), the native test suites, the doc tests, and the
# protocol's golden tests inside headless Chromium through wasm-bindgen-test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

scripts/setup.sh

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (native, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo clippy (wasm32: protocol and SDK)"
cargo clippy -p connect-medicare-protocol -p connect-medicare --target wasm32-unknown-unknown \
  --locked -- -D warnings

log "native tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

log "doc tests"
cargo test --workspace --doc --locked

log "protocol golden tests in headless Chromium (wasm-bindgen-test)"
wasm_log=$(mktemp)
trap 'rm -f "$wasm_log"' EXIT
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p connect-medicare-protocol --target wasm32-unknown-unknown --lib --locked \
  2>&1 | tee "$wasm_log"
# Plain #[test]s are silently skipped on wasm32: a run with nothing executed is a failure.
if ! grep -q 'Running headless tests in Chrome' "$wasm_log" \
  || ! grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$wasm_log"; then
  echo "test.sh: the browser run did not execute its tests in Chromium" >&2
  exit 1
fi
