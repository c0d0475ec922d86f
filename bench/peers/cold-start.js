// Scenario 3: cold start. A database holding `docs` documents (written first, not timed) is
// opened again by a new instance, and the time runs until the first query result: the first 50
// open documents. Returns milliseconds. The SQLite systems start a worker of their own for it, so
// their time includes the worker's start-up and loading SQLite's wasm; Ferrosync's wasm module is
// loaded once, with the page.
import { SyncEngine } from 'ferrosync';
import Dexie from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, openFerrosync, rxTodoSchema } from './common.js';
import { powerSyncSystems } from './powersync.js';
import { openSqliteOpfs } from './sqlite-opfs.js';

const FIRST = 50;

function check(rows) {
  if (rows.length !== FIRST) throw new Error(`the first query returned ${rows.length} documents, not ${FIRST}`);
}

export const coldStart = {
  async ferrosync({ docs }) {
    const seeded = await openFerrosync(docs);
    const database = seeded.name;
    seeded.destroy();
    // Let the first engine's tab lock go before timing (not part of a cold start).
    await new Promise((r) => setTimeout(r, 100));
    const start = now();
    const engine = await SyncEngine.open({ name: database, collections: [{ name: 'todos', sync: false }], requestPersistence: false });
    const rows = engine.collection('todos').find({ where: { done: false }, limit: FIRST });
    const ms = now() - start;
    check(rows);
    engine.destroy();
    await SyncEngine.deleteDatabase(database);
    return ms;
  },

  async rxdb({ docs }) {
    const dbName = name('rxdb');
    const first = await createRxDatabase({ name: dbName, storage: getRxStorageDexie(), multiInstance: false });
    const { todos } = await first.addCollections({ todos: { schema: rxTodoSchema } });
    await todos.bulkInsert(makeDocs(docs));
    await first.close();
    const start = now();
    const db = await createRxDatabase({ name: dbName, storage: getRxStorageDexie(), multiInstance: false });
    const collections = await db.addCollections({ todos: { schema: rxTodoSchema } });
    const rows = await collections.todos.find({ selector: { done: false }, limit: FIRST }).exec();
    const ms = now() - start;
    check(rows);
    await db.remove();
    return ms;
  },

  async dexie({ docs }) {
    const dbName = name('dexie');
    const first = new Dexie(dbName);
    first.version(1).stores({ todos: 'id, done' });
    await first.todos.bulkPut(makeDocs(docs).map((d) => ({ ...d, done: d.done ? 1 : 0 })));
    first.close();
    const start = now();
    const db = new Dexie(dbName);
    db.version(1).stores({ todos: 'id, done' });
    const rows = await db.todos.where('done').equals(0).limit(FIRST).toArray();
    const ms = now() - start;
    check(rows);
    db.close();
    await Dexie.delete(dbName);
    return ms;
  },

  /** A new PowerSyncDatabase: its worker, wa-sqlite's wasm, opening the database, its schema
   * check, then the query through the index on `done`. */
  ...powerSyncSystems((variant) => async ({ docs }) => {
    const seeded = await variant.seed(docs);
    const file = seeded.database.name;
    await seeded.close();
    const start = now();
    const db = variant.open(file);
    const rows = await db.getAll('SELECT * FROM todos WHERE done = 0 LIMIT ?', [FIRST]);
    const ms = now() - start;
    check(rows);
    await variant.drop(db);
    return ms;
  }),

  /** The platform's limit on OPFS: a new worker, SQLite's wasm, its VFS, the database, then the
   * query through the index on `done`. */
  async sqliteOpfs({ docs }) {
    const seeded = await openSqliteOpfs();
    await seeded.call('insert', { docs: makeDocs(docs) });
    await seeded.close(false);
    const start = now();
    const db = await openSqliteOpfs(seeded.path);
    const rows = await db.call('first', { limit: FIRST });
    const ms = now() - start;
    check(rows);
    await db.close(true);
    return ms;
  },
};
