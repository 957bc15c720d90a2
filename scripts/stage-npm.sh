#!/usr/bin/env bash
# Copies the built npm package (the files its package.json lists) into DIR, as an app would
# get it from `npm install`: scripts/stage-npm.sh DIR. Run scripts/build-npm.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: scripts/stage-npm.sh DIR}
[ -f npm/dist/connect_medicare_bg.wasm ] || { echo "stage-npm: run scripts/build-npm.sh first" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest"
node -e '
const { cpSync } = require("node:fs");
const { join } = require("node:path");
const dest = process.argv[1];
const pkg = require("./npm/package.json");
for (const entry of ["package.json", ...pkg.files]) {
  cpSync(join("npm", entry), join(dest, entry), { recursive: true });
}
' -- "$dest"
