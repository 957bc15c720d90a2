// The payload part of the benchmark (scripts/bench.sh): what a SPA ships to connect, handle the
// callback and make one read, with Connect Medicare and with three peers, each entry in
// bench/entries/ bundled the same way (esbuild, minified ESM for the browser, code splitting
// kept). Prints one Markdown table, every row as a ratio to Connect Medicare's total.
//
//   node bench/payload.mjs   (after scripts/build-npm.sh, and npm ci in bench/)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const esbuild = join(here, '..', 'npm', 'node_modules', '.bin', 'esbuild');
const version = JSON.parse(readFileSync(join(here, 'package.json'))).devDependencies;

const sizes = (bytes) => ({
  raw: bytes.length,
  gzip: gzipSync(bytes, { level: 9 }).length,
  brotli: brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }).length,
});
const add = (a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip, brotli: a.brotli + b.brotli });
const zero = { raw: 0, gzip: 0, brotli: 0 };

/** Bundles `entry`; returns the entry's own file and everything it loads, each measured. */
function bundle(entry) {
  const out = mkdtempSync(join(tmpdir(), 'cm-payload-'));
  try {
    execFileSync(esbuild, [
      join(here, 'entries', entry), '--bundle', '--minify', '--format=esm', '--platform=browser',
      '--splitting', '--legal-comments=none', '--log-level=error', `--outdir=${out}`,
      '--loader:.wasm=file', '--define:process.env.NODE_ENV="production"',
    ]);
    const files = readdirSync(out).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
    const main = entry.replace(/\.js$/, '.js');
    return {
      entry: sizes(readFileSync(join(out, main))),
      rest: files.filter((f) => f !== main).map((f) => sizes(readFileSync(join(out, f)))).reduce(add, zero),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const ours = bundle('connect-medicare.js');
// The wasm module the sign-in chunk loads next to itself (`new URL(…, import.meta.url)`).
const wasm = sizes(readFileSync(join(here, '..', 'npm', 'dist', 'connect_medicare_bg.wasm')));
const oursTotal = add(add(ours.entry, ours.rest), wasm);
const kb = (n) => (n / 1024).toFixed(1);
const row = (name, s) => `| ${name} | ${kb(s.raw)} | ${kb(s.gzip)} | ${kb(s.brotli)} | **${(s.brotli / oursTotal.brotli).toFixed(2)}×** |`;
const rows = [
  row('Connect Medicare, data page (what loads before anyone signs in)', ours.entry),
  row('Connect Medicare, all (data page, lazy sign-in chunk, wasm)', oursTotal),
];
for (const peer of ['fhirclient', 'oidc-client-ts', 'oauth4webapi']) {
  const { entry, rest } = bundle(`${peer}.js`);
  rows.push(row(`${peer} ${version[peer]}`, add(entry, rest)));
}

console.log(`### Payload: a SPA's bytes to connect, handle the callback and make one read (esbuild ${execFileSync(esbuild, ['--version']).toString().trim()}, minified ESM)

| what | raw KB | gzip -9 KB | brotli-11 KB | brotli vs Connect Medicare's all |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

The peers talk to the authorization server from the browser and hold the tokens there; Connect
Medicare's browser part holds none (the broker does), and its data page is all an app loads
until someone signs in.
`);
