// Real processes for the browser tests: the Blue Button sandbox emulator on 127.0.0.1 (cross-
// site, as CMS is) and the broker on localhost serving an app directory, both on ephemeral
// ports, with the built npm package staged into the app as `connect-medicare/`.
//
//   const servers = await startServers({ site: 'e2e/slice', redirectPath: '/' });
//   ... servers.app (http://localhost:PORT/), servers.sandbox (http://127.0.0.1:PORT) ...
//   await servers.stop();
//
// The binaries come from the shared cargo target directory (built by scripts/test.sh):
// CM_TARGET_DIR (or CARGO_TARGET_DIR) overrides it. Nothing here reaches beyond loopback.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const targetDir = process.env.CM_TARGET_DIR ?? process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
export const CLIENT_ID = 'e2e-client';
export const CLIENT_SECRET = 'canary-client-secret-4f1d';

/** Debian's Chromium (or CM_CHROMIUM), headless, with nothing of its own on the network. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CM_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

/** Fills in and submits the sandbox's Medicare login as `user` (password: BBUser00009's is PW00009!). */
export async function logIn(page, user, password = user.replace('BBUser', 'PW') + '!') {
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('#login-submit');
}

/**
 * Signs in at the sandbox as a beneficiary once the browser is on its way there: the Medicare
 * login when it asks (`user`, BBUser00008 unless given; `atLogin` runs first, for a test's own
 * checks), then the consent page (`atConsent` runs first), where `share: false` unchecks the
 * demographics and `allow: false` denies.
 */
