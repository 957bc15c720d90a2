// The npm package's JS layer and its built sign-in chunk (npm/dist/signin.js: wasm-bindgen's
// glue, and npm/dist/connect_medicare_bg.wasm, as scripts/build-npm.sh made them) in Node: the
// flow record in storage (kept only after validation, read once, swept when stale), one
// completion per callback however often it is handled, the address bar, the authorize request
// as the module checks it (GET and form POST), broker error mapping, paging and the claims
// search. In Node there is no page: the module's navigation refuses with `not_in_browser`, which
// is how these tests see that it got that far. The browser parts (sessionStorage, history, the
// navigation, the form POST) run for real in Chromium in tests/e2e/sdk-browser.mjs and the e2e
// suites.
//
//   cd tests && node --test npm/
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const npm = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'npm');
const sdk = await import(join(npm, 'dist', 'signin.js'));
const { ConnectMedicareError, brokerError, refusal, wasm } = await import(join(npm, 'src', 'error.js'));
const { brokerBase, usableProvider } = await import(join(npm, 'src', 'config.js'));
const { FLOW_PREFIX, finishRedirect, keepFlow, stripCallback } = await import(join(npm, 'src', 'flow.js'));
const { eobQuery, nextPage, pagePlan } = await import(join(npm, 'src', 'paging.js'));

before(() => sdk.init({ module_or_path: readFileSync(join(npm, 'dist', 'connect_medicare_bg.wasm')) }));

const REDIRECT = 'http://localhost:8080/callback';
const PROVIDER = {
  id: 'medicare',
  name: 'Medicare',
  kind: 'blue_button',
  client_id: 'client-123',
  authorization_endpoint: 'https://sandbox.bluebutton.cms.gov/v2/o/authorize/',
  aud: 'https://sandbox.bluebutton.cms.gov/v2/fhir/',
  scopes: ['openid', 'profile', 'launch/patient', 'patient/Patient.rs', 'patient/Coverage.rs', 'patient/ExplanationOfBenefit.rs'],
  scopes_supported: null,
  redirect_uri: REDIRECT,
  authorize_post: true,
  max_page_size: 50,
  eob_types: ['carrier', 'pde', 'dme', 'hha', 'hospice', 'inpatient', 'outpatient', 'snf'],
};

/** A Web Storage stand-in (what apps may pass as `storage`). */
function memoryStorage() {
  const map = new Map();
  return {
    map,
    get length() {
      return map.size;
    },
    key: (i) => [...map.keys()][i] ?? null,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => map.set(k, String(v)),
    removeItem: (k) => map.delete(k),
  };
}

/** The authorize request's parameters a correct broker sends for `state` and `challenge`. */
const params = (state, challenge) => [
  ['response_type', 'code'],
  ['client_id', PROVIDER.client_id],
  ['redirect_uri', REDIRECT],
  ['scope', PROVIDER.scopes.join(' ')],
  ['state', state],
  ['aud', PROVIDER.aud],
  ['code_challenge', challenge],
  ['code_challenge_method', 'S256'],
];

/**
 * connect() up to the navigation, as the client does it: a SignIn, the broker's `answer`
 * (default: a correct one), `follow` with the client's `keepFlow`. Resolves to the state and
 * the storage when the module got as far as navigating (in Node: `not_in_browser`).
 */
function started({ storage = memoryStorage(), returnTo, post = false, answer } = {}) {
  const signIn = wasm(() => new sdk.SignIn(post, returnTo));
  const { state } = signIn;
  const fields = params(state, signIn.codeChallenge);
  const authorize = answer?.(fields) ?? (post
    ? { method: 'post', action: PROVIDER.authorization_endpoint, fields }
    : { method: 'get', url: `${PROVIDER.authorization_endpoint}?${new URLSearchParams(fields)}` });
  assert.throws(
    () => wasm(() => signIn.follow(PROVIDER, { authorize, expires_in: 600 }, (s, record) => keepFlow(storage, s, record))),
    (e) => {
      if (e.code === 'not_in_browser' && e.message === 'There is no page to navigate from') return true;
      throw e;
    },
  );
  return { state, storage };
}

/** A `complete` that records its calls and resolves a little later. */
function recorder() {
  const calls = [];
  const complete = (body, provider, returnTo) => {
    calls.push(body);
    return new Promise((resolve) => setImmediate(() => resolve({ provider, returnTo, session: { connections: [] } })));
  };
  return { calls, complete };
}

