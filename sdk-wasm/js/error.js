// The one error type of the SDK. The wasm module constructs it, and the npm package
// re-exports this very class, so `instanceof ConnectMedicareError` holds for every failure.

/** A failure with a stable machine `code`, a human `message`, and `retryAfter` (seconds) when rate limited. */
export class ConnectMedicareError extends Error {
  constructor(code, message, retryAfter, options) {
    super(message, options);
    this.name = 'ConnectMedicareError';
    this.code = code;
    if (retryAfter != null) this.retryAfter = retryAfter;
  }
}
