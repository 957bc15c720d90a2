// The built npm package in Chromium, with the browser's own sessionStorage, history, address
// bar, navigation and form submission (tests/npm/sdk.test.mjs runs the same layer in Node with
// stand-ins): the PKCE challenge against WebCrypto, the flow record kept and used once, one
// completion for a double call, the address bar cleaned (a malformed callback too), a form
// POST and a GET navigation that send exactly what the wasm module validated — and the lazy
// sign-in chunk: a page that only shows data never fetches the wasm module or its glue.
//
//   cd tests && node --test e2e/sdk-browser.mjs       # after scripts/build-npm.sh
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const npm = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'npm');
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };
const PAGE = '<!doctype html><meta charset="windows-1252"><title>sdk</title><body>';
const SCOPES = ['openid', 'profile', 'patient/Patient.rs', 'patient/ExplanationOfBenefit.rs'];

let server;
let origin;
let context;
let profile;
let page;
/** The bodies POSTed to /authorize/. */
const posted = [];
/** Every path the server was asked for, in order. */
const requested = [];

/** The provider entry of the fake broker's /v1/config (the test server's own origin). */
const provider = () => ({
  id: 'medicare',
  name: 'Medicare',
  kind: 'blue_button',
  authorization_endpoint: `${origin}/authorize/`,
  client_id: 'client-123',
  redirect_uri: `${origin}/callback`,
  aud: 'https://sandbox.bluebutton.cms.gov/v2/fhir/',
  scopes: SCOPES,
  scopes_supported: null,
  authorize_post: true,
  eob_types: [],
});

/** The authorize request a correct broker makes for a flow. */
const fieldsFor = (state, challenge) => [
  ['response_type', 'code'], ['client_id', 'client-123'], ['redirect_uri', `${origin}/callback`],
  ['scope', SCOPES.join(' ')], ['state', state], ['aud', 'https://sandbox.bluebutton.cms.gov/v2/fhir/'],
  ['code_challenge', challenge], ['code_challenge_method', 'S256'],
];

