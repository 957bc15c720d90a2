// Test doubles for the wasm-bindgen tests: a Web Storage stand-in and a recording `complete`.

export function memoryStorage() {
  const map = new Map();
  return {
    map,
    get length() { return map.size; },
    key(i) { return [...map.keys()][i] ?? null; },
    getItem(k) { return map.has(k) ? map.get(k) : null; },
    setItem(k, v) { map.set(k, String(v)); },
    removeItem(k) { map.delete(k); },
  };
}

export function recorder() {
  const calls = [];
  const complete = (body, provider, returnTo) => {
    calls.push({ body, provider, returnTo });
    return new Promise((resolve) => setTimeout(() => resolve({ provider, returnTo, session: { connections: [] } }), 10));
  };
  complete.calls = calls;
  return complete;
}

export const callCount = (complete) => complete.calls.length;
export const lastBody = (complete) => complete.calls.at(-1)?.body;
export const storageSize = (storage) => storage.map.size;
export const storageKeys = (storage) => [...storage.map.keys()].join(' ');
export const setRaw = (storage, key, value) => storage.map.set(key, value);
export const same = (a, b) => Object.is(a, b);
export const code = (e) => e?.code;
export const retryAfter = (e) => e?.retryAfter;
export const isError = (e) => e instanceof Error && e.name === 'ConnectMedicareError';
export const href = () => location.href;
export const setUrl = (url) => history.replaceState(history.state, '', url);
