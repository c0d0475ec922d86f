// Runs the benchmarks of bench/bench.js in headless Chromium against the server scripts/bench.sh
// started, prints a table and writes the results as JSON. Every engine figure is set beside raw
// IndexedDB doing the same writes in the same page and run, as a ratio; the product brief's
// targets are shown for reference only (times are never asserted: the machine is noisy).
//
// Environment: BENCH_URL (the server, which serves bench/ and pkg/), BENCH_JWT_SECRET (signs one
// token per tenant, so scenarios never see each other's documents), BENCH_OUT (the JSON file),
// BENCH_ROWS (documents for initial sync and the live query; default 100000), BENCH_REPS
// (repetitions, median reported; default 3), BENCH_PKG (the wasm package; default pkg).
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { constants, gzipSync } from 'node:zlib';

const env = process.env;
const base = (env.BENCH_URL ?? '').replace(/\/$/, '');
const secret = env.BENCH_JWT_SECRET;
if (!base || !secret) {
  console.error('usage: BENCH_URL=http://127.0.0.1:PORT BENCH_JWT_SECRET=... node bench/run.mjs (see scripts/bench.sh)');
  process.exit(2);
}
const count = (name, fallback) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
};
const ROWS = count('BENCH_ROWS', 100_000);
const REPS = count('BENCH_REPS', 3);
const OUT = env.BENCH_OUT ?? 'target/bench/results.json';
const PKG = env.BENCH_PKG ?? 'pkg';
const OUTBOX = 20_000; // scenario 1 inserts
const ACKS = 300; // scenario 2 sequential writes
const WRITES = 1_000; // scenario 4 writes timed until the subscriber runs
const FINDS = 100; // scenario 4 writes timed with a find() after (about 0.1 s each at 100k docs)
const PUSH_BATCH = 1_000; // batchSize of the pushing engine
const serverUrl = `${base.replace(/^http/, 'ws')}/v1/sync`;

// ------------------------------------------------------------------------------------------
// Statistics and formatting
// ------------------------------------------------------------------------------------------

const median = (xs) => quantile(xs, 0.5);
function quantile(xs, q) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const perSecond = (items, ms) => (items * 1000) / ms;
const rate = (x) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
const ms = (x) => (x < 0.1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(0));

/** An HS256 JWT for `tenant`, valid for a day. */
function token(tenant) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 86_400;
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'bench', tenant, exp })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
const run = `${Date.now().toString(36)}`;

// ------------------------------------------------------------------------------------------
// The browser
// ------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const pageMessages = [];
let results;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') pageMessages.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => pageMessages.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/index.html`);
  await page.waitForFunction(() => window.benchReady || window.benchError, null, { timeout: 60_000 });
  const loadError = await page.evaluate(() => window.benchError);
  if (loadError) throw new Error(`the bench page failed to load: ${loadError}`);
  const call = (fn, args = {}) => page.evaluate(([f, a]) => window.bench[f](a), [fn, args]);
  results = await measure(call, browser.version());
} finally {
  await browser.close();
}

// ------------------------------------------------------------------------------------------
// The scenarios
// ------------------------------------------------------------------------------------------

