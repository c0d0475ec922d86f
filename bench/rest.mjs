// The REST connector benchmark: 1,000 creates written to json-server (npm) behind 50 ms of
// latency, with synchronous vs asynchronous writes, through the individual create endpoint vs
// a batch endpoint (also 50 ms). Each figure is the time of `connector.sync('FULL')` (all writes
// confirmed, then one list), and its speed-up over synchronous individual writes in the same run.
//
// Environment: BENCH_URL (the server serving the benchmark page at /peers/, see scripts/bench.sh),
// BENCH_REST_CREATES (default 1000), BENCH_REST_LATENCY (ms, default 50), BENCH_REST_OUT (JSON).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, launch } from '../tests/e2e/harness.mjs';
import { startBatchServer, startJsonServer } from '../tests/e2e/rest-servers.mjs';

const env = process.env;
const base = (env.BENCH_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('usage: BENCH_URL=http://127.0.0.1:PORT node bench/rest.mjs (see scripts/bench.sh)');
  process.exit(2);
}
const CREATES = Number(env.BENCH_REST_CREATES ?? 1000);
const LATENCY = Number(env.BENCH_REST_LATENCY ?? 50);
const OUT = env.BENCH_REST_OUT ?? 'target/bench/rest.json';

const dir = mkdtempSync(join(tmpdir(), 'ferrosync-rest-bench-'));
const browser = await launch();
const results = [];
try {
  for (const [label, batch, useAsyncWrites] of [
    ['sync writes, individual', false, false],
    ['async writes, individual', false, true],
    ['sync writes, batch', true, false],
    ['async writes, batch', true, true],
  ]) {
    // Fresh APIs per scenario: json-server with the latency; for batches, json-server without
    // it behind a batch endpoint that adds the latency once per request (the final list then
    // skips the latency too: one request, about 50 ms in the batch figures' favour).
    const [slowPort, fastPort, batchPort] = [await freePort(), await freePort(), await freePort()];
    const slow = await startJsonServer({ port: slowPort, dir, delay: LATENCY });
    const fast = batch ? await startJsonServer({ port: fastPort, dir, delay: 0 }) : undefined;
    const batchServer = batch
      ? await startBatchServer({ port: batchPort, target: `http://127.0.0.1:${fastPort}`, delay: LATENCY })
      : undefined;
    const page = await browser.newPage();
    await page.goto(`${base}/peers/index.html`);
    await page.waitForFunction(() => window.peersReady);
    const ms = await page.evaluate(async ({ api, batchApi, useAsyncWrites, creates, name }) => {
      const { ferrosync } = window;
      const rest = ferrosync.createRestConnector({ baseUrl: api });
      const batchRest = batchApi && ferrosync.createRestConnector({ baseUrl: batchApi });
      const connector = ferrosync.createSyncConnector(rest, 'contacts')
        .withModelConnector('contacts', (b) => {
          b.withList().withCreate();
          if (batchRest) {
            b.withBatchCreate({
              request: (changes) => ({ method: 'POST', path: '/contacts/batch', body: { items: changes.map((c) => ({ changeId: c.changeId, data: c.data })) } }),
              extract: (body) => body.map((r) => ({ changeId: r.changeId, externalId: r.id })),
            });
          }
          return b;
        })
        .build();
      if (batchRest) {
        const request = rest.request;
        rest.request = (r) => (r.path.endsWith('/batch') ? batchRest.request(r) : request(r));
      }
      const engine = await ferrosync.SyncEngine.open({ name, collections: [{ name: 'contacts' }], batchSize: 1000, requestPersistence: false, ...connector.backend });
      const contacts = engine.collection('contacts');
      for (let i = 0; i < creates; i++) await contacts.insert({ _id: `tmp-${i}`, name: `contact ${i}`, n: i });
      const start = performance.now();
      const report = await connector.sync('FULL', { useAsyncWrites });
      const elapsed = performance.now() - start;
      if (report.confirmed !== creates || report.pulled !== creates) {
        throw new Error(`expected ${creates} confirmed and listed, got ${JSON.stringify({ ...report, failed: report.failed.length })}`);
      }
      engine.destroy();
      await ferrosync.SyncEngine.deleteDatabase(name);
      return elapsed;
    }, { api: `http://127.0.0.1:${batch ? fastPort : slowPort}`, batchApi: batch && `http://127.0.0.1:${batchPort}`, useAsyncWrites, creates: CREATES, name: `rest-bench-${results.length}-${Date.now()}` });
    await page.close();
    batchServer?.server.close();
    fast?.kill();
    slow.kill();
    results.push({ label, ms, batchRequests: batchServer?.stats.requests ?? 0 });
    console.error(`  ${label}: ${(ms / 1000).toFixed(2)} s`);
  }
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}

const baseline = results[0].ms;
console.log(`\nREST connector: ${CREATES} creates, ${LATENCY} ms API latency (time of sync('FULL'), speed-up vs sync individual)`);
for (const r of results) {
  console.log(`  ${r.label.padEnd(26)} ${(r.ms / 1000).toFixed(2).padStart(7)} s  ${(baseline / r.ms).toFixed(1).padStart(6)}x${r.batchRequests ? `  (${r.batchRequests} batch requests)` : ''}`);
}
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify({ creates: CREATES, latencyMs: LATENCY, results }, null, 2));
