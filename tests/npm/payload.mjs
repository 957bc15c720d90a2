// Prints what a SPA ships with connect-medicare, raw, gzip -9 and brotli-11 (the one metric
// compared), and exits 1 when either budget is over:
//   a data page      — the JS main entry alone (session, reads, paging, disconnect): the wasm
//                      module and its glue are never loaded (CM_DATA_PAGE_BUDGET, default 5 KB);
//   a sign-in's own  — what connect() and the callback load on top of the entry: the lazy
//                      sign-in chunk (wasm-bindgen's glue) and the wasm (CM_SIGN_IN_BUDGET,
//                      default below).
// A sign-in loads both, so its total is held at the sum of the two; the entry grows with the
// API under the data-page budget, the module under its own.
//
//   node tests/npm/payload.mjs <npm package dir>
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = process.argv[2] ?? 'npm';
const dataBudget = Number(process.env.CM_DATA_PAGE_BUDGET ?? 5 * 1024);
// With the entry, above the design's 20 KB (and the 22 KB the SDK issue allowed at most): the
// module in the design card's shape — wasm-bindgen's generated glue, records as JS objects,
// getrandom, web-sys navigation — is just under 21 KB; docs/architecture.md ("The payload
// budgets").
const signInBudget = Number(process.env.CM_SIGN_IN_BUDGET ?? 21 * 1024);

const measure = (file) => {
  const bytes = readFileSync(file);
  return {
    file: relative(root, file),
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
};

const dist = join(root, 'dist');
const entry = measure(join(dist, 'index.js'));
const signIn = [entry, measure(join(dist, 'signin.js')), measure(join(dist, 'connect_medicare_bg.wasm'))];
const button = measure(join(dist, 'button.js'));
const react = measure(join(dist, 'react.js'));

const kb = (n) => (n / 1024).toFixed(1) + ' KB';
const row = (r) => `  ${r.file.padEnd(52)} ${String(r.raw).padStart(7)} ${String(r.gzip).padStart(7)} ${String(r.brotli).padStart(7)}`;
const sum = (rows) => rows.reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { raw: 0, gzip: 0, brotli: 0 });
const total = sum(signIn);
const own = sum(signIn.slice(1));

console.log('what a SPA ships (bytes)                                   raw    gzip  brotli');
for (const r of signIn) console.log(row(r));
console.log(row({ file: 'sign-in TOTAL', ...total }));
console.log(row({ ...button, file: `${button.file} (optional entry, in neither total)` }));
console.log(row({ ...react, file: `${react.file} (optional entry, in neither total)` }));
console.log(`data page: ${kb(entry.brotli)} brotli-11 (the entry alone); budget ${kb(dataBudget)}`);
console.log(`sign-in:   ${kb(total.brotli)} brotli-11, ${kb(total.gzip)} gzip, ${kb(total.raw)} raw: the entry and ${kb(own.brotli)} of its own (chunk and wasm); budget ${kb(dataBudget)} + ${kb(signInBudget)}`);
console.log('peers for the same sign-in, brotli-11, as the SDK issue measured them (each would also need a backend for Blue Button): fhirclient 23.9 KB, oidc-client-ts 15.6 KB, oauth4webapi 6.2 KB');
let ok = true;
if (entry.brotli > dataBudget) {
  console.error(`payload: FAIL — a data page loads ${entry.brotli} B brotli-11, over the ${dataBudget} B budget`);
  ok = false;
}
if (own.brotli > signInBudget) {
  console.error(`payload: FAIL — a sign-in loads ${own.brotli} B brotli-11 beyond the entry, over the ${signInBudget} B budget`);
  ok = false;
}
if (!ok) process.exit(1);
console.log('payload: ok');
