// The npm package's JS layer in Chromium, on the built wasm module, with the browser's own
// sessionStorage, history, address bar and form submission (tests/npm/sdk.test.mjs runs the
// same layer in Node with stand-ins): the flow record kept and used once, one completion for a
// double call, the address bar cleaned (a malformed callback too), and a form POST that sends
// exactly the encoding the wasm module validated.
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

let server;
let origin;
let context;
let profile;
let page;
/** The bodies POSTed to /authorize. */
const posted = [];

before(async () => {
  assert.ok(existsSync(join(npm, 'build', 'loader.js')), 'npm/build is missing: run scripts/build-npm.sh first');
  // The package's files under /npm/…; any other GET is a blank page (its charset is not
  // UTF-8 on purpose: the form POST must still send UTF-8).
  server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c)).on('end', () => {
        posted.push({ path, body: Buffer.concat(chunks).toString('latin1'), type: req.headers['content-type'] });
        res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      });
      return;
    }
    if (path.startsWith('/npm/')) {
      const file = normalize(join(npm, path.slice(5)));
      if (!file.startsWith(npm) || !existsSync(file)) return res.writeHead(404).end();
      return res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=windows-1252' }).end(PAGE);
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

/** Loads the JS layer and the module in the page as `window.sdk`. */
async function load() {
  await page.evaluate(async () => {
    const [{ init, call }, { operations }, flow] = await Promise.all([
      import('/npm/build/loader.js'),
      import('/npm/src/core.js'),
      import('/npm/src/flow.js'),
    ]);
    await init('/npm/dist/connect_medicare_bg.wasm');
    const core = operations(call);
    const provider = {
      id: 'medicare',
      authorization_endpoint: `${location.origin}/authorize/`,
      client_id: 'client-123',
      redirect_uri: `${location.origin}/callback`,
      aud: 'https://sandbox.bluebutton.cms.gov/v2/fhir/',
      scopes_supported: null,
      authorize_post: true,
    };
    const fieldsFor = (state, challenge) => [
      ['response_type', 'code'], ['client_id', provider.client_id], ['redirect_uri', provider.redirect_uri],
      ['scope', 'openid profile patient/ExplanationOfBenefit.rs'], ['state', state], ['aud', provider.aud],
      ['code_challenge', challenge], ['code_challenge_method', 'S256'],
    ];
    /** connect() up to navigating: keeps the record in sessionStorage; the state and the request. */
    const start = (post = false) => {
      const [state, challenge, verifier] = core.start(crypto.getRandomValues(new Uint8Array(64)));
      const fields = fieldsFor(state, challenge);
      const form = new URLSearchParams(fields).toString();
      const answer = post
        ? { method: 'post', target: provider.authorization_endpoint, form }
        : { method: 'get', target: `${provider.authorization_endpoint}?${form}` };
      const record = core.finish(provider, { state, verifier, post }, { ...answer, expiresIn: 600 }, Date.now());
      flow.keepFlow(sessionStorage, state, record);
      return { state, fields, answer };
    };
    const calls = [];
    const completions = new Map();
    const handle = (url) =>
      flow.finishRedirect(core, {
        url,
        storage: sessionStorage,
        completions,
        complete: async (body, provider, returnTo) => (calls.push(body), { provider, returnTo }),
        here: () => location.href,
        replace: (u) => history.replaceState(history.state, '', u),
      });
    window.sdk = { core, flow, start, handle, calls };
  });
}

test("the module's PKCE challenge is WebCrypto's SHA-256 of its verifier, base64url", async () => {
  await page.goto(`${origin}/`);
  await load();
  const pairs = await page.evaluate(async () => {
    const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
      .replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const out = [];
    for (let i = 0; i < 20; i++) {
      const [, challenge, verifier] = window.sdk.core.start(crypto.getRandomValues(new Uint8Array(64)));
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      out.push([challenge, b64url(digest), verifier.length]);
    }
    return out;
  });
  for (const [ours, webcrypto, length] of pairs) {
    assert.equal(ours, webcrypto);
    assert.ok(length >= 43 && length <= 128, `verifier length ${length}`);
  }
});

test('a callback in the address bar: the record in sessionStorage is used once, one completion, the address bar cleaned', async () => {
  await page.goto(`${origin}/`);
  await load();
  const seen = await page.evaluate(async () => {
    const { start, handle, flow, calls } = window.sdk;
    const { state } = start();
    const kept = sessionStorage.getItem(flow.FLOW_PREFIX + state);
    history.replaceState(null, '', `/callback?code=c0de&state=${state}&tab=2#top`);
    const first = handle();
    const second = handle();
    const done = await first;
    return { state, kept, same: first === second, href: location.href, left: sessionStorage.getItem(flow.FLOW_PREFIX + state), done, calls };
  });
  assert.match(seen.kept, /^1\|\d+\|\d+\|/);
  assert.ok(seen.same, 'both calls share one completion');
  assert.equal(seen.href, `${origin}/callback?tab=2#top`);
  assert.equal(seen.left, null, 'the record is used');
  assert.equal(seen.calls.length, 1);
  assert.deepEqual(Object.keys(seen.calls[0]), ['state', 'code', 'code_verifier']);
  assert.equal(seen.calls[0].code, 'c0de');
  assert.deepEqual(seen.done, { provider: 'medicare', returnTo: null });

  // The same callback again, after a reload (the browser's back button, say): no record.
  await page.goto(`${origin}/callback?code=c0de&state=${seen.state}`);
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

test('the form POST sends exactly the encoding that was validated, in UTF-8, on a windows-1252 page', async () => {
  await page.goto(`${origin}/`);
  await load();
  const sent = await page.evaluate(() => {
    const { start } = window.sdk;
    const { answer, fields } = start(true);
    return { form: answer.form, fields };
  });
  posted.length = 0;
  await Promise.all([
    page.waitForURL(`${origin}/authorize/`),
    page.evaluate((fields) => window.sdk.flow.navigate(`${location.origin}/authorize/`, fields), sent.fields),
  ]);
  assert.equal(posted.length, 1);
  assert.equal(posted[0].type, 'application/x-www-form-urlencoded');
  assert.equal(posted[0].body, sent.form);
  // Any text goes through as UTF-8, the way URLSearchParams encoded it for the module.
  await page.goto(`${origin}/`);
  await load();
  const odd = [['a', 'é ü+&=%'], ['b', '💊']];
  posted.length = 0;
  await Promise.all([page.waitForURL(`${origin}/authorize/`), page.evaluate((f) => window.sdk.flow.navigate(`${location.origin}/authorize/`, f), odd)]);
  assert.equal(posted[0].body, new URLSearchParams(odd).toString());
});

test('a GET navigation goes to the validated URL exactly', async () => {
  await page.goto(`${origin}/`);
  await load();
  const target = await page.evaluate(() => window.sdk.start(false).answer.target);
  await Promise.all([page.waitForURL((url) => url.pathname === '/authorize/'), page.evaluate((t) => window.sdk.flow.navigate(t), target)]);
  assert.equal(page.url(), target);
});
