// Scenario 7: what each system adds to an app, gzipped. Each entry of bench/bundles/ imports the
// equivalent features; Vite bundles it as a minified app build (library mode would inline the
// wasm as base64) and every emitted file, JS and WebAssembly, is gzipped at level 9.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const entries = join(import.meta.dirname, '..', 'bundles');

/** The files an app loads with its default configuration, for systems whose build emits more.
 * PowerSync's build emits wa-sqlite in four builds (synchronous or asynchronous, each also with
 * encryption) and a chunk per VFS, each twice (in its worker, and in the page for when the
 * worker is turned off); by default an app loads the page's chunk, the worker, and in it the
 * asynchronous build without encryption and the IndexedDB VFS: one copy of each. */
const LOADED = {
  powersync: /^(powersync|worker|wa-sqlite-async|IDBBatchAtomicVFS|FacadeVFS)-[\w-]{8}\.(js|wasm)$/,
};

/** Bundles `bench/bundles/<system>.js`; returns the total bytes, raw and gzipped, of the files
 * emitted (of those `LOADED` names, one of each). */
async function bundle(system, pkg) {
  const out = mkdtempSync(join(tmpdir(), `bundle-${system}-`));
  try {
    await build({
      configFile: false,
      logLevel: 'error',
      resolve: { alias: [{ find: /^ferrosync$/, replacement: `${resolve(pkg)}/index.js` }] },
      worker: { format: 'es' },
      build: {
        outDir: out,
        emptyOutDir: true,
        minify: true,
        reportCompressedSize: false,
        // The entry keeps its exports, so nothing it names is tree-shaken away.
        rolldownOptions: { input: join(entries, `${system}.js`), preserveEntrySignatures: 'exports-only' },
      },
    });
    const loaded = LOADED[system];
    const kinds = new Set();
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((f) => {
      if (!f.isFile()) return false;
      if (!loaded) return true;
      const [, kind, ext] = f.name.match(loaded) ?? [];
      if (!kind || kinds.has(`${kind}.${ext}`)) return false;
      kinds.add(`${kind}.${ext}`);
      return true;
    });
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
    'storage and replication; PouchDB for the browser; Dexie; PowerSync\'s web SDK (its database, ' +
    'schema, live queries and sync). Each is bundled by Vite as a minified app build and every ' +
    'emitted file is gzipped at level 9 (1 KB = 1,000 bytes). PowerSync\'s build also emits ' +
    'variants an app loads only when configured to (wa-sqlite with encryption, its synchronous ' +
    'build for the OPFS VFSes, and each again for running without a worker): its figure counts what ' +
    'the default configuration loads, its worker and wa-sqlite\'s asynchronous build with the ' +
    'IndexedDB VFS (all it emits is about 3.0 MB gzipped). Builds are deterministic: one run.',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'pouchdb', 'dexie', 'powersync'],
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
