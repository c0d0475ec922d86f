// Runs the peer scenarios of bench/peers/ (bundled by scripts/bench.sh) in headless Chromium:
// each scenario runs Ferrosync and its peers in one page, one after the other, repeated; the
// figures are medians over the repetitions (after a warm-up run), with min and max, and every
// Ferrosync figure is also a ratio to each peer from the same run. Prints a table and writes
// JSON. Times are never asserted: the machine is noisy.
//
// Environment: BENCH_URL (the server serving the page at /peers/), BENCH_PEERS_OUT (the JSON
// file), BENCH_QUICK=1 (small sizes, one repetition: a smoke test), BENCH_REPS (default 3).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { launch } from '../tests/e2e/harness.mjs';

const env = process.env;
const base = (env.BENCH_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('usage: BENCH_URL=http://127.0.0.1:PORT node bench/peers.mjs (see scripts/bench.sh)');
  process.exit(2);
}
const QUICK = env.BENCH_QUICK === '1';
const REPS = QUICK ? 1 : Number(env.BENCH_REPS ?? 3);
const OUT = env.BENCH_PEERS_OUT ?? 'target/bench/peers.json';
const SIZES = QUICK ? [1_000] : [1_000, 10_000, 100_000];
const WRITES = QUICK ? 100 : 500;
const SYSTEMS = ['ferrosync', 'tanstack', 'rxdb', 'dexie'];
const NAMES = { ferrosync: 'Ferrosync', tanstack: 'TanStack DB', rxdb: 'RxDB (Dexie storage)', dexie: 'Dexie liveQuery' };

const quantile = (xs, q) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
};
const ms = (x) => (x < 0.1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));

const browser = await launch();
const results = { date: new Date().toISOString(), quick: QUICK, reps: REPS, conditions: {}, scenarios: [] };
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/peers/index.html`);
  await page.waitForFunction(() => window.peersReady || window.peersError, null, { timeout: 60_000 });
  const failed = await page.evaluate(() => window.peersError);
  if (failed) throw new Error(`the peer page failed to load: ${failed}`);
  results.conditions = { chromium: browser.version(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model };

  for (const docs of SIZES) {
    const row = { id: `live-write-${docs}`, scenario: 'optimistic write → live query callback', docs, writes: WRITES, unit: 'ms per write (p50 of the means of groups of 50)', systems: {} };
    for (const system of SYSTEMS) {
      process.stderr.write(`--- live write, ${docs} docs, ${NAMES[system]} ...`);
      const started = Date.now();
      try {
        // A warm-up run at the smallest size, then the measured runs.
        await page.evaluate(([s, a]) => window.peers.liveWrite[s](a), [system, { docs: 1_000, writes: 50 }]);
        const p50s = [];
        const p95s = [];
        for (let rep = 0; rep < REPS; rep++) {
          const times = await page.evaluate(([s, a]) => window.peers.liveWrite[s](a), [system, { docs, writes: WRITES }]);
          p50s.push(quantile(times, 0.5));
          p95s.push(quantile(times, 0.95));
        }
        row.systems[system] = { median: quantile(p50s, 0.5), min: Math.min(...p50s), max: Math.max(...p50s), p95: quantile(p95s, 0.5) };
        process.stderr.write(` ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      } catch (e) {
        row.systems[system] = { error: String(e?.message ?? e).split('\n')[0] };
        process.stderr.write(` FAILED: ${row.systems[system].error}\n`);
      }
    }
    const own = row.systems.ferrosync?.median;
    for (const system of SYSTEMS.slice(1)) {
      const peer = row.systems[system]?.median;
      if (own && peer) row.systems[system].ferrosyncRatio = own / peer;
    }
    results.scenarios.push(row);
  }
} finally {
  await browser.close();
}

mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nOptimistic write → live query callback (${WRITES} writes timed in groups of 50; ms per write, p50 of the groups: median of ${REPS} run(s) [min–max]; ratio = Ferrosync / peer)`);
console.log(['docs', ...SYSTEMS.map((s) => NAMES[s])].join(' | '));
for (const row of results.scenarios) {
  const cells = SYSTEMS.map((s) => {
    const r = row.systems[s];
    if (r.error) return `failed: ${r.error}`;
    const ratio = r.ferrosyncRatio ? ` (×${r.ferrosyncRatio.toPrecision(2)})` : '';
    return `${ms(r.median)} [${ms(r.min)}–${ms(r.max)}]${ratio}`;
  });
  console.log([row.docs, ...cells].join(' | '));
}
console.log(`results: ${OUT}`);