/** The address bar: `here()` and `replace(url)` as the browser does them. */
function addressBar(initial) {
  const bar = { href: initial };
  bar.here = () => bar.href;
  bar.replace = (url) => {
    bar.href = new URL(url, bar.href).href;
  };
  return bar;
}

/** The module as the client hands it to finishRedirect: its refusals as ConnectMedicareErrors. */
const load = async () => ({ completeCallback: (...args) => wasm(() => sdk.completeCallback(...args)) });

const handle = (url, { storage, complete, completions = new Map(), bar = addressBar(undefined) }) =>
  finishRedirect({ url, storage, complete, completions, here: bar.here, replace: bar.replace, load });

const code = async (promise) => {
  const error = await promise.then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof ConnectMedicareError, String(error));
  return error.code;
};

describe('connect', () => {
  test('the record is kept under its state only after the authorize request passed', () => {
    const { state, storage } = started({ returnTo: '/claims?tab=1' });
    assert.deepEqual([...storage.map.keys()], [FLOW_PREFIX + state]);
    assert.match(storage.map.get(FLOW_PREFIX + state), /^1\|\d+\|\d+\|[\w-]{43}\|medicare\|[\w-]{43}\|\/claims\?tab=1$/);
    // A form POST, its fields as [name, value] pairs.
    assert.equal(started({ post: true }).storage.map.size, 1);
    // Tampered requests are refused, and nothing is kept.
    const tamper = [
      (f) => ({ method: 'get', url: `${PROVIDER.authorization_endpoint}?${new URLSearchParams([...f, ['prompt', 'none']])}` }),
      (f) => ({ method: 'get', url: `https://evil.example/authorize/?${new URLSearchParams(f)}` }),
      (f) => ({ method: 'post', action: PROVIDER.authorization_endpoint, fields: f }),
      (f) => ({ method: 'get', url: `${PROVIDER.authorization_endpoint}?${new URLSearchParams(f.map(([k, v]) => [k, k === 'aud' ? 'https://evil.example/' : v]))}` }),
      (f) => ({ method: 'get', url: 42 }),
    ];
    for (const answer of tamper) {
      const storage = memoryStorage();
      assert.throws(() => started({ storage, answer }), (e) => e instanceof ConnectMedicareError && e.code === 'invalid_config');
      assert.equal(storage.map.size, 0);
    }
    // A storage that cannot keep the record stops the sign-in before it navigates.
    const full = { ...memoryStorage(), setItem() { throw new Error('QuotaExceededError'); } };
    assert.throws(() => started({ storage: full }), (e) => e.code === 'not_in_browser' && /sessionStorage/.test(e.message));
  });

  test('returnTo must be a same-origin path', () => {
    for (const bad of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'claims', '/a b', '/a\nb']) {
      assert.throws(() => wasm(() => new sdk.SignIn(false, bad)), (e) => e instanceof ConnectMedicareError && e.code === 'invalid_config', bad);
    }
  });

  test('stale and unreadable records are swept when a flow is kept; other keys are left alone', () => {
    const storage = memoryStorage();
    storage.setItem('app:theme', 'dark');
    storage.setItem(FLOW_PREFIX + 'x', 'not a record');
    storage.setItem(FLOW_PREFIX + 'old', `1|0|1|${'a'.repeat(43)}|medicare|${'b'.repeat(43)}|`);
    const { state } = started({ storage });
    const live = started({ storage }).state;
    assert.deepEqual([...storage.map.keys()].sort(), ['app:theme', FLOW_PREFIX + state, FLOW_PREFIX + live].sort());
  });

  test('a storage that throws is not_in_browser', () => {
    const broken = { getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('QuotaExceededError'); }, removeItem() {} };
    assert.throws(() => keepFlow(broken, 's', 'r'), (e) => e.code === 'not_in_browser');
  });
});

