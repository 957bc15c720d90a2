// A consumer of the published package, bundled by esbuild (tests/e2e/esbuild.mjs builds it):
// imports by package name, the button and the client; shows the patient once connected.
import { ConnectMedicare } from 'connect-medicare';
import 'connect-medicare/button';

const client = await ConnectMedicare.create({ broker: location.origin });
document.querySelector('connect-medicare-button').client = client;
await client.handleRedirect().catch(() => null);
const { connections } = await client.session();
if (connections.some((c) => c.status === 'connected')) {
  const patient = await client.patient();
  document.querySelector('#patient').textContent = `Patient ${patient.id}`;
}
