// Scenario 4: initial sync. A fresh local database pulls `rows` documents from a server until all
// are stored in IndexedDB and queryable. Returns milliseconds. The servers hold the rows already
// (bench/scenarios/initial-sync.mjs seeds them, untimed; Ferrosync's through `seed` below).
import { SyncEngine } from 'ferrosync';
import PouchDB from 'pouchdb-browser';
import { createRxDatabase } from 'rxdb';
import { replicateRxCollection } from 'rxdb/plugins/replication';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { name, now, rxTodoSchema } from './common.js';

const BATCH = 1_000;

/** The servers' documents: `doc0000000`… with a title and `done` (bench/servers/ makes the same). */
function makeRows(rows) {
  return Array.from({ length: rows }, (_, i) => ({ _id: `doc${String(i).padStart(7, '0')}`, title: `document ${i}`, done: i % 2 === 1 }));
}

function check(what, got, rows) {
  if (got !== rows) throw new Error(`${what}: ${got} documents after the initial sync, not ${rows}`);
}

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Resolves once `ready()` is true, checking every 20 ms; fails after `limitMs`. */
async function until(ready, limitMs, what) {
  const limit = now() + limitMs;
  while (!(await ready())) {
    if (now() > limit) throw new Error(`${what} timed out`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const initialSync = {
  /** Not timed: pushes the rows into the tenant of `token` from an engine of its own. */
  async seed({ rows, serverUrl, token }) {
    const engine = await SyncEngine.open({ name: name('seed'), serverUrl, authToken: token, batchSize: BATCH, collections: [{ name: 'todos' }], requestPersistence: false });
    try {
      const docs = makeRows(rows);
      for (let i = 0; i < rows; i += BATCH) {
        await engine.transaction((t) => {
          for (const doc of docs.slice(i, i + BATCH)) t.collection('todos').insert(doc);
        });
      }
      await engine.forceSync();
      const pushed = engine.getStats().value.pushCount;
      if (pushed !== rows) throw new Error(`seeding pushed ${pushed} of ${rows} documents`);
    } finally {
      engine.destroy();
      await SyncEngine.deleteDatabase(engine.name);
    }
  },

  /** Until the engine's IndexedDB store holds every row and `count()` has them all. */
  async ferrosync({ rows, serverUrl, tokens }) {
    const start = now();
    const engine = await SyncEngine.open({
      name: name('ferrosync'), serverUrl, authToken: tokens[rows], batchSize: BATCH, collections: [{ name: 'todos' }], requestPersistence: false,
    });
    const db = await request(indexedDB.open(engine.name));
    try {
      const stored = () => request(db.transaction('documents', 'readonly').objectStore('documents').count());
      await until(async () => (await stored()) >= rows && engine.collection('todos').count() === rows, 300_000, 'Ferrosync initial sync');
      const ms = now() - start;
      check('Ferrosync IndexedDB', await stored(), rows);
      return ms;
    } finally {
      db.close();
      engine.destroy();
      await SyncEngine.deleteDatabase(engine.name);
    }
  },

  /** The platform's limit: the rows written to IndexedDB in transactions of 1,000. */
  async raw({ rows }) {
    const docs = makeRows(rows);
    const start = now();
    const open = indexedDB.open(name('raw'), 1);
    open.onupgradeneeded = () => open.result.createObjectStore('documents', { keyPath: '_id' });
    const db = await request(open);
    try {
      for (let i = 0; i < rows; i += BATCH) {
        await new Promise((resolve, reject) => {
          const tx = db.transaction('documents', 'readwrite');
          for (const doc of docs.slice(i, i + BATCH)) tx.objectStore('documents').put(doc);
          tx.oncomplete = resolve;
          tx.onerror = () => reject(tx.error);
        });
      }
      const ms = now() - start;
      check('raw IndexedDB', await request(db.transaction('documents').objectStore('documents').count()), rows);
      return ms;
    } finally {
      db.close();
      await request(indexedDB.deleteDatabase(db.name));
    }
  },

  /** RxDB's replication (pull only) from bench/servers/replication-server.mjs. */
  async rxdb({ rows, replicationUrl }) {
    const start = now();
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const schema = { ...rxTodoSchema, properties: { ...rxTodoSchema.properties, updatedAt: { type: 'number' } } };
      const { todos } = await db.addCollections({ todos: { schema } });
      const replication = replicateRxCollection({
        collection: todos,
        replicationIdentifier: `bench-${rows}`,
        live: false,
        pull: {
          batchSize: BATCH,
          async handler(checkpoint, batchSize) {
            const query = new URLSearchParams({ limit: batchSize, ...(checkpoint ?? {}) });
            const response = await fetch(`${replicationUrl}/pull/${rows}?${query}`);
            if (!response.ok) throw new Error(`pull: ${response.status}`);
            return response.json();
          },
        },
      });
      let failure;
      replication.error$.subscribe((e) => { failure = e; });
      await replication.awaitInitialReplication();
      if (failure) throw new Error(`RxDB replication failed: ${failure.message}`);
      const count = await todos.count().exec();
      const ms = now() - start;
      check('RxDB', count, rows);
      await replication.cancel();
      return ms;
    } finally {
      await db.remove();
    }
  },

  /** PouchDB replicating from pouchdb-server (CouchDB's protocol), batches of 1,000. */
  async pouchdb({ rows, couchUrl }) {
    const start = now();
    const db = new PouchDB(name('pouchdb'));
    try {
      await db.replicate.from(`${couchUrl}/rows-${rows}`, { batch_size: BATCH });
      const { doc_count: count } = await db.info();
      const ms = now() - start;
      check('PouchDB', count, rows);
      return ms;
    } finally {
      await db.destroy();
    }
  },
};
