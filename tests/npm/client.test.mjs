// The client of the built package (npm/dist/index.js) against a broker on a loopback socket
// that answers as the broker's contract says (protocol/src/contract.rs): the wire format mapped
// to camelCase in one place, cancellation (an aborted paging run sends nothing more), the page
// iterators, `onPage` progress, and the client's events. The same calls run against the real
// broker and sandbox in Chromium (tests/e2e/two-providers.mjs, vanilla.mjs, react.mjs).
//
//   cd tests && node --test npm/client.test.mjs
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const npm = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'npm');
const { ConnectMedicare, ConnectMedicareError } = await import(join(npm, 'dist', 'index.js'));

const PROVIDERS = [
  {
    id: 'medicare',
    name: 'Medicare',
    kind: 'blue_button',
    client_id: 'client-123',
    authorization_endpoint: 'https://sandbox.bluebutton.cms.gov/v2/o/authorize/',
    aud: 'https://sandbox.bluebutton.cms.gov/v2/fhir/',
    scopes: ['openid', 'patient/ExplanationOfBenefit.rs'],
    scopes_supported: null,
    redirect_uri: 'http://localhost:8080/callback',
    authorize_post: true,
    max_page_size: 50,
    eob_types: ['carrier', 'pde'],
    revocation_supported: true,
  },
  {
    id: 'ehr',
    name: 'Example Health',
    kind: 'smart',
    client_id: 'client-123',
    authorization_endpoint: 'https://ehr.example/authorize',
    aud: 'https://ehr.example/fhir',
    scopes: ['launch/patient', 'patient/Observation.rs'],
    scopes_supported: null,
    redirect_uri: 'http://localhost:8080/callback',
    authorize_post: false,
    max_page_size: null,
    eob_types: [],
    revocation_supported: false,
  },
];

/** Claims of the broker below: `CLAIMS` in pages of `_count`, Blue Button's links. */
const CLAIMS = 95;
/** Observations: opaque (sealed) links, 4 pages of 5. */
const OBSERVATIONS = 20;

let server;
let base;
/** Every request the broker received: `METHOD path?query`. */
let requests = [];
/** When set, FHIR answers wait for it (a promise) before they are written. */
let gate = null;
/** Answers the next FHIR request with this error body and status instead. */
let failNext = null;
/** Waiters for a number of requests (`arrived(n)`). */
let arrivals = [];
const arrived = (n) => new Promise((resolve) => {
  const check = () => (requests.length >= n ? resolve() : arrivals.push(check));
  check();
});

function eobPage(url) {
  const start = Number(url.searchParams.get('startIndex') ?? 0);
  const count = Number(url.searchParams.get('_count') ?? 10);
  const entries = [];
  for (let i = start; i < Math.min(start + count, CLAIMS); i++) entries.push({ resource: { resourceType: 'ExplanationOfBenefit', id: `carrier-${i}` } });
  const link = (relation, at) => ({ relation, url: `https://backend.example/v2/fhir/ExplanationOfBenefit?startIndex=${at}&_count=${count}&patient=p1` });
  const links = [link('first', 0)];
  if (start + count < CLAIMS) links.push(link('next', start + count));
  links.push(link('last', Math.floor((CLAIMS - 1) / count) * count));
  return { resourceType: 'Bundle', type: 'searchset', total: CLAIMS, link: links, entry: entries };
}

function observationPage(url) {
  const n = Number(url.searchParams.get('_page')?.replace('sealed', '') ?? 0);
  const entries = Array.from({ length: 5 }, (_, i) => ({ resource: { resourceType: 'Observation', id: `o${n * 5 + i}` } }));
  const link = n < OBSERVATIONS / 5 - 1 ? [{ relation: 'next', url: `${base}/v1/fhir/ehr/Observation?_page=sealed${n + 1}` }] : [];
  return { resourceType: 'Bundle', type: 'searchset', total: OBSERVATIONS, link, entry: entries };
}

