// The paging part of the benchmark (scripts/bench.sh runs it through `cm-bench paging`): every
// claim of one beneficiary read with the built SDK (npm/dist) through a real broker, against
// the emulator adding latency to every request under Blue Button's throttle. Prints one
// Markdown table: each way of paging beside the reference, following `next` one page at a
// time at Blue Button's default page size.
//
//   node bench/paging.mjs <broker origin> <session cookie> <latency ms> <repeats>
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [broker, cookie, latency, repeats = '3'] = process.argv.slice(2);
const npm = join(dirname(fileURLToPath(import.meta.url)), '..', 'npm');
const { ConnectMedicare } = await import(join(npm, 'dist', 'index.js'));

// Node's fetch keeps no cookies: the session cookie goes on every request to the broker, as a
// browser's would. Answers of 429 are counted (none should reach the SDK).
let throttled = 0;
const fetchWithCookie = globalThis.fetch;
globalThis.fetch = async (url, init = {}) => {
  const response = await fetchWithCookie(url, { ...init, headers: { ...init.headers, cookie } });
  if (response.status === 429) throttled++;
  return response;
};
const storage = new Map();
const memoryStorage = {
  getItem: (k) => storage.get(k) ?? null,
  setItem: (k, v) => void storage.set(k, String(v)),
  removeItem: (k) => void storage.delete(k),
  key: (i) => [...storage.keys()][i] ?? null,
  get length() {
    return storage.size;
  },
};
const cm = await ConnectMedicare.create({ broker, storage: memoryStorage });

/** Every claim by following `next` links one page after another. */
async function oneByOne(query) {
  let n = 0;
  for await (const page of cm.claimPages(query)) n += page.resources.length;
  return n;
}

const ways = [
  ['following `next` one by one, default page size (reference)', () => oneByOne({})],
  ['following `next` one by one, pages of 50', () => oneByOne({ pageSize: 50 })],
  ['`allClaims()` (pages of the provider\'s largest size, planned from `last`)', async () => (await cm.allClaims()).length],
];

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
let reference;
let claims;
for (const [label, run] of ways) {
  const times = [];
  for (let i = 0; i < +repeats; i++) {
    // Blue Button's throttle window is one second: each run starts with it clear.
    await new Promise((r) => setTimeout(r, 1100));
    const started = performance.now();
    const n = await run();
    times.push((performance.now() - started) / 1000);
    if (claims !== undefined && n !== claims) throw new Error(`${label}: ${n} claims, expected ${claims}`);
    claims = n;
  }
  const t = median(times);
  reference ??= t;
  rows.push(`| ${label} | ${t.toFixed(2)} | **${(reference / t).toFixed(2)}×** |`);
}

console.log(`### Paging: all ${claims} claims of one beneficiary, ${latency} ms upstream latency, Blue Button's 10 req/s throttle

| how | seconds (median of ${repeats}) | speed-up vs reference |
| --- | --- | --- |
${rows.join('\n')}

429 answers that reached the SDK: ${throttled}. Target: \`allClaims()\` ≤ 1.0 s, zero 429s.
`);
