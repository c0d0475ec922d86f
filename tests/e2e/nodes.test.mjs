// Two server nodes on one PostgreSQL database (the cluster `npm test` starts), two engines in
// separate browser contexts: one writes through node A, the other reads live through node B.
// Node A is killed with SIGKILL: the writer fails over to B and nothing is lost. Then the
// database goes down: the writer shows status 'error', and once the database is back, its
// write lands, once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, freePort, launch, openPage, serverState, startServer } from './harness.mjs';

/** A new database on the test cluster; its URL. */
function createDatabase(base) {
  const name = `e2e_${Date.now()}_${Math.random().toString(16).slice(2, 8)}`;
  execFileSync('psql', [base, '-qc', `CREATE DATABASE ${name}`]);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Stops or starts the test cluster (scripts/postgres.sh). */
function database(action) {
  execFileSync('bash', ['-c', `source scripts/postgres.sh && postgres_ctl "$POSTGRES_DIR" ${action}`], {
    env: { ...process.env, POSTGRES_DIR: process.env.FERROSYNC_TEST_POSTGRES_DIR },
  });
}

/** Opens an engine named `name` syncing with `urls` in `page`; it records every status. */
function openEngine(page, name, urls, token) {
  return page.evaluate(async ({ name, urls, token }) => {
    window.engine = await window.ferrosync.SyncEngine.open({
      name,
      collections: [{ name: 'todos' }],
      serverUrl: urls,
      authToken: token,
      requestPersistence: false,
      retryDelay: 200,
      maxRetryDelay: 1000,
      maxRetryAttempts: 30,
    });
    window.statuses = [];
    window.engine.getStatus().subscribe((s) => window.statuses.push(s));
  }, { name, urls, token });
}

/** Inserts `ids` and waits until the server confirmed each. */
function write(page, ids) {
  return page.evaluate(async (ids) => {
    const txs = [];
    for (const id of ids) txs.push(await window.engine.collection('todos').insert({ _id: id, title: id }));
    await Promise.all(txs.map((tx) => tx.settled()));
  }, ids);
}

/** Waits until the engine in `page` holds every one of `ids`. */
function seen(page, ids, timeout) {
  return page.waitForFunction(
    (ids) => ids.every((id) => window.engine.collection('todos').get(id)),
    ids,
    { timeout, polling: 20 },
  );
}

export function nodeTests(binary, www) {
  return {
    async a_writer_fails_over_to_the_other_node_and_survives_a_database_restart() {
      const base = process.env.FERROSYNC_TEST_POSTGRES;
      check(base && process.env.FERROSYNC_TEST_POSTGRES_DIR, 'npm test starts the PostgreSQL cluster');
      const db = createDatabase(base);
      const token = `e2e-${Math.random().toString(16).slice(2)}`;
      const dir = mkdtempSync(join(tmpdir(), 'ferrosync-e2e-'));
      const [pagePort, portA, portB] = [await freePort(), await freePort(), await freePort()];
      const origin = `http://127.0.0.1:${pagePort}`;
      const pages = await startServer(binary, ['--listen', `127.0.0.1:${pagePort}`, '--db', `sqlite://${dir}/pages.db`, '--static', www, '--dev-token', 'unused']);
      const node = (port) => startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', db, '--dev-token', token, '--allowed-origin', origin]);
      const [nodeA, nodeB] = [await node(portA), await node(portB)];
      const ws = (port) => `ws://127.0.0.1:${port}/v1/sync`;
      const browser = await launch();
      try {
        const writer = await openPage(await browser.newContext(), origin);
        const reader = await openPage(await browser.newContext(), origin);
        await openEngine(writer, 'e2e-nodes', [ws(portA), ws(portB)], token);
        await openEngine(reader, 'e2e-nodes', [ws(portB), ws(portA)], token);

        // Through node A, read live through node B.
        for (const id of ['a1', 'a2', 'a3']) {
          await write(writer, [id]);
          await seen(reader, [id], 5_000);
        }

        // Node A dies; the writer moves to node B.
        nodeA.kill('SIGKILL');
        await write(writer, ['b1', 'b2', 'b3']);
        await seen(reader, ['b1', 'b2', 'b3'], 5_000);

        // The database goes down: the write waits, shown as an error; then it lands.
        database('stop');
        const from = await writer.evaluate(() => window.statuses.length);
        const landed = write(writer, ['c1']);
        try {
          await writer.waitForFunction((from) => window.statuses.slice(from).includes('error'), from, { timeout: 20_000, polling: 50 });
        } finally {
          database('start');
        }
        await landed;
        await seen(reader, ['c1'], 15_000);
        await writer.waitForFunction(() => window.engine.getStatus().value === 'idle', null, { timeout: 15_000 });

        const state = await serverState(portB, token);
        const expected = ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'c1'];
        check(JSON.stringify(state.ids) === JSON.stringify(expected), `node B has every write: ${state.ids}`);
        check(state.head === expected.length, `each write applied once (head ${state.head})`);
        const read = await reader.evaluate(() => window.engine.collection('todos').find().map((d) => d._id).sort());
        check(JSON.stringify(read) === JSON.stringify(expected), `the reader converged: ${read}`);
      } finally {
        await browser.close();
        for (const child of [pages, nodeA, nodeB]) child.kill('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
