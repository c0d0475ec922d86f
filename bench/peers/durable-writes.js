// Scenario 2: durable local writes. Up to `total` inserts, issued in bursts of `burst` (issued
// together, then awaited until durable, then the next burst). A system still writing
// after `budgetMs` stops at the end of its burst. Returns `{ ms, inserts }`: the time and the inserts
// made durable in it; the documents stored are counted afterwards (not timed).
import Dexie from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, rxTodoSchema, withFerrosync } from './common.js';
import { countPowerSync, INSERT, powerSyncSystems, rows } from './powersync.js';
import { openSqliteOpfs } from './sqlite-opfs.js';
import { createCollection, IndexedDBAdapter, localOnlyCollectionOptions, startOfflineExecutor } from './tanstack-offline.js';

/** Runs `write(docs)` for each burst, within the time budget; returns `{ ms, inserts }`, and
 * throws unless `count()` then finds as many documents. */
async function timeBursts({ total, burst, budgetMs }, write, count) {
  const docs = makeDocs(total, 'b');
  const start = now();
  let inserts = 0;
  while (inserts < total && now() - start < budgetMs) {
    await write(docs.slice(inserts, inserts + burst));
    inserts = Math.min(total, inserts + burst);
  }
  const ms = now() - start;
  const stored = await count();
  if (stored !== inserts) throw new Error(`${stored} documents stored after ${inserts} inserts`);
  return { ms, inserts };
}

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export const durableWrites = {
  /** Each insert is its own transaction; the engine writes a burst's in one IndexedDB write. */
  ferrosync(args) {
    return withFerrosync(0, (engine) => {
      const todos = engine.collection('todos');
      return timeBursts(args, (docs) =>
        Promise.all(docs.map(({ id, ...rest }) => todos.insert({ _id: id, ...rest }))), () => todos.count());
    });
  },

  /** The platform's limit: one IndexedDB transaction per burst. */
  async raw(args) {
    const open = indexedDB.open(name('raw'), 1);
    open.onupgradeneeded = () => open.result.createObjectStore('todos', { keyPath: 'id' });
    const db = await request(open);
    try {
      return await timeBursts(args, (docs) => new Promise((resolve, reject) => {
        const tx = db.transaction('todos', 'readwrite');
        const store = tx.objectStore('todos');
        for (const doc of docs) store.put(doc);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      }), () => request(db.transaction('todos').objectStore('todos').count()));
    } finally {
      db.close();
      await request(indexedDB.deleteDatabase(db.name));
    }
  },

  /** Each insert is an offline transaction of its own; it is durable when its outbox entry
   * (stored under `tx:<id>`) has been written to IndexedDB, as seen through the storage adapter.
   * The mutation function (the server) resolves at once. */
  async tanstackOffline(args) {
    const durable = new Map();
    class ObservedAdapter extends IndexedDBAdapter {
      async set(key, value) {
        await super.set(key, value);
        durable.get(key)?.();
      }
    }
    const dbName = name('tanstack');
    const storage = new ObservedAdapter(dbName, 'transactions');
    const commits = [];
    const todos = createCollection(localOnlyCollectionOptions({ id: dbName, getKey: (d) => d.id }));
    const offline = startOfflineExecutor({
      collections: { todos },
      mutationFns: { save: async () => {} },
      storage,
    });
    await offline.waitForInit();
    try {
      return await timeBursts(args, (docs) => Promise.all(docs.map((doc) => {
        const tx = offline.createOfflineTransaction({ mutationFnName: 'save', autoCommit: false });
        tx.mutate(() => todos.insert(doc));
        const written = new Promise((resolve) => durable.set(`tx:${tx.id}`, resolve));
        commits.push(tx.commit());
        return written;
      })), () => todos.size);
    } finally {
      // Not timed: the executor sends each transaction and removes it from the outbox.
      await Promise.all(commits);
      offline.dispose();
      await todos.cleanup();
      // The adapter keeps its connection open and has no way to close it, which would block
      // the deletion below forever.
      storage.db?.close();
      await request(indexedDB.deleteDatabase(dbName));
    }
  },

  async dexie(args) {
    const db = new Dexie(name('dexie'));
    db.version(1).stores({ todos: 'id' });
    try {
      return await timeBursts(args, (docs) => db.todos.bulkPut(docs), () => db.todos.count());
    } finally {
      db.close();
      await Dexie.delete(db.name);
    }
  },

  async rxdb(args) {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const { todos } = await db.addCollections({ todos: { schema: rxTodoSchema } });
      return await timeBursts(args, (docs) => todos.bulkInsert(docs), () => todos.count().exec());
    } finally {
      await db.remove();
    }
  },

  /** One `writeTransaction` per burst, inserting its rows with one `executeBatch`; it resolves
   * once SQLite has committed, with its defaults (`synchronous = FULL`). */
  ...powerSyncSystems((variant) => (args) => variant.with(0, (db) => timeBursts(args,
    (docs) => db.writeTransaction((tx) => tx.executeBatch(INSERT, rows(docs))), () => countPowerSync(db)))),

  /** The platform's limit on OPFS: one SQLite transaction per burst, in its worker. */
  async sqliteOpfs(args) {
    const db = await openSqliteOpfs();
    try {
      return await timeBursts(args, (docs) => db.call('insert', { docs }), () => db.call('count'));
    } finally {
      await db.close(true);
    }
  },
};
