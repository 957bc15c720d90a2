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
import { disconnectOf, providerOf, sessionOf } from './wire.js';

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
/** Pages fetched at once, at most and by default: the broker keeps them to the provider's rate. */
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

/**
 * `opts` as an options object. Anything but an object or `undefined` is the provider, as 0.1's
 * `patient('medicare')` (so `null` is an unknown provider, never "every provider").
 */
const options = (opts) => (opts === undefined ? {} : typeof opts === 'object' && opts ? opts : { provider: opts });

/**
 * The promise, or — rejected, never thrown — the signal's reason as soon as it aborts (the
 * promise's work goes on; its own failure is then nobody's to handle).
 */
function abortable(promise, signal) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const stop = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}



/**
 * A client of one Connect Medicare token broker. Make it with `ConnectMedicare.create`. It is
 * an `EventTarget`: `connected`, `disconnected`, `reconnectRequired` and `rateLimited` events
 * carry what happened in `detail`.
 */
export class ConnectMedicare extends EventTarget {
  #base;
  #storage;
  #providers;
  #wasm;
  /** The sign-ins this client has told its listeners of (`connected`, once each). */
  #told = new WeakSet();

  /** @private Use `ConnectMedicare.create()`. */
  constructor(base, storage, providers, wasm) {
    super();
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
  static async create({ broker, storage, wasm, preload, signal } = {}) {
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
    const { providers } = (await client.#call('GET', '/v1/config', { signal })) ?? {};
    if (!Array.isArray(providers) || !providers.length || !providers.every(usableProvider)) {
      throw fail('invalid_config', "The broker's /v1/config lists no usable provider");
    }
    client.#providers = providers;
    return client;
  }

  /** The providers this broker serves (from `/v1/config`). */
  get providers() {
    return this.#providers.map(providerOf);
  }

  /**
   * Starts a sign-in: registers the flow with the broker, validates the authorize request it
   * returns, keeps the verifier for the callback, and navigates (GET) or submits a form (POST).
   */
  async connect({ provider, method, returnTo, signal } = {}) {
    const p = this.#provider(provider);
    if (method !== undefined && method !== 'get' && method !== 'post') throw fail('invalid_config', 'method must be "get" or "post"');
    const post = method === 'post';
    if (post && !p.authorize_post) throw fail('invalid_config', 'This provider does not accept a form POST authorize request');
    const sdk = await abortable(load(this.#wasm), signal);
    const signIn = wasm(() => new sdk.SignIn(post, returnTo == null ? undefined : String(returnTo)));
    const body = { provider: p.id, state: signIn.state, code_challenge: signIn.codeChallenge, redirect_uri: p.redirect_uri, method: post ? 'post' : 'get' };
    let answer;
    try {
      answer = await this.#call('POST', '/v1/flows', { body, signal });
      signal?.throwIfAborted();
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
   * sign-in once, however often it is called. Aborting `signal` rejects this call only: the
   * sign-in itself is finished for the other callers (a component unmounted under StrictMode
   * does not cancel it).
   */
  handleRedirect(url, { signal } = {}) {
    return abortable(finishRedirect({
      url,
      storage: this.#storage,
      completions,
      load: () => load(this.#wasm).then((sdk) => ({ completeCallback: (...args) => wasm(() => sdk.completeCallback(...args)) })),
      complete: async (body, provider, returnTo) => {
        const proof = proofOf(this.#base);
        const session_proof = proof();
        const { session_proof: next, ...wire } = await this.#call('POST', '/v1/flows/complete', { body: session_proof ? { ...body, session_proof } : body });
        if (isString(next)) proof(next);
        return { provider, returnTo, session: sessionOf(wire) };
      },
      here: () => globalThis.location?.href,
      replace: (url) => history.replaceState(history.state, '', url),
    }).then((done) => {
      // Every client that handles the callback tells its own listeners, once.
      if (done && !this.#told.has(done)) this.#emit('connected', this.#told.add(done) && done);
      return done;
    }), signal);
  }

  /** The browser's connections. */
  async session({ signal } = {}) {
    return sessionOf(await this.#call('GET', '/v1/session', { signal }));
  }

  /** Disconnects one provider (revoking upstream), or every one when none is named. */
  async disconnect(opts) {
    const { provider, signal } = options(opts);
    const body = provider === undefined ? {} : { provider: this.#provider(provider).id };
    const answer = disconnectOf(await this.#call('POST', '/v1/session/disconnect', { body, signal }));
    if (provider === undefined) proofOf(this.#base)(null);
    this.#emit('disconnected', answer);
    return answer;
  }

  /** The provider's userinfo (OpenID Connect). */
  async userinfo(opts) {
    const { provider, signal } = options(opts);
    const p = this.#provider(provider);
    return this.#call('GET', '/v1/userinfo/' + p.id, { signal, provider: p.id });
  }

  /** The signed-in beneficiary's Patient resource. */
  async patient(opts) {
    const page = await this.search('Patient', [], options(opts));
    const [patient] = page.resources;
    if (!patient) throw fail('not_found', 'The provider returned no Patient');
    return patient;
  }

  /** Every Coverage resource of the signed-in beneficiary. */
  async coverage(opts) {
    return (await this.search('Coverage', [], options(opts))).all();
  }

  /** The first page of the beneficiary's claims (ExplanationOfBenefit), with `next()` and async iteration. */
  async explanationOfBenefit({ provider, types, since, until, pageSize, signal } = {}) {
    const p = this.#provider(provider);
    return this.search('ExplanationOfBenefit', eobQuery(p, { types, since, until, pageSize }), { provider: p.id, signal });
  }

  /** Every page of the claims, one after another: `for await (const page of cm.claimPages(query))`. */
  async *claimPages(query) {
    yield* await this.explanationOfBenefit(query);
  }

  /**
   * Every claim: the pages after the first are fetched in parallel (at most `concurrency`) when
   * the Bundle's `last` link plans them, by default as large as the provider serves (50 for
   * Blue Button: fewer round trips under its rate limit).
   */
  async allClaims({ concurrency, onPage, pageSize, ...search } = {}) {
    pageSize ??= this.#provider(search.provider).max_page_size ?? undefined;
    return (await this.explanationOfBenefit({ pageSize, ...search })).all({ concurrency, onPage });
  }

  /** The first page of a search of any type the broker serves for the provider (US Core types on a SMART server), with `next()` and async iteration. */
  async search(type, params, { provider, signal } = {}) {
    const p = this.#provider(provider);
    const path = `/v1/fhir/${p.id}/${fhirType(type)}`;
    const get = (query, signal) => this.#call('GET', query.size ? `${path}?${query}` : path, { signal, provider: p.id });
    const first = new URLSearchParams(params ?? []);
    return new SearchPage(type, get, first, await bundle(get(first, signal)), 0, signal);
  }

  /** Every page of a search, one after another: `for await (const page of cm.pages('Observation', params))`. */
  async *pages(type, params, opts) {
    yield* await this.search(type, params, opts);
  }

  /** One resource of the connected patient, by type and id. */
  async read(type, id, { provider, signal } = {}) {
    const p = this.#provider(provider);
    // The id is the broker's to check (a FHIR id, never a dot segment): encoded, it stays one segment.
    return this.#call('GET', `/v1/fhir/${p.id}/${fhirType(type)}/${encodeURIComponent(id)}`, { signal, provider: p.id });
  }

  #provider(id) {
    const found = id === undefined ? this.#providers[0] : this.#providers.find((p) => p.id === id);
    if (!found) throw fail('unknown_provider', 'The broker does not serve this provider');
    return found;
  }

  #emit(type, detail) {
    this.dispatchEvent(Object.assign(new Event(type), { detail }));
  }

  async #call(method, path, { body, signal, provider } = {}) {
    signal?.throwIfAborted();
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
        signal,
      });
    } catch (e) {
      signal?.throwIfAborted();
      throw new ConnectMedicareError('broker_unreachable', 'The broker could not be reached', undefined, { cause: e });
    }
    let json;
    try {
      json = await response.json();
    } catch {
      signal?.throwIfAborted();
      json = undefined;
    }
    if (!response.ok) {
      const error = brokerError(response.status, json, response.headers.get('retry-after') ?? undefined);
      if (error.code === 'reconnect_required') this.#emit('reconnectRequired', { provider, error });
      if (error.code === 'rate_limited') this.#emit('rateLimited', { provider, retryAfter: error.retryAfter, error });
      throw error;
    }
    if (json === undefined) throw fail('upstream_error', 'The broker answered with a body that is not JSON');
    return json;
  }
}

/** A FHIR resource type name, checked before it becomes part of a path. */
function fhirType(type) {
  if (!/^[A-Z][A-Za-z]{1,63}$/.test(type)) throw fail('invalid_request', 'Not a FHIR resource type');
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

/** Waits `seconds`, or rejects with the signal's reason as soon as it aborts. */
const sleep = (seconds, signal) => abortable(new Promise((resolve) => setTimeout(resolve, seconds * 1000)), signal);

/**
 * One page of search results. Iterate with `for await (const page of firstPage)`. The signal
 * it was fetched with goes on to the pages after it, unless one is given.
 */
class SearchPage {
  #type;
  #get;
  #query;
  #start;
  #signal;

  constructor(type, get, query, bundle, start, signal) {
    this.#type = type;
    this.#get = get;
    this.#query = query;
    this.#start = start;
    this.#signal = signal;
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
  async next({ signal = this.#signal } = {}) {
    const page = nextPage(this.bundle);
    if (page === null) return null;
    if (page.token === undefined && page.startIndex <= this.#start) throw fail('upstream_error', "The Bundle's next link does not move forward");
    return this.#page(page, await bundle(this.#get(at(this.#query, page), signal)), signal);
  }

  [Symbol.asyncIterator]() {
    return this.#pages(this.#signal);
  }

  /** This page and every page after it, fetched one after another with `signal`. */
  async *#pages(signal) {
    for (let page = this, n = 0; page; page = await page.next({ signal })) {
      if (++n > MAX_PAGES) throw fail('upstream_error', 'The search has too many pages');
      yield page;
    }
  }

  /**
   * The resources of this page and of every page after it, in order; `onPage({ loaded, total,
   * page })` after each page (this one first), for a progress bar.
   */
  async all({ concurrency = MAX_CONCURRENCY, onPage, signal = this.#signal } = {}) {
    let loaded = 0;
    const seen = (b) => {
      loaded += resourcesOf(b, this.#type).length;
      onPage?.({ loaded, total: this.total, page: b });
    };
    const plan = pagePlan(this.bundle, this.#start);
    const bundles = [this.bundle];
    seen(this.bundle);
    if (plan === null) {
      for await (const page of this.#pages(signal)) {
        if (page !== this) bundles.push(page.bundle), seen(page.bundle);
      }
    } else {
      bundles.push(...(await this.#parallel(plan, Math.min(Math.max(1, concurrency | 0), MAX_CONCURRENCY), signal, seen)));
    }
    return bundles.flatMap((b) => resourcesOf(b, this.#type));
  }

  #page(page, b, signal) {
    return new SearchPage(this.#type, this.#get, this.#query, b, page.startIndex ?? this.#start, signal);
  }

  /**
   * Fetches every planned page with at most `width` requests in flight, waiting out
   * `rate_limited` answers; none is started once `signal` aborts or a page failed.
   */
  async #parallel(plan, width, signal, seen) {
    const out = new Array(plan.length);
    let next = 0;
    let failed = false;
    const fetchOne = async (page) => {
      for (let attempt = 1; ; attempt++) {
        // A retry after another page failed, or after an abort, is not sent.
        if (failed) throw failed;
        signal?.throwIfAborted();
        try {
          return await bundle(this.#get(at(this.#query, page), signal));
        } catch (e) {
          const wait = e?.retryAfter ?? 1;
          if (e?.code !== 'rate_limited' || attempt >= 3 || wait > MAX_RETRY_AFTER) throw e;
          await sleep(wait, signal);
        }
      }
    };
    const worker = async () => {
      while (!failed && next < plan.length) {
        const i = next++;
        try {
          out[i] = await fetchOne(plan[i]);
          seen(out[i]);
        } catch (e) {
          failed ||= e;
          throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, plan.length) }, worker));
    return out;
  }
}
