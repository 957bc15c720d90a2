// The vanilla example: the button, the callback route, the beneficiary, coverage, a claims
// table with type filters and paging, every claim added up with a progress bar (and a way to
// stop), the reconnect prompt, and disconnect.
import { ConnectMedicare, ConnectMedicareError } from './connect-medicare/dist/index.js';
import './connect-medicare/dist/button.js';

const $ = (selector) => document.querySelector(selector);
const TYPES = ['carrier', 'pde', 'dme', 'hha', 'hospice', 'inpatient', 'outpatient', 'snf'];
const PAGE_SIZE = 10;

const status = (text) => {
  $('#status').textContent = text;
};

const cm = await ConnectMedicare.create({ broker: location.origin });
const button = $('connect-medicare-button');
// The first provider the broker serves is Medicare; any others (a SMART EHR) get a button and
// a summary of their own below. The attribute first, then the client: one refresh.
const medicare = cm.providers[0]?.id;
button.setAttribute('provider', medicare);
button.client = cm;

/** Waits out a rate limit the broker could not absorb, then tries again (up to 5 times). */
async function patiently(call) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof ConnectMedicareError) || e.code !== 'rate_limited' || attempt >= 5) throw e;
      status(`Medicare is busy; trying again in ${e.retryAfter ?? 1} s…`);
      await new Promise((resolve) => setTimeout(resolve, (e.retryAfter ?? 1) * 1000));
      status('');
    }
  }
}

function showError(e) {
  if (e instanceof ConnectMedicareError) {
    if (e.code === 'reconnect_required' || e.code === 'not_connected') return showDisconnected(e.code === 'reconnect_required');
    status(`${e.message} (${e.code})`);
  } else {
    status(String(e));
  }
}

function showDisconnected(ended) {
  $('#data').hidden = true;
  $('#reconnect').hidden = !ended;
  // Only when the button still shows a connection the broker no longer has.
  if (button.hasAttribute('connected')) button.refresh();
}

// The callback route: finish the sign-in, then go where connect() asked to return.
try {
  const done = await cm.handleRedirect();
  if (done) history.replaceState(null, '', done.returnTo ?? '/');
} catch (e) {
  history.replaceState(null, '', '/');
  if (e instanceof ConnectMedicareError && e.code === 'access_denied') {
    status('You chose not to share your Medicare data. You can connect again any time.');
  } else {
    showError(e);
  }
}

const fmtMoney = (value) =>
  typeof value === 'number' ? value.toLocaleString('en-US', { style: 'currency', currency: 'USD' }) : '—';

/** An amount of a claim's first line, by its Blue Button variable (Part D events have no totals). */
const lineAmount = (eob, variable) =>
  eob.item?.[0]?.adjudication?.find((a) => a.category?.coding?.some((c) => c.code?.endsWith(`/${variable}`)))?.amount?.value;

function claimRow(eob) {
  const type = eob.type?.coding?.find((c) => c.system?.endsWith('/eob-type'))?.code
    ?? eob.type?.coding?.[0]?.code ?? '—';
  const date = eob.billablePeriod?.start ?? eob.item?.[0]?.servicedDate ?? '—';
  const provider = eob.provider?.display ?? eob.provider?.identifier?.value
    ?? eob.careTeam?.[0]?.provider?.identifier?.value ?? eob.provider?.reference ?? '—';
  // A drug event's cost and what the Part D plan paid sit on its line, not in totals.
  const billed = eob.total?.find((t) => t.category?.coding?.some((c) => c.code === 'submitted' || c.code?.endsWith('/clm_tot_chrg_amt')))?.amount?.value
    ?? lineAmount(eob, 'tot_rx_cst_amt');
  const paid = eob.payment?.amount?.value ?? lineAmount(eob, 'cvrd_d_plan_pd_amt');
  const row = document.createElement('tr');
  for (const [text, cls] of [[String(type).toLowerCase(), ''], [date, ''], [provider, ''], [fmtMoney(billed), 'amount'], [fmtMoney(paid), 'amount']]) {
    const cell = document.createElement('td');
    cell.textContent = text;
    if (cls) cell.className = cls;
    row.append(cell);
  }
  return row;
}