describe('handleRedirect', () => {
  test('called twice for one callback (React StrictMode), it completes once', async () => {
    const { state, storage } = started({ returnTo: '/claims' });
    const { calls, complete } = recorder();
    const completions = new Map();
    const url = `${REDIRECT}?code=abc&state=${state}`;
    const first = handle(url, { storage, complete, completions });
    const second = handle(url, { storage, complete, completions });
    assert.equal(first, second);
    const a = await first;
    assert.equal(storage.map.size, 0, 'the record is used');
    assert.equal(await handle(url, { storage, complete, completions }), a);
    assert.equal(calls.length, 1);
    assert.deepEqual(Object.keys(calls[0]), ['state', 'code', 'code_verifier']);
    assert.equal(calls[0].code, 'abc');
    assert.equal(calls[0].state, state);
    assert.equal(calls[0].code_verifier.length, 43);
    assert.equal(a.provider, 'medicare');
    assert.equal(a.returnTo, '/claims');
    assert.equal(await handle('http://localhost:8080/?tab=1', { storage, complete, completions }), null);
    // A new page (no shared completion) finds the record used.
    assert.equal(await code(handle(url, { storage, complete })), 'flow_not_found');
    assert.equal(calls.length, 1);
  });

  test('state first, then error', async () => {
    const { calls, complete } = recorder();
    const storage = memoryStorage();
    const unknown = 'u'.repeat(43);
    assert.equal(await code(handle(`${REDIRECT}?error=access_denied&state=${unknown}`, { storage, complete })), 'flow_not_found');
    let { state } = started({ storage });
    const denied = handle(`${REDIRECT}?error=access_denied&error_description=Go+to+evil.example&state=${state}`, { storage, complete });
    const error = await denied.catch((e) => e);
    assert.equal(error.code, 'access_denied');
    assert.doesNotMatch(error.message, /evil/);
    assert.equal(storage.map.size, 0);
    ({ state } = started({ storage }));
    assert.equal(await code(handle(`${REDIRECT}?error=server_error&state=${state}`, { storage, complete })), 'upstream_error');
    // A malformed callback naming a flow does not spend it: the well-formed one still completes.
    ({ state } = started({ storage }));
    assert.equal(await code(handle(`${REDIRECT}?code=a&state=${state}&state=${state}`, { storage, complete })), 'invalid_request');
    assert.ok(storage.map.has(FLOW_PREFIX + state), 'the record is put back');
    await handle(`${REDIRECT}?code=a&state=${state}`, { storage, complete });
    assert.equal(calls.length, 1);
    calls.length = 0;
    // A module that cannot load spends no flow either.
    ({ state } = started({ storage }));
    const offline = () => Promise.reject(new ConnectMedicareError('not_in_browser', 'the chunk could not be fetched'));
    const completions = new Map();
    const callback = `${REDIRECT}?code=a&state=${state}`;
    const failed = await finishRedirect({ url: callback, storage, complete, completions, here: () => undefined, replace: () => {}, load: offline })
      .catch((e) => e);
    assert.equal(failed.message, 'the chunk could not be fetched');
    assert.ok(storage.map.has(FLOW_PREFIX + state), 'the record is still there for a retry');
    // ...and a retry in the same page (the same completions) completes it.
    await finishRedirect({ url: callback, storage, complete, completions, here: () => undefined, replace: () => {}, load });
    assert.equal(calls.length, 1);
    calls.length = 0;
    // An expired record is no record.
    ({ state } = started({ storage }));
    const key = FLOW_PREFIX + state;
    storage.setItem(key, storage.getItem(key).replace(/^1\|(\d+)\|\d+\|/, '1|$1|1|'));
    assert.equal(await code(handle(`${REDIRECT}?code=a&state=${state}`, { storage, complete })), 'flow_not_found');
    assert.equal(calls.length, 0);
  });

  test('code and state leave the address bar; a second call after that shares the completion', async () => {
    const { state, storage } = started();
    const { calls, complete } = recorder();
    const completions = new Map();
    const bar = addressBar(`http://localhost:8080/cb?code=secret-code&state=${state}&tab=2#top`);
    const first = handle(undefined, { storage, complete, completions, bar });
    assert.equal(bar.href, 'http://localhost:8080/cb?tab=2#top');
    assert.equal(handle(undefined, { storage, complete, completions, bar }), first);
    await first;
    assert.equal(calls.length, 1);
    assert.equal(stripCallback('http://x/cb?code=a&state=b&error=c&iss=d&session_state=e'), 'http://x/cb');
    // A malformed callback leaves the address bar too, and fails.
    const broken = addressBar(`http://localhost:8080/cb?code=secret-code&state=${state}&state=${state}&tab=2`);
    assert.equal(await code(handle(undefined, { storage, complete, bar: broken })), 'invalid_request');
    assert.equal(broken.href, 'http://localhost:8080/cb?tab=2');
    // An ordinary page may repeat its own parameters: not a callback, nothing to do, and the
    // wasm module is not loaded for it.
    const page = addressBar('http://localhost:8080/search?tag=a&tag=b');
    const never = () => assert.fail('the module was loaded for a page that is not a callback');
    assert.equal(await finishRedirect({ storage, complete, completions: new Map(), here: page.here, replace: page.replace, load: never }), null);
    assert.equal(page.href, 'http://localhost:8080/search?tag=a&tag=b');
    // Without a URL and outside a page: not_in_browser.
    assert.equal(await code(handle(undefined, { storage, complete })), 'not_in_browser');
  });
});

