/**
 * `connect-medicare`: the client of a Connect Medicare broker — sign-in, the session, FHIR
 * reads and searches with paging, disconnect — and its error type.
 *
 * @module connect-medicare
 */
// Types of `connect-medicare`. FHIR resources are typed with @types/fhir (`fhir/r4`).
import type { Bundle, Coverage, ExplanationOfBenefit, FhirResource, Patient } from 'fhir/r4.js';

/**
 * The stable machine codes of {@link ConnectMedicareError}: the broker contract's codes, which
 * the SDK raises too where it finds the same fault itself (`invalid_request`, `flow_not_found`,
 * `access_denied`, `upstream_error`, `unknown_provider`, `not_found`), plus
 * `broker_unreachable`, `invalid_config`, `internal` and `not_in_browser` (also: the sign-in
 * chunk or its `.wasm` could not be loaded; the load error is `cause`). A newer broker may send
 * a code not listed here; it is passed through unchanged.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'csrf_required'
  | 'origin_not_allowed'
  | 'unknown_provider'
  | 'redirect_uri_mismatch'
  | 'too_many_flows'
  | 'flow_not_found'
  | 'state_used'
  | 'pkce_mismatch'
  | 'access_denied'
  | 'not_connected'
  | 'reconnect_required'
  | 'demographics_withheld'
  | 'insufficient_scope'
  | 'not_allowed'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'rate_limited'
  | 'upstream_unavailable'
  | 'upstream_error'
  | 'internal'
  | 'broker_unreachable'
  | 'invalid_config'
  | 'not_in_browser';

/**
 * Every failure of the SDK. A real `Error` subclass: check `instanceof ConnectMedicareError`
 * and switch on `code`.
 *
 * @example
 * try { await cm.patient(); }
 * catch (e) { if (e instanceof ConnectMedicareError && e.code === 'reconnect_required') showConnect(); }
 */
export class ConnectMedicareError extends Error {
  constructor(code: ErrorCode | (string & {}), message: string, retryAfter?: number, options?: ErrorOptions);
  readonly name: 'ConnectMedicareError';
  /** The stable machine code. */
  readonly code: ErrorCode | (string & {});
  /** Seconds to wait before retrying (with `rate_limited`). */
  readonly retryAfter?: number;
}

/** Where the pending sign-in is kept between `connect()` and `handleRedirect()`: sessionStorage by default. */
export interface FlowStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length?: number;
  key?(index: number): string | null;
}

export interface CreateOptions {
  /** The broker's base URL: same-site with the app, e.g. `"/cm"` or `"https://app.example.com/cm"`. */
  broker: string;
  /** Defaults to `sessionStorage`. */
  storage?: FlowStorage;
  /**
   * Where to load the wasm module from, when a bundler moved it (default:
   * `connect_medicare_bg.wasm` next to the sign-in chunk, `dist/signin.js`): an absolute path
   * (a relative one is resolved against the page, not the chunk), a `Response`, the bytes or a
   * compiled module. The first client on the page to load the module decides where from.
   */
  wasm?: string | URL | Request | Response | BufferSource | WebAssembly.Module;
  /**
   * Start loading the sign-in chunk and the wasm module now, rather than on `connect()` or a
   * callback (default `false`: a page that only shows data never loads them).
   */
  preload?: boolean;
  /** Aborts reading `/v1/config`. */
  signal?: AbortSignal;
}

/**
 * Cancels a call: when the signal aborts, the call rejects with the signal's `reason` (a
 * `DOMException` named `AbortError` unless you gave another) and starts no further request. An
 * abort is not a `ConnectMedicareError`.
 *
 * @example
 * useEffect(() => {
 *   const stop = new AbortController();
 *   cm.allClaims({ signal: stop.signal, onPage: setProgress }).then(setClaims, (e) => e.name === 'AbortError' || setError(e));
 *   return () => stop.abort();
 * }, []);
 */
export interface Cancellable {
  signal?: AbortSignal;
}

/** Which provider to ask (default: the first the broker serves), and a signal to cancel. */
export interface ProviderOptions extends Cancellable {
  provider?: string;
}

/** A provider this broker serves. */
export interface ProviderSummary {
  /** Its id in the broker (`"medicare"`). */
  id: string;
  /** A display name (`"Medicare"`). */
  name: string;
  kind: 'blue_button' | 'smart';
  /**
   * Whether disconnect can end the app's access at the provider. When `false`, the broker
   * only forgets its tokens: tell users they end the access in their account with the provider.
   */
  revocationSupported: boolean;
  /** The largest page the provider serves (`_count`; 50 for Blue Button), or null when it names none. */
  maxPageSize: number | null;
}

