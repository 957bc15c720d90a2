import { useEffect, useRef, useState } from 'react';

import { money } from './fhir.js';

/**
 * Every claim added up, with a progress bar: `allClaims` fetches the pages (in parallel where
 * the links allow) and reports each one through `onPage`; "Stop", or leaving the page, aborts
 * the run and no page is asked for after.
 */
export function EveryClaim({ cm }) {
  const { client, connection, fail } = cm;
  const [run, setRun] = useState(null);
  const [progress, setProgress] = useState(null);
  const [summary, setSummary] = useState('');
  const stop = useRef(null);

  // Leaving the view stops a run in flight.
  useEffect(() => () => stop.current?.abort(), []);

  async function addUp() {
    const controller = new AbortController();
    stop.current = controller;
    setRun(controller);
    setProgress({ loaded: 0, total: undefined });
    try {
      const claims = await client.allClaims({
        provider: connection.provider,
        pageSize: client.providers.find((p) => p.id === connection.provider)?.maxPageSize ?? 50,
        signal: controller.signal,
        onPage: ({ loaded, total }) => {
          setProgress({ loaded, total });
          setSummary(`Loaded ${loaded}${total === undefined ? '' : ` of ${total}`} claims…`);
        },
      });
      const paid = claims.reduce((sum, eob) => sum + (eob.payment?.amount?.value ?? 0), 0);
      setSummary(`${claims.length} claims, ${money(paid)} paid in total.`);
    } catch (error) {
      if (error?.name === 'AbortError') setSummary('Stopped.');
      else fail(error);
    } finally {
      if (stop.current === controller) {
        setRun(null);
        setProgress(null);
      }
    }
  }

  return (
    <section aria-labelledby="every-title">
      <h2 id="every-title">Every claim</h2>
      <p>
        {run ? (
          <button type="button" id="stop" onClick={() => run.abort()}>
            Stop
          </button>
        ) : (
          <button type="button" id="add-up" onClick={addUp}>
            Add up every claim
          </button>
        )}
      </p>
      {progress && (
        <progress
          id="progress"
          aria-label="Claims loaded"
          max={progress.total ?? Math.max(progress.loaded, 1)}
          value={progress.total === undefined && progress.loaded === 0 ? undefined : progress.loaded}
        />
      )}
      <p id="summary" role="status" aria-live="polite">
        {summary}
      </p>
    </section>
  );
}
