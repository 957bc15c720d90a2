// A React app's use of the package, as TSX: `tsc --noEmit` must accept the hook's types and
// <connect-medicare-button> as a JSX element with its attributes, properties and events. The
// tsconfigs pin `react` to tests/node_modules: the package is linked from ../npm, whose own
// devDependencies hold a second @types/react (for its API reference), which an installed
// package would not bring.
import { ConnectMedicare } from 'connect-medicare';
import type { Connection } from 'connect-medicare';
import { useConnectMedicare } from 'connect-medicare/react';

export function App({ client }: { client: ConnectMedicare }) {
  const cm = useConnectMedicare({ broker: '/cm', provider: 'medicare' });
  const status: 'loading' | 'disconnected' | 'connected' | 'reconnect_required' = cm.status;
  const shared: boolean | undefined = cm.connection?.demographicsShared;
  const onConnected = (event: CustomEvent<Connection>) => cm.connected(event.detail);
  return (
    <main>
      <p>{status} {String(shared)} {cm.waiting ?? ''}</p>
      <connect-medicare-button
        client={cm.client ?? client}
        provider="medicare"
        method="post"
        return-to="/claims"
        lang="es"
        strings={{ connect: (name) => `Link ${name}` }}
        onconnect-medicare-connected={onConnected}
        onconnect-medicare-disconnected={() => cm.disconnected()}
        onconnect-medicare-error={(event) => console.log(event.detail.code)}
      />
      <button type="button" onClick={() => void cm.patiently(() => client.session())}>Refresh</button>
    </main>
  );
}

// @ts-expect-error method is "get" or "post"
export const wrong = <connect-medicare-button method="put" />;