export interface ConnectOptions extends Cancellable {
  /** A provider id; default: the first one the broker serves. */
  provider?: string;
  /** `"get"` (default) navigates; `"post"` submits a form, where the provider allows it. */
  method?: 'get' | 'post';
  /** Where the app wants to go after the callback: a same-origin path such as `"/claims"`. */
  returnTo?: string;
}

/** One provider's connection, as the broker reports it. */
export interface Connection {
  provider: string;
  status: 'connected' | 'reconnect_required';
  /** The beneficiary's FHIR Patient id. */
  patient: string | null;
  /** The scopes granted. */
  scopes: string[];
  /** Whether the user shared demographics (Patient and userinfo need them). */
  demographicsShared: boolean;
  /** When the data-access grant ends (RFC 3339), or null when it does not. */
  grantExpiresAt: string | null;
}

export interface Session {
  connections: Connection[];
}

export interface RedirectResult {
  /** The provider just connected. */
  provider: string;
  /** The `returnTo` given to `connect()`, or null. */
  returnTo: string | null;
  session: Session;
}

export interface DisconnectResult {
  /** The providers whose connection was removed (empty when there was none). */
  disconnected: string[];
  /** For each of them, what became of the app's access at the provider. */
  revocations: ProviderRevocation[];
}

/**
 * The provider's side of a disconnect (the broker's copy of the tokens is deleted in every
 * case): `revoked` — the provider accepted the revocation (for Blue Button, the request that
 * deletes the grant); `pending` — the provider could not be reached, the broker keeps asking
 * for about a day and a half; `failed` — the provider refused; `not_supported` — the provider
 * has no revocation. In the last two (and a `pending` that lasts) the user ends the access in
 * their account with the provider.
 */
export type RevocationStatus = 'revoked' | 'pending' | 'failed' | 'not_supported';

export interface ProviderRevocation {
  provider: string;
  status: RevocationStatus;
}

/** OpenID Connect userinfo. */
export interface UserInfo {
  sub: string;
  name?: string;
  given_name?: string;
  family_name?: string;
  email?: string;
  [claim: string]: unknown;
}

/** Blue Button claim types. */
export type ClaimType = 'carrier' | 'pde' | 'dme' | 'hha' | 'hospice' | 'inpatient' | 'outpatient' | 'snf';

export interface ClaimsQuery extends ProviderOptions {
  /** Only these claim types. */
  types?: ClaimType[];
  /** Claims with a service date on or after this date (`YYYY-MM-DD`, or a Date). */
  since?: string | Date;
  /** Claims with a service date on or before this date. */
  until?: string | Date;
  /** Entries per page (`_count`; at most 50 for Medicare). */
  pageSize?: number;
}

/** A FHIR R4 resource type name (`'Observation'`, `'Condition'`, ...). */
export type ResourceType = FhirResource['resourceType'];

/** The resource of type `T`: `ResourceOf<'Observation'>` is `Observation`. */
export type ResourceOf<T extends ResourceType> = Extract<FhirResource, { resourceType: T }>;

/**
 * Search parameters, as `URLSearchParams` takes them. The broker allows, per type, the
 * parameters US Core requires (`category`, `code`, `date` with its prefixes, `status`...),
 * `_count`, `_sort` on the type's dates, and refuses the rest with `not_allowed`; the patient is
 * always the connection's own.
 */
export type SearchParams = Record<string, string> | [string, string][] | URLSearchParams | string;

/** What `onPage` is told after each page of an all-pages call: draw a progress bar with it. */
export interface PageProgress<T extends FhirResource = FhirResource> {
  /** Resources of the searched type received so far, this page's included. */
  loaded: number;
  /** `Bundle.total` of the first page, when the server sent it. */
  total: number | undefined;
  /** The Bundle just received. */
  page: Bundle<T>;
}

/** Options of the all-pages calls. */
export interface AllOptions<T extends FhirResource = FhirResource> extends Cancellable {
  /** Pages fetched at once when the Bundle's links plan them (10 at most, and by default). */
  concurrency?: number;
  /** Called after each page, the first one included. */
  onPage?: (progress: PageProgress<T>) => void;
}

/** What a client tells its listeners (`cm.addEventListener(type, listener)`), in `event.detail`. */
export interface ConnectMedicareEventMap {
  /** A sign-in finished (`handleRedirect`). */
  connected: RedirectResult;
  /** `disconnect()` answered. */
  disconnected: DisconnectResult;
  /** A call found the connection ended: the user must connect again. */
  reconnectRequired: { provider: string | undefined; error: ConnectMedicareError };
  /** A call was throttled: retry after `retryAfter` seconds. */
  rateLimited: { provider: string | undefined; retryAfter: number | undefined; error: ConnectMedicareError };
}

/** An event of a {@link ConnectMedicare} client. */
export interface ConnectMedicareEvent<K extends keyof ConnectMedicareEventMap> extends Event {
  readonly type: K;
  readonly detail: ConnectMedicareEventMap[K];
}