async function measure(call, chromiumVersion) {
  const clock = await call('timerResolution');
  const batch = clock.resolutionMs <= 0.02 ? 1 : 100;
  const conditions = {
    chromium: chromiumVersion, node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model,
    reps: REPS, rows: ROWS, outboxInserts: OUTBOX, sequentialWrites: ACKS, liveQueryWrites: WRITES, liveQueryFinds: FINDS,
    pushBatchSize: PUSH_BATCH, timerResolutionMs: clock.resolutionMs,
    crossOriginIsolated: clock.crossOriginIsolated, liveQueryTimedInBatchesOf: batch,
  };
  const rows = [];
  const errors = [];
  const anomalies = [];
  let current = '';
  const scenario = async (title, body) => {
    const started = Date.now();
    current = title;
    process.stderr.write(`--- ${title} ...`);
    try {
      const produced = await body();
      rows.push(...produced);
      process.stderr.write(` ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (e) {
      const message = String(e?.message ?? e).split('\n')[0];
      process.stderr.write(` FAILED: ${message}\n`);
      errors.push({ scenario: title, error: String(e?.message ?? e) });
      rows.push({ id: title, name: title, error: message });
    }
  };

  await scenario('1. durable outbox throughput', async () => {
    const raw = [];
    const local = [];
    const connected = [];
    const remote = [];
    for (let rep = 0; rep < REPS; rep++) {
      raw.push(perSecond(OUTBOX, (await call('outboxRaw', { n: OUTBOX })).ms));
      const l = await call('outboxEngine', { n: OUTBOX });
      flag(!l.states.failed && !l.states.undefined, `${OUTBOX} local-only inserts: handle states ${JSON.stringify(l.states)}`);
      local.push(perSecond(OUTBOX, l.durableMs));
      const r = await call('outboxEngine', { n: OUTBOX, serverUrl, token: token(`push-${run}-${rep}`), batchSize: PUSH_BATCH });
      check(r.pushed === OUTBOX, `after forceSync() resolved, pushCount grew by ${r.pushed}, not ${OUTBOX}`);
      flag(r.states.completed === OUTBOX && r.settled === OUTBOX,
        `${OUTBOX} inserts, batchSize ${PUSH_BATCH}: forceSync() resolved and pushCount grew by ${r.pushed}, but ` +
        `TransactionHandle.state gave ${JSON.stringify(r.states)} and only ${r.settled} settled() promises ` +
        'resolved (2 s allowed)');
      connected.push(perSecond(OUTBOX, r.durableMs));
      remote.push(perSecond(OUTBOX, r.ackedMs));
    }
    const rawRate = median(raw);
    return [
      throughput('outbox', `durable outbox throughput (${OUTBOX / 1000}k inserts, local only)`, local, raw, 20_000),
      throughput('outboxConnected', '  same inserts with a server connected: all durable', connected, raw, null),
      throughput('push', `push to server, acked (${OUTBOX / 1000}k inserts, batchSize ${PUSH_BATCH})`, remote, raw,
        20_000, `raw = the batched IndexedDB writes (${rate(rawRate)} records/s) of the same repetitions`),
    ];
  });

  await scenario('2. one durable write ack', async () => {
    const raw = [];
    const engine = [];
    for (let rep = 0; rep < REPS; rep++) {
      raw.push((await call('ackRaw', { n: ACKS })).times);
      engine.push((await call('ackEngine', { n: ACKS })).times);
    }
    return [latency('ack', `one durable write ack (${ACKS} sequential awaited inserts)`, engine, raw, 1.2)];
  });

  await scenario(`3. initial sync of ${ROWS} rows`, async () => {
    const tenant = token(`initial-${run}`);
    const seeded = await call('seedServer', { rows: ROWS, serverUrl, token: tenant });
    check(seeded.pushed === ROWS, `seeding pushed ${seeded.pushed} of ${ROWS} documents`);
    const raw = [];
    const stored = [];
    const memory = [];
    for (let rep = 0; rep < REPS; rep++) {
      raw.push(perSecond(ROWS, (await call('initialSyncRaw', { rows: ROWS })).ms));
      const e = await call('initialSyncEngine', { rows: ROWS, serverUrl, token: tenant });
      check(e.stored === ROWS && e.counted === ROWS, `IndexedDB holds ${e.stored}, collection.count() = ${e.counted}, expected ${ROWS}`);
      stored.push(perSecond(ROWS, e.storedMs));
      memory.push(perSecond(ROWS, e.memoryMs));
    }
    return [
      throughput('initialSync', `initial sync into IndexedDB (${ROWS / 1000}k rows, batchSize 1000)`, stored, raw,
        50_000, `seeding the server (not measured) took ${(seeded.ms / 1000).toFixed(1)} s`),
      throughput('initialSyncMemory', `  same sync until collection.count() === ${ROWS / 1000}k`, memory, raw, null),
    ];
  });

  await scenario(`4. optimistic write visible to a live query at ${ROWS} docs`, async () => {
    const visible = [];
    const withFind = [];
    for (let rep = 0; rep < REPS; rep++) {
      const r = await call('liveQuery', { rows: ROWS, writes: WRITES, batch, finds: FINDS });
      check(r.late === 0, `${r.late} of ${WRITES} subscriber callbacks had not run when insert() returned`);
      check(r.preloaded === ROWS && r.count === ROWS + WRITES + FINDS && r.found === 50,
        `preloaded ${r.preloaded}, count ${r.count}, find returned ${r.found}`);
      visible.push(r.visible);
      withFind.push(r.withFind);
    }
    const how = batch === 1 ? 'each write timed' : `batches of ${batch} timed`;
    return [
      latency('liveQuery', `optimistic insert -> subscriber called (${ROWS / 1000}k docs, ${how})`, visible, null, 0.1),
      latency('liveQueryFind', `  insert + find({ where, sort: 'title', limit: 50 }) (${FINDS} writes)`, withFind, null, null),
    ];
  });

  await scenario('5. bundle size', async () => {
    const files = ['ferrosync_bg.wasm', 'ferrosync.js'];
    const sizes = Object.fromEntries(files.map((f) => {
      const bytes = readFileSync(join(PKG, f));
      return [f, { bytes: bytes.length, gzip: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length }];
    }));
    const gzip = files.reduce((sum, f) => sum + sizes[f].gzip, 0);
    return [{
      id: 'bundle', name: 'bundle (wasm + JS, gzip -9)', unit: 'bytes (gzip)', engine: gzip, raw: null, ratio: null,
      target: '<= 150 KB', met: gzip <= 150_000, files: sizes,
      shown: { engine: `${(gzip / 1000).toFixed(1)} KB`, raw: '-', ratio: '-' },
      note: `${files.map((f) => `${f} ${(sizes[f].gzip / 1000).toFixed(1)} KB (uncompressed ${(sizes[f].bytes / 1000).toFixed(0)} KB)`)
        .join(', ')}; 1 KB = 1000 bytes`,
    }];
  });

  return { date: new Date().toISOString(), conditions, scenarios: rows, errors, anomalies, pageMessages };

  /** The figures cannot be trusted: the scenario fails. */
  function check(ok, message) {
    if (!ok) throw new Error(`engine misbehaved: ${message}`);
  }

  /** The figures stand, but the engine did something it should not: reported with a count. */
  function flag(ok, message) {
    if (ok) return;
    const seen = anomalies.find((a) => a.message === message);
    if (seen) seen.times++;
    else anomalies.push({ scenario: current, message, times: 1 });
  }
}

/** Engine/raw per repetition (the two ran back to back), then the median of those ratios. */
function pairedRatio(engine, raw) {
  return median(engine.map((e, i) => e / raw[i]));
}

/** A throughput row (items/s): medians over repetitions; > 1 is faster than raw. */
function throughput(id, name, engine, raw, target, note) {
  const e = median(engine);
  const r = median(raw);
  const ratio = pairedRatio(engine, raw);
  return {
    id, name, unit: 'per second', engine: e, raw: r, ratio, target: target && `>= ${rate(target)}/s`,
    met: target ? e >= target : null, samples: { engine, raw }, note,
    shown: { engine: `${rate(e)}/s`, raw: `${rate(r)}/s`, ratio: `${ratio.toFixed(2)}x` },
  };
}

/** A latency row (ms): medians over repetitions of each one's p50 and p99; ratio of the p50s. */
function latency(id, name, engine, raw, target) {
  const perRep = (runs) => runs && runs.map((t) => ({ p50: quantile(t, 0.5), p99: quantile(t, 0.99) }));
  const summary = (reps) => reps && { p50: median(reps.map((x) => x.p50)), p99: median(reps.map((x) => x.p99)) };
  const [engineReps, rawReps] = [perRep(engine), perRep(raw)];
  const [e, r] = [summary(engineReps), summary(rawReps)];
  const ratio = r ? pairedRatio(engineReps.map((x) => x.p50), rawReps.map((x) => x.p50)) : null;
  return {
    id, name, unit: 'ms', engine: e, raw: r, ratio, target: target && `p50 <= ${target} ms`,
    met: target ? e.p50 <= target : null, samples: { engine: engineReps, raw: rawReps },
    shown: {
      engine: `p50 ${ms(e.p50)} ms, p99 ${ms(e.p99)}`,
      raw: r ? `p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)}` : '-',
      ratio: r ? `${ratio.toFixed(2)}x` : '-',
    },
  };
}

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------

const c = results.conditions;
const header = ['scenario', 'engine', 'raw IndexedDB', 'engine/raw', 'target (brief)'];
const table = results.scenarios.map((s) => s.error
  ? [s.name, `ERROR: ${s.error}`, '', '', '']
  : [s.name, s.shown.engine, s.shown.raw, s.shown.ratio, s.target ? `${s.target} ${s.met ? '(met)' : '(not met)'}` : '']);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
console.log();
console.log(`Ferrosync benchmarks: Chromium ${c.chromium} headless, ${c.cpus} cores, median of ${c.reps} runs`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
table.forEach((r) => console.log(line(r)));
console.log();
console.log('engine/raw: throughput > 1 is faster than raw IndexedDB; latency < 1 is faster.');
console.log(`Clock: performance.now() resolution ${c.timerResolutionMs.toFixed(3)} ms` +
  (c.crossOriginIsolated ? ' (page cross-origin isolated)' : '') +
  (c.liveQueryTimedInBatchesOf > 1 ? `; live-query times are means of batches of ${c.liveQueryTimedInBatchesOf} writes` : ''));
for (const s of results.scenarios) if (s.note) console.log(`${s.id}: ${s.note}`);
if (results.anomalies.length) {
  console.log(`\nENGINE ANOMALIES (figures kept, but the engine misbehaved):`);
  for (const a of results.anomalies) console.log(`  ${a.scenario} (${a.times} of ${c.reps} runs): ${a.message}`);
}
if (results.pageMessages.length) {
  console.log(`\nThe page logged ${results.pageMessages.length} error/warning message(s):`);
  for (const m of results.pageMessages.slice(0, 10)) console.log(`  ${m}`);
}
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nResults: ${OUT}`);
if (results.errors.length) {
  console.error(`\n${results.errors.length} scenario(s) failed:`);
  for (const e of results.errors) console.error(`  ${e.scenario}: ${e.error}`);
  process.exit(1);
}
