// The first browser slice: Playwright drives Debian's Chromium through the minimal page
// (tests/e2e/slice/) served by the broker: click connect → the sandbox's sign-in and consent
// pages → callback → Patient, Coverage and every ExplanationOfBenefit page shown → disconnect.
//
//   cd tests && node --test e2e/slice.mjs        # starts the sandbox and a broker (e2e/servers.mjs)
//   cd tests && node e2e/slice.mjs http://localhost:<broker port>/   # servers already running
//
// Environment: CM_SLICE_URL (instead of the argument), CM_SANDBOX_USER / CM_SANDBOX_PASSWORD
// (default BBUser00000 / PW00000!), CM_CHROMIUM (default /usr/bin/chromium), CM_SLICE_ARTIFACTS
// (a folder for a screenshot when a step fails; default tests/artifacts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { logIn, signInAtSandbox, startServers } from './servers.mjs';

const arg = process.argv.slice(2).find((a) => a.startsWith('http'));
const given = arg ?? process.env.CM_SLICE_URL;
const servers = given ? undefined : await startServers({ site: 'e2e/slice', redirectPath: '/' });
const appUrl = given ?? servers.app;
const app = new URL(appUrl);
const user = process.env.CM_SANDBOX_USER ?? 'BBUser00000';
const password = process.env.CM_SANDBOX_PASSWORD ?? 'PW00000!';
const artifacts = process.env.CM_SLICE_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const TIMEOUT = 60_000;

let context;
let page;
let profile;
const requests = [];
const blocked = [];
const consoleErrors = [];

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'cm-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CM_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // Loopback only: anything else (a Bundle link's host, say) is blocked and fails the slice.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (/^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url)) {
      requests.push({ method: route.request().method(), url });
      return route.continue();
    }
    blocked.push(url);
    return route.abort();
  });
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await servers?.stop();
});

/** Runs a step; on failure keeps a screenshot and the page's record. */
async function step(name, body) {
  try {
    return await body();
  } catch (e) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, `slice-${name}.png`), fullPage: true }).catch(() => {});
    const seen = await page.evaluate(() => window.__slice).catch(() => undefined);
    e.message += `\n  at ${page.url()}\n  page record: ${JSON.stringify(seen)}\n  console: ${consoleErrors.join(' | ')}`;
    throw e;
  }
}

const slice = () => page.evaluate(() => window.__slice);
const waitState = (state) => page.waitForFunction((s) => window.__slice?.state === s, state, { timeout: TIMEOUT });

test('connect, sign in at the sandbox, consent, come back', async () => {
  await step('load', async () => {
    await page.goto(app.href);
    await page.waitForFunction(() => ['idle', 'shown'].includes(window.__slice?.state), null, { timeout: TIMEOUT });
    assert.equal((await slice()).state, 'idle', 'a fresh browser starts disconnected');
  });
  await step('connect', async () => {
    const button = page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])');
    await button.waitFor({ state: 'visible' });
    assert.match(await button.textContent(), /Connect Medicare/);
    assert.match(await page.locator('connect-medicare-button [part=attribution]').textContent(), /not affiliated with or endorsed by/);
    await button.click();
  });
  await step('sign-in', async () => {
    await page.locator('#username').waitFor();
    assert.notEqual(new URL(page.url()).origin, app.origin, 'the sign-in page is the sandbox, cross-site');
    await logIn(page, user, password);
  });
  await step('consent', async () => {
    await page.locator('#allow').click();
  });
  await step('callback', async () => {
    await waitState('shown');
    const s = await slice();
    assert.equal(new URL(page.url()).origin, app.origin);
    assert.doesNotMatch(s.addressBar, /[?&](code|state)=/, 'code and state left the address bar');
    assert.equal(s.redirect.provider, s.providers[0], 'connected to the provider the button names (the first)');
    assert.equal(s.redirect.sameAgain, true, 'a second handleRedirect shares the first completion');
  });
});

