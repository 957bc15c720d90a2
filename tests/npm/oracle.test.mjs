// A differential test against an independent OAuth client: oauth4webapi (a dev dependency)
// and the project's protocol crate decide the same callback URLs and token endpoint answers,
// and compute the same S256 challenges. The protocol's side runs through
// `protocol/examples/verdicts.rs` (built by scripts/test.sh), which decides each case the way
// the product does. Every difference must be on the reviewed list below, with its reason; any
// other difference fails, and so does a listed difference that no longer occurs.
//
//   cargo build -p connect-medicare-protocol --example verdicts && cd tests && node --test npm/oracle.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as oauth from 'oauth4webapi';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const targetDir = process.env.CM_TARGET_DIR ?? process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
const helper = join(targetDir, 'debug', 'examples', 'verdicts');

/** The protocol's verdicts on `cases`, in order. */
function ours(cases) {
  assert.ok(existsSync(helper), `${helper} is missing: cargo build -p connect-medicare-protocol --example verdicts`);
  const out = execFileSync(helper, { input: cases.map((c) => JSON.stringify(c)).join('\n') + '\n' }).toString();
  // An OAuth error without a code is no OAuth error: both sides call it a refusal.
  return out.trimEnd().split('\n').map((v) => (v === 'error:unspecified' ? 'refused' : v));
}

/** oauth4webapi's verdict on what `f` did. */
async function theirs(f) {
  try {
    const result = await f();
    return result;
  } catch (e) {
    if (e instanceof oauth.AuthorizationResponseError || e instanceof oauth.ResponseBodyError) return `error:${e.error}`;
    return 'refused';
  }
}

/**
 * Compares both sides on `cases` (each `{ name, ...case }`): returns the differences that are
 * not in `intended` exactly (name → `[oauth4webapi's verdict, the protocol's, why]`), and the
 * intended ones that did not occur.
 */
async function differences(cases, decide, intended) {
  const mine = ours(cases.map(({ name, ...c }) => c));
  const unexpected = [];
  const seen = new Set();
  for (const [i, c] of cases.entries()) {
    const other = await theirs(() => decide(c));
    if (other === mine[i]) continue;
    const [expectedTheirs, expectedOurs] = intended[c.name] ?? [];
    if (other === expectedTheirs && mine[i] === expectedOurs) {
      seen.add(c.name);
      continue;
    }
    unexpected.push(`${c.name}: oauth4webapi ${other}, protocol ${mine[i]}`);
  }
  const stale = Object.keys(intended).filter((name) => !seen.has(name));
  return { unexpected, stale };
}

