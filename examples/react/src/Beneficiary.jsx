import { useEffect } from 'react';

import { patientName } from './fhir.js';
import { useLoad } from './useLoad.js';

/** The beneficiary, or a notice when they chose not to share personal information. */
export function Beneficiary({ cm }) {
  const { client, connection, patiently, fail } = cm;
  // The session says whether demographics were shared: no Patient read (a 403) when not.
  const shared = connection.demographicsShared;
  const { loading, value: patient, error } = useLoad(
    async () => (shared ? patiently(() => client.patient(connection.provider)) : null),
    [client, connection.provider, connection.patient, shared, patiently],
  );
  const withheld = !shared || error?.code === 'demographics_withheld';
  useEffect(() => {
    if (error && !withheld) fail(error);
  }, [error, withheld, fail]);

  return (
    <section aria-labelledby="beneficiary-title">
      <h2 id="beneficiary-title">Beneficiary</h2>
      {withheld ? (
        <p id="no-demographics">
          Personal information not shared. You chose not to share your name and date of birth;
          your claims are still here.
        </p>
      ) : loading ? (
        <p className="muted">Loading…</p>
      ) : patient ? (
        <dl id="beneficiary">
          <dt>Name</dt>
          <dd>{patientName(patient)}</dd>
          <dt>Date of birth</dt>
          <dd>{patient.birthDate ?? '—'}</dd>
          <dt>Medicare id</dt>
          <dd>{connection.patient}</dd>
        </dl>
      ) : null}
    </section>
  );
}