test('Patient, Coverage and every claims page are shown', async () => {
  await step('data', async () => {
    const s = await slice();
    assert.ok(s.patient, 'a Patient id');
    assert.equal(await page.locator('#patient').getAttribute('data-id'), s.patient);
    assert.ok(s.coverage > 0, 'Coverage resources');
    assert.equal(await page.locator('#coverage li').count(), s.coverage);
    assert.ok(s.pages.length > 0);
    assert.equal(await page.locator('#eob-pages li.eob-page').count(), s.pages.length);
    const paged = s.pages.flatMap((p) => p.ids);
    assert.equal(new Set(paged).size, paged.length, 'no claim twice');
    assert.deepEqual(s.allIds, paged, 'the parallel helper returns the same claims in the same order');
    for (const [i, p] of s.pages.entries()) {
      if (i < s.pages.length - 1) assert.equal(p.count, 10, `page ${i + 1} is full`);
    }
    if (s.pages[0].total !== undefined) assert.equal(paged.length, s.pages[0].total);
  });
  await step('requests', async () => {
    assert.deepEqual(blocked, [], 'no request left loopback (Bundle link hosts are never used)');
    const fhir = requests.filter((r) => r.url.includes('/v1/fhir/'));
    assert.ok(fhir.length >= 3);
    for (const r of fhir) assert.equal(new URL(r.url).origin, app.origin, `FHIR reads go to the broker: ${r.url}`);
    const completes = requests.filter((r) => r.url.endsWith('/v1/flows/complete'));
    assert.equal(completes.length, 1, 'one completion for the double handleRedirect');
    const csp = consoleErrors.filter((m) => /Content Security Policy/i.test(m));
    assert.deepEqual(csp, [], 'the package runs under a strict CSP');
  });
});

test('the broker logged no secret', { skip: !servers }, () => {
  assert.ok(servers.brokerLog().includes('serving'), 'the log was captured');
  assert.ok(!servers.brokerLog().includes('canary-client-secret-4f1d'));
});

test('disconnect', async () => {
  await step('disconnect', async () => {
    const disconnect = page.locator('connect-medicare-button button[part=disconnect]');
    await disconnect.click();
    await waitState('disconnected');
    const s = await slice();
    assert.equal(s.connectionsAfter, 0);
    assert.equal(s.readAfter, 'not_connected');
    await page.locator('connect-medicare-button button[part=button]').waitFor({ state: 'visible' });
  });
});

test('a form POST authorize request works too, where the provider accepts one', async (t) => {
  await step('post', async () => {
    await page.locator('connect-medicare-button').evaluate((b) => b.setAttribute('method', 'post'));
    await page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
    const where = await Promise.race([
      page.locator('#username').waitFor().then(() => 'sign-in'),
      page.waitForFunction(() => window.__slice?.error, null, { timeout: TIMEOUT }).then(() => 'refused'),
    ]);
    if (where === 'refused') {
      const s = await slice();
      assert.equal(s.error.code, 'invalid_config');
      await page.reload();
      return t.skip('the provider does not accept a form POST');
    }
    if (servers) {
      // Blue Button answered the POST with its login hop, which went on to the Medicare login
      // on another origin: the app page's form-action allowed every hop, and no wider.
      assert.equal(new URL(page.url()).origin, servers.login);
      const csp = (await (await fetch(appUrl)).headers.get('content-security-policy')) ?? '';
      const formAction = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('form-action '));
      assert.deepEqual(formAction?.split(' ').slice(1).sort(), ["'self'", servers.login, servers.sandbox].sort());
    }
    await signInAtSandbox(page, { user, password });
    await waitState('shown');
    await page.locator('connect-medicare-button button[part=disconnect][aria-busy=false]').click();
    await waitState('disconnected');
  });
});

test('a declined consent is a typed access_denied', async () => {
  await step('deny', async () => {
    await page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
    // The sandbox remembers the earlier sign-in (as Medicare.gov does): consent comes first.
    await signInAtSandbox(page, { user, password, allow: false });
    await page.waitForFunction(() => window.__slice?.state === 'failed', null, { timeout: TIMEOUT });
    const s = await slice();
    assert.deepEqual([s.error.code, s.error.isError], ['access_denied', true]);
    assert.doesNotMatch(s.addressBar ?? page.url(), /[?&](code|state|error)=/);
    assert.doesNotMatch(page.url(), /[?&](state|error)=/);
  });
});
