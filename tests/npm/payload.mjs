// Prints the payload a SPA ships with connect-medicare — the wasm module, its JS glue and the
// JS layer of the main entry — raw, gzip -9 and brotli-11 (the one metric we compare), and
// exits 1 when the brotli total is over CM_PAYLOAD_BUDGET bytes (default 20 KB: the design's
// budget for a sign-in, which loads all of it today).
//
//   node tests/npm/payload.mjs <npm package dir>
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = process.argv[2] ?? 'npm';
const budget = Number(process.env.CM_PAYLOAD_BUDGET ?? 20 * 1024);

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

// What `import { ConnectMedicare } from "connect-medicare"` loads: the bundled entry (JS layer
// + wasm-bindgen glue, minified) and the wasm. The button is a separate, optional entry.
const dist = join(root, 'dist');
const shipped = [join(dist, 'index.js'), join(dist, 'connect_medicare_bg.wasm')].map(measure);
const button = measure(join(dist, 'button.js'));

const kb = (n) => (n / 1024).toFixed(1).padStart(6) + ' KB';
const row = (r) => `  ${r.file.padEnd(52)} ${String(r.raw).padStart(7)} ${String(r.gzip).padStart(7)} ${String(r.brotli).padStart(7)}`;
const total = shipped.reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { raw: 0, gzip: 0, brotli: 0 });

console.log('payload a SPA ships (bytes)                              raw    gzip  brotli');
for (const r of shipped) console.log(row(r));
console.log(row({ file: 'TOTAL', ...total }));
console.log(row({ ...button, file: `${button.file} (optional entry, not in the total)` }));
console.log(`payload: ${kb(total.raw)} raw, ${kb(total.gzip)} gzip, ${kb(total.brotli)} brotli-11; budget ${kb(budget)} brotli-11`);
if (total.brotli > budget) {
  console.error(`payload: FAIL — ${total.brotli} B brotli-11 is over the ${budget} B budget`);
  process.exit(1);
}
console.log('payload: ok');
