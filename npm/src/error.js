// The one error type of the SDK, which the npm package exports: every failure — a refusal by
// the wasm module, a broker answer that is not 2xx, a check of the JS layer — is one.

/** A failure with a stable machine `code`, a human `message`, and `retryAfter` (seconds) when rate limited. */
export class ConnectMedicareError extends Error {
  constructor(code, message, retryAfter, options) {
    super(message, options);
    this.name = 'ConnectMedicareError';
    this.code = code;
    if (retryAfter != null) this.retryAfter = retryAfter;
  }
}

/**
 * The error for a broker answer that is not 2xx: `status`, the body as `JSON.parse` read it
 * (`undefined` when it was not JSON) and the `Retry-After` header. A `{code, message,
 * retry_after}` body is kept: a contract code, or an unknown but well-formed one from a newer
 * broker, as sent (anything else becomes `upstream_error`), and its message when it is 1–500
 * bytes. Without one (a proxy's HTML page, say) the code comes from the status. Messages are
 * otherwise static: a body never puts markup or a secret in them.
 */
export function brokerError(status, body, retryAfter) {
  const header = retryAfter?.trim();
  let wait = /^\+?\d+$/.test(header) && +header <= 0xffffffff ? +header : undefined;
  if (typeof body === 'object' && body !== null && typeof body.code === 'string') {
    const { code, message } = body;
    const bytes = typeof message === 'string' ? new TextEncoder().encode(message).length : 0;
    const after = body.retry_after;
    if (Number.isInteger(after) && after >= 0 && after <= 0xffffffff) wait = after;
    return new ConnectMedicareError(
      /^[a-z_]{1,40}$/.test(code) ? code : 'upstream_error',
      bytes && bytes <= 500 ? message : 'The broker refused the request',
      wait,
    );
  }
  const [code, message] =
    status === 429
      ? ['rate_limited', 'Too many requests: try again shortly']
      : status === 404 || status === 405
        ? ['invalid_config', 'No Connect Medicare broker answers at this URL']
        : status >= 500 && status <= 599
          ? ['broker_unreachable', 'The broker could not be reached']
          : ['internal', 'The broker answered with an unexpected status'];
  return new ConnectMedicareError(code, message, wait);
}

/** A failure the SDK raises itself. */
export const fail = (code, message) => new ConnectMedicareError(code, message);

/**
 * What the wasm module threw, as a ConnectMedicareError: its refusals are `Error`s with a
 * `code`; anything else (a trap, say) is `internal`.
 */
export function refusal(e) {
  if (e instanceof ConnectMedicareError) return e;
  if (e instanceof Error && typeof e.code === 'string' && /^[a-z_]{1,40}$/.test(e.code)) return new ConnectMedicareError(e.code, e.message);
  return new ConnectMedicareError('internal', 'The Connect Medicare wasm module failed: reload the page', undefined, { cause: e });
}

/** `f()`, with what the wasm module throws as a ConnectMedicareError. */
export function wasm(f) {
  try {
    return f();
  } catch (e) {
    throw refusal(e);
  }
}
