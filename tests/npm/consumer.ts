// A consumer of the package as an app would write it: `tsc --noEmit` must accept it against
// the package's own .d.ts files, resolved through its `exports` map.
import { ConnectMedicare, ConnectMedicareError, type ErrorCode, type SearchPage } from 'connect-medicare';
import { ConnectMedicareButton } from 'connect-medicare/button';
import type { Condition, Coverage, ExplanationOfBenefit, Observation, Patient } from 'fhir/r4.js';

export async function app(): Promise<void> {
  const cm = await ConnectMedicare.create({ broker: '/cm', storage: sessionStorage });
  const done = await cm.handleRedirect(location.href);
  if (done) {
    const target: string | null = done.returnTo;
    const connected: boolean = done.session.connections.some((c) => c.status === 'connected');
    console.log(target, connected, done.provider);
  } else {
    await cm.connect({ provider: cm.providers[0]?.id, method: 'post', returnTo: '/claims' });
  }
  const patient: Patient = await cm.patient();
  const coverage: Coverage[] = await cm.coverage('medicare');
  const first: SearchPage<ExplanationOfBenefit> = await cm.explanationOfBenefit({
    types: ['carrier', 'pde'],
    since: new Date('2020-01-01'),
    until: '2020-12-31',
    pageSize: 50,
  });
  for await (const page of first) {
    const claims: ExplanationOfBenefit[] = page.resources;
    console.log(claims.length, page.bundle.total, page.hasNext);
  }
  const next = await first.next();
  const all: ExplanationOfBenefit[] = await cm.allClaims({ concurrency: 4 });
  // v0.2: cancellation, progress, the page iterators, events, camelCase results.
  const stop = new AbortController();
  const progress: number[] = [];
  const some: ExplanationOfBenefit[] = await cm.allClaims({
    types: ['pde'],
    signal: stop.signal,
    onPage: ({ loaded, total, page }) => progress.push(loaded / (total ?? loaded), page.entry?.length ?? 0),
  });
  for await (const page of cm.claimPages({ pageSize: 50, signal: stop.signal })) console.log(page.resources.length);
  for await (const page of cm.pages('Condition', [['clinical-status', 'active']], { provider: 'ehr' })) {
    const conditions: Condition[] = page.resources;
    console.log(conditions.length);
  }
  const more = await first.next({ signal: stop.signal });
  const session = await cm.session({ signal: stop.signal });
  const shared: boolean = session.connections[0]!.demographicsShared;
  const ends: string | null = session.connections[0]!.grantExpiresAt;
  const canRevoke: boolean = cm.providers[0]!.revocationSupported;
  const largest: number | null = cm.providers[0]!.maxPageSize;
  const someone: Patient = await cm.patient({ provider: 'medicare', signal: stop.signal });
  const legacy: Patient = await cm.patient('medicare');
  cm.addEventListener('reconnectRequired', (event) => console.log(event.detail.provider, event.detail.error.code));
  cm.addEventListener('rateLimited', (event) => console.log(event.detail.retryAfter));
  cm.addEventListener('connected', (event) => console.log(event.detail.session.connections.length));
  cm.addEventListener('disconnected', (event) => console.log(event.detail.revocations));
  const done2 = await cm.handleRedirect(undefined, { signal: stop.signal });
  stop.abort();
  console.log(some.length, progress, more, shared, ends, canRevoke, largest, someone.id, legacy.id, done2);
  const labs: SearchPage<Observation> = await cm.search('Observation', { category: 'laboratory', _sort: '-date' }, { provider: 'ehr' });
  const values: (number | undefined)[] = labs.resources.map((o) => o.valueQuantity?.value);
  const condition: Condition = await cm.read('Condition', 'c1', { provider: 'ehr' });
  console.log(values, condition.clinicalStatus?.coding?.[0]?.code);
  const userinfo = await cm.userinfo();
  const gone: string[] = (await cm.disconnect()).disconnected;
  console.log(patient.id, coverage.length, next?.resources.length, all.length, userinfo.sub, gone);
  try {
    await cm.session();
  } catch (e) {
    if (e instanceof ConnectMedicareError) {
      const code: ErrorCode | string = e.code;
      const wait: number | undefined = e.retryAfter;
      console.log(code, wait, e.message, e instanceof Error);
    }
  }
  const button = document.querySelector('connect-medicare-button');
  if (button instanceof ConnectMedicareButton) button.client = cm;
  document.createElement('connect-medicare-button').addEventListener('connect-medicare-error', (event) => {
    console.log(event.detail.code);
  });
}

// @ts-expect-error broker is required
void ConnectMedicare.create({});
// @ts-expect-error unknown claim type
void (null as unknown as ConnectMedicare).explanationOfBenefit({ types: ['dental'] });
// @ts-expect-error not a FHIR resource type
void (null as unknown as ConnectMedicare).search('Observations');
// @ts-expect-error a read answers the type asked for
void ((async (cm: ConnectMedicare): Promise<Patient> => cm.read('Observation', 'o1')));
// @ts-expect-error 0.1's snake_case fields are gone
void ((c: import('connect-medicare').Connection) => c.demographics_shared);
// @ts-expect-error an event the client does not send has no typed detail
(null as unknown as ConnectMedicare).addEventListener('connected', (event) => event.detail.nothing);
