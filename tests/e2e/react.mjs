// The React example (examples/react, Vite + React, StrictMode on) end to end, in Debian's
// Chromium driven by Playwright, against the real sandbox (127.0.0.1, cross-site as CMS is)
// and broker (localhost, serving the built app under its strict CSP):
//   - the production build (examples/react/dist, what a user deploys): happy path with
//     screenshots (data, paging, filters, disconnect), demographics not shared, a 429 storm the
//     UI waits out, grant expiry → the reconnect prompt → consenting again;
//   - React's development build (examples/react/dist-dev), where StrictMode double-invokes
//     effects: the hook and the button call handleRedirect() more than once, and the broker
//     still gets exactly one POST /v1/flows/complete.
// Every test: no console error, no CSP violation, no request leaving loopback.
//
//   scripts/build-react-example.sh && cd tests && node --test e2e/react.mjs
//
// Screenshots go to tests/artifacts/react-*.png (CM_E2E_ARTIFACTS).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { addUpEveryClaim, launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = process.env.CM_E2E_ARTIFACTS ?? join(here, '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 60_000;

for (const build of ['dist', 'dist-dev']) {
  if (!existsSync(join(here, '..', '..', 'examples', 'react', build, 'index.html'))) {
    throw new Error(`examples/react/${build} is missing: run scripts/build-react-example.sh first`);
  }
}

let browser;
let profile;
let context;
let page;
let problems;
/** Browser requests by "METHOD /path" (this test's). */
let requests;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'cm-chromium-'));
  browser = await launchChromium();
});

after(async () => {
  await context?.close();
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// A fresh browser profile (cookies) for every test; every problem the page reports is kept.
beforeEach(async () => {
  await context?.close();
  context = await browser.newContext();
  // CSP violations, reported by the page itself as well as by Chromium's console.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
  });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  problems = [];
  requests = [];
  await context.route('**/*', (route) => /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(route.request().url())
    ? route.continue() : (problems.push(`left loopback: ${route.request().url()}`), route.abort()));
  context.on('console', (m) => m.type() === 'error'
    && problems.push(m.text().startsWith('Failed to load resource') ? `${m.text()}: ${m.location().url}` : m.text()));
  context.on('weberror', (e) => problems.push(String(e.error())));
  context.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
});

afterEach(() => {
  assert.deepEqual(problems, [], 'no console error, CSP violation or request off loopback');
});

/** Drops the failed loads a test provoked on purpose (matching `pattern`) from `problems`. */
const expected = (pattern) => {
  problems = problems.filter((p) => !pattern.test(p));
};
const count = (request) => requests.filter((r) => r === request).length;
const text = (selector) => page.locator(selector).innerText();

/** Clicks Connect Medicare and goes through the sandbox's sign-in and consent pages. */
async function connect(servers, { user = 'BBUser00000', share = true } = {}) {
  await page.goto(servers.app);
  const button = page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])');
  await button.click();
  await signInAtSandbox(page, {
    user,
    share,
    atLogin: () => assert.equal(new URL(page.url()).origin, servers.login, "the sign-in page is the sandbox's Medicare login, on its own origin"),
  });
}

