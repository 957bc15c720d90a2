// connect-medicare/react — `useConnectMedicare`: one ConnectMedicare client for the page, the
// callback handled once, and the browser's connection as React state. React is an optional
// peer dependency: only this entry imports it. Server rendering is safe: nothing here touches a
// browser global until an effect runs, and on the server the hook reports `loading`.
//
//   import { useConnectMedicare } from 'connect-medicare/react';
//   const cm = useConnectMedicare({ broker: '/cm' });
//   cm.status      'loading' | 'disconnected' | 'connected' | 'reconnect_required'
//   cm.connection  the provider's Connection (patient id, scopes, demographicsShared, ...)
//   cm.client      the ConnectMedicare client, once it is ready (null before)
//   cm.loading     true while the client is made, a callback finished and the session read
//   cm.error       the last ConnectMedicareError nobody handled (access_denied, state_used, ...)
//   cm.waiting     seconds until a rate-limited call is tried again, or null
//   cm.connect(), cm.disconnect(), cm.refresh()         actions
//   cm.patiently(call)   runs an SDK call, waiting out `rate_limited` (retryAfter) up to 5 times
//   cm.fail(error)       hands an error to the hook: reconnect_required and not_connected
//                        change the status, anything else becomes cm.error
//   cm.connected(c), cm.disconnected()   what <connect-medicare-button>'s events report
//
// React StrictMode mounts every component twice in development, running effects twice. The
// client is made once per broker for the page (a module-level cache, not a ref: StrictMode
// throws away the first mount's refs and state). handleRedirect() may be called by both
// mounts and by the button: the SDK gives every caller the one completion of a callback, so
// the broker sees a single POST /v1/flows/complete; an unmounted component's call is aborted
// without cancelling that completion.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ConnectMedicare, ConnectMedicareError } from './index.js';

const clients = new Map();

/** The page's client for `broker`, made once (a failed attempt may be made again). */
function clientFor(broker) {
  let client = clients.get(broker);
  if (!client) {
    client = ConnectMedicare.create({ broker });
    clients.set(broker, client);
    client.catch(() => clients.delete(broker));
  }
  return client;
}

const NO_SESSION = { connections: [] };
/** Whether every provider of a disconnect accepted to end the app's access (`revoked`). */
const revokedEverywhere = (result) => (result?.revocations ?? []).every((r) => r.status === 'revoked');
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const isCode = (error, ...codes) => error instanceof ConnectMedicareError && codes.includes(error.code);

export function useConnectMedicare({ broker, provider } = {}) {
  const [state, setState] = useState({
    client: null,
    session: null,
    redirect: null,
    loading: true,
    error: null,
    notice: '',
    waiting: null,
    ended: 0,
  });
  // A patch, or a function of the state giving a patch (null: nothing changed, no render).
  const update = useCallback((patch) => setState((s) => {
    const next = typeof patch === 'function' ? patch(s) : patch;
    return next ? { ...s, ...next } : s;
  }), []);

  useEffect(() => {
    const stop = new AbortController();
    const { signal } = stop;
    const apply = (patch) => signal.aborted || update(patch);
    (async () => {
      // The page's origin by default, read here: an effect never runs on a server.
      const client = await clientFor(broker ?? location.origin);
      // Called on every mount (twice under StrictMode): the calls share one completion, and
      // aborting an unmounted one's call leaves the completion to the other.
      const finishing = client.handleRedirect(undefined, { signal });
      apply({ client });
      let redirect = null;
      let error = null;
      try {
        redirect = await finishing;
      } catch (e) {
        error = e;
      }
      if (signal.aborted) return;
      // Off the callback route: where connect() asked to return, or home after a failure.
      if (redirect) history.replaceState(history.state, '', redirect.returnTo ?? '/');
      else if (error) history.replaceState(history.state, '', '/');
      let session = redirect?.session;
      if (!session) {
        try {
          session = await client.session({ signal });
        } catch (e) {
          if (signal.aborted) return;
          if (!isCode(e, 'not_connected')) error ??= e;
          session = NO_SESSION;
        }
      }
      apply({ session, redirect, error, loading: false });
    })().catch((error) => apply({ error, loading: false }));
    return () => stop.abort();
  }, [broker, update]);

  const { client, session } = state;
  const providerId = provider ?? client?.providers[0]?.id;
  const connection = session?.connections.find((c) => c.provider === providerId) ?? null;
  const status = session ? (connection?.status ?? 'disconnected') : state.loading ? 'loading' : 'disconnected';

  /** Marks the connection ended (`reconnect_required`) or gone (`not_connected`). */
  const fail = useCallback(
    (error) => {
      if (isCode(error, 'reconnect_required')) {
        update((s) => ({
          ended: s.ended + 1,
          session: {
            connections: (s.session ?? NO_SESSION).connections.map((c) =>
              c.provider === providerId ? { ...c, status: 'reconnect_required' } : c),
          },
        }));
      } else if (isCode(error, 'not_connected')) {
        update((s) => ({ ended: s.ended + 1, session: NO_SESSION }));
      } else {
        update({ error });
      }
    },
    [providerId, update],
  );

  const patiently = useCallback(
    async (call) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await call();
        } catch (e) {
          if (!isCode(e, 'rate_limited') || attempt >= 5) throw e;
          const seconds = e.retryAfter ?? 1;
          update({ waiting: seconds });
          await sleep(seconds);
          update({ waiting: null });
        }
      }
    },
    [update],
  );

  const refresh = useCallback(async () => {
    if (!client) return;
    try {
      update({ session: await client.session() });
    } catch (e) {
      if (isCode(e, 'not_connected')) update({ session: NO_SESSION });
      else update({ error: e });
    }
  }, [client, update]);

  const connect = useCallback(
    (options) => client?.connect({ provider: providerId, ...options }).catch((error) => update({ error })),
    [client, providerId, update],
  );

  /**
   * The connection is gone here; the notice says whether the provider ended the app's access
   * too (`result`: what `disconnect()` or the button's event reported).
   */
  const disconnected = useCallback(
    (result) => update((s) => ({
      error: null,
      notice: revokedEverywhere(result)
        ? 'Disconnected. Your data is no longer shared with this app.'
        : "Disconnected here. The provider could not confirm it ended this app's access: you can end it in your account with them.",
      session: { connections: (s.session ?? NO_SESSION).connections.filter((c) => c.provider !== providerId) },
    })),
    [providerId, update],
  );

  const disconnect = useCallback(async () => {
    if (!client) return;
    try {
      disconnected(await client.disconnect(providerId));
    } catch (error) {
      update({ error });
    }
  }, [client, providerId, disconnected, update]);

  /** The button saw a live connection: take it (no new state when nothing changed). */
  const connected = useCallback(
    (connection) => update((s) => {
      const connections = (s.session ?? NO_SESSION).connections;
      const same = connections.find((c) => c.provider === connection.provider);
      if (same && JSON.stringify(same) === JSON.stringify(connection)) return null;
      return {
        notice: '',
        session: { connections: [...connections.filter((c) => c.provider !== connection.provider), connection] },
      };
    }),
    [update],
  );

  return useMemo(
    () => ({
      ...state,
      status,
      connection,
      providerId,
      fail,
      patiently,
      refresh,
      connect,
      disconnect,
      connected,
      disconnected,
    }),
    [state, status, connection, providerId, fail, patiently, refresh, connect, disconnect, connected, disconnected],
  );
}