test("the module's refusals are ConnectMedicareErrors with their code; a trap is internal, not a RuntimeError", () => {
  const thrown = (() => {
    try {
      sdk.completeCallback(`${REDIRECT}?code=a&state=${'s'.repeat(43)}`, undefined);
    } catch (e) {
      return e;
    }
  })();
  assert.ok(thrown instanceof Error && !(thrown instanceof ConnectMedicareError));
  const mapped = refusal(thrown);
  assert.ok(mapped instanceof ConnectMedicareError);
  assert.deepEqual([mapped.code, mapped.message], ['flow_not_found', thrown.message]);
  const trap = refusal(new WebAssembly.RuntimeError('unreachable'));
  assert.ok(trap instanceof ConnectMedicareError && trap.code === 'internal' && trap.cause instanceof WebAssembly.RuntimeError);
});

test('the broker option is a same-origin path or an https (loopback http) URL', () => {
  for (const [raw, base] of [
    ['/cm', '/cm'],
    ['/cm/', '/cm'],
    ['https://app.example.com/cm', 'https://app.example.com/cm'],
    ['http://localhost:8080', 'http://localhost:8080'],
    ['http://127.0.0.1:9/cm/', 'http://127.0.0.1:9/cm'],
    ['/', ''],
  ]) {
    assert.equal(brokerBase(raw), base, raw);
  }
  for (const bad of ['', '//evil.example', '/\\evil.example', 'http://app.example.com', 'cm', '/cm?x', '/cm#x', '/c\tm', 'javascript:alert(1)', 'https://user:pw@app.example.com', undefined]) {
    assert.throws(() => brokerBase(bad), (e) => e instanceof ConnectMedicareError && e.code === 'invalid_config', String(bad));
  }
});

test('a /v1/config provider entry must have the shape the SDK reads', () => {
  assert.ok(usableProvider(PROVIDER));
  assert.ok(usableProvider({ ...PROVIDER, scopes_supported: undefined, eob_types: undefined, kind: 'newer_kind' }));
  for (const bad of [{ id: 'Medicare' }, { id: '../x' }, { client_id: 7 }, { scopes: 'openid' }, { scopes_supported: [1] }, { authorize_post: 'yes' }]) {
    assert.ok(!usableProvider({ ...PROVIDER, ...bad }), JSON.stringify(bad));
  }
  assert.ok(!usableProvider(null));
});

test('broker answers that are not 2xx map to the error class', () => {
  let e = brokerError(429, { code: 'rate_limited', message: 'slow down', retry_after: 3 });
  assert.ok(e instanceof ConnectMedicareError && e instanceof Error);
  assert.deepEqual([e.code, e.retryAfter, e.name], ['rate_limited', 3, 'ConnectMedicareError']);
  e = brokerError(429, undefined, '7');
  assert.deepEqual([e.code, e.retryAfter], ['rate_limited', 7]);
  for (const [status, expected] of [[502, 'broker_unreachable'], [404, 'invalid_config'], [418, 'internal']]) {
    e = brokerError(status, undefined);
    assert.deepEqual([e.code, e.retryAfter], [expected, undefined], String(status));
  }
  for (const [body, expected] of [
    [{ code: 'state_used', message: 'm' }, 'state_used'],
    [{ code: 'some_new_code', message: 'm' }, 'some_new_code'],
    [{ code: '<script>', message: 'm' }, 'upstream_error'],
    [{ code: '', message: 'm' }, 'upstream_error'],
  ]) {
    assert.equal(brokerError(400, body).code, expected);
  }
  assert.equal(brokerError(400, { code: 'x', message: 'm' }).message, 'm');
  assert.equal(brokerError(400, { code: 'x', message: 'é'.repeat(251) }).message, 'The broker refused the request');
  assert.equal(brokerError(400, { code: 'x', message: '' }).message, 'The broker refused the request');
  for (const after of [-5, 1.5, 2 ** 40, '3', Infinity]) {
    assert.equal(brokerError(429, { code: 'rate_limited', message: 'm', retry_after: after }).retryAfter, undefined, String(after));
  }
  for (const [header, expected] of [[' 7 ', 7], ['+7', 7], ['7.5', undefined], ['-1', undefined]]) {
    assert.equal(brokerError(503, undefined, header).retryAfter, expected, header);
  }
});