/** A fake broker under /cm: enough of the contract for a data page and for `connect()`. */
function broker(req, res, path, body) {
  const json = (value) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
  if (path === '/cm/v1/config') return json({ providers: [provider()] });
  if (path === '/cm/v1/session') return json({ connections: [] });
  if (path === '/cm/v1/fhir/medicare/Patient') {
    return json({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Patient', id: 'p1' } }] });
  }
  if (path === '/cm/v1/flows' && req.method === 'POST') {
    const { state, code_challenge: challenge, method } = JSON.parse(body);
    const fields = fieldsFor(state, challenge);
    return json({
      authorize: method === 'post'
        ? { method: 'post', action: `${origin}/authorize/`, fields }
        : { method: 'get', url: `${origin}/authorize/?${new URLSearchParams(fields)}` },
      expires_in: 600,
    });
  }
  res.writeHead(404).end();
}

before(async () => {
  assert.ok(existsSync(join(npm, 'dist', 'signin.js')), 'npm/dist is missing: run scripts/build-npm.sh first');
  // The package's files under /npm/…, the fake broker under /cm/…; any other GET is a blank
  // page (its charset is not UTF-8 on purpose: the form POST must still send UTF-8).
  server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    requested.push(path);
    const chunks = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      if (path.startsWith('/cm/')) return broker(req, res, path, body);
      if (req.method === 'POST') {
        posted.push({ path, body, type: req.headers['content-type'] });
        return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      }
      if (path.startsWith('/npm/')) {
        const file = normalize(join(npm, path.slice(5)));
        if (!file.startsWith(npm) || !existsSync(file)) return res.writeHead(404).end();
        return res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=windows-1252' }).end(PAGE);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  profile = mkdtempSync(join(tmpdir(), 'cm-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CM_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  await context.route('**/*', (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
  page = await context.newPage();
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  server?.close();
});

/** Loads the sign-in chunk (wasm-bindgen's glue and the module) and the JS layer's flow in the page as `window.sdk`. */
async function load() {
  await page.evaluate(async () => {
    const [signin, flow, error] = await Promise.all([
      import('/npm/dist/signin.js'),
      import('/npm/src/flow.js'),
      import('/npm/src/error.js'),
    ]);
    await signin.init();
    const calls = [];
    const completions = new Map();
    const handle = (url) =>
      flow.finishRedirect({
        url,
        storage: sessionStorage,
        completions,
        complete: async (body, provider, returnTo) => (calls.push(body), { provider, returnTo }),
        here: () => location.href,
        replace: (u) => history.replaceState(history.state, '', u),
        load: async () => ({ completeCallback: (...a) => error.wasm(() => signin.completeCallback(...a)) }),
      });
    window.sdk = { signin, flow, error, handle, calls };
  });
}

/**
 * Starts a sign-in in the page as `connect()` does, against `provider()` and a correct answer
 * for `method`, and waits until the module navigated. The state, the challenge and the fields.
 */
async function signIn(method = 'get') {
  const started = await page.evaluate(({ method, provider, scopes }) => {
    const { signin, flow, error } = window.sdk;
    const s = new signin.SignIn(method === 'post', undefined);
    const fields = [
      ['response_type', 'code'], ['client_id', provider.client_id], ['redirect_uri', provider.redirect_uri],
      ['scope', scopes.join(' ')], ['state', s.state], ['aud', provider.aud],
      ['code_challenge', s.codeChallenge], ['code_challenge_method', 'S256'],
    ];
    const authorize = method === 'post'
      ? { method: 'post', action: provider.authorization_endpoint, fields }
      : { method: 'get', url: `${provider.authorization_endpoint}?${new URLSearchParams(fields)}` };
    const out = { state: s.state, challenge: s.codeChallenge, fields, url: authorize.url };
    // After this evaluation returns: the navigation ends the page it runs in.
    setTimeout(() => error.wasm(() => s.follow(provider, { authorize, expires_in: 600 }, (k, r) => flow.keepFlow(sessionStorage, k, r))));
    return out;
  }, { method, provider: provider(), scopes: SCOPES });
  await page.waitForURL((url) => url.pathname === '/authorize/');
  return started;
}

test("the module's PKCE challenge is WebCrypto's SHA-256 of the verifier it keeps", async () => {
  for (let i = 0; i < 5; i++) {
    await page.goto(`${origin}/`);
    await load();
    const { state, challenge } = await signIn();
    assert.equal(new URL(page.url()).searchParams.get('code_challenge'), challenge);
    await load();
    const seen = await page.evaluate(async ({ state, origin }) => {
      const record = sessionStorage.getItem(window.sdk.flow.FLOW_PREFIX + state);
      const { codeVerifier } = window.sdk.signin.completeCallback(`${origin}/callback?code=c&state=${state}`, record);
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(codeVerifier));
      const b64url = btoa(String.fromCharCode(...new Uint8Array(digest))).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
      return { b64url, length: codeVerifier.length };
    }, { state, origin });
    assert.equal(seen.b64url, challenge);
    assert.equal(seen.length, 43);
  }
});

test('a callback in the address bar: the record in sessionStorage is used once, one completion, the address bar cleaned', async () => {
  await page.goto(`${origin}/`);
  await load();
  const { state } = await signIn();
  await load();
  const seen = await page.evaluate(async (state) => {
    const { handle, flow, calls } = window.sdk;
    const kept = sessionStorage.getItem(flow.FLOW_PREFIX + state);
    history.replaceState(null, '', `/callback?code=c0de&state=${state}&tab=2#top`);
    const first = handle();
    const second = handle();
    const done = await first;
    return { kept, same: first === second, href: location.href, left: sessionStorage.getItem(flow.FLOW_PREFIX + state), done, calls };
  }, state);
  assert.match(seen.kept, /^1\|\d+\|\d+\|/);
  assert.ok(seen.same, 'both calls share one completion');
  assert.equal(seen.href, `${origin}/callback?tab=2#top`);
  assert.equal(seen.left, null, 'the record is used');
  assert.equal(seen.calls.length, 1);
  assert.deepEqual(Object.keys(seen.calls[0]), ['state', 'code', 'code_verifier']);
  assert.equal(seen.calls[0].code, 'c0de');
  assert.deepEqual(seen.done, { provider: 'medicare', returnTo: null });

  // The same callback again, after a reload (the browser's back button, say): no record.
  await page.goto(`${origin}/callback?code=c0de&state=${state}`);
  await load();
  const again = await page.evaluate(() => window.sdk.handle().catch((e) => ({ code: e.code, href: location.href })));
  assert.deepEqual(again, { code: 'flow_not_found', href: `${origin}/callback` });
});

test('a malformed callback leaves the address bar too; an ordinary page is left alone', async () => {
  await page.goto(`${origin}/callback?code=secret&state=${'s'.repeat(43)}&state=x&tab=1`);
  await load();
  const malformed = await page.evaluate(() => window.sdk.handle().catch((e) => ({ code: e.code, href: location.href })));
  assert.deepEqual(malformed, { code: 'invalid_request', href: `${origin}/callback?tab=1` });
  await page.goto(`${origin}/search?tag=a&tag=b`);
  await load();
  const ordinary = await page.evaluate(async () => ({ result: await window.sdk.handle(), href: location.href }));
  assert.deepEqual(ordinary, { result: null, href: `${origin}/search?tag=a&tag=b` });
});

test('the form POST sends exactly the fields that were validated, in UTF-8, on a windows-1252 page', async () => {
  await page.goto(`${origin}/`);
  await load();
  posted.length = 0;
  const { fields } = await signIn('post');
  assert.equal(posted.length, 1);
  assert.equal(posted[0].type, 'application/x-www-form-urlencoded');
  assert.equal(posted[0].body, new URLSearchParams(fields).toString());
});

test('a GET navigation goes to the validated URL exactly', async () => {
  await page.goto(`${origin}/`);
  await load();
  const { url } = await signIn('get');
  assert.equal(page.url(), url);
});

test('a data page never fetches the wasm module or its glue; connect() does, and preload asks for it early', async () => {
  const fetched = [];
  const onRequest = (request) => fetched.push(new URL(request.url()).pathname);
  page.on('request', onRequest);
  try {
    await page.goto(`${origin}/`);
    const data = await page.evaluate(async () => {
      const { ConnectMedicare } = await import('/npm/dist/index.js');
      const client = await ConnectMedicare.create({ broker: '/cm' });
      window.client = client;
      const session = await client.session();
      const patient = await client.patient();
      const redirect = await client.handleRedirect();
      return { session, patient: patient.id, redirect };
    });
    assert.deepEqual(data, { session: { connections: [] }, patient: 'p1', redirect: null });
    assert.ok(fetched.includes('/npm/dist/index.js'));
    assert.deepEqual(fetched.filter((p) => /signin|\.wasm$/.test(p)), [], 'a data page loads no sign-in code');

    // connect(): the chunk and the module load, the flow is registered, the module navigates.
    await Promise.all([page.waitForURL((url) => url.pathname === '/authorize/'), page.evaluate(() => window.client.connect())]);
    assert.deepEqual(fetched.filter((p) => /signin|\.wasm$/.test(p)), ['/npm/dist/signin.js', '/npm/dist/connect_medicare_bg.wasm']);
    const authorize = new URL(page.url()).searchParams;
    assert.equal(authorize.get('code_challenge_method'), 'S256');
    assert.equal(authorize.get('code_challenge').length, 43);

    // preload: true asks for both while the page is still only showing data.
    fetched.length = 0;
    await page.goto(`${origin}/`);
    const wasm = page.waitForResponse((response) => response.url().endsWith('/connect_medicare_bg.wasm'));
    await page.evaluate(async () => {
      const { ConnectMedicare } = await import('/npm/dist/index.js');
      await ConnectMedicare.create({ broker: '/cm', preload: true });
    });
    await wasm;
    assert.ok(fetched.includes('/npm/dist/signin.js'));
  } finally {
    page.off('request', onRequest);
  }
});