export async function signInAtSandbox(page, { user = 'BBUser00008', password, allow = true, share = true, atLogin, atConsent } = {}) {
  await page.locator('#username, #allow').first().waitFor();
  if (await page.locator('#username').count()) {
    await atLogin?.();
    await logIn(page, user, password);
  }
  await page.locator('#allow').waitFor();
  await atConsent?.();
  if (!share) await page.locator('#share-demographics').uncheck();
  await page.click(allow ? '#allow' : '#deny');
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Spawns `bin` and resolves with the first stdout/stderr line matching `pattern`'s group. */
function start(bin, args, env, pattern) {
  const child = spawn(join(targetDir, 'debug', bin), args, {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${bin} did not start:\n${log.join('\n')}`)), 60_000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.push(line);
        const match = line.match(pattern);
        if (match) {
          clearTimeout(timer);
          done({ child, value: match[1], match, log });
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${bin} exited with ${code}:\n${log.join('\n')}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      fail(new Error(`${bin} could not be started: ${e.message}`));
    });
  });
}

/**
 * Starts the sandbox and a broker serving `site` (a folder relative to tests/), with the
 * app's redirect URI at `redirectPath`. Extra sandbox flags in `sandboxArgs`.
 */
export async function startServers({ site, redirectPath = '/callback', sandboxArgs = [], providers = '' }) {
  const dir = mkdtempSync(join(tmpdir(), 'cm-e2e-'));
  const appDir = join(dir, 'site');
  cpSync(join(repo, 'tests', site), appDir, { recursive: true, dereference: false, filter: (src) => !src.endsWith('connect-medicare') });
  execFileSync(join(repo, 'scripts', 'stage-npm.sh'), [join(appDir, 'connect-medicare')], { stdio: 'inherit' });
  // The app's port goes into the redirect URI the sandbox registers, so it is chosen before
  // either server starts; the sandbox's own ephemeral ports can then land on it in between
  // (seen once in CI: the broker's bind failed with EADDRINUSE). Both start again on a new
  // port then, at most three times.
  let app, redirect, sandbox, login, broker, startBroker;
  for (let attempt = 1; ; attempt++) {
    const appPort = await freePort();
    app = `http://localhost:${appPort}`;
    redirect = `${app}${redirectPath}`;
    sandbox = await start(
      'connect-medicare-sandbox',
      ['serve', '--listen', '127.0.0.1:0', '--login-listen', '127.0.0.1:0', '--admin', '--app', `${CLIENT_ID}:${CLIENT_SECRET}:${redirect}`, ...sandboxArgs],
      { RUST_LOG: 'info' },
      /listening on (http:\/\/127\.0\.0\.1:\d+) .*Medicare login at (http:\/\/127\.0\.0\.1:\d+)/,
    );
    // Blue Button's sign-in is on another origin (Medicare.gov's); a form POST sign-in goes
    // through it, so the app's CSP form-action must list it.
    login = sandbox.match[2];
    const key = execFileSync(join(targetDir, 'debug', 'connect-medicare-broker'), ['gen-key', '--id', 'e2e']).toString();
    writeFileSync(join(dir, 'broker.toml'), `
listen = "127.0.0.1:${appPort}"
public_base_url = "${app}"
database = "sqlite://broker.db"
static_dir = "site"
${key}
[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "${sandbox.value}"
client_id = "${CLIENT_ID}"
redirect_uri = "${redirect}"
sign_in_origins = ["${login}"]
${providers.replaceAll('{sandbox}', sandbox.value).replaceAll('{redirect}', redirect)}
`);
    startBroker = async () => {
      broker = await start(
        'connect-medicare-broker',
        ['serve', '--config', join(dir, 'broker.toml')],
        {
          CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET: CLIENT_SECRET,
          ...(providers.includes('id = "ehr"') ? { CM_BROKER_PROVIDERS__EHR__CLIENT_SECRET: CLIENT_SECRET } : {}),
          CM_BROKER_LOG: 'info',
        },
        /serving address=(\S+)/,
      );
    };
    try {
      await startBroker();
      break;
    } catch (e) {
      sandbox.child.kill();
      if (attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
    }
  }
  return {
    app: `${app}/`,
    redirect,
    sandbox: sandbox.value,
    /** The origin of the sandbox's Medicare login (Blue Button's sign-in page). */
    login,
    dir,
    /** The broker's log so far (for a test's failure message, and the no-secrets check). */
    brokerLog: () => broker.log.join('\n'),
    /**
     * Tells the sandbox's admin endpoint `body` at `/__admin/<what>` (`faults`: throttling and
     * errors; `clock`: tokens and grants age, the broker's clock does not move); fails unless
     * it is taken.
     */
    async admin(what, body) {
      const response = await fetch(`${sandbox.value}/__admin/${what}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (response.status !== 200) throw new Error(`sandbox /__admin/${what}: ${response.status} ${await response.text()}`);
    },
    /** Stops and starts the broker again on the same port and store (sessions must survive). */
    async restartBroker() {
      await stop(broker.child);
      await startBroker();
    },
    async stop() {
      await Promise.all([stop(broker?.child), stop(sandbox.child)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stop(child) {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

/**
 * The examples' "Every claim" section, on a connected page: with no type filter, "Add up every
 * claim" reports each page ("Loaded N of T claims…", only growing) and ends with the sum of
 * every claim; "Stop" aborts a run with no request after it. Returns the claims' total.
 */
export async function addUpEveryClaim(page) {
  await page.uncheck('#filters input[value=pde]');
  if (await page.locator('#filters input[value=carrier]').count()) await page.uncheck('#filters input[value=carrier]');
  await page.waitForFunction(() => document.querySelectorAll('#filters input:checked').length === 0);
  await page.evaluate(() => {
    globalThis.progressSeen = [];
    new MutationObserver(() => globalThis.progressSeen.push(document.querySelector('#summary').textContent))
      .observe(document.querySelector('#summary'), { childList: true, characterData: true, subtree: true });
  });
  await page.click('#add-up');
  await page.waitForFunction(() => document.querySelector('#summary').textContent.includes('paid in total'));
  const seen = await page.evaluate(() => globalThis.progressSeen);
  const loadedLines = seen.filter((line) => line.startsWith('Loaded'));
  const total = Number(/ of (\d+) claims/.exec(loadedLines[0] ?? '')?.[1]);
  // Progress shown page by page (React may fold the last one into the summary), only growing.
  const loaded = loadedLines.map((line) => Number(/^Loaded (\d+)/.exec(line)[1]));
  assert.ok(total > 100 && loaded.length >= 2 && loaded.every((n, i) => i === 0 || n > loaded[i - 1]), seen.join(' | '));
  assert.match(await page.locator('#summary').innerText(), new RegExp(`^${total} claims, \\$[\\d,]+\\.\\d\\d paid in total\\.$`));
  const fhirCalls = [];
  page.on('request', (r) => r.url().includes('/v1/fhir/') && fhirCalls.push(r.url()));
  await page.click('#add-up');
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#summary').textContent === 'Stopped.');
  const sent = fhirCalls.length;
  // A round trip of the page's own: a run that went on would have asked for its next page by then.
  await page.evaluate(() => fetch('/v1/session', { headers: { 'x-connect-medicare': '1' } }).then((r) => r.json()));
  assert.equal(fhirCalls.length, sent, 'nothing is asked for after Stop');
  assert.ok(sent < Math.ceil(total / 50), `${sent} of ${Math.ceil(total / 50)} pages asked for before Stop`);
  return total;
}