before(async () => {
  server = createServer(async (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    for (const waiter of arrivals.splice(0)) waiter();
    const url = new URL(req.url, base);
    const json = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-connect-medicare'] !== '1') return json(403, { code: 'csrf_failed', message: 'the CSRF header is missing' });
    if (url.pathname === '/v1/config') return json(200, { providers: PROVIDERS });
    if (url.pathname === '/v1/session') {
      return json(200, {
        connections: [
          { provider: 'medicare', status: 'connected', patient: '-20140000008325', scopes: ['openid'], demographics_shared: true, grant_expires_at: '2027-01-01T00:00:00Z' },
          { provider: 'ehr', status: 'reconnect_required', patient: null, scopes: [], demographics_shared: false, grant_expires_at: null },
        ],
      });
    }
    if (url.pathname === '/v1/session/disconnect') return json(200, { disconnected: ['ehr'], revocations: [{ provider: 'ehr', status: 'not_supported' }] });
    if (gate) await gate;
    if (failNext) {
      const [status, body, headers] = failNext;
      failNext = null;
      return json(status, body, headers);
    }
    if (url.pathname === '/v1/fhir/medicare/ExplanationOfBenefit') return json(200, eobPage(url));
    if (url.pathname === '/v1/fhir/ehr/Observation') return json(200, observationPage(url));
    json(404, { code: 'not_found', message: 'no such resource' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

const memoryStorage = () => {
  const map = new Map();
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v), removeItem: (k) => map.delete(k) };
};

const client = () => ConnectMedicare.create({ broker: base, storage: memoryStorage() });

test("the broker's snake_case answers reach the app in camelCase", async () => {
  const cm = await client();
  assert.deepEqual(cm.providers, [
    { id: 'medicare', name: 'Medicare', kind: 'blue_button', revocationSupported: true, maxPageSize: 50 },
    { id: 'ehr', name: 'Example Health', kind: 'smart', revocationSupported: false, maxPageSize: null },
  ]);
  assert.deepEqual(await cm.session(), {
    connections: [
      { provider: 'medicare', status: 'connected', patient: '-20140000008325', scopes: ['openid'], demographicsShared: true, grantExpiresAt: '2027-01-01T00:00:00Z' },
      { provider: 'ehr', status: 'reconnect_required', patient: null, scopes: [], demographicsShared: false, grantExpiresAt: null },
    ],
  });
  assert.deepEqual(await cm.disconnect('ehr'), { disconnected: ['ehr'], revocations: [{ provider: 'ehr', status: 'not_supported' }] });
});

test('onPage reports every page with loaded and total, parallel or one after another', async () => {
  const cm = await client();
  const seen = [];
  const claims = await cm.allClaims({ pageSize: 10, onPage: ({ loaded, total, page }) => seen.push([loaded, total, page.resourceType]) });
  assert.equal(claims.length, CLAIMS);
  assert.deepEqual(claims.map((c) => c.id), Array.from({ length: CLAIMS }, (_, i) => `carrier-${i}`));
  assert.equal(seen.length, 10);
  assert.deepEqual(seen[0], [10, CLAIMS, 'Bundle']);
  // Pages arrive in any order when fetched in parallel: `loaded` only grows, to every claim.
  const loaded = seen.map(([n]) => n);
  assert.ok(loaded.every((n, i) => i === 0 || n > loaded[i - 1]), loaded.join());
  assert.equal(loaded.at(-1), CLAIMS);
  const first = await cm.search('Observation', {}, { provider: 'ehr' });
  const steps = [];
  const all = await first.all({ onPage: ({ loaded, total }) => steps.push(`${loaded}/${total}`) });
  assert.equal(all.length, OBSERVATIONS);
  assert.deepEqual(steps, ['5/20', '10/20', '15/20', '20/20']);
});

test("allClaims pages at the provider's largest page size unless told otherwise", async () => {
  const cm = await client();
  requests = [];
  assert.equal((await cm.allClaims()).length, CLAIMS);
  const counts = requests.map((r) => new URL(r.split(' ')[1], base).searchParams.get('_count'));
  assert.deepEqual(counts, ['50', '50'], 'two pages of 50, not ten of the server default');
  requests = [];
  await cm.allClaims({ pageSize: 25 });
  assert.equal(requests.length, 4);
});

test('allClaims fetches up to ten pages at once by default', async () => {
  const cm = await client();
  requests = [];
  gate = null;
  let open;
  // The first page arrives; the eighteen planned after it are held at the broker.
  const run = cm.allClaims({
    pageSize: 5,
    onPage: ({ loaded }) => {
      if (loaded === 5) gate = new Promise((resolve) => (open = resolve));
    },
  });
  await arrived(11);
  // A round trip of the client's own: an eleventh page in flight would have been sent before it.
  await cm.session();
  assert.equal(requests.filter((r) => r.includes('/ExplanationOfBenefit')).length, 11, requests.join(' '));
  open();
  gate = null;
  assert.equal((await run).length, CLAIMS);
});

test('the page iterators yield every page once, in order', async () => {
  const cm = await client();
  requests = [];
  const pages = [];
  for await (const page of cm.claimPages({ pageSize: 25 })) pages.push(page.resources.map((r) => r.id).join());
  assert.equal(pages.length, 4);
  assert.equal(pages.join().split(',').length, CLAIMS);
  assert.deepEqual(requests.map((r) => new URL(r.split(' ')[1], base).searchParams.get('startIndex')), [null, '25', '50', '75']);
  const observations = [];
  for await (const page of cm.pages('Observation', [], { provider: 'ehr' })) observations.push(...page.resources.map((o) => o.id));
  assert.deepEqual(observations, Array.from({ length: OBSERVATIONS }, (_, i) => `o${i}`));
});

test('a parallel paging run aborted with pages in flight sends nothing more', async () => {
  const cm = await client();
  requests = [];
  gate = null;
  let open;
  const stop = new AbortController();
  // The first page arrives; the pages after it are held at the broker, three in flight.
  const run = cm.allClaims({
    pageSize: 10,
    concurrency: 3,
    signal: stop.signal,
    onPage: ({ loaded }) => {
      if (loaded === 10) gate = new Promise((resolve) => (open = resolve));
    },
  });
  await arrived(4);
  const atAbort = requests.length;
  stop.abort();
  await assert.rejects(run, { name: 'AbortError' });
  open();
  gate = null;
  // A round trip of the client's own: a run that went on would have sent its next page first.
  await cm.session();
  assert.equal(requests.filter((r) => r.includes('/ExplanationOfBenefit')).length, atAbort, requests.join(' '));
  assert.equal(atAbort, 4);
});

test('an aborted paging run rejects with the reason and sends no further request', async () => {
  const cm = await client();
  for (const [name, run] of [
    ['one after another', (signal, onPage) => cm.search('Observation', {}, { provider: 'ehr', signal }).then((p) => p.all({ onPage }))],
    ['an iterator', async (signal, onPage) => {
      for await (const page of cm.claimPages({ pageSize: 10, signal })) onPage({ loaded: page.resources.length });
    }],
  ]) {
    const stop = new AbortController();
    let open;
    gate = new Promise((resolve) => (open = resolve));
    requests = [];
    // The first page arrives; the run is aborted while the second is on its way.
    const running = run(stop.signal, ({ loaded }) => {
      if (loaded >= 5) {
        stop.abort();
        setImmediate(open);
      }
    });
    setImmediate(open);
    let sentAtAbort;
    const reason = await running.then(() => null, (e) => e);
    sentAtAbort = requests.length;
    gate = null;
    assert.equal(reason?.name, 'AbortError', `${name}: ${reason}`);
    assert.ok(!(reason instanceof ConnectMedicareError), name);
    // Nothing more goes out after the abort, however long the run had to go.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(requests.length, sentAtAbort, `${name}: ${requests.join(' ')}`);
    assert.ok(sentAtAbort <= 3, `${name}: ${sentAtAbort} requests`);
  }
  // An already aborted signal sends nothing at all.
  requests = [];
  const stop = new AbortController();
  stop.abort();
  await assert.rejects(cm.session({ signal: stop.signal }), { name: 'AbortError' });
  await assert.rejects(cm.search('Observation', {}, { provider: 'ehr', signal: stop.signal }), { name: 'AbortError' });
  assert.deepEqual(requests, []);
});

test('the client tells its listeners about ended connections, throttling and disconnects', async () => {
  const cm = await client();
  const heard = [];
  for (const type of ['reconnectRequired', 'rateLimited', 'disconnected', 'connected']) {
    cm.addEventListener(type, (event) => heard.push([type, event.detail]));
  }
  failNext = [401, { code: 'reconnect_required', message: 'the connection ended' }];
  await assert.rejects(cm.search('Observation', {}, { provider: 'ehr' }), { code: 'reconnect_required' });
  failNext = [429, { code: 'rate_limited', message: 'slow down', retry_after: 7 }, { 'retry-after': '7' }];
  await assert.rejects(cm.explanationOfBenefit(), { code: 'rate_limited', retryAfter: 7 });
  await cm.disconnect({ provider: 'ehr' });
  assert.deepEqual(heard.map(([type, detail]) => [type, detail.provider ?? detail.disconnected, detail.error?.code ?? detail.revocations?.[0]?.status]), [
    ['reconnectRequired', 'ehr', 'reconnect_required'],
    ['rateLimited', 'medicare', 'rate_limited'],
    ['disconnected', ['ehr'], 'not_supported'],
  ]);
  assert.equal(heard[1][1].retryAfter, 7);
});