const ISSUER = 'https://ehr.example';
const STATE = 'S'.repeat(43);
const OTHER_STATE = 'T'.repeat(43);
const CLIENT = { client_id: 'app' };
const server = (issSupported) => ({
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/authorize`,
  token_endpoint: `${ISSUER}/token`,
  authorization_response_iss_parameter_supported: issSupported,
});

test('callback URLs: the same decisions as oauth4webapi, but for the reviewed differences', async () => {
  const cb = (query) => `https://app.example/callback?${query}`;
  const cases = [
    ['code', cb(`code=abc&state=${STATE}`)],
    ['code, the issuer', cb(`code=abc&state=${STATE}&iss=${encodeURIComponent(ISSUER)}`)],
    ['code, another issuer', cb(`code=abc&state=${STATE}&iss=${encodeURIComponent('https://evil.example')}`)],
    ['code, the issuer with a slash', cb(`code=abc&state=${STATE}&iss=${encodeURIComponent(ISSUER + '/')}`)],
    ['code, iss advertised and missing', cb(`code=abc&state=${STATE}`), true],
    ['code, iss advertised and given', cb(`code=abc&state=${STATE}&iss=${encodeURIComponent(ISSUER)}`), true],
    ['code, another state', cb(`code=abc&state=${OTHER_STATE}`)],
    ['code, no state', cb('code=abc')],
    ['code, state twice', cb(`code=abc&state=${STATE}&state=${STATE}`)],
    ['code twice', cb(`code=a&code=b&state=${STATE}`)],
    ['code with a space', cb(`code=a+b&state=${STATE}`)],
    ['code of 4096 characters', cb(`code=${'c'.repeat(4096)}&state=${STATE}`)],
    ['code of 4097 characters', cb(`code=${'c'.repeat(4097)}&state=${STATE}`)],
    ['empty code', cb(`code=&state=${STATE}`)],
    ['code not ASCII', cb(`code=%C3%A9&state=${STATE}`)],
    ['code, the app\'s own parameters', cb(`tab=1&code=abc&state=${STATE}&tab=2`)],
    ['access_denied', cb(`error=access_denied&state=${STATE}`)],
    ['server_error with a description', cb(`error=server_error&error_description=Go+to+evil.example&state=${STATE}`)],
    ['an unknown error', cb(`error=temporarily_unavailable&state=${STATE}`)],
    ['error, another state', cb(`error=access_denied&state=${OTHER_STATE}`)],
    ['error, no state', cb('error=access_denied')],
    ['error, another issuer', cb(`error=access_denied&state=${STATE}&iss=${encodeURIComponent('https://evil.example')}`)],
    ['code and error', cb(`code=abc&error=access_denied&state=${STATE}`)],
    ['state alone', cb(`state=${STATE}`)],
    ['nothing', cb('tab=1')],
    ['in the fragment', `https://app.example/callback#code=abc&state=${STATE}`],
    ['a JARM response', cb(`response=eyJ&code=abc&state=${STATE}`)],
    ['a hybrid id_token', cb(`code=abc&id_token=eyJ&state=${STATE}`)],
  ].map(([name, url, issSupported = false]) => ({ name, kind: 'callback', url, state: STATE, issuer: ISSUER, iss_supported: issSupported }));
  const { unexpected, stale } = await differences(cases, (c) => {
    const params = oauth.validateAuthResponse(server(c.iss_supported), CLIENT, new URL(c.url), STATE);
    return `code:${params.get('code')}`;
  }, {
    'code twice': ['code:a', 'refused', 'a callback parameter given twice is refused (parameter pollution: which one would a proxy or the server have meant?); oauth4webapi reads the first code'],
    'code of 4097 characters': [`code:${'c'.repeat(4097)}`, 'refused', 'codes are bounded (4096, more than real servers use) so a URL cannot make the broker store megabytes'],
    'empty code': ['code:', 'refused', 'a callback must carry a code or an error; oauth4webapi leaves the code to the token request'],
    'code not ASCII': ['code:é', 'refused', 'RFC 6749 codes are VSCHAR (%x20-7E); oauth4webapi does not check the code'],
    'error, another issuer': ['refused', 'error:access_denied', 'state is checked before error in the browser, and an error callback never reaches the broker, which checks iss before it redeems a code; showing "declined" for a mixed-up error is harmless'],
    'code and error': ['error:access_denied', 'refused', 'a callback with both is malformed here; oauth4webapi reports the error'],
    'state alone': ['code:null', 'refused', 'a callback must carry a code or an error; oauth4webapi accepts it and leaves the code to the token request'],
    'a JARM response': ['refused', 'code:abc', 'JARM is not supported; an unknown parameter is ignored, and the code is used'],
    'a hybrid id_token': ['refused', 'code:abc', 'the code flow only: other parameters are ignored, and the code is used'],
  });
  assert.deepEqual(unexpected, []);
  assert.deepEqual(stale, [], 'a reviewed difference that no longer occurs: take it off the list');
});

