// Scenario 7: what each system adds to an app, gzipped. Each entry of bench/bundles/ imports the
// equivalent features; Vite bundles it as a minified app build (library mode would inline the
// wasm as base64) and every emitted file, JS and WebAssembly, is gzipped at level 9.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const entries = join(import.meta.dirname, '..', 'bundles');

/** Bundles `bench/bundles/<system>.js`; returns the emitted files' total bytes, raw and gzipped. */
async function bundle(system, pkg) {
  const out = mkdtempSync(join(tmpdir(), `bundle-${system}-`));
  try {
    await build({
      configFile: false,
      logLevel: 'error',
      resolve: { alias: [{ find: /^ferrosync$/, replacement: `${resolve(pkg)}/index.js` }] },
      build: {
        outDir: out,
        emptyOutDir: true,
        minify: true,
        reportCompressedSize: false,
        // The entry keeps its exports, so nothing it names is tree-shaken away.
        rolldownOptions: { input: join(entries, `${system}.js`), preserveEntrySignatures: 'exports-only' },
      },
    });
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    const sizes = { raw: 0, gzip: 0 };
    for (const f of files) {
      const bytes = readFileSync(join(f.parentPath, f.name));
      sizes.raw += bytes.length;
      sizes.gzip += gzipSync(bytes, { level: 9 }).length;
    }
    return sizes;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export default () => ({
  id: 'bundles',
  number: 7,
  title: 'Bundle size',
  about: 'What each system adds to an app: Ferrosync\'s engine (wasm and JS: sync, persistence, live ' +
    'queries, retries); TanStack DB with live queries and offline transactions (one copy of TanStack DB: ' +
    'the 0.8.7 that offline-transactions requires); RxDB with its Dexie ' +
    'storage and replication; PouchDB for the browser; Dexie. Each is bundled by Vite as a minified ' +
    'app build and every emitted file is gzipped at level 9 (1 KB = 1,000 bytes). Builds are ' +
    'deterministic: one run.',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'pouchdb', 'dexie'],
  measure: (system, _args, ctx) => bundle(system, ctx.pkg),
  cases: [{ label: 'app build', args: {} }],
  reps: () => 1,
  metrics: [{
    id: 'bundles',
    title: 'Bundle size (wasm + JS, gzipped)',
    unit: 'KB',
    lowerIsBetter: true,
    target: { text: '≤ 150 KB', value: 150, case: 'app build' },
    value: (sizes) => sizes.gzip / 1000,
  }],
});
