// The benchmark runner (`npm run bench`, started by scripts/bench.sh). Every scenario of
// bench/scenarios/ runs Ferrosync, the raw platform and the peers side by side: in one page of
// headless Chromium (bench/peers/, bundled by Vite) or, for a few, in Node. A figure is the median
// over repeated runs after a warm-up run, with min and max, and each Ferrosync figure is also a
// ratio to every other system from the same run. Writes the results as JSON, then
// bench/report.mjs turns them into BENCHMARKS.md with SVG charts. Times are never asserted: the
// machine is noisy.
//
// Environment:
// - BENCH_URL: the ferrosync-server serving the page at /peers/ (and its sync endpoint);
// - BENCH_JWT_SECRET: signs one token per tenant, so scenarios never see each other's documents;
// - BENCH_QUICK=1: small sizes and one repetition, a smoke test;
// - BENCH_REPS: repetitions (default 3); BENCH_ONLY: comma-separated scenario ids to run, whose
//   results replace those of the same scenarios in the results file, the others kept (each
//   scenario records the run it comes from: its date, repetitions and machine);
// - BENCH_RESULTS: the JSON file (default bench/results/latest.json);
// - BENCH_PKG: the Ferrosync package (default pkg).
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { scenarios } from './scenarios/index.mjs';
import { median, NAMES } from './stats.mjs';

const env = process.env;
const base = (env.BENCH_URL ?? '').replace(/\/$/, '');
const secret = env.BENCH_JWT_SECRET;
if (!base || !secret) {
  console.error('usage: BENCH_URL=http://127.0.0.1:PORT BENCH_JWT_SECRET=... node bench/run.mjs (see scripts/bench.sh)');
  process.exit(2);
}
const quick = env.BENCH_QUICK === '1';
const reps = quick ? 1 : Number(env.BENCH_REPS ?? 3);
const only = env.BENCH_ONLY ? env.BENCH_ONLY.split(',') : null;
const OUT = env.BENCH_RESULTS ?? 'bench/results/latest.json';
const run = Date.now().toString(36);

/** What a scenario's `setup` and `measure` get: the server, tokens, the page, the options. */
const context = {
  quick,
  pkg: env.BENCH_PKG ?? 'pkg',
  base,
  serverUrl: `${base.replace(/^http/, 'ws')}/v1/sync`,
  /** An HS256 JWT for a tenant of its own (`name` plus this run), valid for a day. */
  token(name) {
    const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 86_400;
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'bench', tenant: `${name}-${run}`, exp })}`;
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  },
};

const selected = scenarios.map((make) => make({ quick })).filter((s) => !only || only.includes(s.id));
const results = { date: new Date().toISOString(), quick, reps, conditions: {}, scenarios: [], errors: [] };
// A profile on disk, as a user's browser has: in a new context (off the record) Chromium keeps
// IndexedDB and OPFS in memory, and OPFS's file access goes through the browser process.
const profile = mkdtempSync(join(tmpdir(), 'ferrosync-bench-profile-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  const loadErrors = [];
  page.on('console', (m) => m.type() === 'error' && loadErrors.push(m.text()));
  page.on('pageerror', (e) => results.errors.push({ scenario: 'page', error: e.message }));
  await page.goto(`${base}/peers/index.html`);
  const loaded = await page.waitForFunction(() => window.peersReady || window.peersError, null, { timeout: 60_000 })
    .then(() => page.evaluate(() => window.peersError), () => `no answer in 60 s; console errors: ${loadErrors.join('; ') || 'none'}`);
  if (loaded) throw new Error(`the benchmark page failed to load: ${loaded}`);
  const clock = await page.evaluate(() => {
    let smallest = Infinity;
    for (let i = 0; i < 1000; i++) {
      const a = performance.now();
      let b = a;
      while (b === a) b = performance.now();
      smallest = Math.min(smallest, b - a);
    }
    return smallest;
  });
  const { product } = await (await browser.newCDPSession(page)).send('Browser.getVersion');
  results.conditions = {
    chromium: product.split('/')[1], node: process.version, os: `Linux ${release()}`, cpus: cpus().length,
    cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), timerResolutionMs: clock,
  };
  context.page = page;
  const runOf = { date: results.date, reps, conditions: results.conditions };
  for (const scenario of selected) results.scenarios.push({ ...(await runScenario(scenario)), run: runOf });
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}

mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(only && !quick ? mergedInto(OUT, results) : results, null, 2)}\n`);
console.log(`results: ${OUT}`);
if (results.errors.length) {
  console.error(`${results.errors.length} failure(s):`);
  for (const e of results.errors) console.error(`  ${e.scenario}: ${e.error}`);
  process.exit(1);
}

