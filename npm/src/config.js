// The app's `broker` option and the broker's `/v1/config`, checked before they are used.
import { fail } from './error.js';

export const isString = (v) => typeof v === 'string';
const isStrings = (v) => Array.isArray(v) && v.every(isString);

/**
 * The `broker` option as the base of every request, without trailing slashes: a same-origin
 * path (`/cm`), or an absolute URL — `https`, or `http` on a loopback host — without
 * credentials, query or fragment.
 */
export function brokerBase(raw) {
  const base = isString(raw) ? raw.replace(/\/+$/, '') : '';
  let ok = isString(raw) && !/[?#\\\s\x00-\x1f\x7f]/.test(raw);
  if (ok && /^\/(?![/])/.test(raw)) return base;
  try {
    const url = new URL(base);
    ok &&= /^https?:\/\/[^/]/i.test(base) && !url.username && !url.password
      && (url.protocol === 'https:' || /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(url.hostname));
  } catch {
    ok = false;
  }
  if (ok) return base;
  throw fail('invalid_config', 'broker must be an https URL (http on localhost) or a path such as /cm');
}

/** Whether `p` is a provider entry of `/v1/config` this SDK can use: its values are checked by the wasm module at connect. */
export const usableProvider = (p) =>
  isString(p?.id) && /^[a-z0-9-]{1,32}$/.test(p.id) &&
  ['name', 'kind', 'client_id', 'authorization_endpoint', 'aud', 'redirect_uri'].every((k) => isString(p[k])) &&
  [p.scopes, p.scopes_supported ?? [], p.eob_types ?? []].every(isStrings) &&
  typeof p.authorize_post === 'boolean';
