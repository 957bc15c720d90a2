import { useEffect, useState } from 'react';

/** Runs `load()` whenever `deps` change; the latest run's { loading, value, error }. */
export function useLoad(load, deps) {
  const [result, setResult] = useState({ loading: true, value: undefined, error: undefined });
  useEffect(() => {
    let ignore = false;
    setResult((r) => (r.loading ? r : { ...r, loading: true }));
    load().then(
      (value) => ignore || setResult({ loading: false, value, error: undefined }),
      (error) => ignore || setResult({ loading: false, value: undefined, error }),
    );
    return () => {
      ignore = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return result;
}