test('token endpoint answers: the same decisions as oauth4webapi, but for the reviewed differences', async () => {
  const json = (name, body, status = 200, type = 'application/json') =>
    ({ name, kind: 'token', status, content_type: type, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const base = { access_token: 'at', token_type: 'Bearer', expires_in: 3600 };
  const cases = [
    json('bearer', base),
    json('bearer, lower case', { ...base, token_type: 'bearer' }),
    json('BEARER', { ...base, token_type: 'BEARER' }),
    json('DPoP', { ...base, token_type: 'DPoP' }),
    json('mac', { ...base, token_type: 'mac' }),
    json('N_A', { ...base, token_type: 'N_A' }),
    json('no token_type', { access_token: 'at' }),
    json('no access_token', { token_type: 'Bearer' }),
    json('empty access_token', { ...base, access_token: '' }),
    json('access_token a number', { ...base, access_token: 7 }),
    json('without expires_in', { access_token: 'at', token_type: 'Bearer' }),
    json('expires_in a string', { ...base, expires_in: '3600' }),
    json('expires_in a float', { ...base, expires_in: 1.5 }),
    json('expires_in 0', { ...base, expires_in: 0 }),
    json('expires_in negative', { ...base, expires_in: -1 }),
    json('expires_in not a number', { ...base, expires_in: 'soon' }),
    json('refresh_token', { ...base, refresh_token: 'rt' }),
    json('refresh_token empty', { ...base, refresh_token: '' }),
    json('refresh_token a number', { ...base, refresh_token: 7 }),
    json('scope', { ...base, scope: 'openid patient/*.read offline_access' }),
    json('scope empty', { ...base, scope: '' }),
    json('scope a number', { ...base, scope: 7 }),
    json('scope not SMART grammar', { ...base, scope: 'patient/Observation.xyz' }),
    json('SMART extras', { ...base, patient: 'p1', need_patient_banner: true, smart_style_url: 'https://ehr.example/style.json' }),
    json('patient not a FHIR id', { ...base, patient: 'a b' }),
    json("Blue Button's grant expiration, unreadable", { ...base, access_grant_expiration: 'someday' }),
    json('an id_token that is not a JWT', { ...base, id_token: 'x' }),
    json('an error field beside the token', { ...base, error: 'invalid_grant' }),
    json('not JSON', 'not json'),
    json('a JSON array', '[]'),
    json('JSON labelled text/plain', base, 200, 'text/plain'),
    json('201 with a token', base, 201),
    json('invalid_grant', { error: 'invalid_grant', error_description: 'used' }, 400),
    json('invalid_client', { error: 'invalid_client' }, 401),
    json('an error code that is not a string', { error: 42 }, 400),
    json('a 400 in plain text', 'bad request', 400, 'text/plain'),
    json('a 502 page', '<html>Bad Gateway</html>', 502, 'text/html'),
  ];
  const { unexpected, stale } = await differences(cases, async (c) => {
    const response = new Response(c.body, { status: c.status, headers: { 'content-type': c.content_type } });
    await oauth.processAuthorizationCodeResponse(server(false), CLIENT, response);
    return 'ok';
  }, {
    DPoP: ['ok', 'refused', 'RFC 6749 §7.1: a DPoP-bound token is sender-constrained, and the broker does not do DPoP; sent as a bearer token it would fail or leak'],
    'refresh_token empty': ['refused', 'ok', 'an empty refresh_token counts as none (servers send "" for one-time grants)'],
    'scope not SMART grammar': ['ok', 'refused', 'the granted scope decides what the broker proxies, so it is parsed with the SMART grammar, not accepted as any string'],
    'patient not a FHIR id': ['ok', 'refused', 'the patient id pins every FHIR search, so it must be a FHIR id'],
    'an id_token that is not a JWT': ['refused', 'ok', 'the broker does not read id_tokens (it asks for no identity claims it relies on); oauth4webapi validates them'],
    'an error field beside the token': ['ok', 'refused', 'a 2xx carrying an OAuth error is not trusted as a token'],
    '201 with a token': ['refused', 'ok', 'any 2xx is a success here; oauth4webapi wants exactly 200'],
  });
  assert.deepEqual(unexpected, []);
  assert.deepEqual(stale, [], 'a reviewed difference that no longer occurs: take it off the list');
});

test("S256: the protocol's challenge is oauth4webapi's", async () => {
  const verifiers = [
    'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
    'a'.repeat(43),
    'Z'.repeat(128),
    '0123456789-._~abcdefghijklmnopqrstuvwxyzABCDEFG',
    ...Array.from({ length: 16 }, () => oauth.generateRandomCodeVerifier()),
  ];
  const mine = ours(verifiers.map((verifier) => ({ kind: 's256', verifier })));
  const theirs = await Promise.all(verifiers.map((v) => oauth.calculatePKCECodeChallenge(v)));
  assert.deepEqual(mine, theirs);
  assert.equal(mine[0], 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'RFC 7636 Appendix B');
});
