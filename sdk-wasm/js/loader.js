// Loads the wasm module and runs its one export, `call(op, input)` (sdk-wasm/src/lib.rs), in
// place of wasm-bindgen's generic glue: the module takes and answers one string, so this is
// all the glue it needs. It speaks the ABI of the pinned wasm-bindgen (=0.2.130):
// scripts/build-npm.sh checks that the module's imports and exports are exactly the ones
// named here, then minifies those names in both. Nothing here reads a global at import.

let wasm;
let encoder;
let decoder;
let trapped;

/** The module's only import: wasm-bindgen's start function fills its externref table's fixed slots. */
const imports = {
  './connect_medicare_bg.js': {
    __wbindgen_init_externref_table: () => {
      const table = wasm.__wbindgen_externrefs;
      table.set(0, undefined);
      table.set(1024, undefined);
      table.set(1025, null);
      table.set(1026, true);
      table.set(1027, false);
    },
  },
};

/**
 * Instantiates the module (once), from `source`: a URL (by default the .wasm next to this
 * file), a `Response`, the bytes, or a compiled `WebAssembly.Module`.
 */
export async function init(source = new URL('connect_medicare_bg.wasm', import.meta.url)) {
  if (wasm) return;
  let input = await source;
  if (typeof input === 'string' || input instanceof URL || (typeof Request === 'function' && input instanceof Request)) {
    input = await fetch(input);
  }
  if (typeof Response === 'function' && input instanceof Response) {
    if (!input.ok) throw new Error(`the wasm module answered ${input.status}`);
    input = await input.arrayBuffer();
  }
  const made = await WebAssembly.instantiate(input, imports);
  wasm = (made.instance ?? made).exports;
  encoder = new TextEncoder();
  decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  wasm.__wbindgen_start();
}

/**
 * Runs operation `op` on `input`. The module frees the input it is given; this frees the
 * answer. After a trap (out of memory, say) the module is in no known state: it is not run
 * again, and every later call throws that trap.
 */
export function call(op, input) {
  if (trapped) throw trapped;
  try {
    const bytes = encoder.encode(input);
    const at = wasm.__wbindgen_malloc(bytes.length, 1) >>> 0;
    new Uint8Array(wasm.memory.buffer, at, bytes.length).set(bytes);
    const [out, length] = wasm.call(op, at, bytes.length);
    const answer = decoder.decode(new Uint8Array(wasm.memory.buffer, out >>> 0, length >>> 0));
    wasm.__wbindgen_free(out, length, 1);
    return answer;
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) trapped = e;
    throw e;
  }
}
