// <connect-medicare-button> as users of every kind meet it, in Chromium through the real
// sandbox and broker (the vanilla example, with Medicare and a generic SMART server): in
// Spanish from the page's `lang`; by keyboard alone (Tab, Enter), its focus kept while it is
// busy and the live region saying what happens; CMS's attribution for Blue Button only; and an
// axe-core scan of every state with no violation.
//
//   cd tests && node --test e2e/button.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { CLIENT_ID, launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
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
search = ["Patient", "ExplanationOfBenefit", "Condition", "Observation"]
read = ["Patient"]
`,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await servers?.stop();
});

/** The example app, its html `lang` set to `lang` (the example's own is `en`). */
async function open(lang) {
  // axe-core is evaluated in the page; the example's CSP would refuse it as a script.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  if (lang) {
    // Every page in that language, the callback route too: the <html lang> is set as soon as
    // the element exists, before any script of the page runs.
    await page.addInitScript((lang) => {
      const set = () => document.documentElement && document.documentElement.setAttribute('lang', lang);
      new MutationObserver(set).observe(document, { childList: true });
      set();
    }, lang);
  }
  await page.goto(servers.app);
  return { context, page };
}

/** axe-core's violations inside the buttons (their shadow roots included). */
async function violations(page) {
  await page.evaluate(axeSource);
  const { found, checked } = await page.evaluate(async () => {
    const result = await globalThis.axe.run({ include: [['connect-medicare-button']] });
    return {
      found: result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
      // Rules that looked inside the shadow roots (button names, contrast...).
      checked: result.passes.filter((p) => p.nodes.some((n) => Array.isArray(n.target[0]))).length,
    };
  });
  assert.ok(checked > 0, 'axe looked inside the buttons');
  return found;
}

const medicare = (page) => page.locator('#connect connect-medicare-button');
const ehr = (page) => page.locator('article[data-provider=ehr] connect-medicare-button');

test('in Spanish from the page lang, with CMS attribution for Blue Button only', async () => {
  const { context, page } = await open('es');
  const button = medicare(page);
  await button.locator('button[part=button][aria-busy=false]').filter({ hasText: 'Conectar Medicare' }).waitFor();
  assert.match(await button.locator('[part=attribution]').innerText(), /^Usa la API Blue Button 2\.0 de CMS\./);
  await ehr(page).locator('button[part=button]').filter({ hasText: 'Conectar Example Health' }).waitFor();
  assert.equal(await ehr(page).locator('[part=attribution]').isHidden(), true, 'no CMS attribution for a SMART server');
  assert.deepEqual(await violations(page), []);
  await button.locator('button[part=button]').click();
  await signInAtSandbox(page);
  await button.locator('[part=status]').filter({ hasText: 'Conectado a Medicare.' }).waitFor();
  await button.locator('button[part=disconnect]').filter({ hasText: 'Desconectar Medicare' }).waitFor();
  assert.deepEqual(await violations(page), []);
  await button.locator('button[part=disconnect]').click();
  await button.locator('[part=status]')
    .filter({ hasText: 'Desconectado de Medicare: Medicare aceptó dejar de compartir sus datos con esta aplicación.' }).waitFor();
  // An app's own words win over the language's.
  await button.evaluate((el) => { el.strings = { connect: (name) => `Vincular ${name}` }; });
  await button.locator('button[part=button]').filter({ hasText: 'Vincular Medicare' }).waitFor();
  // The element's own lang beats the page's.
  await button.evaluate((el) => { el.strings = undefined; el.setAttribute('lang', 'en'); });
  await button.locator('button[part=button]').filter({ hasText: 'Connect Medicare' }).waitFor();
  assert.match(await button.locator('[part=attribution]').innerText(), /^Uses the CMS Blue Button 2\.0 API\./);
  await context.close();
});

test('by keyboard alone: Tab reaches it, Enter connects, focus stays while busy', async () => {
  const { context, page } = await open();
  const button = medicare(page);
  await button.locator('button[part=button][aria-busy=false]').filter({ hasText: 'Connect Medicare' }).waitFor();
  assert.deepEqual(await violations(page), []);
  // Tab from the top of the page until the Medicare button has focus (it is the page's first control).
  const focused = () => page.evaluate(() => {
    const host = document.activeElement;
    const inner = host?.shadowRoot?.activeElement;
    return inner ? `${host.closest('[data-provider]')?.dataset.provider ?? 'medicare'}:${inner.getAttribute('part')}` : host?.tagName;
  });
  for (let i = 0; i < 5 && (await focused()) !== 'medicare:button'; i++) await page.keyboard.press('Tab');
  assert.equal(await focused(), 'medicare:button');
  // Enter starts the sign-in: while the flow is being registered the button is busy, keeps
  // the focus, and the live region says so. The registration is held back to look at it.
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await page.route('**/v1/flows', async (route) => {
    await held;
    await route.continue();
  });
  // Every flow registration the page sends, counted from before the first press: Playwright
  // may report the held request after a listener added later, so count from the start.
  const flows = [];
  page.on('request', (r) => r.url().endsWith('/v1/flows') && flows.push(r.url()));
  await page.keyboard.press('Enter');
  const inner = button.locator('button[part=button]');
  await button.locator('button[part=button][aria-busy=true]').waitFor();
  assert.equal(await inner.getAttribute('aria-disabled'), 'true');
  assert.equal(await inner.getAttribute('disabled'), null, 'still focusable');
  assert.equal(await focused(), 'medicare:button');
  assert.equal(await button.locator('[part=status]').innerText(), 'Opening the sign-in page…');
  assert.deepEqual(await violations(page), []);
  // A second Enter while busy starts nothing more: one registration in all.
  await page.keyboard.press('Enter');
  release();
  await page.locator('#username, #allow').first().waitFor();
  assert.equal(flows.length, 1, 'the busy button took no second press');
  await signInAtSandbox(page);
  await button.locator('button[part=disconnect]:not([hidden])').waitFor();
  // Disconnect by keyboard too: focus returns to the Connect button afterwards.
  await button.locator('button[part=disconnect]').focus();
  await page.keyboard.press('Enter');
  await button.locator('button[part=button]:not([hidden])[aria-busy=false]').waitFor();
  assert.equal(await focused(), 'medicare:button');
  assert.deepEqual(await violations(page), []);
  await context.close();
});

test('a refresh while its own disconnect is under way leaves it busy until the outcome is shown', async () => {
  const { context, page } = await open();
  const button = medicare(page);
  await button.locator('button[part=button][aria-busy=false]').click();
  await signInAtSandbox(page);
  await button.locator('button[part=disconnect]:not([hidden])[aria-busy=false]').waitFor();
  // The disconnect is held back; meanwhile the page refreshes the button, as the example app
  // does when a read finds the connection already gone (the broker drops it before it answers).
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await page.route('**/v1/session/disconnect', async (route) => {
    await held;
    await route.continue();
  });
  await button.locator('button[part=disconnect]').click();
  await button.locator('button[part=disconnect][aria-busy=true]').waitFor();
  await button.evaluate((el) => el.refresh());
  assert.equal(await button.locator('button[part=disconnect]').getAttribute('aria-busy'), 'true', 'still busy');
  assert.equal(await button.locator('[part=status]').innerText(), 'Disconnecting…');
  assert.equal(await button.locator('button[part=button]').isHidden(), true, 'no Connect button before the outcome');
  release();
  await button.locator('button[part=button]:not([hidden])[aria-busy=false]').waitFor();
  assert.match(await button.locator('[part=status]').innerText(), /Medicare accepted the request to stop sharing your data/);
  await context.close();
});
