// The first browser slice: the built npm package in a minimal page, served by the broker.
// It finishes a sign-in when loaded on the redirect URI, then shows Patient, Coverage and
// every ExplanationOfBenefit page, and reacts to the button's disconnect. `window.__slice`
// records what the page saw, for the Playwright driver (tests/e2e/slice.mjs).
import { ConnectMedicare, ConnectMedicareError } from './connect-medicare/dist/index.js';
import './connect-medicare/dist/button.js';

const $ = (id) => document.getElementById(id);
const slice = (window.__slice = { state: 'loading' });
const status = (text) => ($('status').textContent = text);
const problem = (e) => {
  const code = e instanceof ConnectMedicareError ? e.code : 'unexpected';
  slice.error = { code, message: e?.message, isError: e instanceof ConnectMedicareError };
  $('error').hidden = false;
  $('error').textContent = `${code}: ${e?.message ?? e}`;
  $('error').dataset.code = code;
};
const item = (text) => Object.assign(document.createElement('li'), { textContent: text });

async function show(cm) {
  status('Reading your data…');
  const patient = await cm.patient();
  const name = patient.name?.[0];
  $('patient').textContent = `${patient.id} — ${[name?.given?.join(' '), name?.family].filter(Boolean).join(' ')}`;
  $('patient').dataset.id = patient.id;

  const coverage = await cm.coverage();
  $('coverage').replaceChildren(...coverage.map((c) => item(`${c.id}: ${c.type?.coding?.[0]?.display ?? c.type?.text ?? ''}`)));

  const pages = [];
  for await (const page of await cm.explanationOfBenefit({ pageSize: 10 })) {
    pages.push({ count: page.resources.length, total: page.total, ids: page.resources.map((r) => r.id) });
    const li = item(`page ${pages.length}: ${page.resources.length} claims`);
    li.className = 'eob-page';
    $('eob-pages').append(li);
  }
  const all = await cm.allClaims({ pageSize: 10, concurrency: 4 });
  const seen = pages.reduce((n, p) => n + p.count, 0);
  $('claims-summary').textContent = `${seen} claims on ${pages.length} pages (${all.length} fetched in parallel)`;
  Object.assign(slice, {
    patient: patient.id,
    coverage: coverage.length,
    pages,
    all: all.length,
    allIds: all.map((r) => r.id),
  });
  $('data').hidden = false;
  slice.state = 'shown';
  status('Connected.');
}

try {
  const cm = await ConnectMedicare.create({ broker: document.documentElement.dataset.broker });
  slice.providers = cm.providers.map((p) => p.id);
  const button = $('connect');
  button.client = cm;
  button.addEventListener('connect-medicare-error', (event) => problem(event.detail));
  button.addEventListener('connect-medicare-disconnected', async () => {
    $('data').hidden = true;
    status('Disconnected.');
    const session = await cm.session();
    const after = await cm.patient().then(() => 'still readable', (e) => e.code);
    Object.assign(slice, { state: 'disconnected', connectionsAfter: session.connections.length, readAfter: after });
  });

  const done = await cm.handleRedirect();
  // React StrictMode calls twice: the second call must share the first one's completion.
  const again = await cm.handleRedirect();
  slice.redirect = done && { provider: done.provider, returnTo: done.returnTo, sameAgain: again === done };
  slice.addressBar = location.href;
  const session =
    done?.session ?? (await cm.session().catch((e) => (e.code === 'not_connected' ? { connections: [] } : Promise.reject(e))));
  if (session.connections.some((c) => c.status === 'connected')) {
    await show(cm);
  } else {
    slice.state = 'idle';
    status('Not connected.');
  }
} catch (e) {
  slice.state = 'failed';
  status('Something went wrong.');
  problem(e);
}
