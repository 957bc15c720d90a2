// The browser's part of a callback around the wasm module's rules: the flow record in
// sessionStorage (kept under its `state`, read once, expired ones swept), the callback's one
// completion however often it is handled, and the address bar. The wasm module
// (sdk-wasm/src/lib.rs) writes the record, navigates, and reads the callback against the
// record; storage and the address bar are here because they cost less in JS (measured:
// docs/architecture.md, "The wasm module's crates").
import { fail } from './error.js';

/** The key prefix of flow records. */
export const FLOW_PREFIX = 'connect-medicare:flow:';

/** What a callback adds to the redirect URI (the protocol's `CALLBACK_PARAMS`): none may stay in the address bar. */
const CALLBACK_PARAMS = ['code', 'state', 'error', 'error_description', 'error_uri', 'iss', 'session_state'];

/** `url` without the callback's parameters; other parameters and the fragment are kept. */
export function stripCallback(url) {
  const clean = new URL(url);
  for (const name of CALLBACK_PARAMS) clean.searchParams.delete(name);
  return clean.href;
}

const storageFailure = () => fail('not_in_browser', 'sessionStorage is not available (blocked or full)');

/** `f()`, with a throwing storage reported as `not_in_browser`. */
function guarded(f) {
  try {
    return f();
  } catch {
    throw storageFailure();
  }
}

/**
 * Removes expired flow records (abandoned sign-ins) from `storage`, and records in no format
 * this SDK writes. A record is `1|created|expires|…` (sdk-wasm/src/flow.rs), read in full —
 * and checked — only by the wasm module.
 */
function sweep(storage, now) {
  try {
    const stale = [];
    for (let i = 0, n = storage.length; i < n; i++) {
      const key = storage.key(i);
      if (key?.startsWith(FLOW_PREFIX) && !(/^1\|\d+\|(\d+)\|/.exec(storage.getItem(key))?.[1] > now)) stale.push(key);
    }
    for (const key of stale) storage.removeItem(key);
  } catch {
    // A storage without `length` and `key` is not swept.
  }
}

/** Keeps a flow `record` under `state` in `storage`, sweeping stale records first. */
export function keepFlow(storage, state, record, now = Date.now()) {
  sweep(storage, now);
  guarded(() => storage.setItem(FLOW_PREFIX + state, record));
}

/** Takes the record kept under `state`: it is removed at once, read or not. */
function takeFlow(storage, state) {
  return guarded(() => {
    const key = FLOW_PREFIX + state;
    const record = storage.getItem(key);
    if (record !== null) storage.removeItem(key);
    return record ?? undefined;
  });
}

/** The query parameters of `url` (the part between `?` and `#`), read as the wasm module reads them. */
const queryOf = (url) => new URLSearchParams(url.split('#')[0].split('?').slice(1).join('?'));

/**
 * `handleRedirect(url?)`: `null` when `url` (default: the address bar, `here()`; a relative
 * URL is the page's) is not a callback (it has none of `code`, `state`, `error`): the wasm
 * module is not loaded then. Otherwise, once per callback however often it is called (React
 * StrictMode calls twice): `code` and `state` leave the address bar (`replace(url)`) first,
 * even when the callback is malformed; once the wasm module is loaded (`load()`), the record
 * kept under the callback's `state` is taken from `storage`, and `completeCallback` checks
 * the callback against it — well-formed, `state` first, then `error` — and then
 * `complete(body, provider, returnTo)` runs; every caller shares its promise. `completions`
 * holds those promises under `s:<state>` and under `u:<address bar after stripping>`: a later
 * call on the cleaned address bar (the button after the app) gets the same result.
 */
export function finishRedirect({ url, storage, complete, completions, here, replace, load }) {
  const current = here();
  url ??= current;
  if (typeof url !== 'string') return Promise.reject(fail('not_in_browser', 'handleRedirect needs a URL outside a browser page'));
  // A relative URL (`location.pathname + location.search`) is the page's own.
  try {
    url = new URL(url, current).href;
  } catch {
    // Not a URL against this page: read as given.
  }
  const params = queryOf(url);
  // A second call after the first one cleaned the address bar shares its completion.
  if (!['code', 'state', 'error'].some((name) => params.has(name))) return completions.get('u:' + url) ?? Promise.resolve(null);
  // Only a key to look the record up by: the wasm module checks the callback and its state.
  const state = params.get('state') ?? '';
  const key = 's:' + state;
  if (completions.has(key)) return completions.get(key);
  // The address bar first: when it is the callback handled (even a malformed one), or one
  // naming the same state.
  let stripped;
  try {
    if (current === url || (state && queryOf(current).get('state') === state)) {
      replace(stripCallback(current));
      stripped = here();
    }
  } catch {
    // No address bar, or no history to rewrite: nothing to clean.
  }
  // The record is taken once the module is there (a module that fails to load spends no
  // flow), and put back when the module finds the callback malformed: only a well-formed
  // callback for this flow uses it up.
  const promise = load().then((sdk) => {
    const record = takeFlow(storage, state);
    sweep(storage, Date.now());
    let done;
    try {
      done = sdk.completeCallback(url, record);
    } catch (e) {
      if (e?.code === 'invalid_request' && record !== undefined) {
        try {
          storage.setItem(FLOW_PREFIX + state, record);
        } catch {
          // A storage that fails now: the flow is spent.
        }
      }
      throw e;
    }
    const { codeVerifier, provider, returnTo, iss } = done;
    const body = { state: done.state, code: done.code, code_verifier: codeVerifier, ...(iss ? { iss } : {}) };
    return complete(body, provider, returnTo);
  });
  completions.set(key, promise);
  if (stripped !== undefined) completions.set('u:' + stripped, promise);
  // When the flow was not spent (the module did not load; the callback was malformed), a later
  // call in this page — with the callback URL the app kept — tries again.
  promise.catch((e) => {
    if (e?.code !== 'not_in_browser' && e?.code !== 'invalid_request') return;
    for (const k of [key, 'u:' + stripped]) if (completions.get(k) === promise) completions.delete(k);
  });
  return promise;
}
