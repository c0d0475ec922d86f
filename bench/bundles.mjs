// Scenario 7: what each system adds to an app, gzipped. Each entry in bench/bundles/ imports
// the equivalent features (Ferrosync: the engine; peers: their database, live queries and
// persistence or replication); Vite bundles it, minified, and every emitted file
// (JS and WebAssembly) is gzipped at level 9. Prints a table and writes JSON.
//
// Environment: BENCH_PKG (the Ferrosync package; default pkg), BENCH_BUNDLES_OUT (the JSON file).
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const here = import.meta.dirname;
const pkg = resolve(process.env.BENCH_PKG ?? 'pkg');
const OUT = process.env.BENCH_BUNDLES_OUT ?? 'target/bench/bundles.json';
const SYSTEMS = { ferrosync: 'Ferrosync', tanstack: 'TanStack DB + offline transactions', rxdb: 'RxDB + Dexie storage + replication', dexie: 'Dexie' };

const sizes = {};
for (const system of Object.keys(SYSTEMS)) {
  const out = mkdtempSync(join(tmpdir(), `bundle-${system}-`));
  try {
    await build({
      configFile: false,
      logLevel: 'error',
      resolve: { alias: [{ find: /^ferrosync$/, replacement: `${pkg}/index.js` }] },
      build: {
        outDir: out,
        emptyOutDir: true,
        minify: true,
        reportCompressedSize: false,
        // An app build (not library mode, which inlines the wasm as base64): the entry keeps
        // its exports, so nothing it names is tree-shaken away.
        rolldownOptions: { input: join(here, 'bundles', `${system}.js`), preserveEntrySignatures: 'exports-only' },
      },
    });
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    let raw = 0;
    let gzip = 0;
    for (const f of files) {
      const bytes = readFileSync(join(f.parentPath, f.name));
      raw += bytes.length;
      gzip += gzipSync(bytes, { level: 9 }).length;
    }
    sizes[system] = { raw, gzip, files: files.map((f) => f.name).sort() };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const own = sizes.ferrosync.gzip;
for (const [system, s] of Object.entries(sizes)) if (system !== 'ferrosync') s.ferrosyncRatio = own / s.gzip;
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify({ date: new Date().toISOString(), unit: 'bytes', sizes }, null, 2)}\n`);
const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
console.log('\nBundle size (minified, gzip -9; 1 KB = 1000 bytes; ratio = Ferrosync / system)');
for (const [system, s] of Object.entries(sizes)) {
  const ratio = s.ferrosyncRatio ? `  (Ferrosync ×${s.ferrosyncRatio.toFixed(2)})` : '';
  console.log(`  ${SYSTEMS[system].padEnd(36)} ${kb(s.gzip).padStart(10)} gzip  ${kb(s.raw).padStart(10)} raw${ratio}`);
}
console.log(`results: ${OUT}`);
