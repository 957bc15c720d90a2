import { useEffect, useRef, useState } from 'react';

import { CLAIM_TYPES, claimSummary, money } from './fhir.js';

const PAGE_SIZE = 10;

/**
 * Claims (ExplanationOfBenefit), one page at a time, with type filters. `pages` keeps the
 * pages seen so far, for "Previous"; the SDK's `next()` re-sends the search through the
 * broker with the next startIndex.
 */
export function Claims({ cm }) {
  const { client, connection, patiently, fail } = cm;
  const [types, setTypes] = useState([]);
  const [pages, setPages] = useState([]);
  const [busy, setBusy] = useState(true);
  // A page arriving after the filters changed belongs to an older search: dropped.
  const search = useRef(0);

  useEffect(() => {
    const mine = ++search.current;
    setBusy(true);
    patiently(() => client.explanationOfBenefit({
      provider: connection.provider,
      types: types.length ? types : undefined,
      pageSize: PAGE_SIZE,
    })).then(
      (first) => mine === search.current && setPages([first]),
      (error) => mine === search.current && fail(error),
    ).finally(() => mine === search.current && setBusy(false));
  }, [client, connection.provider, connection.patient, types, patiently, fail]);

  const page = pages.at(-1);
  const toggle = (type, on) =>
    setTypes((now) => CLAIM_TYPES.filter((t) => (t === type ? on : now.includes(t))));

  async function next() {
    const mine = search.current;
    setBusy(true);
    try {
      const after = await patiently(() => page.next());
      if (after && mine === search.current) setPages((seen) => [...seen, after]);
    } catch (error) {
      fail(error);
    } finally {
      if (mine === search.current) setBusy(false);
    }
  }

  const pageCount = page?.total ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : undefined;
  return (
    <section aria-labelledby="claims-title">
      <h2 id="claims-title">
        Claims <span id="claims-total">{page?.total === undefined ? '' : `(${page.total})`}</span>
      </h2>
      <fieldset id="filters">
        <legend>Claim types</legend>
        {CLAIM_TYPES.map((type) => (
          <label key={type}>
            <input
              type="checkbox"
              name="type"
              value={type}
              checked={types.includes(type)}
              onChange={(event) => toggle(type, event.target.checked)}
            />{' '}
            {type}
          </label>
        ))}
      </fieldset>
      <table id="claims" aria-busy={busy}>
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Service date</th>
            <th scope="col">Provider</th>
            <th scope="col">Billed</th>
            <th scope="col">Paid</th>
          </tr>
        </thead>
        <tbody>
          {(page?.resources ?? []).map(claimSummary).map((claim, i) => (
            <tr key={`${i}:${claim.id}`}>
              <td>{claim.type}</td>
              <td>{claim.date}</td>
              <td>{claim.provider}</td>
              <td className="amount">{money(claim.billed)}</td>
              <td className="amount">{money(claim.paid)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && page.resources.length === 0 && <p className="muted">No claims of these types.</p>}
      <nav className="pager" aria-label="Claims pages">
        <button type="button" id="previous" disabled={busy || pages.length < 2} onClick={() => setPages((seen) => seen.slice(0, -1))}>
          Previous
        </button>
        <span id="page-label">{page ? `Page ${pages.length}${pageCount ? ` of ${pageCount}` : ''}` : ''}</span>
        <button type="button" id="next" disabled={busy || !page?.hasNext} onClick={next}>
          Next
        </button>
      </nav>
    </section>
  );
}
