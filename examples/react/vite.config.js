// Vite builds the example into dist/, which the broker serves as the app's static site under
// its strict Content-Security-Policy (script-src 'self' 'wasm-unsafe-eval'; style-src 'self';
// connect-src 'self'): nothing may be inline, and the wasm must be a file of the site.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  // The example links the package from ../../npm (`file:`), where React is not installed:
  // resolve React from the example, as an installed package would.
  resolve: { dedupe: ['react', 'react-dom'] },
  // In `vite` (dev), pre-bundling would move the package's JS away from its wasm.
  optimizeDeps: { exclude: ['connect-medicare'] },
  build: {
    // Modern browsers support <link rel=modulepreload>; no polyfill code at all.
    modulePreload: { polyfill: false },
    // connect-medicare loads connect_medicare_bg.wasm with `new URL(..., import.meta.url)`:
    // Vite emits it as an asset beside the bundle. Never as a data: URL, which the CSP's
    // connect-src 'self' would refuse to fetch.
    assetsInlineLimit: (file) => (file.endsWith('.wasm') ? false : undefined),
  },
});
