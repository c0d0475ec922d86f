// Runs the peer scenarios of bench/peers/ (bundled by scripts/bench.sh) in headless Chromium:
// each scenario runs Ferrosync and its peers in one page, one after the other, repeated; a
// figure is the median over the repetitions (after a warm-up run), with min and max, and every
// Ferrosync figure is also a ratio to each other system from the same run. Prints tables and
// writes JSON. Times are never asserted: the machine is noisy.
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
const NAMES = {
  ferrosync: 'Ferrosync', raw: 'raw IndexedDB', tanstack: 'TanStack DB', rxdb: 'RxDB (Dexie storage)', dexie: 'Dexie',
};

const WRITES = QUICK ? 100 : 500;
const TOTAL = QUICK ? 1_000 : 10_000;
/** The scenarios: which page functions run, for which cases, and what a run's result gives. */
const SCENARIOS = [
  {
    id: 'live-write',
    title: `Optimistic write → live query callback (${WRITES} writes, timed in groups of 50)`,
    page: 'liveWrite',
    systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie'],
    cases: (QUICK ? [1_000] : [1_000, 10_000, 100_000]).map((docs) => ({ label: `${docs} docs`, args: { docs, writes: WRITES } })),
    warmup: { docs: 1_000, writes: 50 },
    unit: 'ms per write (p50 of the groups)',
    lowerIsBetter: true,
    value: (times) => quantile(times, 0.5),
  },
  {
    id: 'durable-writes',
    title: `Durable local writes (${TOTAL} inserts in bursts, each burst awaited until durable)`,
    page: 'durableWrites',
    systems: ['ferrosync', 'raw', 'dexie', 'rxdb'],
    cases: [1, 10, 100, 1_000].map((burst) => ({ label: `bursts of ${burst}`, args: { total: burst === 1 ? TOTAL / 10 : TOTAL, burst } })),
    warmup: { total: 1_000, burst: 100 },
    unit: 'inserts/s',
    lowerIsBetter: false,
    value: (ms, args) => (args.total * 1000) / ms,
  },
  {
    id: 'cold-start',
    title: 'Cold start: open a database holding the documents, until the first query result (50 documents)',
    page: 'coldStart',
    systems: ['ferrosync', 'rxdb', 'dexie'],
    cases: (QUICK ? [10_000] : [10_000, 100_000]).map((docs) => ({ label: `${docs} docs`, args: { docs } })),
    warmup: { docs: 1_000 },
    unit: 'ms',
    lowerIsBetter: true,
    value: (ms) => ms,
  },
  ...['get', 'query', 'count'].map((kind) => ({
    id: `reads-${kind}`,
    title: {
      get: 'Read: point get by id',
      query: 'Read: a query returning 3,000 documents',
      count: 'Read: count of the matching half',
    }[kind],
    page: 'reads',
    systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie'],
    cases: (QUICK ? [10_000] : [10_000, 100_000]).map((docs) => ({ label: `${docs} docs`, args: { docs, reads: QUICK ? 20 : 200 } })),
    warmup: { docs: 10_000, reads: 20 },
    unit: 'ms per read (mean)',
    lowerIsBetter: true,
    value: (times) => times[kind],
  })),
];

function quantile(xs, q) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const format = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x < 0.1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));

const browser = await launch();
const results = { date: new Date().toISOString(), quick: QUICK, reps: REPS, conditions: {}, scenarios: [] };
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/peers/index.html`);
  await page.waitForFunction(() => window.peersReady || window.peersError, null, { timeout: 60_000 });
  const failed = await page.evaluate(() => window.peersError);
  if (failed) throw new Error(`the peer page failed to load: ${failed}`);
  results.conditions = { chromium: browser.version(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model };
  const call = (scenario, system, args) => page.evaluate(([p, s, a]) => window.peers[p][s](a), [scenario.page, system, args]);

  for (const scenario of SCENARIOS) {
    const rows = [];
    for (const { label, args } of scenario.cases) {
      const row = { case: label, args, systems: {} };
      for (const system of scenario.systems) {
        process.stderr.write(`--- ${scenario.id}, ${label}, ${NAMES[system]} ...`);
        const started = Date.now();
        try {
          await call(scenario, system, scenario.warmup);
          const values = [];
          for (let rep = 0; rep < REPS; rep++) values.push(scenario.value(await call(scenario, system, args), args));
          row.systems[system] = { median: quantile(values, 0.5), min: Math.min(...values), max: Math.max(...values) };
          process.stderr.write(` ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        } catch (e) {
          row.systems[system] = { error: String(e?.message ?? e).split('\n')[0] };
          process.stderr.write(` FAILED: ${row.systems[system].error}\n`);
        }
      }
      // How Ferrosync compares with each system: > 1 means Ferrosync is better.
      const own = row.systems.ferrosync?.median;
      for (const system of scenario.systems.slice(1)) {
        const other = row.systems[system]?.median;
        if (own && other) row.systems[system].ferrosyncAdvantage = scenario.lowerIsBetter ? other / own : own / other;
      }
      rows.push(row);
    }
    const { id, title, systems, unit, lowerIsBetter } = scenario;
    results.scenarios.push({ id, title, systems, unit, lowerIsBetter, rows });
  }
} finally {
  await browser.close();
}

mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
for (const s of results.scenarios) {
  console.log(`\n${s.title}\n${s.unit}: median of ${REPS} run(s) [min–max]; (n×) = how many times better Ferrosync is`);
  console.log(['', ...s.systems.map((x) => NAMES[x])].join(' | '));
  for (const row of s.rows) {
    const cells = s.systems.map((x) => {
      const r = row.systems[x];
      if (r.error) return `failed: ${r.error}`;
      const advantage = r.ferrosyncAdvantage ? ` (${r.ferrosyncAdvantage.toPrecision(2)}×)` : '';
      return `${format(r.median)} [${format(r.min)}–${format(r.max)}]${advantage}`;
    });
    console.log([row.case, ...cells].join(' | '));
  }
}
console.log(`\nresults: ${OUT}`);
