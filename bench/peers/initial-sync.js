// Scenario 4: initial sync. A fresh local database pulls `rows` documents from its server, in
// batches of 1,000, and the time runs from opening it until IndexedDB holds them all and they
// are queryable; the counts are checked. Returns milliseconds. The servers are seeded first:
// `seedFerrosync` here, the others from Node (bench/scenarios/initial-sync.mjs).
import { SyncEngine } from 'ferrosync';
import PouchDB from 'pouchdb-browser';
import { createRxDatabase } from 'rxdb';
import { replicateRxCollection } from 'rxdb/plugins/replication';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, rxTodoSchema } from './common.js';

const BATCH = 1_000;
/** How long a sync may take before it counts as failed. */
const LIMIT_MS = 300_000;

/** The documents as the RxDB replication server holds them, with its `updatedAt`. */
const rxSchema = {
  ...rxTodoSchema,
  properties: { ...rxTodoSchema.properties, updatedAt: { type: 'number' } },
};

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(system, found, rows) {
  if (found !== rows) throw new Error(`${system} holds ${found} documents, not ${rows}`);
}

/** Ferrosync's engine for the tenant of `token`, syncing collection `todos`. */
const openEngine = (serverUrl, token) => SyncEngine.open({
  name: name('ferrosync'), serverUrl, authToken: token, batchSize: BATCH,
  collections: [{ name: 'todos', sync: true }], requestPersistence: false,
});

async function closeEngine(engine) {
  const database = engine.name;
  engine.destroy();
  await SyncEngine.deleteDatabase(database);
}

/** Fills the tenant of `token` with `rows` documents, pushed by an engine in transactions of
 * 1,000; resolves once the server has acknowledged them all. */
export async function seedFerrosync({ serverUrl, token, rows }) {
  const engine = await openEngine(serverUrl, token);
  try {
    // Connected first: transactions made durable before the socket opens are all pushed in one
    // frame, which past 1 MiB the server refuses (1009, message too big).
    await engine.forceSync();
    const docs = makeDocs(rows).map(({ id, ...rest }) => ({ _id: id, ...rest }));
    for (let i = 0; i < rows; i += BATCH) {
      await engine.transaction((t) => {
        for (const doc of docs.slice(i, i + BATCH)) t.collection('todos').insert(doc);
      });
    }
    await engine.forceSync();
    const limit = now() + LIMIT_MS;
    while (engine.getStats().value.pushCount < rows) {
      if (now() > limit) throw new Error(`the server acknowledged ${engine.getStats().value.pushCount} of ${rows} documents`);
      await sleep(50);
    }
    check('the Ferrosync server', engine.getStats().value.pushCount, rows);
  } finally {
    await closeEngine(engine);
  }
}

export const initialSync = {
  /** A fresh engine, until `collection.count()` holds `rows` documents and `flush()` says they
   * are all durable in IndexedDB. Checked afterwards (not timed): the database, opened again
   * without syncing, holds them all. */
  async ferrosync({ rows, serverUrl, tokens }) {
    const start = now();
    const engine = await openEngine(serverUrl, tokens[rows]);
    const database = engine.name;
    let closed = false;
    try {
      const todos = engine.collection('todos');
      const limit = start + LIMIT_MS;
      while (todos.count() < rows) {
        if (now() > limit) {
          const { lastError } = engine.getStats().value;
          throw new Error(`Ferrosync synced ${todos.count()} of ${rows} documents (last error: ${lastError})`);
        }
        await sleep(10);
      }
      await engine.flush();
      const ms = now() - start;
      check('Ferrosync', todos.count(), rows);
      engine.destroy();
      closed = true;
      const reopened = await SyncEngine.open({
        name: database, collections: [{ name: 'todos', sync: true }], requestPersistence: false,
      });
      const stored = reopened.collection('todos').count();
      reopened.destroy();
      check('Ferrosync (IndexedDB)', stored, rows);
      return ms;
    } finally {
      if (!closed) engine.destroy();
      await SyncEngine.deleteDatabase(database);
    }
  },

  /** The platform's limit: the same documents written in read-write transactions of 1,000. */
  async raw({ rows }) {
    const docs = makeDocs(rows);
    const start = now();
    const open = indexedDB.open(name('raw'), 1);
    open.onupgradeneeded = () => open.result.createObjectStore('todos', { keyPath: 'id' });
    const db = await request(open);
    try {
      for (let i = 0; i < rows; i += BATCH) {
        await new Promise((resolve, reject) => {
          const tx = db.transaction('todos', 'readwrite');
          const store = tx.objectStore('todos');
          for (const doc of docs.slice(i, i + BATCH)) store.put(doc);
          tx.oncomplete = resolve;
          tx.onerror = () => reject(tx.error);
        });
      }
      const stored = await request(db.transaction('todos').objectStore('todos').count());
      const ms = now() - start;
      check('raw IndexedDB', stored, rows);
      return ms;
    } finally {
      db.close();
      await request(indexedDB.deleteDatabase(db.name));
    }
  },

  /** RxDB's replication plugin, pulling once from bench/servers/replication-server.mjs. */
  async rxdb({ rows, rxdbUrl }) {
    const start = now();
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const { todos } = await db.addCollections({ todos: { schema: rxSchema } });
      const replication = replicateRxCollection({
        collection: todos,
        replicationIdentifier: `initial-sync-${rows}`,
        live: false,
        waitForLeadership: false,
        pull: {
          batchSize: BATCH,
          async handler(checkpoint, batchSize) {
            const query = new URLSearchParams({ limit: batchSize, ...(checkpoint ?? {}) });
            const response = await fetch(`${rxdbUrl}/rows-${rows}/pull?${query}`);
            if (!response.ok) throw new Error(`pull: HTTP ${response.status}`);
            return response.json();
          },
        },
      });
      const failed = new Promise((_, reject) => replication.error$.subscribe(reject));
      await Promise.race([replication.awaitInitialReplication(), failed]);
      const stored = await todos.count().exec();
      const ms = now() - start;
      await replication.cancel();
      check('RxDB', stored, rows);
      return ms;
    } finally {
      await db.remove();
    }
  },

  /** PouchDB's replication from pouchdb-server (CouchDB's protocol). */
  async pouchdb({ rows, pouchdbUrl }) {
    const start = now();
    const db = new PouchDB(name('pouchdb'));
    try {
      await db.replicate.from(`${pouchdbUrl}/rows-${rows}`, { batch_size: BATCH });
      const { doc_count: stored } = await db.info();
      const ms = now() - start;
      check('PouchDB', stored, rows);
      return ms;
    } finally {
      await db.destroy();
    }
  },
};
