// The browser's part of a sign-in around the wasm module's rules: the flow record in
// sessionStorage (kept under its `state`, read once, expired ones swept), the callback's one
// completion however often it is handled, the address bar, and the navigation itself. `core`
// is the wasm module's operations (./core.js; passed in, so tests run this on the real module).
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

/**
 * `handleRedirect(url?)`: `null` when `url` (default: the address bar, `here()`) is not a
 * callback. Otherwise, once per callback however often it is called (React StrictMode calls
 * twice): `state` first — a flow this tab started, unexpired, unused; taking it from `storage`
 * uses it — then the callback's `error`, then `complete(body, provider, returnTo)`, whose
 * promise every caller shares. `code` and `state` leave the address bar (`replace(url)`)
 * before anything else, even when the callback is malformed. `completions` holds those promises under `s:<state>` and under
 * `u:<address bar after stripping>`.
 */
export function finishRedirect(core, { url, storage, complete, completions, here, replace }) {
  const current = here();
  url ??= current;
  if (typeof url !== 'string') return Promise.reject(fail('not_in_browser', 'handleRedirect needs a URL outside a browser page'));
  let state;
  let failure;
  try {
    state = core.callbackState(url);
  } catch (e) {
    failure = e;
  }
  // A second call after the first one cleaned the address bar shares its completion.
  if (state === '') return completions.get('u:' + url) ?? Promise.resolve(null);
  const key = 's:' + state;
  if (!failure && completions.has(key)) return completions.get(key);
  // The address bar first: when it is the callback handled (even a malformed one), or one
  // naming the same state.
  let stripped;
  try {
    const params = new URL(current).searchParams;
    if (current === url ? CALLBACK_PARAMS.some((name) => params.has(name)) : !failure && core.callbackState(current) === state) {
      replace(stripCallback(current));
      stripped = here();
    }
  } catch {
    // No address bar, or no history to rewrite: nothing to clean.
  }
  if (failure) return Promise.reject(failure);
  let promise;
  try {
    const now = Date.now();
    const record = takeFlow(storage, state);
    sweep(storage, now);
    const [s, code, verifier, provider, returnTo, iss] = core.complete(url, record, now);
    const body = { state: s, code, code_verifier: verifier, ...(iss ? { iss } : {}) };
    promise = Promise.resolve(complete(body, provider, returnTo || null));
  } catch (e) {
    promise = Promise.reject(e);
  }
  completions.set(key, promise);
  if (stripped !== undefined) completions.set('u:' + stripped, promise);
  return promise;
}

/** Sends the browser to the authorization server: a GET navigation, or a hidden form POSTed. */
export function navigate(action, fields) {
  try {
    if (fields === undefined) return location.assign(action);
    const form = document.createElement('form');
    form.method = 'post';
    form.action = action;
    // UTF-8 whatever the page's charset, and this window whatever its <base target>.
    form.acceptCharset = 'UTF-8';
    form.target = '_self';
    form.hidden = true;
    for (const [name, value] of fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  } catch {
    throw fail('not_in_browser', 'There is no page to navigate from');
  }
}