test('paging reads only startIndex and _count from the links', () => {
  const bundle = {
    resourceType: 'Bundle',
    link: [
      { relation: 'self', url: 'https://evil.example/v2/fhir/ExplanationOfBenefit?startIndex=0&_count=10&patient=-1' },
      { relation: 'next', url: 'https://evil.example/other?startIndex=10&_count=10' },
      { relation: 'last', url: 'https://evil.example/other?startIndex=30&_count=10#x' },
    ],
  };
  assert.deepEqual(nextPage(bundle), { startIndex: 10, count: 10 });
  assert.deepEqual(pagePlan(bundle).map((p) => p.startIndex), [10, 20, 30]);
  const noLast = { resourceType: 'Bundle', link: [{ relation: 'next', url: 'x?startIndex=5' }] };
  assert.equal(pagePlan(noLast), null);
  assert.deepEqual(nextPage(noLast), { startIndex: 5, count: undefined });
  assert.equal(nextPage({ resourceType: 'Bundle', link: [] }), null);
  assert.deepEqual(pagePlan({ resourceType: 'Bundle', link: [bundle.link[2]] }), []);
  for (const url of ['x', 'x?_count=10', 'x?startIndex=-1', 'x?startIndex=1e3', 'x?startIndex=0&_count=0', 'x?startIndex=0&startIndex=10']) {
    assert.throws(() => nextPage({ link: [{ relation: 'next', url }] }), (e) => e.code === 'upstream_error', url);
  }
  assert.throws(() => pagePlan({ link: [{ relation: 'next', url: 'x?startIndex=50&_count=10' }, { relation: 'last', url: 'x?startIndex=10' }] }), (e) => e.code === 'upstream_error');
  // A plan never goes back to the page it starts from (claims would be counted twice).
  const backwards = { link: [{ relation: 'next', url: 'x?startIndex=0&_count=10' }, { relation: 'last', url: 'x?startIndex=30&_count=10' }] };
  assert.throws(() => pagePlan(backwards, 0), (e) => e.code === 'upstream_error');
  assert.deepEqual(pagePlan(backwards).map((p) => p.startIndex), [0, 10, 20, 30]);
});

test("the broker's sealed paging links are followed alone, one page after another", () => {
  const sealed = {
    resourceType: 'Bundle',
    link: [
      { relation: 'next', url: 'https://app.example/cm/v1/fhir/ehr/Observation?_page=AbC-_9' },
      { relation: 'last', url: 'https://ehr.example/fhir?_getpages=x&_getpagesoffset=90&_count=10' },
    ],
  };
  assert.deepEqual(nextPage(sealed), { token: 'AbC-_9' });
  assert.equal(pagePlan(sealed), null, 'no parallel plan: opaque links go one after another');
  // The last page of an opaque search: no next, and its last link is not read.
  assert.deepEqual(pagePlan({ link: [sealed.link[1]] }), []);
  for (const url of ['x?_page=a&_count=5', 'x?_count=5&_page=a', 'x?_page=a&_page=b', 'x?_page=', 'x?_page=a%20b', 'x?_page=a.b']) {
    assert.throws(() => nextPage({ link: [{ relation: 'next', url }] }), (e) => e.code === 'upstream_error', url);
  }
});

test('the claims search is checked before it is sent', () => {
  assert.deepEqual(eobQuery(PROVIDER, { types: ['carrier', 'PDE'], since: '2020-01-01', until: new Date('2020-12-31T12:00:00Z'), pageSize: 50 }), [
    ['type', 'carrier,pde'],
    ['service-date', 'ge2020-01-01'],
    ['service-date', 'le2020-12-31'],
    ['_count', '50'],
  ]);
  assert.deepEqual(eobQuery(PROVIDER, { types: 'hha,snf' }), [['type', 'hha,snf']]);
  assert.deepEqual(eobQuery(PROVIDER), []);
  for (const bad of [{ types: 'carrier,nope' }, { since: '2020-1-1' }, { until: new Date('not a date') }, { pageSize: 51 }, { pageSize: 0 }, { pageSize: 1.5 }]) {
    assert.throws(() => eobQuery(PROVIDER, bad), (e) => e.code === 'invalid_config', JSON.stringify(bad));
  }
});
