// The built npm package as a consumer gets it: packed with `npm pack`, installed from the
// tarball, imported in Node (the main entry touches no browser global), type-checked by tsc
// against a consumer file, and scanned for canary secrets. Run scripts/build-npm.sh first.
//
//   cd tests && node --test npm/
//
// Environment:
//   CM_NPM_TARBALL  absolute path of an already packed tarball (e.g. from
//                   `cd npm && npm run build && npm pack --pack-destination /tmp/cmpack`): the
//                   tests install and check that file instead of packing npm/ themselves.
//                   Unset: npm/ (built) is packed into a temporary directory.
// The tsc test resolves the package through tests/node_modules (a link to npm/), either way.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tests = join(here, '..');
const pkg = join(tests, '..', 'npm');
let work;
let installed;
let files;

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

before(() => {
  work = mkdtempSync(join(tmpdir(), 'cm-npm-'));
  let tarball = process.env.CM_NPM_TARBALL;
  if (tarball) {
    assert.ok(isAbsolute(tarball), `CM_NPM_TARBALL must be an absolute path: ${tarball}`);
    assert.ok(existsSync(tarball), `CM_NPM_TARBALL names no file: ${tarball}`);
    // npm puts every file under package/ and lists no directories.
    files = run('tar', ['-tzf', tarball], work).split('\n').filter((f) => f && !f.endsWith('/'))
      .map((f) => f.replace(/^package\//, '')).sort();
  } else {
    assert.ok(existsSync(join(pkg, 'dist', 'connect_medicare_bg.wasm')), 'npm/dist is missing: run scripts/build-npm.sh first');
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], pkg));
    files = packed.files.map((f) => f.path).sort();
    tarball = join(work, packed.filename);
  }
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--offline', tarball], work);
  installed = join(work, 'node_modules', 'connect-medicare');
});

after(() => work && rmSync(work, { recursive: true, force: true }));

test('the tarball holds the package files and nothing else', () => {
  assert.deepEqual(files, [
    'README.md', 'button.d.ts', 'dist/button.js', 'dist/button.js.map', 'dist/connect_medicare_bg.wasm',
    'dist/index.js', 'dist/index.js.map', 'dist/react.js', 'dist/react.js.map', 'dist/signin.js', 'dist/signin.js.map',
    'docs/api/README.md', 'docs/api/connect-medicare.md', 'docs/api/connect-medicare/button.md',
    'docs/api/connect-medicare/react.md', 'index.d.ts', 'package.json', 'react.d.ts',
  ]);
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'connect-medicare');
  assert.equal(manifest.type, 'module');
  assert.deepEqual(Object.keys(manifest.exports), ['.', './button', './react', './package.json']);
  for (const entry of ['.', './button', './react']) assert.equal(Object.keys(manifest.exports[entry])[0], 'types', 'types first');
  assert.deepEqual(manifest.peerDependenciesMeta, { '@types/fhir': { optional: true }, react: { optional: true } });
  assert.deepEqual(manifest.sideEffects, ['./dist/button.js']);
  // The main entry imports the sign-in chunk only when a sign-in needs it, and the chunk loads
  // the wasm next to itself (bundlers and <script type="module"> alike).
  const entry = readFileSync(join(installed, 'dist', 'index.js'), 'utf8');
  assert.match(entry, /import\("\.\/signin\.js"\)/);
  assert.doesNotMatch(entry, /^import|connect_medicare_bg/m);
  assert.match(readFileSync(join(installed, 'dist', 'signin.js'), 'utf8'), /new URL\("connect_medicare_bg\.wasm",import\.meta\.url\)/);
});

test('the API reference shipped in the package documents every method of the client', () => {
  const types = readFileSync(join(installed, 'index.d.ts'), 'utf8');
  const body = types.slice(types.indexOf('export class ConnectMedicare extends EventTarget'));
  const methods = [...new Set([...body.slice(0, body.indexOf('\n}\n')).matchAll(/^  (?:static )?(\w+)[<(]/gm)].map((m) => m[1]))];
  assert.ok(methods.length >= 15, methods.join());
  const reference = readFileSync(join(installed, 'docs', 'api', 'connect-medicare.md'), 'utf8');
  for (const name of methods) assert.match(reference, new RegExp(`^#+ ${name}\\(\\)$`, 'm'), name);
  const react = readFileSync(join(installed, 'docs', 'api', 'connect-medicare', 'react.md'), 'utf8');
  assert.match(react, /^#+ useConnectMedicare\(\)$/m);
});

test('importing the main entry in Node touches no browser global', () => {
  const script = `
    for (const name of ['window', 'document', 'location', 'history', 'sessionStorage', 'localStorage',
                        'customElements', 'HTMLElement', 'self']) {
      Object.defineProperty(globalThis, name, { configurable: true, get() { throw new Error('touched ' + name); } });
    }
    const m = await import('connect-medicare');
    if (typeof m.ConnectMedicare?.create !== 'function') throw new Error('no ConnectMedicare');
    const e = new m.ConnectMedicareError('rate_limited', 'slow down', 3);
    if (!(e instanceof Error) || e.code !== 'rate_limited' || e.retryAfter !== 3 || e.name !== 'ConnectMedicareError') throw new Error('bad error class');
    // Creating a client during SSR is a typed error, not a crash.
    const err = await m.ConnectMedicare.create({ broker: '/cm' }).then(() => null, (x) => x);
    if (!(err instanceof m.ConnectMedicareError) || err.code !== 'not_in_browser') throw new Error('SSR create: ' + err);
    console.log('ok', Object.keys(m).sort().join(','));
  `;
  const out = run(process.execPath, ['--input-type=module', '-e', script], work);
  assert.match(out, /^ok ConnectMedicare,ConnectMedicareError$/m);
});

test('the button entry imports under SSR without defining anything', () => {
  const out = run(process.execPath, ['--input-type=module', '-e',
    "const m = await import('connect-medicare/button'); console.log(typeof m.ConnectMedicareButton);"], work);
  assert.equal(out.trim(), 'function');
});

test('tsc accepts a consumer of both entry points (bundler and NodeNext resolution)', () => {
  const tsc = join(tests, 'node_modules', '.bin', 'tsc');
  for (const config of ['tsconfig.json', 'tsconfig.nodenext.json']) {
    run(tsc, ['-p', join(here, config)], tests);
  }
});

test('the installed package holds no canary secret', () => {
  const out = run(process.execPath, [join(here, 'canary.mjs'), installed], tests);
  assert.match(out, /0 hits/);
});

test('the canary scan fails on a hit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-canary-'));
  try {
    writeFileSync(join(dir, 'leak.js'), 'const s = "canary-client-secret-4f1d";');
    assert.throws(() => run(process.execPath, [join(here, 'canary.mjs'), dir], tests), /FAIL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
