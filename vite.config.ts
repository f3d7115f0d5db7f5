// Vite config for the lab: React, self-hosted ORT .wasm files, the embedded demo models, and the
// cross-origin isolation headers that ORT-web's threaded WASM needs. Servers bind to loopback only.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { staticDirs } from './scripts/vite-static-dirs.ts';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export default defineConfig({
  plugins: [
    react(),
    staticDirs([
      // NOTE: ORT-web fetches its .wasm from a CDN by default; we serve our own copy (offline, pinned).
      {
        url: '/ort/',
        dir: 'node_modules/onnxruntime-web/dist',
        include: /^ort-wasm-simd-threaded\.jsep\.(wasm|mjs)$/,
      },
      { url: '/demo/', dir: 'demo' },
      { url: '/fixtures/', dir: 'fixtures', include: /^(tiny-[a-z0-9-]+)(\/[^/]+)?$/ },
    ]),
  ],
  server: { host: '127.0.0.1', port: 5173, headers: isolation },
  preview: { host: '127.0.0.1', port: 4173, headers: isolation },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 2048,
    rollupOptions: { input: { main: 'index.html', check: 'check.html' } },
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});
