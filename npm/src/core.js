// The wasm module's operations (sdk-wasm/src/lib.rs): its one export, `call(op, input)`, takes
// the fields joined by `\n` and answers one string, fields joined by `\n` or a refusal, which
// `unwrap` throws as a ConnectMedicareError.
import { ConnectMedicareError, unwrap } from './error.js';

/** 128 hex digits. */
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const flag = (b) => (b ? '1' : '0');

/** The operations, over `call` (the module's export). */
export function operations(call) {
  const run = (op, ...fields) => {
    let answer;
    try {
      answer = call(op, fields.join('\n'));
    } catch (e) {
      throw new ConnectMedicareError('internal', 'The Connect Medicare wasm module failed: reload the page', undefined, { cause: e });
    }
    return unwrap(answer);
  };
  return {
    /** `[state, challenge, verifier]` from 64 random bytes; checks `returnTo`. */
    start: (random, returnTo) => run(0, hex(random), returnTo ?? ''),
    /** Validates the broker's authorize request; the flow record to keep. */
    finish: (p, { state, verifier, post, returnTo }, { method, target, form, expiresIn }, now) =>
      run(
        1,
        p.id, p.authorization_endpoint, p.client_id, p.redirect_uri, p.aud, p.scopes_supported?.join(' ') ?? '', flag(p.authorize_post),
        state, verifier, flag(post), returnTo ?? '',
        method, target, form ?? '', expiresIn, now,
      )[0],
    /** The state a callback URL names, `''` when it is not a callback. */
    callbackState: (url) => run(2, url)[0],
    /** `[state, code, verifier, provider, returnTo, iss]` from a callback and its flow record. */
    complete: (url, record, now) => run(3, url, record ?? '', now),
  };
}