// Claims: one page at a time, with type filters. `pages` keeps what was seen for "Previous".
let pages = [];
async function loadClaims() {
  const types = [...document.querySelectorAll('#filters input:checked')].map((i) => i.value);
  pages = [await patiently(() => cm.explanationOfBenefit({ types: types.length ? types : undefined, pageSize: PAGE_SIZE }))];
  renderPage();
}

function renderPage() {
  const page = pages.at(-1);
  const body = $('#claims tbody');
  body.replaceChildren(...page.resources.map(claimRow));
  $('#claims-total').textContent = page.total === undefined ? '' : `(${page.total})`;
  $('#page-label').textContent = `Page ${pages.length}${page.total ? ` of ${Math.max(1, Math.ceil(page.total / PAGE_SIZE))}` : ''}`;
  $('#previous').disabled = pages.length < 2;
  $('#next').disabled = !page.hasNext;
}

$('#next').addEventListener('click', async () => {
  try {
    const next = await patiently(() => pages.at(-1).next());
    if (next) pages.push(next);
    renderPage();
  } catch (e) {
    showError(e);
  }
});
$('#previous').addEventListener('click', () => {
  pages.pop();
  renderPage();
});

for (const type of TYPES) {
  const label = document.createElement('label');
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.value = type;
  input.name = 'type';
  input.addEventListener('change', () => loadClaims().catch(showError));
  label.append(input, ` ${type}`);
  $('#filters').append(label);
}

// One render at a time: the button's "connected" event and the first load may both ask.
let rendering;
function showData() {
  rendering ??= render().finally(() => {
    rendering = undefined;
  });
  return rendering;
}

async function render() {
  const session = await cm.session();
  const connection = session.connections.find((c) => c.provider === medicare);
  if (!connection) return showDisconnected(false);
  if (connection.status === 'reconnect_required') return showDisconnected(true);
  $('#reconnect').hidden = true;
  $('#data').hidden = false;

  // The beneficiary, or a notice when personal information was not shared.
  try {
    const patient = await patiently(() => cm.patient());
    const name = patient.name?.[0];
    const rows = [
      ['Name', [name?.given?.join(' '), name?.family].filter(Boolean).join(' ')],
      ['Date of birth', patient.birthDate ?? '—'],
      [cm.providers[0].kind === 'blue_button' ? 'Medicare id' : 'Patient id', connection.patient],
    ].flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    });
    $('#beneficiary').replaceChildren(...rows);
    $('#no-demographics').hidden = true;
  } catch (e) {
    if (!(e instanceof ConnectMedicareError) || e.code !== 'demographics_withheld') throw e;
    $('#beneficiary').replaceChildren();
    $('#no-demographics').hidden = false;
  }

  const coverage = await patiently(() => cm.coverage());
  $('#coverage').replaceChildren(
    ...coverage.map((c) => {
      const item = document.createElement('li');
      const part = c.class?.find((k) => k.type?.coding?.some((x) => x.code === 'subplan'))?.value ?? c.id;
      const since = c.period?.start ? `, since ${c.period.start}` : '';
      item.textContent = `Medicare ${part} — ${c.status}${since}`;
      return item;
    }),
  );
  await loadClaims();
}

button.addEventListener('connect-medicare-connected', () => showData().catch(showError));

