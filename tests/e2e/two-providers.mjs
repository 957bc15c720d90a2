// Medicare and a generic SMART App Launch server (the sandbox's /smart/ face) connected at
// once from the vanilla example, in Chromium, through both sign-in and consent flows.
//
//   cd tests && node --test e2e/two-providers.mjs
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CLIENT_ID, launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const artifacts = process.env.CM_E2E_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });
let servers;
let browser;

before(async () => {
  servers = await startServers({
    site: '../examples/vanilla',
    redirectPath: '/callback',
    providers: `
[[providers]]
id = "ehr"
name = "Example Health"
kind = "smart"
fhir_base_url = "{sandbox}/smart/fhir/"
client_id = "${CLIENT_ID}"
redirect_uri = "{redirect}"
`,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await servers?.stop();
});

test('the same app connected to Medicare and to a SMART server at once', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.route('**/*', (route) => /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(route.request().url())
    ? route.continue() : (problems.push(route.request().url()), route.abort()));

  await page.goto(servers.app);
  await page.locator('#connect connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
  await signInAtSandbox(page);
  await page.locator('#claims tbody tr').first().waitFor();

  const ehr = page.locator('article[data-provider=ehr]');
  await ehr.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
  await signInAtSandbox(page);
  await ehr.locator('.summary').filter({ hasText: 'claims from Example Health' }).waitFor();
  // Medicare is still connected beside it.
  await page.locator('#claims tbody tr').first().waitFor();
  const session = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
  assert.deepEqual(session.connections.map((c) => [c.provider, c.status]), [['ehr', 'connected'], ['medicare', 'connected']]);
  await page.screenshot({ path: join(artifacts, 'vanilla-10-two-providers.png'), fullPage: true });

  // Disconnecting the EHR leaves Medicare.
  await ehr.locator('connect-medicare-button button[part=disconnect]').click();
  await ehr.locator('connect-medicare-button button[part=button]').waitFor();
  const after = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
  assert.deepEqual(after.connections.map((c) => c.provider), ['medicare']);
  assert.deepEqual(problems, []);
  await context.close();
});
