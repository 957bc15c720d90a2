import { useEffect } from 'react';

import { coveragePart } from './fhir.js';
import { useLoad } from './useLoad.js';

/** The beneficiary's Medicare parts (Coverage). */
export function Coverage({ cm }) {
  const { client, connection, patiently, fail } = cm;
  const { loading, value: coverage, error } = useLoad(
    () => patiently(() => client.coverage(connection.provider)),
    [client, connection.provider, connection.patient, patiently],
  );
  useEffect(() => {
    if (error) fail(error);
  }, [error, fail]);

  return (
    <section aria-labelledby="coverage-title">
      <h2 id="coverage-title">Coverage</h2>
      {loading ? (
        <p className="muted">Loading…</p>
      ) : (
        <ul id="coverage">
          {(coverage ?? []).map((c, i) => (
            <li key={c.id ?? i}>
              Medicare {coveragePart(c)} — {c.status}
              {c.period?.start ? `, since ${c.period.start}` : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
