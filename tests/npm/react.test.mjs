// `connect-medicare/react` on a server: importing it and rendering a component that uses the
// hook touch no browser global, and the hook reports `loading` (the effects that make the
// client never run there). In the browser, under StrictMode, it runs in tests/e2e/react.mjs.
//
// The check runs in a Node process of its own with --preserve-symlinks: tests/node_modules
// links the package to ../npm, and React must resolve from here, where it is installed, as it
// does from an app that installed the package.
//
//   cd tests && node --test npm/react.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const tests = join(dirname(fileURLToPath(import.meta.url)), '..');

const SERVER = `
const touched = [];
for (const name of ['window', 'document', 'location', 'history', 'sessionStorage', 'localStorage']) {
  Object.defineProperty(globalThis, name, { configurable: true, get() { touched.push(name); } });
}
const { createElement } = await import('react');
const { renderToString } = await import('react-dom/server');
const { useConnectMedicare } = await import('connect-medicare/react');
function App() {
  // No broker: the default (the page's origin) must not be read while rendering.
  const cm = useConnectMedicare();
  return createElement('p', null, cm.status + ' ' + (cm.client === null) + ' ' + (cm.connection === null));
}
console.log(JSON.stringify({ html: renderToString(createElement(App)), touched }));
`;

test('the React entry renders on the server without a browser global', () => {
  const out = execFileSync(process.execPath, ['--preserve-symlinks', '--input-type=module', '-e', SERVER], { cwd: tests, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { html: '<p>loading true true</p>', touched: [] });
});
