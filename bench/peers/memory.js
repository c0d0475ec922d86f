// Scenario 10: memory per document. Each system gets `total` documents of `makeDocs` written the
// way applications write them, in a fresh page: in transactions (or bulk inserts) of `batch`
// documents, or as single inserts issued `batch` at a time, each batch awaited until the
// system has it. The system is then kept in `window.memoryHeld` so the runner can weigh the page
// (bench/scenarios/memory.mjs: the JS heap after a forced collection, and Ferrosync's wasm
// memory), and `memory.release()` closes it and deletes its database.
import { createCollection, localOnlyCollectionOptions } from '@tanstack/db';
import { SyncEngine } from 'ferrosync';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, rxTodoSchema } from './common.js';

/** Writes `total` documents in batches of `batch`: `write(batch)` writes the documents of one
 * batch (an array) and resolves once the system has them. Returns the documents' JSON size (the
 * documents as given to the system) and how many the system counts afterwards. The documents
 * are made here and dropped before this returns, so whatever of them the heap still holds
 * afterwards is the system's. */
async function writeAll({ total, batch }, write) {
  let docs = makeDocs(total);
  let jsonBytes = 0;
  for (const doc of docs) jsonBytes += JSON.stringify(doc).length;
  for (let i = 0; i < total; i += batch) await write(docs.slice(i, i + batch));
  docs = null;
  return jsonBytes;
}

/** What each system keeps alive between its run and `release()`. */
let held = null;

/** Opens (or creates) a Ferrosync database of one local collection, `todos`. */
const openTodos = (database) =>
  SyncEngine.open({ name: database, collections: [{ name: 'todos', sync: false }], requestPersistence: false });

/** Keeps `engine` until `close()` or `release()`. */
function holdFerrosync(engine) {
  held = {
    count: () => engine.collection('todos').count(),
    close: () => engine.destroy(),
    release: async () => {
      engine.destroy();
      await SyncEngine.deleteDatabase(engine.name);
    },
  };
}

export const memory = {
  async ferrosync({ single, ...args }) {
    const engine = await openTodos(name('ferrosync'));
    const todos = engine.collection('todos');
    const jsonBytes = await writeAll(args, (docs) => {
      const seed = docs.map(({ id, ...rest }) => ({ _id: id, ...rest }));
      if (single) return Promise.all(seed.map((doc) => todos.insert(doc)));
      return engine.transaction((t) => {
        for (const doc of seed) t.collection('todos').insert(doc);
      });
    });
    holdFerrosync(engine);
    return { jsonBytes, count: held.count(), name: engine.name };
  },

  /** Opens the Ferrosync database `name` (written by `ferrosync` and closed by `close()`):
   * the memory of a load. */
  async ferrosyncLoad({ name: database }) {
    holdFerrosync(await openTodos(database));
    return { count: held.count() };
  },

  /** Closes the system the last run kept, keeping its database. */
  close() {
    held?.close();
    held = null;
  },

  async tanstack({ single, ...args }) {
    const todos = createCollection(localOnlyCollectionOptions({ id: name('tanstack'), getKey: (d) => d.id }));
    const jsonBytes = await writeAll(args, (docs) => {
      if (single) return Promise.all(docs.map((doc) => todos.insert(doc).isPersisted.promise));
      return todos.insert(docs).isPersisted.promise;
    });
    held = { count: () => todos.size, release: () => todos.cleanup() };
    return { jsonBytes, count: held.count() };
  },

  async rxdb({ single, ...args }) {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    const { todos } = await db.addCollections({ todos: { schema: rxTodoSchema } });
    const jsonBytes = await writeAll(args, (docs) => {
      if (single) return Promise.all(docs.map((doc) => todos.insert(doc)));
      return todos.bulkInsert(docs);
    });
    const count = await todos.count().exec();
    held = { count: () => count, release: () => db.remove() };
    return { jsonBytes, count };
  },

  /** Closes the system the last run kept, and deletes its database. */
  async release() {
    await held?.release();
    held = null;
  },
};
