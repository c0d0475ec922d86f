// Scenario 9: bytes on disk per document. Each system stores the documents, is given time to
// settle (Ferrosync folds its log into pages when idle), and closes; the growth of the origin's
// IndexedDB usage (`navigator.storage.estimate()`) is divided by the documents. Returns bytes
// per document.
import { SyncEngine } from 'ferrosync';
import Dexie from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, openFerrosync, rxTodoSchema } from './common.js';

/** How long each system is left idle after writing, before it closes. */
const SETTLE_MS = 3_000;

async function usage() {
  const { usageDetails, usage } = await navigator.storage.estimate();
  return usageDetails?.indexedDB ?? usage;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/** Runs `store()` (which writes and closes), and returns the bytes it added per document. */
async function perDocument(docs, store) {
  const before = await usage();
  const cleanup = await store();
  const after = await usage();
  await cleanup();
  return (after - before) / docs;
}

export const diskBytes = {
  ferrosync: ({ docs }) => perDocument(docs, async () => {
    const engine = await openFerrosync(docs);
    if (engine.collection('todos').count() !== docs) throw new Error('not every document was stored');
    await settle();
    engine.destroy();
    return () => SyncEngine.deleteDatabase(engine.name);
  }),

  dexie: ({ docs }) => perDocument(docs, async () => {
    const db = new Dexie(name('dexie'));
    db.version(1).stores({ todos: 'id, done' });
    await db.todos.bulkPut(makeDocs(docs).map((d) => ({ ...d, done: d.done ? 1 : 0 })));
    if ((await db.todos.count()) !== docs) throw new Error('not every document was stored');
    await settle();
    db.close();
    return () => Dexie.delete(db.name);
  }),

  rxdb: ({ docs }) => perDocument(docs, async () => {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    const { todos } = await db.addCollections({ todos: { schema: rxTodoSchema } });
    await todos.bulkInsert(makeDocs(docs));
    if ((await todos.count().exec()) !== docs) throw new Error('not every document was stored');
    await settle();
    await db.close();
    return async () => {
      const again = await createRxDatabase({ name: db.name, storage: getRxStorageDexie(), multiInstance: false });
      await again.remove();
    };
  }),
};
