/**
 * `connect-medicare/react`: the `useConnectMedicare` hook, and JSX types for
 * `<connect-medicare-button>`.
 *
 * @module connect-medicare/react
 */
// Types of `connect-medicare/react`: the `useConnectMedicare` hook, and JSX types for
// <connect-medicare-button> in React (19's custom-element props and events). React is an
// optional peer dependency of the package: install `react` and `@types/react` to use this entry.
import type { DetailedHTMLProps, HTMLAttributes } from 'react';
import type { ButtonStrings, ConnectMedicareButton } from './button.js';
import type {
  ConnectMedicare,
  ConnectMedicareError,
  ConnectOptions,
  Connection,
  DisconnectResult,
  RedirectResult,
  Session,
} from './index.js';

export interface UseConnectMedicareOptions {
  /** The broker's base URL (default: the page's origin, read in an effect). One client per broker for the page. */
  broker?: string;
  /** The provider the hook follows (default: the broker's first). */
  provider?: string;
}

export interface ConnectMedicareState {
  /** `loading` until the client is made, a callback finished and the session read (always on the server). */
  status: 'loading' | 'disconnected' | 'connected' | 'reconnect_required';
  /** The followed provider's connection, or null. */
  connection: Connection | null;
  /** The provider followed. */
  providerId: string | undefined;
  /** The client, once it is ready. */
  client: ConnectMedicare | null;
  /** The whole session, once read. */
  session: Session | null;
  /** The sign-in this page finished, on the callback route. */
  redirect: RedirectResult | null;
  loading: boolean;
  /** The last error nobody handled. */
  error: ConnectMedicareError | Error | null;
  /** A message for the user after a disconnect. */
  notice: string;
  /** Seconds until a rate-limited call is tried again, or null. */
  waiting: number | null;
  /** Counts the connections that ended while the page was open. */
  ended: number;
  /** Starts a sign-in for the followed provider. */
  connect(options?: ConnectOptions): Promise<void> | undefined;
  /** Disconnects the followed provider. */
  disconnect(): Promise<void>;
  /** Reads the session again. */
  refresh(): Promise<void>;
  /** Runs an SDK call, waiting out `rate_limited` up to 5 times (`waiting` says how long). */
  patiently<T>(call: () => Promise<T>): Promise<T>;
  /** Hands an error to the hook: `reconnect_required` and `not_connected` change the status; anything else becomes `error`. */
  fail(error: unknown): void;
  /** What <connect-medicare-button>'s `connect-medicare-connected` event reports. */
  connected(connection: Connection): void;
  /** What <connect-medicare-button>'s `connect-medicare-disconnected` event reports (its `detail`). */
  disconnected(result?: DisconnectResult): void;
}

/**
 * One ConnectMedicare client for the page, the callback handled once (StrictMode-safe), and the
 * connection as React state.
 *
 * @example
 * const cm = useConnectMedicare({ broker: '/cm' });
 * if (cm.status === 'connected') return <Claims client={cm.client} />;
 * return <connect-medicare-button client={cm.client ?? undefined} return-to="/claims" />;
 */
export function useConnectMedicare(options?: UseConnectMedicareOptions): ConnectMedicareState;

/** The props of <connect-medicare-button> in JSX. */
export interface ConnectMedicareButtonProps
  extends DetailedHTMLProps<HTMLAttributes<ConnectMedicareButton>, ConnectMedicareButton> {
  broker?: string;
  provider?: string;
  method?: 'get' | 'post';
  'return-to'?: string;
  /** Set as a property (React 19). */
  client?: ConnectMedicare;
  /** Set as a property (React 19). */
  strings?: Partial<ButtonStrings>;
  'onconnect-medicare-connected'?: (event: CustomEvent<Connection>) => void;
  'onconnect-medicare-disconnected'?: (event: CustomEvent<DisconnectResult>) => void;
  'onconnect-medicare-error'?: (event: CustomEvent<ConnectMedicareError>) => void;
}

declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      'connect-medicare-button': ConnectMedicareButtonProps;
    }
  }
}
