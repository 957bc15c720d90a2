// The React example: the same app as examples/vanilla — the button, the callback route, the
// beneficiary (or "personal information not shared"), coverage, a claims table with type
// filters and paging, every claim added up with a progress bar, the reconnect prompt when the
// grant ends, and disconnect — on top of the package's React entry, `connect-medicare/react`.
import { useConnectMedicare } from 'connect-medicare/react';
import { useEffect, useRef } from 'react';

import { Beneficiary } from './Beneficiary.jsx';
import { Claims } from './Claims.jsx';
import { ConnectButton } from './ConnectButton.jsx';
import { Coverage } from './Coverage.jsx';
import { EveryClaim } from './EveryClaim.jsx';

function statusLine({ waiting, error, notice }) {
  if (waiting !== null) return `Medicare is busy; trying again in ${waiting} s…`;
  if (error?.code === 'access_denied') return 'You chose not to share your Medicare data. You can connect again any time.';
  if (error) return error.code ? `${error.message} (${error.code})` : String(error);
  return notice;
}

export function App() {
  // The broker serves this app: same origin. Behind a reverse proxy it could be "/cm".
  const cm = useConnectMedicare({ broker: location.origin });
  const button = useRef(null);

  // A data call found the connection ended or gone: the button reads the session again.
  useEffect(() => {
    if (cm.ended) button.current?.refresh();
  }, [cm.ended]);

  return (
    <>
      <header>
        <h1>My Medicare claims</h1>
        <p className="lede">
          A Vite + React app using <code>connect-medicare</code> and its broker, through its{' '}
          <code>useConnectMedicare</code> hook (<code>connect-medicare/react</code>).
        </p>
      </header>
      <main>
        <section id="connect" aria-labelledby="connect-title">
          <h2 id="connect-title">Your connection</h2>
          {cm.status === 'reconnect_required' && (
            <p id="reconnect" className="notice" role="alert">
              Your Medicare connection has ended. Connect again to keep seeing your data.
            </p>
          )}
          <p id="status" role="status" aria-live="polite">{statusLine(cm)}</p>
          {cm.client && (
            <ConnectButton
              ref={button}
              client={cm.client}
              returnTo="/"
              onConnected={cm.connected}
              onDisconnected={cm.disconnected}
            />
          )}
        </section>

        {cm.status === 'connected' && (
          // Keyed by beneficiary: another sign-in starts the views afresh.
          <section id="data" key={`${cm.connection.provider}:${cm.connection.patient}`}>
            <Beneficiary cm={cm} />
            <Coverage cm={cm} />
            <Claims cm={cm} />
            <EveryClaim cm={cm} />
          </section>
        )}
      </main>
      <footer>
        <p>
          This app uses the CMS Blue Button 2.0 API but is not endorsed or certified by the Centers
          for Medicare &amp; Medicaid Services.
        </p>
      </footer>
    </>
  );
}
