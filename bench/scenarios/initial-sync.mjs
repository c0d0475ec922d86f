// Scenario 4: initial sync from a server into IndexedDB (bench/peers/initial-sync.js), against
// ferrosync-server, RxDB's replication protocol (bench/servers/replication-server.mjs) and
// pouchdb-server (bench/servers/pouchdb-server.mjs).
import { freePort } from '../../tests/e2e/harness.mjs';
import { startPouchdbServer } from '../servers/pouchdb-server.mjs';
import { startReplicationServer } from '../servers/replication-server.mjs';

/** pouchdb-server's documents: the page's rows (bench/peers/initial-sync.js makeRows). */
const couchRows = (rows) => Array.from({ length: rows }, (_, i) =>
  ({ _id: `doc${String(i).padStart(7, '0')}`, title: `document ${i}`, done: i % 2 === 1 }));

export default ({ quick }) => {
  const sizes = quick ? [2_000] : [10_000, 100_000];
  const warmup = 1_000;
  return {
    id: 'initial-sync',
    number: 4,
    title: 'Initial sync from a server into IndexedDB',
    about: 'A fresh local database pulls every row from a server on loopback; the time runs from ' +
      'opening it until all rows are stored in IndexedDB and a count sees them. Ferrosync syncs from ' +
      'ferrosync-server (SQLite, `batchSize` 1,000) until its IndexedDB store holds every row and ' +
      '`count()` agrees; RxDB (Dexie storage) runs its replication protocol, pull only, batches of ' +
      '1,000, against a small Node server holding the rows in memory; PouchDB replicates from ' +
      'pouchdb-server (in memory), `batch_size` 1,000. The raw platform writes the same rows into ' +
      'IndexedDB in transactions of 1,000, with no network. Seeding the servers is not timed.',
    systems: ['ferrosync', 'raw', 'rxdb', 'pouchdb'],
    page: 'initialSync',
    async setup(ctx) {
      const [replication, couch] = await Promise.all([startReplicationServer(await freePort()), startPouchdbServer(await freePort())]);
      const tokens = {};
      try {
        for (const rows of [warmup, ...sizes]) {
          tokens[rows] = ctx.token(`initial-${rows}`);
          await ctx.page.evaluate((args) => window.peers.initialSync.seed(args), { rows, serverUrl: ctx.serverUrl, token: tokens[rows] });
          await couch.seed(`rows-${rows}`, couchRows(rows));
        }
      } catch (e) {
        await Promise.all([replication.close(), couch.close()]);
        throw e;
      }
      return {
        args: { serverUrl: ctx.serverUrl, tokens, replicationUrl: replication.url, couchUrl: couch.url },
        teardown: () => Promise.all([replication.close(), couch.close()]),
      };
    },
    cases: sizes.map((rows) => ({ label: `${rows / 1000}k rows`, args: { rows } })),
    warmup: { rows: warmup },
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
