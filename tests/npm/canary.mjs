// Scans every file of the built npm package (the wasm included) for canary secrets — the
// client secret and tokens configured in the test broker — and exits 1 on any hit.
//
//   CM_CANARY_SECRETS="a,b" node tests/npm/canary.mjs <npm package dir>
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export const DEFAULT_CANARIES = [
  'canary-client-secret-4f1d',
  'canary-access-token-4f1d',
  'canary-refresh-token-4f1d',
];

const root = process.argv[2] ?? 'npm';
const canaries = (process.env.CM_CANARY_SECRETS ?? DEFAULT_CANARIES.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (canaries.length === 0) {
  console.error('canary: no canary strings given');
  process.exit(1);
}

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.name === 'node_modules' ? [] : e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );

const files = walk(root);
const hits = [];
for (const file of files) {
  const bytes = readFileSync(file);
  for (const canary of canaries) {
    // As UTF-8 and as UTF-16LE (how a JS engine or a wasm data segment might hold it).
    for (const needle of [Buffer.from(canary, 'utf8'), Buffer.from(canary, 'utf16le')]) {
      if (bytes.includes(needle)) hits.push(`${relative(root, file)}: ${canary.slice(0, 12)}…`);
    }
  }
}
if (hits.length > 0) {
  console.error(`canary: FAIL — ${hits.length} hit(s):\n  ${hits.join('\n  ')}`);
  process.exit(1);
}
console.log(`canary: ok — ${canaries.length} canary string(s), ${files.length} files, 0 hits`);
