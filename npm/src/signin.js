// The sign-in half of the package, loaded on first use (ConnectMedicare's `connect()`, or
// `handleRedirect()` on a callback): wasm-bindgen's own generated glue (`--target web`) and the
// wasm module it loads, by default from `connect_medicare_bg.wasm` next to this chunk. A page
// that only shows data never loads either.
import init, { SignIn, completeCallback } from '../build/connect_medicare.js';

export { SignIn, completeCallback, init };
