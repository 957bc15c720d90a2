// connect-medicare — the main entry. Importing it has no side effects and reads no browser
// global.
//
// The wasm module holds the rules a sign-in's security rests on (state and PKCE, the
// validation of the authorize request and the navigation it allows, the callback and the
// flow record); it is loaded only for a sign-in — `connect()` and a callback — with
// wasm-bindgen's glue, as a separate chunk (./signin.js). This layer does the rest: fetch to
// the broker, storage, the address bar, FHIR and paging.
import { brokerBase, isString, usableProvider } from './config.js';
import { ConnectMedicareError, brokerError, fail, wasm } from './error.js';
import { finishRedirect, keepFlow } from './flow.js';
import { MAX_PAGES, eobQuery, nextPage, pagePlan } from './paging.js';

export { ConnectMedicareError };

let loading;
/** Loads the sign-in chunk and its wasm module once (a failed load may be retried). */
function load(module_or_path) {
  loading ??= import('./signin.js')
    .then(async (sdk) => (await sdk.init(module_or_path === undefined ? undefined : { module_or_path }), sdk))
    .catch((e) => {
      loading = undefined;
      throw new ConnectMedicareError('not_in_browser', 'The Connect Medicare wasm module could not be loaded', undefined, { cause: e });
    });
  return loading;
}

/** The CSRF header every broker request carries (the contract's `CSRF_HEADER`). */
const CSRF = { 'x-connect-medicare': '1' };
/** The completion of each callback, shared by every client on the page (React StrictMode may build two). */
const completions = new Map();
const DEFAULT_CONCURRENCY = 4;
const MAX_CONCURRENCY = 10;
const MAX_RETRY_AFTER = 30;

/** The `resourceType` resources of a search Bundle, in order. */
const resourcesOf = (bundle, type) =>
  (Array.isArray(bundle?.entry) ? bundle.entry : []).map((e) => e?.resource).filter((r) => r?.resourceType === type);

/**
 * The session's proof of ownership, kept in the app origin's localStorage (shared by its tabs,
 * never a cookie): a sign-in that shows it keeps the session's other connections, one without
 * it starts a new session, so a session cookie planted from elsewhere on the host never
 * receives this user's connection. `proof()` reads it, `proof(value)` writes it, `proof(null)`
 * forgets it; storage that is blocked or full only costs the carry-over.
 */
function proofOf(base) {
  const key = 'connect-medicare:session-proof:' + base;
  return (value) => {
    try {
      const store = globalThis.localStorage;
      if (value === undefined) return /^[\w-]{43}$/.test(store?.getItem(key)) ? store.getItem(key) : undefined;
      value === null ? store?.removeItem(key) : store?.setItem(key, value);
    } catch {}
  };
}

/** A client of one Connect Medicare token broker. Make it with `ConnectMedicare.create`. */
export class ConnectMedicare {
  #base;
  #storage;
  #providers;
  #wasm;

  /** @private Use `ConnectMedicare.create()`. */
  constructor(base, storage, providers, wasm) {
    this.#base = base;
    this.#storage = storage;
    this.#providers = providers;
    this.#wasm = wasm;
  }

