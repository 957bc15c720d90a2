// Session fixation, in Chromium: an attacker signs in, plants their own session cookie in the
// victim's browser from another port of the same host (cookies ignore ports, and `__Host-`
// only keeps other subdomains out), and waits for the victim to sign in. The victim must get a
// session of their own, and the planted id must reach nothing of theirs.
//
//   cd tests && node --test e2e/session-fixation.mjs
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const COOKIE = '__Host-cm-session';
let servers;
let browser;
let planter;

before(async () => {
  servers = await startServers({ site: '../examples/vanilla', redirectPath: '/callback' });
  browser = await launchChromium();
  // The attacker's page, on another port of localhost: it writes whatever cookie it is asked to.
  planter = createServer((request, response) => {
    const value = new URL(request.url, 'http://localhost').searchParams.get('value') ?? '';
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<script>document.cookie = ${JSON.stringify(`${COOKIE}=${value}; Path=/; Secure; SameSite=Strict`)};
      document.title = 'planted';</script>`);
  });
  await new Promise((resolve) => planter.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await browser?.close();
  await servers?.stop();
  planter?.close();
});

async function page(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  await page.route('**/*', (route) => /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(route.request().url())
    ? route.continue() : route.abort());
  return page;
}

async function signIn(page, user) {
  await page.goto(servers.app);
  await page.locator('#connect connect-medicare-button button[part=button][aria-busy=false]:not([disabled])').click();
  await signInAtSandbox(page, { user });
  await page.locator('#claims tbody tr').first().waitFor();
}

const broker = (page, path, body) => page.evaluate(async ([path, body]) => {
  const response = await fetch(path, body === undefined ? { headers: { 'x-connect-medicare': '1' } } : {
    method: 'POST',
    headers: { 'x-connect-medicare': '1', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}, [path, body]);

const sessionCookie = async (context) => (await context.cookies(servers.app)).find((c) => c.name === COOKIE)?.value;

test('a session cookie planted from another port never receives the victim\'s connection', async () => {
  const attackerContext = await browser.newContext();
  const attacker = await page(attackerContext);
  await signIn(attacker, 'BBUser00001');
  const planted = await sessionCookie(attackerContext);
  assert.ok(planted, 'the attacker has a session');
  const theirs = (await broker(attacker, '/v1/session')).body.connections[0].patient;
  // An empty session to plant, so the victim's app offers "Connect Medicare".
  await broker(attacker, '/v1/session/disconnect', { provider: 'medicare' });
  assert.equal(await sessionCookie(attackerContext), planted);

  const victimContext = await browser.newContext();
  const victim = await page(victimContext);
  await victim.goto(`http://localhost:${planter.address().port}/?value=${planted}`);
  await victim.waitForFunction(() => document.title === 'planted');
  assert.equal(await sessionCookie(victimContext), planted, 'the cookie was planted on the app\'s host');

  await signIn(victim, 'BBUser00002');
  const mine = await broker(victim, '/v1/session');
  assert.equal(mine.body.connections.length, 1);
  assert.notEqual(mine.body.connections[0].patient, theirs, 'the victim sees their own data');
  assert.notEqual(await sessionCookie(victimContext), planted, 'the victim got a new session id');

  // The attacker's id reaches nothing of the victim's.
  for (const path of ['/v1/fhir/medicare/Patient', '/v1/fhir/medicare/ExplanationOfBenefit']) {
    const answer = await broker(attacker, path);
    assert.equal(answer.status, 401, path);
    assert.equal(answer.body.code, 'not_connected');
  }
  assert.deepEqual((await broker(attacker, '/v1/session')).body.connections, []);
  await attackerContext.close();
  await victimContext.close();
});

test('every sign-in rotates the id and the proof; the proof never sits in a cookie', async () => {
  const context = await browser.newContext();
  const tab = await page(context);
  await signIn(tab, 'BBUser00003');
  // Disconnecting the one provider keeps the session, so the app offers to connect again.
  await broker(tab, '/v1/session/disconnect', { provider: 'medicare' });
  const first = await sessionCookie(context);
  const proofs = await tab.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('connect-medicare:session-proof:')));
  assert.equal(proofs.length, 1, 'the SDK keeps the proof in the app origin\'s storage');
  const proof = await tab.evaluate((key) => localStorage.getItem(key), proofs[0]);
  assert.ok(!(await context.cookies()).some((c) => c.value === proof), 'not in a cookie');

  await signIn(tab, 'BBUser00003');
  assert.notEqual(await sessionCookie(context), first, 'a new id');
  const session = await broker(tab, '/v1/session');
  assert.deepEqual(session.body.connections.map((c) => [c.provider, c.status]), [['medicare', 'connected']]);
  assert.notEqual(await tab.evaluate((key) => localStorage.getItem(key), proofs[0]), proof, 'a new proof');
  await context.close();
});
