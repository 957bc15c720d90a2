// The vanilla example end to end, in Debian's Chromium driven by Playwright, against the
// real sandbox (127.0.0.1, cross-site as CMS is) and broker (localhost, serving the app):
// happy path with screenshots, consent denied, demographics not shared, callbacks replayed,
// tampered or without a flow, token expiry with two tabs open, grant expiry and re-consent, a
// 429 storm the UI waits out, and a broker restart mid-session.
//
//   cd tests && node --test e2e/vanilla.mjs
//
// Screenshots of the main screens go to tests/artifacts/ (CM_E2E_ARTIFACTS).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { addUpEveryClaim, launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const artifacts = process.env.CM_E2E_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 60_000;

let servers;
let browser;
let profile;
let context;
let page;
let problems;

before(async () => {
  servers = await startServers({ site: '../examples/vanilla', redirectPath: '/callback' });
  profile = mkdtempSync(join(tmpdir(), 'cm-chromium-'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await servers?.stop();
});

// A fresh browser profile (cookies) for every test.
beforeEach(async () => {
  await context?.close();
  context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  problems = [];
  await page.route('**/*', (route) => /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(route.request().url())
    ? route.continue() : (problems.push(`left loopback: ${route.request().url()}`), route.abort()));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
});

const shot = (name) => page.screenshot({ path: join(artifacts, `vanilla-${name}.png`), fullPage: true });

/** Clicks Connect Medicare and goes through the sandbox's pages. */
async function connect({ user = 'BBUser00000', allow = true, share = true, method } = {}) {
  await page.goto(servers.app);
  if (method) await page.locator('connect-medicare-button').evaluate((b, m) => b.setAttribute('method', m), method);
  const button = page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])');
  await button.click();
  await signInAtSandbox(page, {
    user,
    allow,
    share,
    atLogin: () => assert.equal(new URL(page.url()).origin, servers.login, "the sign-in page is the sandbox's Medicare login, on its own origin"),
    atConsent: () => assert.equal(new URL(page.url()).origin, servers.sandbox, 'the consent page is Blue Button'),
  });
}

const text = (selector) => page.locator(selector).innerText();

test('happy path: connect, see the data, page and filter claims, disconnect', async () => {
  await page.goto(servers.app);
  await page.locator('connect-medicare-button button[part=button]').waitFor();
  await shot('1-start');
  await connect({ user: 'BBUser00009' });
  await page.locator('#claims tbody tr').first().waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'back from the callback route');
  assert.doesNotMatch(page.url(), /code=|state=/);
  assert.match(await text('#beneficiary'), /William X Rodriguez/);
  assert.equal(await page.locator('#coverage li').count(), 4);
  assert.match(await text('#claims-total'), /\(\d{3}\)/);
  assert.equal(await page.locator('#claims tbody tr').count(), 10);
  await shot('2-connected');

  const firstPage = await text('#claims tbody');
  await page.click('#next');
  await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 2'));
  assert.notEqual(await text('#claims tbody'), firstPage);
  await page.click('#previous');
  await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 1'));

  await page.check('#filters input[value=pde]');
  await page.waitForFunction(() => [...document.querySelectorAll('#claims tbody tr td:first-child')]
    .every((td) => td.textContent === 'pde'));
  // Drug events show their cost and what the plan paid (from the line, as they have no totals).
  const amounts = await page.locator('#claims tbody td.amount').allTextContents();
  assert.ok(amounts.length > 0 && amounts.every((a) => /^\$[\d,]+\.\d\d$/.test(a)), amounts.join(' '));
  await shot('3-filtered');
  // Every claim added up, with a progress bar and a Stop (servers.mjs).
  await addUpEveryClaim(page);
  await shot('3b-every-claim');

  await page.click('connect-medicare-button button[part=disconnect][aria-busy=false]');
  await page.locator('connect-medicare-button button[part=button]').waitFor();
  assert.equal(await page.locator('#data').isHidden(), true);
  // The button says what Medicare did: the grant was revoked (not merely "disconnected").
  assert.match(await page.locator('connect-medicare-button [part=status]').textContent(), /Medicare accepted the request to stop sharing your data/);
  await shot('4-disconnected');
  // The broker forgot the connection.
  const session = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
  assert.deepEqual(session.connections, []);
  assert.deepEqual(problems, []);
});

test('a form POST sign-in goes through the Medicare login on another origin under the example app CSP', async () => {
  await connect({ method: 'post' });
  await page.locator('#claims tbody tr').first().waitFor();
  // A CSP refusal would be a console error ("Sending form data to … violates … form-action").
  assert.deepEqual(problems, []);
});

test('disconnect while Blue Button cannot revoke: the button says it will be asked again', async () => {
  await servers.admin('faults', { revoke_status: 502 });
  try {
    await connect({});
    await page.locator('connect-medicare-button button[part=disconnect]').waitFor();
    await page.click('connect-medicare-button button[part=disconnect][aria-busy=false]');
    await page.locator('connect-medicare-button button[part=button]').waitFor();
    const said = await page.locator('connect-medicare-button [part=status]').textContent();
    assert.match(said, /could not be reached to end this app's access; it will be asked again/);
    assert.doesNotMatch(said, /accepted the request/);
  } finally {
    await servers.admin('faults', { revoke_status: 0 });
  }
});

test('consent denied: a clear message, no connection', async () => {
  await connect({ allow: false });
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('chose not to share'));
  assert.equal(await page.locator('#data').isHidden(), true);
  assert.doesNotMatch(page.url(), /error=|state=/);
  await shot('5-denied');
});

