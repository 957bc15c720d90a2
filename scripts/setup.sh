#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, and skips whatever is
# already there: the wasm target, cargo-nextest, the pinned wasm-bindgen-cli and cargo-fuzz, a
# C++ compiler (libFuzzer), Debian's Chromium, ChromeDriver and PostgreSQL (the broker's tests
# start private servers of it), the Node packages of tests/ (playwright-core, TypeScript,
# @types/fhir) and the npm package's own build tools in npm/ (esbuild, binaryen's wasm-opt). With --bench, also what the benchmark needs
# (scripts/bench.sh): Debian's nginx-light, wrk and linux-perf, and the peers in bench/.
# Safe to run again and again; the test and demo commands call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
bench=0
[ "${1:-}" = --bench ] && bench=1

# The CLI must equal the crate exactly ("these two schema versions must exactly match").
wasm_bindgen_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
[ -n "$wasm_bindgen_version" ] || { echo "setup: cannot read the pinned wasm-bindgen version from Cargo.toml" >&2; exit 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# The fuzz targets' driver (scripts/fuzz.sh), pinned like wasm-bindgen-cli.
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $cargo_fuzz_version"; then
  log "installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --force
fi

if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wasm_bindgen_version"; then
  # No --locked: its lockfile pins a crate version the registry mirror lacks (seen with 0.2.130).
  log "installing wasm-bindgen-cli $wasm_bindgen_version (several minutes, once)"
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --force
fi

# Debian packages, installed only when missing. Never Debian's binaryen: its wasm-opt 108
# produces broken modules; wasm-opt comes from the npm `binaryen` package instead.
apt_packages=(chromium chromium-driver postgresql systemd g++)
[ "$bench" = 0 ] || apt_packages+=(nginx-light wrk linux-perf)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  # Another apt may hold the lock for a while: wait for it rather than fail.
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node packages, each project from its lockfile, when missing or stale: the browser-test
# project, and the npm package's build tools (its devDependencies, for scripts/build-npm.sh).
node_dirs=(tests npm)
[ "$bench" = 0 ] || node_dirs+=(bench)
for dir in "${node_dirs[@]}"; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the Node packages of $dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
