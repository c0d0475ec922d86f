// Scenario 6: reads over `docs` stored documents (half with `done: false`): a point get, a
// query returning about 3,000 of the open ones, and a count of the open ones. Each read is
// repeated `reads` times (fewer if they take over 2 s); returns the mean milliseconds of each
// kind. The `i`th query asks for 3,000 - i documents, so no two queries are the same and none is
// answered from a cache of the previous one.
import { createCollection, createLiveQueryCollection, eq, localOnlyCollectionOptions } from '@tanstack/db';
import Dexie from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, rxTodoSchema, withFerrosync } from './common.js';
import { countPowerSync, powerSyncSystems } from './powersync.js';

const LIMIT = 3_000;
/** A kind of read stops repeating after this long (checked every 10 reads), if it is slow. */
const BUDGET_MS = 2_000;

/** Times up to `reads` runs of each of `get`, `query` and `count` (each may be async). */
async function timeReads(reads, docs, { get, query, count }) {
  const check = (what, got, expected) => {
    if (got !== expected) throw new Error(`${what} returned ${got}, expected ${expected}`);
  };
  // Gets and counts can take less than the clock's 0.1 ms: they are repeated ten times as often.
  const mean = async (read, validate, times = reads) => {
    validate(await read(0));
    const start = now();
    let done = 0;
    while (done < times) {
      if (done > 0 && done % 10 === 0 && now() - start >= BUDGET_MS) break;
      await read(done++);
    }
    return (now() - start) / done;
  };
  return {
    get: await mean((i) => get(`d${(i * 7919) % docs}`), (doc) => check('get', doc?.title, 'document 0'), reads * 10),
    query: await mean((i) => query(LIMIT - i), (rows) => check('query', rows.length, Math.min(LIMIT, docs / 2))),
    count: await mean(count, (n) => check('count', n, docs / 2), reads * 10),
  };
}

export const reads = {
  ferrosync({ docs, reads }) {
    return withFerrosync(docs, (engine) => {
      const todos = engine.collection('todos');
      return timeReads(reads, docs, {
        get: (id) => todos.get(id),
        query: (limit) => todos.find({ where: { done: false }, limit }),
        count: () => todos.count({ where: { done: false } }),
      });
    });
  },

  async tanstack({ docs, reads }) {
    const todos = createCollection(localOnlyCollectionOptions({ id: name('tanstack'), getKey: (d) => d.id, initialData: makeDocs(docs) }));
    const open = createLiveQueryCollection({ query: (q) => q.from({ t: todos }).where(({ t }) => eq(t.done, false)), startSync: true });
    await open.preload();
    try {
      // Queries are live collections, kept up to date: reading one is reading its current rows.
      return await timeReads(reads, docs, {
        get: (id) => todos.get(id),
        query: (limit) => open.toArray.slice(0, limit),
        count: () => open.size,
      });
    } finally {
      await open.cleanup();
      await todos.cleanup();
    }
  },

  async rxdb({ docs, reads }) {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const { todos } = await db.addCollections({ todos: { schema: { ...rxTodoSchema, indexes: ['done'] } } });
      await todos.bulkInsert(makeDocs(docs));
      return await timeReads(reads, docs, {
        get: (id) => todos.findOne(id).exec(),
        query: (limit) => todos.find({ selector: { done: false }, limit }).exec(),
        count: () => todos.count({ selector: { done: false } }).exec(),
      });
    } finally {
      await db.remove();
    }
  },

  async dexie({ docs, reads }) {
    const db = new Dexie(name('dexie'));
    db.version(1).stores({ todos: 'id, done' });
    try {
      await db.todos.bulkPut(makeDocs(docs).map((d) => ({ ...d, done: d.done ? 1 : 0 })));
      return await timeReads(reads, docs, {
        get: (id) => db.todos.get(id),
        query: (limit) => db.todos.where('done').equals(0).limit(limit).toArray(),
        count: () => db.todos.where('done').equals(0).count(),
      });
    } finally {
      db.close();
      await Dexie.delete(db.name);
    }
  },

  /** SQL through its worker; the query and the count use the index on `done`. */
  ...powerSyncSystems((variant) => ({ docs, reads }) => variant.with(docs, (db) => timeReads(reads, docs, {
    get: (id) => db.getOptional('SELECT * FROM todos WHERE id = ?', [id]),
    query: (limit) => db.getAll('SELECT * FROM todos WHERE done = 0 LIMIT ?', [limit]),
    count: () => countPowerSync(db, 'WHERE done = 0'),
  }))),
};