  /**
   * Reads the broker's `/v1/config` and resolves to a client. The wasm module is not loaded
   * here: `connect()` and `handleRedirect()` on a callback load it, or `preload: true` starts
   * loading it now.
   */
  static async create({ broker, storage, wasm, preload } = {}) {
    if (!isString(broker)) throw fail('invalid_config', 'broker is required, e.g. { broker: "/cm" }');
    if (storage == null) {
      try {
        storage = globalThis.sessionStorage;
      } catch {
        storage = undefined;
      }
      if (storage == null) throw fail('not_in_browser', 'No sessionStorage here: create the client in the browser');
    }
    const base = brokerBase(broker);
    if (preload) load(wasm).catch(() => {});
    const client = new ConnectMedicare(base, storage, [], wasm);
    const { providers } = (await client.#call('GET', '/v1/config')) ?? {};
    if (!Array.isArray(providers) || !providers.length || !providers.every(usableProvider)) {
      throw fail('invalid_config', "The broker's /v1/config lists no usable provider");
    }
    client.#providers = providers;
    return client;
  }

  /** The providers this broker serves (from `/v1/config`). */
  get providers() {
    return this.#providers.map(({ id, name, kind, revocation_supported }) => ({
      id, name, kind, revocation_supported: revocation_supported === true,
    }));
  }

  /**
   * Starts a sign-in: registers the flow with the broker, validates the authorize request it
   * returns, keeps the verifier for the callback, and navigates (GET) or submits a form (POST).
   */
  async connect({ provider, method, returnTo } = {}) {
    const p = this.#provider(provider);
    if (method !== undefined && method !== 'get' && method !== 'post') throw fail('invalid_config', 'method must be "get" or "post"');
    const post = method === 'post';
    if (post && !p.authorize_post) throw fail('invalid_config', 'This provider does not accept a form POST authorize request');
    const sdk = await load(this.#wasm);
    const signIn = wasm(() => new sdk.SignIn(post, returnTo == null ? undefined : String(returnTo)));
    const body = { provider: p.id, state: signIn.state, code_challenge: signIn.codeChallenge, redirect_uri: p.redirect_uri, method: post ? 'post' : 'get' };
    let answer;
    try {
      answer = await this.#call('POST', '/v1/flows', body);
    } catch (e) {
      // `follow` spends the sign-in; one that never gets there is freed here.
      signIn.free();
      throw e;
    }
    // The module validates the authorize request, has the record kept, then navigates with
    // the very values it validated.
    wasm(() => signIn.follow(p, answer, (state, record) => keepFlow(this.#storage, state, record)));
  }

  /**
   * On the callback route: `null` when the URL is not a callback; otherwise finishes the
   * sign-in once, however often it is called.
   */
  handleRedirect(url) {
    return finishRedirect({
      url,
      storage: this.#storage,
      completions,
      load: () => load(this.#wasm).then((sdk) => ({ completeCallback: (...args) => wasm(() => sdk.completeCallback(...args)) })),
      complete: async (body, provider, returnTo) => {
        const proof = proofOf(this.#base);
        const session_proof = proof();
        const { session_proof: next, ...session } = await this.#call('POST', '/v1/flows/complete', session_proof ? { ...body, session_proof } : body);
        if (isString(next)) proof(next);
        return { provider, returnTo, session };
      },
      here: () => globalThis.location?.href,
      replace: (url) => history.replaceState(history.state, '', url),
    });
  }

  /** The browser's connections. */
  session() {
    return this.#call('GET', '/v1/session');
  }

  /** Disconnects one provider (revoking upstream), or every one when none is named. */
  async disconnect(provider) {
    const body = provider === undefined ? {} : { provider: this.#provider(provider).id };
    const answer = await this.#call('POST', '/v1/session/disconnect', body);
    if (provider === undefined) proofOf(this.#base)(null);
    return answer;
  }

  /** The provider's userinfo (OpenID Connect). */
  async userinfo(provider) {
    return this.#call('GET', '/v1/userinfo/' + this.#provider(provider).id);
  }

  /** The signed-in beneficiary's Patient resource. */
  async patient(provider) {
    const page = await this.#search(this.#provider(provider), 'Patient', []);
    const [patient] = page.resources;
    if (!patient) throw fail('not_found', 'The provider returned no Patient');
    return patient;
  }

  /** Every Coverage resource of the signed-in beneficiary. */
  async coverage(provider) {
    const page = await this.#search(this.#provider(provider), 'Coverage', []);
    return page.all();
  }

  /** The first page of the beneficiary's claims (ExplanationOfBenefit), with `next()` and async iteration. */
  async explanationOfBenefit({ provider, types, since, until, pageSize } = {}) {
    const p = this.#provider(provider);
    return this.#search(p, 'ExplanationOfBenefit', eobQuery(p, { types, since, until, pageSize }));
  }

  /** Every claim: the pages after the first are fetched in parallel (at most `concurrency`) when the Bundle's `last` link plans them. */
  async allClaims({ concurrency, ...search } = {}) {
    const page = await this.explanationOfBenefit(search);
    return page.all({ concurrency });
  }

  /** The first page of a search of any type the broker serves for the provider (US Core types on a SMART server), with `next()` and async iteration. */
  async search(type, params, { provider } = {}) {
    return this.#search(this.#provider(provider), fhirType(type), params ?? []);
  }

  /** One resource of the connected patient, by type and id. */
  async read(type, id, { provider } = {}) {
    const p = this.#provider(provider);
    if (!isString(id) || !id) throw fail('invalid_request', 'A resource id is required');
    return this.#call('GET', `/v1/fhir/${p.id}/${fhirType(type)}/${encodeURIComponent(id)}`);
  }

  #provider(id) {
    const found = id === undefined ? this.#providers[0] : this.#providers.find((p) => p.id === id);
    if (!found) throw fail('unknown_provider', 'The broker does not serve this provider');
    return found;
  }

  async #search(provider, type, query) {
    const path = `/v1/fhir/${provider.id}/${type}`;
    const get = (params) => this.#call('GET', params.size ? `${path}?${params}` : path);
    const first = new URLSearchParams(query);
    return new SearchPage(type, get, first, await bundle(get(first)), 0);
  }

  async #call(method, path, body) {
    let response;
    try {
      const headers = { ...CSRF };
      if (body !== undefined) headers['content-type'] = 'application/json';
      response = await fetch(this.#base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'include',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ConnectMedicareError('broker_unreachable', 'The broker could not be reached', undefined, { cause: e });
    }
    let json;
    try {
      json = await response.json();
    } catch {
      json = undefined;
    }
    if (!response.ok) throw brokerError(response.status, json, response.headers.get('retry-after') ?? undefined);
    if (json === undefined) throw fail('upstream_error', 'The broker answered with a body that is not JSON');
    return json;
  }
}

/** A FHIR resource type name, checked before it becomes part of a path. */
function fhirType(type) {
  if (!/^[A-Z][A-Za-z]{1,63}$/.test(type)) throw fail('invalid_request', 'Not a FHIR resource type: ' + type);
  return type;
}

async function bundle(answer) {
  const b = await answer;
  if (b?.resourceType !== 'Bundle') throw fail('upstream_error', 'The search did not answer with a FHIR Bundle');
  return b;
}

/**
 * The same search with a page's `startIndex` and `_count`, or the broker's sealed link alone:
 * a link's host and path are never used.
 */
function at(query, page) {
  if (page.token !== undefined) return new URLSearchParams([['_page', page.token]]);
  const params = new URLSearchParams(query);
  params.delete('startIndex');
  params.delete('_count');
  if (page.count !== undefined) params.set('_count', page.count);
  params.set('startIndex', page.startIndex);
  return params;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** One page of search results. Iterate with `for await (const page of firstPage)`. */
class SearchPage {
  #type;
  #get;
  #query;
  #start;

  constructor(type, get, query, bundle, start) {
    this.#type = type;
    this.#get = get;
    this.#query = query;
    this.#start = start;
    /** The search Bundle, as the server sent it. */
    this.bundle = bundle;
  }

  /** This page's resources of the searched type. */
  get resources() {
    return resourcesOf(this.bundle, this.#type);
  }

  /** `Bundle.total`, when the server sent it. */
  get total() {
    return this.bundle.total;
  }

  /** Whether a next page exists. */
  get hasNext() {
    return nextPage(this.bundle) !== null;
  }

  /** The next page, or `null` on the last one. */
  async next() {
    const page = nextPage(this.bundle);
    if (page === null) return null;
    if (page.token === undefined && page.startIndex <= this.#start) throw fail('upstream_error', "The Bundle's next link does not move forward");
    return this.#page(page, await bundle(this.#get(at(this.#query, page))));
  }

  async *[Symbol.asyncIterator]() {
    for (let page = this, n = 0; page; page = await page.next()) {
      if (++n > MAX_PAGES) throw fail('upstream_error', 'The search has too many pages');
      yield page;
    }
  }

  /** The resources of this page and of every page after it, in order. */
  async all({ concurrency = DEFAULT_CONCURRENCY } = {}) {
    const plan = pagePlan(this.bundle, this.#start);
    const bundles = [this.bundle];
    if (plan === null) {
      for await (const page of this) if (page !== this) bundles.push(page.bundle);
    } else {
      bundles.push(...(await this.#parallel(plan, Math.min(Math.max(1, concurrency | 0), MAX_CONCURRENCY))));
    }
    return bundles.flatMap((b) => resourcesOf(b, this.#type));
  }

  #page(page, b) {
    return new SearchPage(this.#type, this.#get, this.#query, b, page.startIndex ?? this.#start);
  }

  /** Fetches every planned page with at most `width` requests in flight, waiting out `rate_limited` answers. */
  async #parallel(plan, width) {
    const out = new Array(plan.length);
    let next = 0;
    let failed = false;
    const fetchOne = async (page) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await bundle(this.#get(at(this.#query, page)));
        } catch (e) {
          const wait = e?.retryAfter ?? 1;
          if (e?.code !== 'rate_limited' || attempt >= 3 || wait > MAX_RETRY_AFTER) throw e;
          await sleep(wait);
        }
      }
    };
    const worker = async () => {
      while (!failed && next < plan.length) {
        const i = next++;
        try {
          out[i] = await fetchOne(plan[i]);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, plan.length) }, worker));
    return out;
  }
}
