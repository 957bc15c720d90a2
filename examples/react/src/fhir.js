// Reading the few FHIR fields the example shows. Blue Button's resources are large; the SDK
// hands them over as the server sent them.

export const CLAIM_TYPES = ['carrier', 'pde', 'dme', 'hha', 'hospice', 'inpatient', 'outpatient', 'snf'];

export const money = (value) =>
  typeof value === 'number' ? value.toLocaleString('en-US', { style: 'currency', currency: 'USD' }) : '—';

export function patientName(patient) {
  const name = patient.name?.[0];
  return [name?.given?.join(' '), name?.family].filter(Boolean).join(' ') || '—';
}

/** "Part A" from a Coverage's subplan class, else its id. */
export const coveragePart = (coverage) =>
  coverage.class?.find((k) => k.type?.coding?.some((x) => x.code === 'subplan'))?.value ?? coverage.id;

/** An amount of a claim's first line, by its Blue Button variable (Part D events have no totals). */
const lineAmount = (eob, variable) =>
  eob.item?.[0]?.adjudication?.find((a) => a.category?.coding?.some((c) => c.code?.endsWith(`/${variable}`)))?.amount?.value;

/** The columns of one claims-table row. */
export function claimSummary(eob) {
  const type = eob.type?.coding?.find((c) => c.system?.endsWith('/eob-type'))?.code
    ?? eob.type?.coding?.[0]?.code ?? '—';
  return {
    id: eob.id,
    type: String(type).toLowerCase(),
    date: eob.billablePeriod?.start ?? eob.item?.[0]?.servicedDate ?? '—',
    provider: eob.provider?.display ?? eob.provider?.identifier?.value
      ?? eob.careTeam?.[0]?.provider?.identifier?.value ?? eob.provider?.reference ?? '—',
    // A drug event's cost and what the Part D plan paid sit on its line, not in totals.
    billed: eob.total?.find((t) => t.category?.coding?.some((c) => c.code === 'submitted' || c.code?.endsWith('/clm_tot_chrg_amt')))?.amount?.value
      ?? lineAmount(eob, 'tot_rx_cst_amt'),
    paid: eob.payment?.amount?.value ?? lineAmount(eob, 'cvrd_d_plan_pd_amt'),
  };
}
