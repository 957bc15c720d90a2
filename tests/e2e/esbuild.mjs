// The package as an esbuild user bundles it: an app importing `connect-medicare` and
// `connect-medicare/button` by name (tests/e2e/esbuild/), bundled with code splitting. The
// build must emit the sign-in chunk separately from the app's entry; esbuild does not follow
// `new URL(…, import.meta.url)`, so the app copies the package's .wasm next to its chunks, as
// npm/README.md tells esbuild users to. Then, in Chromium through the real sandbox and broker:
// the page loads no sign-in code until the button is pressed, and the sign-in completes.
//
//   cd tests && node --test e2e/esbuild.mjs     # after scripts/build-npm.sh and the cargo build
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launchChromium, signInAtSandbox, startServers } from './servers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const tests = join(here, '..');
const repo = join(tests, '..');
let build;
let servers;
let browser;

before(async () => {
  build = mkdtempSync(join(tmpdir(), 'cm-esbuild-'));
  const assets = join(build, 'assets');
  execFileSync(join(repo, 'npm', 'node_modules', '.bin', 'esbuild'), [
    join(here, 'esbuild', 'app.js'), '--bundle', '--splitting', '--format=esm', '--minify', '--log-level=warning',
    `--outdir=${assets}`, '--entry-names=[name]', '--chunk-names=[name]-[hash]',
  ], { cwd: tests, stdio: 'inherit' });
  copyFileSync(join(here, 'esbuild', 'index.html'), join(build, 'index.html'));
  // The one step esbuild needs: the wasm next to the chunks (the package's own file, as installed).
  copyFileSync(join(tests, 'node_modules', 'connect-medicare', 'dist', 'connect_medicare_bg.wasm'), join(assets, 'connect_medicare_bg.wasm'));
  servers = await startServers({ site: relative(tests, build), redirectPath: '/' });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await servers?.stop();
  if (build) rmSync(build, { recursive: true, force: true });
});

test('esbuild emits the sign-in chunk apart from the app entry', () => {
  const files = readdirSync(join(build, 'assets'));
  const signin = files.filter((f) => /^signin-[\w-]+\.js$/.test(f));
  assert.equal(signin.length, 1, files.join(' '));
  assert.match(readFileSync(join(build, 'assets', signin[0]), 'utf8'), /new URL\("connect_medicare_bg\.wasm",import\.meta\.url\)/);
  assert.doesNotMatch(readFileSync(join(build, 'assets', 'app.js'), 'utf8'), /connect_medicare_bg/);
});

test('the bundled app loads no sign-in code until connect, then signs in', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const problems = [];
  const fetched = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('request', (request) => fetched.push(new URL(request.url()).pathname));
  await page.route('**/*', (route) => /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(route.request().url())
    ? route.continue() : (problems.push(route.request().url()), route.abort()));

  await page.goto(servers.app);
  const button = page.locator('connect-medicare-button button[part=button][aria-busy=false]:not([disabled])');
  await button.waitFor();
  assert.deepEqual(fetched.filter((p) => /signin|\.wasm$/.test(p)), [], 'the page loads no sign-in code before connect');
  await button.click();
  await signInAtSandbox(page);
  await page.locator('#patient').filter({ hasText: /^Patient \S+/ }).waitFor();
  assert.ok(fetched.some((p) => /^\/assets\/signin-[\w-]+\.js$/.test(p)));
  assert.ok(fetched.includes('/assets/connect_medicare_bg.wasm'));
  assert.deepEqual(problems, []);
  await context.close();
});
