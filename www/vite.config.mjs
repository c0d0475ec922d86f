// Builds the demo app (and the React hook tests' page, given as another root) with the
// package from FERROSYNC_PKG (default: pkg/, where `npm start` builds it).
import { defineConfig } from 'vite';
import { resolve } from 'node:path';

const pkg = resolve(import.meta.dirname, '..', process.env.FERROSYNC_PKG ?? 'pkg');

export default defineConfig({
  // Relative asset URLs: the app works from any path the server serves it under.
  base: './',
  resolve: {
    alias: [
      { find: /^ferrosync$/, replacement: `${pkg}/index.js` },
      { find: /^ferrosync\/react$/, replacement: `${pkg}/react.js` },
    ],
    dedupe: ['react', 'react-dom'],
  },
  // The peer benchmark page bundles whole databases: large chunks are expected.
  build: { target: 'es2022', emptyOutDir: true, reportCompressedSize: false, chunkSizeWarningLimit: 4096 },
  logLevel: 'warn',
});
