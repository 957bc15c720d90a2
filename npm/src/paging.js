// Searches and paging that never trust a link's host. Blue Button's next page is the same
// search sent to the broker again with only the `startIndex` and `_count` read from a Bundle
// link, and every page after the first is planned from the `last` link when there is one (the
// rules are the protocol crate's, `PageRequest::from_link` and `BundleLinks::page_plan`). Other
// servers' links are opaque: the broker relays them sealed for this session as `_page=<sealed>`
// (broker/src/pages.rs), and the next page is the search sent again with that alone, one page
// after another. Here they only shape requests to the app's own broker, which checks them again.
// The rules are shared with the protocol crate and pinned by fixtures/paging/vectors.json, which
// both sides are tested against; this copy exists because the data page loads no wasm.
import { fail } from './error.js';

/** Pages a search may have: a plan may hold no more, nor an iteration go further. */
export const MAX_PAGES = 10000;
/** Claim types, when the provider does not list its own. */
const EOB_TYPES = ['carrier', 'pde', 'dme', 'hha', 'hospice', 'inpatient', 'outpatient', 'snf'];

const unusable = () => fail('upstream_error', "The Bundle's paging links are unusable");
const invalid = (message) => fail('invalid_config', message);

/**
 * `{ startIndex, count }` from a Bundle link — only its `startIndex` and `_count` are read —
 * or `{ token }` from a link the broker sealed (`_page`, alone).
 */
export function pageOf(url) {
  const query = typeof url === 'string' ? url.split('#')[0] : '';
  const at = query.indexOf('?');
  if (at < 0) throw unusable();
  const params = new URLSearchParams(query.slice(at + 1));
  if (params.has('_page')) {
    const [token, ...rest] = [...params];
    if (rest.length || token[0] !== '_page' || !/^[\w-]{1,8192}$/.test(token[1])) throw unusable();
    return { token: token[1] };
  }
  const number = (name) => {
    const [value, extra] = params.getAll(name);
    if (extra !== undefined || (value !== undefined && !(/^\d+$/.test(value) && +value <= 0xffffffff))) throw unusable();
    return value === undefined ? undefined : +value;
  };
  const startIndex = number('startIndex');
  const count = number('_count');
  if (startIndex === undefined || count === 0) throw unusable();
  return { startIndex, count };
}

/** The first link of each relation. */
function linksOf(bundle) {
  const out = new Map();
  for (const link of Array.isArray(bundle?.link) ? bundle.link : []) {
    const { relation, url } = link ?? {};
    if (typeof relation === 'string' && typeof url === 'string' && !out.has(relation)) out.set(relation, url);
  }
  return out;
}

/** The page a link names, or `null` without one. */
const pageAt = (url) => (url === undefined ? null : pageOf(url));

/** The page after `bundle`, or `null` on the last one. */
export const nextPage = (bundle) => pageAt(linksOf(bundle).get('next'));

/**
 * Every page after `bundle` (which starts at `start`), planned from its `last` link: `null`
 * without one, or when the links do not tell the page size (then page with `nextPage`); `[]`
 * on the last page (no `next` link), whatever its `last` link says.
 */
export function pagePlan(bundle, start = -1) {
  const links = linksOf(bundle);
  if (!links.has('last')) return null;
  const next = pageAt(links.get('next'));
  if (next === null) return [];
  // Opaque links are followed one after another.
  if (next.token !== undefined) return null;
  const last = pageOf(links.get('last'));
  if (last.token !== undefined) return null;
  if (next.startIndex <= start) throw unusable();
  const step = next.count ?? last.count;
  if (step === undefined) return null;
  if (last.startIndex < next.startIndex) throw unusable();
  const pages = Math.floor((last.startIndex - next.startIndex) / step) + 1;
  if (pages > MAX_PAGES) throw unusable();
  return Array.from({ length: pages }, (_, i) => ({ startIndex: next.startIndex + i * step, count: step }));
}

const isDate = (d) => typeof d === 'string' && /^\d{4}-\d\d-\d\d$/.test(d);

/**
 * The ExplanationOfBenefit search as `[name, value]` pairs, checked before anything is sent:
 * claim types the provider serves (`types`: codes such as `carrier`, in an array or a comma list), `since` and `until`
 * service dates (`YYYY-MM-DD`), and a page size within the provider's limit.
 */
export function eobQuery(provider, { types, since, until, pageSize } = {}) {
  const out = [];
  const list = Array.isArray(types) ? types.join(',') : types;
  if (list != null && list !== '') {
    const known = provider.eob_types?.length ? provider.eob_types : EOB_TYPES;
    const codes = String(list).toLowerCase().split(',');
    if (!codes.every((t) => known.includes(t))) throw invalid('types must be claim types this provider serves');
    out.push(['type', codes.join(',')]);
  }
  for (const [prefix, date] of [['ge', since], ['le', until]]) {
    if (date == null) continue;
    const day = date instanceof Date ? (isNaN(date) ? '' : date.toISOString().slice(0, 10)) : date;
    if (!isDate(day)) throw invalid('since and until must be dates (YYYY-MM-DD)');
    out.push(['service-date', prefix + day]);
  }
  if (pageSize != null) {
    const max = provider.max_page_size ?? 0xffffffff;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > max) throw invalid("pageSize must be between 1 and the provider's largest page");
    out.push(['_count', String(pageSize)]);
  }
  return out;
}