test('demographics not shared: the patient view degrades, claims still load', async () => {
  await connect({ user: 'BBUser00002', share: false });
  await page.locator('#claims tbody tr').first().waitFor();
  assert.equal(await page.locator('#no-demographics').isVisible(), true);
  assert.equal(await page.locator('#beneficiary dt').count(), 0);
  await shot('6-no-demographics');
  assert.deepEqual(problems.filter((p) => !/403/.test(p)), []);
});

test('a 429 storm: the UI waits and recovers without losing the connection', async () => {
  await connect({ user: 'BBUser00003' });
  await page.locator('#claims tbody tr').first().waitFor();
  // Three seconds of throttling at the sandbox: longer than the broker waits out itself.
  await servers.admin('faults', { storm_seconds: 3 });
  await page.click('#next');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('busy'));
  await shot('7-throttled');
  await page.waitForFunction(() => document.querySelector('#page-label').textContent.startsWith('Page 2'), null, { timeout: 20_000 });
  assert.equal(await page.locator('#data').isVisible(), true);
  assert.equal(await text('#status'), '');
});

test('the broker restarted mid-session: the user stays connected', async () => {
  await connect({ user: 'BBUser00004' });
  await page.locator('#claims tbody tr').first().waitFor();
  await servers.restartBroker();
  await page.reload();
  await page.locator('#claims tbody tr').first().waitFor();
  assert.match(await text('#beneficiary'), /Linda/);
});

/** Moves the sandbox's clock (tokens and grants age; the broker's clock does not move). */
const advanceSandbox = (seconds) => servers.admin('clock', { advance_seconds: seconds });

async function metric(name) {
  const text = await (await fetch(`${servers.app}metrics`)).text();
  return Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1] ?? NaN);
}

test('callbacks replayed, tampered, or without a flow never connect', async () => {
  // Catch the callback URL on its way back, then finish the sign-in normally.
  let callback;
  page.on('request', (r) => { if (r.url().startsWith(servers.redirect)) callback ??= r.url(); });
  await connect({ user: 'BBUser00005' });
  await page.locator('#claims tbody tr').first().waitFor();
  assert.ok(callback?.includes('code='));
  const before = await metric('cm_broker_refreshes_total');

  // The same callback again (a reload, the back button): refused, the session stays.
  await page.goto(callback);
  await page.waitForFunction(() => /state|flow/.test(document.querySelector('#status').textContent));
  await page.locator('#claims tbody tr').first().waitFor();

  // Opened in a second tab: that tab never started this flow.
  const other = await context.newPage();
  await other.goto(callback);
  await other.waitForFunction(() => /state|flow/.test(document.querySelector('#status').textContent));
  await other.close();

  // A tampered state, and a callback with no flow at all.
  const tampered = callback.replace(/state=[^&]+/, 'state=' + 'A'.repeat(43));
  await page.goto(tampered);
  await page.waitForFunction(() => /state|flow/.test(document.querySelector('#status').textContent));
  // Still connected, and the button says so.
  await page.locator('#claims tbody tr').first().waitFor();
  await page.locator('connect-medicare-button button[part=disconnect]').waitFor();
  await shot('8-replayed-callback');
  assert.doesNotMatch(page.url(), /code=|state=/);
  assert.equal(await metric('cm_broker_refreshes_total'), before);
});

test('token expiry with two tabs open: one refresh, both keep working', async () => {
  await connect({ user: 'BBUser00006' });
  await page.locator('#claims tbody tr').first().waitFor();
  const second = await context.newPage();
  await second.goto(servers.app);
  await second.locator('#claims tbody tr').first().waitFor();
  const before = await metric('cm_broker_refreshes_total');
  await advanceSandbox(3601);
  await Promise.all([page.reload(), second.reload()]);
  await Promise.all([page, second].map((p) => p.locator('#claims tbody tr').first().waitFor()));
  assert.equal(await page.locator('#reconnect').isHidden(), true);
  assert.equal(await second.locator('#reconnect').isHidden(), true);
  assert.equal(await metric('cm_broker_refreshes_total'), before + 1, 'exactly one refresh');
  await second.close();
});

test('grant expiry shows the reconnect prompt; consenting again restores access', async () => {
  await connect({ user: 'BBUser00007' });
  await page.locator('#claims tbody tr').first().waitFor();
  await advanceSandbox(400 * 86400);
  await page.reload();
  await page.locator('#reconnect').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#data').isHidden(), true);
  await shot('9-reconnect');
  await connect({ user: 'BBUser00007' });
  await page.locator('#claims tbody tr').first().waitFor();
  assert.equal(await page.locator('#reconnect').isHidden(), true);
});