/**
 * One page of search results. Iterate over it and the pages after it with `for await`.
 *
 * @example
 * const first = await cm.explanationOfBenefit({ types: ['carrier', 'pde'], pageSize: 50 });
 * for await (const page of first) render(page.resources);
 */
export interface SearchPage<T extends FhirResource> extends AsyncIterable<SearchPage<T>> {
  /** The search Bundle, as the server sent it. */
  readonly bundle: Bundle<T>;
  /** This page's resources of the searched type. */
  readonly resources: T[];
  /** `Bundle.total`, when the server sent it. */
  readonly total: number | undefined;
  /** Whether a next page exists. */
  readonly hasNext: boolean;
  /** The next page (the same search sent through the broker with the next `startIndex`, or the broker's sealed link), or null. The signal defaults to the one this page was fetched with. */
  next(options?: Cancellable): Promise<SearchPage<T> | null>;
  /** The resources of this page and every page after it, fetched in parallel where the `last` link allows; `onPage` after each page. */
  all(options?: AllOptions<T>): Promise<T[]>;
}

/**
 * A client of one Connect Medicare token broker.
 *
 * @example
 * const cm = await ConnectMedicare.create({ broker: '/cm' });
 * const done = await cm.handleRedirect();          // on the callback route; null elsewhere
 * if (!done) await cm.connect({ returnTo: '/claims' });
 */
export class ConnectMedicare extends EventTarget {
  private constructor();
  /** Reads the broker's `/v1/config`. The wasm module loads on `connect()` or a callback (or now, with `preload`). */
  static create(options: CreateOptions): Promise<ConnectMedicare>;
  /** The providers this broker serves. */
  readonly providers: ProviderSummary[];
  /** Starts a sign-in and leaves the page (the promise settles only on failure or before navigation). */
  connect(options?: ConnectOptions): Promise<void>;
  /**
   * Finishes a sign-in on the callback route: `null` when `url` (default: the address bar) is
   * not a callback. Aborting rejects this call only; the sign-in is finished for every other
   * caller (a component unmounted under StrictMode does not cancel it).
   */
  handleRedirect(url?: string, options?: Cancellable): Promise<RedirectResult | null>;
  /** The browser's connections. */
  session(options?: Cancellable): Promise<Session>;
  /** The signed-in beneficiary (a string is the provider, as in 0.1). */
  patient(options?: ProviderOptions | string): Promise<Patient>;
  /** Every Coverage of the beneficiary. */
  coverage(options?: ProviderOptions | string): Promise<Coverage[]>;
  /** The first page of claims. */
  explanationOfBenefit(query?: ClaimsQuery): Promise<SearchPage<ExplanationOfBenefit>>;
  /**
   * Every page of claims, one after another.
   *
   * @example
   * for await (const page of cm.claimPages({ pageSize: 50, signal })) render(page.resources);
   */
  claimPages(query?: ClaimsQuery): AsyncGenerator<SearchPage<ExplanationOfBenefit>, void, undefined>;
  /** Every claim, pages fetched in parallel where the links plan them (at most `concurrency`, 10 at most, and by default); `onPage` after each. */
  allClaims(query?: ClaimsQuery & AllOptions<ExplanationOfBenefit>): Promise<ExplanationOfBenefit[]>;
  /**
   * The first page of a search of any type the broker serves for the provider: on a SMART
   * server, the US Core types its configuration and the grant allow.
   *
   * @example
   * const labs = await cm.search('Observation', { category: 'laboratory', _sort: '-date' }, { provider: 'ehr' });
   * for (const o of labs.resources) console.log(o.code.text, o.valueQuantity?.value);
   */
  search<T extends ResourceType>(type: T, params?: SearchParams, options?: ProviderOptions): Promise<SearchPage<ResourceOf<T>>>;
  /** Every page of a search, one after another. */
  pages<T extends ResourceType>(type: T, params?: SearchParams, options?: ProviderOptions): AsyncGenerator<SearchPage<ResourceOf<T>>, void, undefined>;
  /** One resource of the connected patient, by type and id (`not_found` when it is not theirs). */
  read<T extends ResourceType>(type: T, id: string, options?: ProviderOptions): Promise<ResourceOf<T>>;
  /** OpenID Connect userinfo. */
  userinfo(options?: ProviderOptions | string): Promise<UserInfo>;
  /** Disconnects one provider, or every one: the broker deletes its tokens and asks the provider to revoke them where it can. Idempotent. */
  disconnect(options?: ProviderOptions | string): Promise<DisconnectResult>;
  addEventListener<K extends keyof ConnectMedicareEventMap>(
    type: K,
    listener: (event: ConnectMedicareEvent<K>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ConnectMedicareEventMap>(
    type: K,
    listener: (event: ConnectMedicareEvent<K>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