/** Runs one scenario: for each case and system, a warm-up, then `reps` measured runs. */
async function runScenario(scenario) {
  const started = Date.now();
  const { id, number, title, about, systems, metrics } = scenario;
  const out = {
    id, number, title, about, systems, names: Object.fromEntries(systems.map((s) => [s, NAMES[s]])),
    metrics: metrics.map(({ id: metric, title: t, unit, lowerIsBetter, target }) =>
      ({ id: metric, title: t, unit, lowerIsBetter, target: target ?? null, rows: [] })),
  };
  let prepared = {};
  try {
    prepared = (await scenario.setup?.(context)) ?? {};
    const measure = scenario.measure ?? ((system, args) =>
      context.page.evaluate(([p, s, a]) => window.peers[p][s](a), [scenario.page, system, args]));
    for (const { label, args, systems: only } of scenario.cases) {
      // A case may run some of the scenario's systems only.
      const running = only ? systems.filter((s) => only.includes(s)) : systems;
      const samples = Object.fromEntries(running.map((s) => [s, []]));
      const failures = {};
      for (const system of running) {
        process.stderr.write(`--- ${id}, ${label}, ${NAMES[system]} ...`);
        const t0 = Date.now();
        try {
          const shared = prepared.args ?? {};
          if (scenario.warmup) await measure(system, { ...shared, ...scenario.warmup }, context);
          for (let rep = 0; rep < (scenario.reps?.(reps, args) ?? reps); rep++) {
            samples[system].push(await measure(system, { ...shared, ...args, rep }, context));
          }
          process.stderr.write(` ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
        } catch (e) {
          failures[system] = String(e?.message ?? e).split('\n')[0];
          results.errors.push({ scenario: `${id}, ${label}, ${NAMES[system]}`, error: failures[system] });
          process.stderr.write(` FAILED: ${failures[system]}\n`);
        }
      }
      metrics.forEach((metric, i) => {
        // A metric may cover some cases only.
        if (!metric.cases || metric.cases.includes(label)) out.metrics[i].rows.push(summarise(metric, label, args, samples, failures));
      });
    }
  } catch (e) {
    results.errors.push({ scenario: id, error: String(e?.message ?? e) });
    process.stderr.write(`--- ${id} FAILED: ${e?.message ?? e}\n`);
  } finally {
    await prepared.teardown?.();
  }
  out.seconds = (Date.now() - started) / 1000;
  return out;
}

/** One table row of a metric: each system's median, min and max over the runs, and how many
 * times better Ferrosync is than it (> 1: Ferrosync is better). */
function summarise(metric, label, args, samples, failures) {
  const row = { case: label, args, systems: {} };
  for (const [system, runs] of Object.entries(samples)) {
    if (failures[system] || runs.length === 0) {
      row.systems[system] = { error: failures[system] ?? 'no runs' };
      continue;
    }
    // A figure some runs do not measure (`undefined`) comes from the others.
    const values = runs.map((r) => metric.value(r, args)).filter((v) => v !== undefined);
    if (values.length === 0) continue;
    row.systems[system] = { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
  }
  const own = row.systems.ferrosync?.median;
  for (const [system, r] of Object.entries(row.systems)) {
    if (system === 'ferrosync' || r.median === undefined || !own) continue;
    r.ferrosyncAdvantage = metric.lowerIsBetter ? r.median / own : own / r.median;
  }
  return row;
}

/** `part`'s scenarios in place of the same scenarios of the results in `file` (if any), the
 * others kept as they were, each with the run it came from. */
function mergedInto(file, part) {
  if (!existsSync(file)) return part;
  const earlier = JSON.parse(readFileSync(file, 'utf8'));
  const scenarios = earlier.scenarios.map((s) => part.scenarios.find((p) => p.id === s.id) ?? s);
  scenarios.push(...part.scenarios.filter((p) => !earlier.scenarios.some((s) => s.id === p.id)));
  console.log(`results of ${part.scenarios.map((s) => s.id).join(', ')} merged into ${file}`);
  return { ...part, scenarios };
}