/** The broker's count of answered POST /v1/flows/complete, whatever their status. */
async function completions(servers) {
  const metrics = await (await fetch(`${servers.app}metrics`)).text();
  return [...metrics.matchAll(/^cm_broker_requests_total\{method="POST",route="\/v1\/flows\/complete",status="\d+"\} (\d+)$/gm)]
    .reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('the production build (examples/react/dist)', () => {
  let servers;
  before(async () => {
    servers = await startServers({ site: '../examples/react/dist', redirectPath: '/callback' });
  });
  after(() => servers?.stop());
  const shot = (name) => page.screenshot({ path: join(artifacts, `react-${name}.png`), fullPage: true });

  test('happy path: connect, see the data, page and filter claims, disconnect', async () => {
    const response = await page.goto(servers.app);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
    assert.match(csp, /style-src 'self';/);
    assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|'unsafe-hashes'/);
    await page.locator('connect-medicare-button button[part=button]').waitFor();
    assert.equal(await page.locator('#data').count(), 0);
    await shot('1-start');

    await connect(servers, { user: 'BBUser00009' });
    await page.locator('#claims tbody tr').first().waitFor();
    assert.equal(new URL(page.url()).pathname, '/', 'back from the callback route');
    assert.doesNotMatch(page.url(), /code=|state=/);
    assert.equal(count('POST /v1/flows/complete'), 1, 'one completion');
    assert.equal(await completions(servers), 1, 'the broker completed the flow once');
    assert.equal(count('GET /v1/fhir/medicare/Coverage'), 1, 'no StrictMode double effects in production');
    const wasm = requests.filter((r) => r.endsWith('.wasm'));
    assert.ok(wasm.length > 0 && wasm.every((r) => /^GET \/assets\/connect_medicare_bg-[\w-]+\.wasm$/.test(r)),
      `the wasm loads from the site, where Vite emitted it: ${wasm}`);
    await page.locator('#beneficiary').waitFor();
    assert.match(await text('#beneficiary'), /William X Rodriguez/);
    await page.locator('#coverage li').first().waitFor();
    assert.equal(await page.locator('#coverage li').count(), 4);
    assert.match(await text('#coverage'), /Medicare Part A — active/);
    assert.match(await text('#claims-total'), /\(\d{3}\)/);
    assert.equal(await page.locator('#claims tbody tr').count(), 10);
    assert.match(await text('#page-label'), /^Page 1 of \d+$/);
    assert.match(await text('connect-medicare-button [part=status]'), /Connected to Medicare/);
    await shot('2-connected');

    // Paging: the next page is different, "Previous" shows the first one again.
    const firstPage = await text('#claims tbody');
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 2'));
    assert.notEqual(await text('#claims tbody'), firstPage);
    assert.equal(await page.locator('#claims tbody tr').count(), 10);
    await shot('3-page-2');
    await page.click('#previous');
    await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 1'));
    assert.equal(await text('#claims tbody'), firstPage);

    // Type filters: only Part D events, then Part D and carrier claims.
    await page.check('#filters input[value=pde]');
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#claims tbody tr td:first-child')];
      return cells.length > 0 && cells.every((td) => td.textContent === 'pde');
    });
    // Drug events show their cost and what the plan paid (from the line: they have no totals).
    const amounts = await page.locator('#claims tbody td.amount').allInnerTexts();
    assert.ok(amounts.length > 0 && amounts.every((a) => /^\$[\d,]+\.\d\d$/.test(a)), amounts.join(' '));
    const pdeTotal = await text('#claims-total');
    await page.check('#filters input[value=carrier]');
    await page.waitForFunction((before) => document.querySelector('#claims-total').textContent !== before, pdeTotal);
    const types = await page.locator('#claims tbody tr td:first-child').allInnerTexts();
    assert.ok(types.every((t) => t === 'pde' || t === 'carrier'), types.join(','));
    await shot('4-filtered');
    // Every claim added up, with a progress bar and a Stop (servers.mjs).
    await addUpEveryClaim(page);
    await shot('3b-every-claim');

    // Disconnect: the data goes, the broker forgot the connection.
    await page.click('connect-medicare-button button[part=disconnect][aria-busy=false]');
    await page.locator('connect-medicare-button button[part=button]').waitFor();
    await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Disconnected.'));
    assert.equal(await page.locator('#data').count(), 0);
    await shot('5-disconnected');
    const session = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
    assert.deepEqual(session.connections, []);
    // Back on the page later: still disconnected.
    await page.reload();
    await page.locator('connect-medicare-button button[part=button]').waitFor();
    assert.equal(await page.locator('#data').count(), 0);
  });

  test('demographics not shared: "personal information not shared", claims still load', async () => {
    await connect(servers, { user: 'BBUser00002', share: false });
    await page.locator('#claims tbody tr').first().waitFor();
    assert.equal(await page.locator('#no-demographics').isVisible(), true);
    assert.equal(await page.locator('#beneficiary').count(), 0);
    // The session said so: no Patient read (and so no 403 in the console).
    assert.equal(count('GET /v1/fhir/medicare/Patient'), 0);
    await shot('6-no-demographics');
  });

  test('a 429 storm: the UI waits (retryAfter) and recovers without losing the connection', async () => {
    await connect(servers, { user: 'BBUser00003' });
    await page.locator('#claims tbody tr').first().waitFor();
    await servers.admin('faults', { storm_seconds: 3 });
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#status').textContent.includes('busy'));
    await shot('7-throttled');
    await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 2'), null, { timeout: 20_000 });
    assert.equal(await page.locator('#data').isVisible(), true);
    assert.equal(await text('#status'), '');
    // The broker passed the 429s on as rate_limited: the browser saw them, as the app meant to.
    expected(/status of 429 .*\/v1\/fhir\/medicare\//);
  });

  test('grant expiry shows the reconnect prompt; consenting again restores access', async () => {
    await connect(servers, { user: 'BBUser00007' });
    await page.locator('#claims tbody tr').first().waitFor();
    await servers.admin('clock', { advance_seconds: 400 * 86400 });
    await page.reload();
    await page.locator('#reconnect').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#data').count(), 0);
    await page.locator('connect-medicare-button button[part=button]').filter({ hasText: 'Reconnect Medicare' }).waitFor();
    await shot('8-reconnect');
    await connect(servers, { user: 'BBUser00007' });
    await page.locator('#claims tbody tr').first().waitFor();
    assert.equal(await page.locator('#reconnect').count(), 0);
    // FHIR reads answered 401 reconnect_required on the way: the app's cue, not a fault.
    expected(/status of 401 .*\/v1\/fhir\/medicare\//);
  });
});

describe('the development build (examples/react/dist-dev): StrictMode double-invokes effects', () => {
  let servers;
  before(async () => {
    servers = await startServers({ site: '../examples/react/dist-dev', redirectPath: '/callback' });
  });
  after(() => servers?.stop());

  test('handleRedirect called by both StrictMode mounts and the button: one completion', async () => {
    const info = [];
    page.on('console', (m) => info.push(m.text()));
    await connect(servers, { user: 'BBUser00001' });
    await page.locator('#claims tbody tr').first().waitFor();
    await page.locator('#beneficiary').waitFor();
    await page.locator('#coverage li').first().waitFor();

    // React runs its development build here, where StrictMode mounts twice and runs every
    // effect twice: two Coverage reads from one Coverage view prove it.
    assert.ok(info.some((t) => t.includes('Download the React DevTools')), 'React development build');
    assert.equal(count('GET /v1/fhir/medicare/Coverage'), 2, 'StrictMode ran the effects twice');
    // ...and still one completion, in the browser and at the broker.
    assert.equal(count('POST /v1/flows/complete'), 1);
    assert.equal(await completions(servers), 1);
    // The surviving mount got the shared result: it returned to `returnTo` and shows the data.
    assert.equal(new URL(page.url()).pathname, '/');
    assert.doesNotMatch(page.url(), /code=|state=/);
    assert.equal(await text('#status'), '');
    assert.match(await text('connect-medicare-button [part=status]'), /Connected to Medicare/);
    await page.screenshot({ path: join(artifacts, 'react-9-strictmode.png'), fullPage: true });
  });
});
