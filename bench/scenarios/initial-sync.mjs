// Scenario 4: initial sync from a server into IndexedDB (bench/peers/initial-sync.js). The
// servers are seeded here, once per run: each row count is a data set of its own.
import { fileURLToPath } from 'node:url';
import { makeDocs } from '../peers/docs.mjs';
import { startPouchServer } from '../servers/pouchdb-server.mjs';
import { startReplicationServer } from '../servers/replication-server.mjs';

const BATCH = 1_000;
const WARMUP = 1_000;
const POUCHDB_DIR = fileURLToPath(new URL('../../target/bench/pouchdb', import.meta.url));

/** `fetch` that throws unless the answer is a success; resolves to its JSON body. */
async function call(url, init) {
  const response = await fetch(url, { ...init, headers: { 'content-type': 'application/json' } });
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/** Pushes the documents to collection `rows-<count>` of the RxDB replication server. */
async function seedRxdb(url, rows) {
  const docs = makeDocs(rows);
  for (let i = 0; i < rows; i += BATCH) {
    const batch = docs.slice(i, i + BATCH).map((doc) => ({ newDocumentState: { ...doc, _deleted: false } }));
    const conflicts = await call(`${url}/rows-${rows}/push`, { method: 'POST', body: JSON.stringify(batch) });
    if (conflicts.length) throw new Error(`seeding the RxDB replication server: ${conflicts.length} conflicts`);
  }
}

/** Creates database `rows-<count>` on pouchdb-server holding the documents. */
async function seedPouchdb(url, rows) {
  const db = `${url}/rows-${rows}`;
  await call(db, { method: 'PUT' });
  const docs = makeDocs(rows).map(({ id, ...rest }) => ({ _id: id, ...rest }));
  for (let i = 0; i < rows; i += BATCH) {
    const results = await call(`${db}/_bulk_docs`, { method: 'POST', body: JSON.stringify({ docs: docs.slice(i, i + BATCH) }) });
    const failed = results.filter((r) => !r.ok);
    if (failed.length) throw new Error(`seeding pouchdb-server: ${failed.length} writes failed (${failed[0].error})`);
  }
  const { doc_count: count } = await call(db);
  if (count !== rows) throw new Error(`pouchdb-server holds ${count} documents, not ${rows}`);
}

export default ({ quick }) => {
  const sizes = quick ? [2_000] : [10_000, 100_000];
  return {
    id: 'initial-sync',
    number: 4,
    title: 'Initial sync from the server into IndexedDB',
    about: 'Each system\'s server holds the documents (seeded before the runs, not timed); a fresh local ' +
      'database pulls them all, and the time runs from opening it until IndexedDB holds every ' +
      'document and a count returns them all (a wrong count fails the run). Each pulls in batches ' +
      'of 1,000; every server runs on the same machine, over loopback. Ferrosync syncs over a ' +
      'WebSocket from ferrosync-server (SQLite), which also serves the page, until ' +
      '`collection.count()` holds every document and `engine.flush()` resolves (all of it durable ' +
      'in IndexedDB; checked afterwards by opening the database again). RxDB (Dexie storage) pulls ' +
      'once with its replication plugin over HTTP from a small Node server of RxDB\'s checkpoint ' +
      'protocol, which keeps the documents in memory. PouchDB replicates from pouchdb-server ' +
      '(Node), also in memory. Raw IndexedDB writes the same documents, already in the page, in ' +
      'read-write transactions of 1,000: the platform\'s limit, with no network. 100k rows run ' +
      'twice at most, to keep the scenario within a few minutes.',
    systems: ['ferrosync', 'raw', 'rxdb', 'pouchdb'],
    page: 'initialSync',
    cases: sizes.map((rows) => ({ label: `${rows / 1000}k rows`, args: { rows } })),
    warmup: { rows: WARMUP },
    reps: (reps, { rows }) => (rows >= 100_000 ? Math.min(reps, 2) : reps),
    async setup(ctx) {
      const rxdb = await startReplicationServer();
      let pouchdb;
      const teardown = async () => {
        await rxdb.close();
        await pouchdb?.close();
      };
      try {
        pouchdb = await startPouchServer({ dir: POUCHDB_DIR, origin: ctx.base });
        const tokens = {};
        for (const rows of [WARMUP, ...sizes]) {
          tokens[rows] = ctx.token(`initial-sync-${rows}`);
          await ctx.page.evaluate((a) => window.seedFerrosync(a), { serverUrl: ctx.serverUrl, token: tokens[rows], rows });
          await seedRxdb(rxdb.url, rows);
          await seedPouchdb(pouchdb.url, rows);
        }
        return { args: { serverUrl: ctx.serverUrl, tokens, rxdbUrl: rxdb.url, pouchdbUrl: pouchdb.url }, teardown };
      } catch (e) {
        await teardown();
        throw e;
      }
    },
    metrics: [{
      id: 'initial-sync',
      title: 'Initial sync into IndexedDB',
      unit: 'rows/s',
      lowerIsBetter: false,
      target: { text: '≥ 50k rows/s', value: 50_000, case: '100k rows' },
      value: (ms, args) => (args.rows * 1000) / ms,
    }],
  };
};