// Every claim at once, with a progress bar: `allClaims` fetches the pages (in parallel where
// the links allow) and reports each one; "Stop" aborts the run, and no page is asked for after.
let adding;
$('#add-up').addEventListener('click', async () => {
  adding = new AbortController();
  const bar = $('#progress');
  $('#add-up').hidden = true;
  $('#stop').hidden = false;
  bar.hidden = false;
  bar.removeAttribute('value');
  try {
    const claims = await cm.allClaims({
      pageSize: cm.providers[0].maxPageSize ?? 50,
      signal: adding.signal,
      onPage: ({ loaded, total }) => {
        bar.max = total ?? loaded;
        bar.value = loaded;
        $('#summary').textContent = `Loaded ${loaded}${total === undefined ? '' : ` of ${total}`} claims…`;
      },
    });
    const paid = claims.reduce((sum, eob) => sum + (eob.payment?.amount?.value ?? 0), 0);
    $('#summary').textContent = `${claims.length} claims, ${fmtMoney(paid)} paid in total.`;
  } catch (e) {
    if (e?.name === 'AbortError') $('#summary').textContent = 'Stopped.';
    else showError(e);
  } finally {
    $('#add-up').hidden = false;
    $('#stop').hidden = true;
    bar.hidden = true;
  }
});
$('#stop').addEventListener('click', () => adding?.abort());

/** A list under a heading, or nothing when `items` is empty. */
function list(name, heading, items) {
  if (items.length === 0) return [];
  const h = document.createElement('h4');
  h.textContent = heading;
  const ul = document.createElement('ul');
  ul.dataset.records = name;
  for (const text of items) {
    const li = document.createElement('li');
    li.textContent = text;
    ul.append(li);
  }
  return [h, ul];
}

/**
 * A SMART server's US Core records: active conditions and the latest lab results. A type the
 * broker does not serve for this provider, or the grant does not allow, is simply left out.
 */
async function healthRecords(provider) {
  const options = { provider: provider.id };
  const [conditions, labs] = await Promise.allSettled([
    patiently(() => cm.search('Condition', { 'clinical-status': 'active' }, options)),
    patiently(() => cm.search('Observation', { category: 'laboratory', _sort: '-date', _count: '5' }, options)),
  ]);
  const text = (concept) => concept?.text ?? concept?.coding?.[0]?.display ?? concept?.coding?.[0]?.code ?? '—';
  const quantity = (o) => (o.valueQuantity ? ` ${o.valueQuantity.value} ${o.valueQuantity.unit ?? ''}`.trimEnd() : '');
  return [
    ...list('conditions', 'Active conditions', conditions.status === 'fulfilled' ? conditions.value.resources.map((c) => text(c.code)) : []),
    ...list('labs', 'Latest lab results', labs.status === 'fulfilled'
      ? labs.value.resources.map((o) => `${text(o.code)}:${quantity(o)} (${String(o.effectiveDateTime ?? '').slice(0, 10)})`)
      : []),
  ];
}

// Other providers: a button each, how many claims they hold once connected, and for a SMART
// server its US Core records.
for (const provider of cm.providers.slice(1)) {
  const box = document.createElement('article');
  box.className = 'provider';
  box.dataset.provider = provider.id;
  const title = document.createElement('h3');
  title.textContent = provider.name;
  const other = document.createElement('connect-medicare-button');
  other.setAttribute('provider', provider.id);
  other.setAttribute('return-to', '/');
  other.client = cm;
  const summary = document.createElement('p');
  summary.className = 'summary';
  const records = document.createElement('div');
  records.className = 'records';
  other.addEventListener('connect-medicare-connected', async () => {
    try {
      const page = await patiently(() => cm.explanationOfBenefit({ provider: provider.id, pageSize: 1 }));
      summary.textContent = `${page.total ?? 'Some'} claims from ${provider.name}.`;
    } catch (e) {
      summary.textContent = `${provider.name}: ${e.message}`;
    }
    if (provider.kind !== 'blue_button') records.replaceChildren(...(await healthRecords(provider)));
  });
  other.addEventListener('connect-medicare-disconnected', () => {
    summary.textContent = '';
    records.replaceChildren();
  });
  box.append(title, other, summary, records);
  $('#other-providers').append(box);
  $('#others').hidden = false;
}
button.addEventListener('connect-medicare-disconnected', (event) => {
  // Only a provider that accepted the revocation has ended the app's access.
  const revoked = event.detail.revocations.every((r) => r.status === 'revoked');
  status(revoked
    ? 'Disconnected. Your data is no longer shared with this app.'
    : 'Disconnected here. Medicare could not confirm it ended this app\'s access: the button says more.');
  showDisconnected(false);
});
showData().catch(showError);
