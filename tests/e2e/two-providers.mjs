// Medicare and a generic SMART App Launch server (the sandbox's /smart/ face) connected at
// once from the vanilla example, in Chromium, through both sign-in and consent flows: the
// SMART server by a form POST, with its 800+ character codes, its US Core records (the
// example's list, the SDK's generic search and read), its opaque (HAPI-style) paging links
// followed through the broker's sealed ones, a refresh, and the disconnect's message.
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
read = ["Patient", "Condition", "Observation"]
search = ["Patient", "ExplanationOfBenefit", "Condition", "Observation"]
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

  // The SMART server by a form POST authorize; its codes are signed tokens of 800+ characters.
  const ehr = page.locator('article[data-provider=ehr]');
  let code;
  page.on('request', (r) => {
    if (r.url().startsWith(servers.redirect) && r.url().includes('code=')) code ??= new URL(r.url()).searchParams.get('code');
  });
  await ehr.locator('connect-medicare-button').evaluate((button) => button.setAttribute('method', 'post'));
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/smart/auth/authorize'));
  await ehr.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
  await posted;
  await signInAtSandbox(page);
  await ehr.locator('.summary').filter({ hasText: 'claims from Example Health' }).waitFor();
  assert.ok(code?.length > 800, `code of ${code?.length} characters`);

  // Its US Core records through the broker, beside Medicare: the example lists the patient's
  // active conditions and latest lab results; the SDK's generic search and read reach them,
  // always the connected patient's, and what the provider's lists leave out is refused.
  const conditions = ehr.locator('.records ul[data-records=conditions] li');
  await conditions.first().waitFor();
  assert.deepEqual((await conditions.allTextContents()).sort(), ['Diabetes mellitus type 2', 'Hyperlipidemia', 'Hypertensive disorder']);
  const labs = await ehr.locator('.records ul[data-records=labs] li').allTextContents();
  assert.equal(labs.length, 5, labs.join('; '));
  assert.match(labs[0], /^(Hemoglobin A1c|Glucose).*: [0-9.]+ (%|mg\/dL) \(\d{4}-\d{2}-\d{2}\)$/);
  const fhir = await page.evaluate(async () => {
    const { ConnectMedicare } = await import('/connect-medicare/dist/index.js');
    const client = await ConnectMedicare.create({ broker: location.origin });
    const ehr = { provider: 'ehr' };
    const me = (await client.session()).connections.find((c) => c.provider === 'ehr').patient;
    const first = await client.search('Observation', { category: 'laboratory', _count: '4' }, ehr);
    const all = await first.all();
    const [someCondition] = (await client.search('Condition', {}, ehr)).resources;
    const condition = await client.read('Condition', someCondition.id, ehr);
    const codeOf = async (call) => { try { await call(); return 'ok'; } catch (e) { return e.code; } };
    return {
      me,
      total: first.total,
      count: all.length,
      subjects: [...new Set(all.map((o) => o.subject.reference))],
      condition: [condition.id === someCondition.id, condition.subject.reference],
      pinned: await codeOf(() => client.search('Observation', { subject: 'Patient/someone-else' }, ehr)),
      unlisted: await codeOf(() => client.search('Immunization', {}, ehr)),
      notAType: await codeOf(() => client.search('Observation/../Patient', {}, ehr)),
      medicare: (await client.patient('medicare')).id,
    };
  });
  assert.equal(fhir.total, 16);
  assert.equal(fhir.count, 16);
  assert.deepEqual(fhir.subjects, [`Patient/${fhir.me}`]);
  assert.deepEqual(fhir.condition, [true, `Patient/${fhir.me}`]);
  assert.deepEqual([fhir.pinned, fhir.unlisted, fhir.notAType], ['not_allowed', 'not_allowed', 'invalid_request']);
  assert.ok(fhir.medicare, 'Medicare still answers beside it');

  // Its search pages with opaque links (HAPI's _getpages), which the broker seals for this
  // session: the SDK follows them one after another, and every claim arrives once.
  const paged = [];
  page.on('request', (r) => { if (r.url().includes('/v1/fhir/ehr/ExplanationOfBenefit?_page=')) paged.push(r.url()); });
  const claims = await page.evaluate(async () => {
    const { ConnectMedicare } = await import('/connect-medicare/dist/index.js');
    const client = await ConnectMedicare.create({ broker: location.origin });
    const first = await client.explanationOfBenefit({ provider: 'ehr', pageSize: 7 });
    const all = await first.all();
    return { total: first.total, ids: all.map((c) => c.id) };
  });
  assert.ok(claims.total > 14, `${claims.total} claims`);
  assert.equal(claims.ids.length, claims.total);
  assert.equal(new Set(claims.ids).size, claims.total);
  assert.equal(paged.length, Math.ceil(claims.total / 7) - 1);

  // An hour later at the server, its access token is dead there: the broker refreshes it.
  const refreshes = async () => Number((await (await fetch(`${servers.app}metrics`)).text())
    .match(/^cm_broker_refreshes_total (\d+)$/m)?.[1] ?? NaN);
  const before = await refreshes();
  await servers.admin('clock', { advance_seconds: 3700 });
  const refreshed = await page.evaluate(async () => {
    const response = await fetch('/v1/fhir/ehr/Condition', { headers: { 'x-connect-medicare': '1' } });
    return response.status;
  });
  assert.equal(refreshed, 200);
  assert.equal(await refreshes(), before + 1);
  // Medicare is still connected beside it.
  await page.locator('#claims tbody tr').first().waitFor();
  const session = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
  assert.deepEqual(session.connections.map((c) => [c.provider, c.status]), [['ehr', 'connected'], ['medicare', 'connected']]);
  await page.screenshot({ path: join(artifacts, 'vanilla-10-two-providers.png'), fullPage: true });

  // Disconnecting the EHR leaves Medicare, and says the server ended the app's access.
  await ehr.locator('connect-medicare-button button[part=disconnect][aria-busy=false]').click();
  await ehr.locator('connect-medicare-button button[part=button]').waitFor();
  await ehr.locator('connect-medicare-button [part=status]')
    .filter({ hasText: 'Example Health accepted the request to stop sharing your data with this app.' }).waitFor();
  const after = await page.evaluate(async () => (await fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } })).json());
  assert.deepEqual(after.connections.map((c) => c.provider), ['medicare']);
  assert.deepEqual(problems, []);
  await context.close();
});
