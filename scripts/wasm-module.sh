# Sourced by scripts/build-npm.sh and scripts/measure-wasm.sh (not run on its own): defines
# `wasm_module OUT_DIR [cargo feature flags...]`, which builds the SDK's wasm module and
# wasm-bindgen's glue into OUT_DIR — connect_medicare.js (the glue, as wasm-bindgen made it) and
# connect_medicare_bg.wasm (optimized) — and `esbuild`, the path of the package's esbuild.
#
# Environment (to compare build choices with the same command; every build prints the sizes):
#   CM_INLINE_THRESHOLD LLVM's inline threshold for the LTO build (default 40)
#   CM_WASM_OPT         wasm-opt's optimization passes (default: see below)
#
# Tools: the package's own devDependencies, from npm/node_modules/.bin (`cd npm && npm ci`, or
# scripts/setup.sh): esbuild, and wasm-opt from the npm `binaryen` package — never
# /usr/bin/wasm-opt: Debian's 108 emits broken modules. Besides them: cargo with the
# wasm32-unknown-unknown target and the pinned wasm-bindgen-cli in ~/.cargo/bin.

wasm_opt=npm/node_modules/.bin/wasm-opt
esbuild=npm/node_modules/.bin/esbuild

wasm_module() {
  local out=$1
  shift
  local tool
  for tool in "$wasm_opt" "$esbuild"; do
    [ -x "$tool" ] || { echo "wasm-module: $tool is missing: run \`cd npm && npm ci\` (or scripts/setup.sh)" >&2; return 1; }
  done
  local pinned
  pinned=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
  # sdk-wasm names wasm-bindgen itself (without `std`): it must be the workspace's pin.
  grep -q "^wasm-bindgen = { version = \"=$pinned\"" sdk-wasm/Cargo.toml \
    || { echo "wasm-module: sdk-wasm/Cargo.toml must pin wasm-bindgen =$pinned like Cargo.toml" >&2; return 1; }
  wasm-bindgen --version | grep -qx "wasm-bindgen $pinned" \
    || { echo "wasm-module: wasm-bindgen-cli $pinned is required: run scripts/setup.sh" >&2; return 1; }
  local target_dir
  target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

  # `cargo rustc --crate-type cdylib`, not `cargo build`: with the crate's two crate types
  # (cdylib for the package, rlib for tests) cargo skips LTO, and the module is larger.
  # LLVM's inliner at threshold 40 rather than opt-level z's default: a little less brotli
  # (compare with CM_INLINE_THRESHOLD). Only this last rustc, which does the LTO, sees it.
  log "cargo: release build of the SDK for wasm32 (opt-level z, LTO, panic=abort) $*"
  cargo rustc --profile wasm-release --locked --target wasm32-unknown-unknown -p connect-medicare --crate-type cdylib \
    "$@" -- -C "llvm-args=-inline-threshold=${CM_INLINE_THRESHOLD:-40}"

  log "wasm-bindgen $pinned --target web"
  rm -rf "$out"
  wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$out" "$target_dir/wasm32-unknown-unknown/wasm-release/connect_medicare.wasm"

  log "wasm-opt -Oz ($("$wasm_opt" --version))"
  # wasm-bindgen's generated glue is shipped as it made it, only minified by esbuild: the
  # module keeps the import and export names the glue uses.
  # --low-memory-unused: Rust leaves the first MiB below its data and stack, so wasm-opt may
  # fold small constant addresses into loads and stores.
  # --flatten --rereloop: Binaryen rebuilds the control flow, and -Oz then finds more; twice,
  # as written here, is a little less brotli than plain -Oz (compare with CM_WASM_OPT=-Oz).
  # The target_features section is dropped: only tools read it, not browsers.
  local passes
  read -r -a passes <<< "${CM_WASM_OPT:---flatten --rereloop -Oz -Oz --flatten --rereloop -Oz}"
  "$wasm_opt" "${passes[@]}" --low-memory-unused --converge --strip-debug --strip-producers --strip-target-features \
    "$out/connect_medicare_bg.wasm" -o "$out/optimized.wasm"
  mv "$out/optimized.wasm" "$out/connect_medicare_bg.wasm"
}
