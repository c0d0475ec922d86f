// Scenario 6: reads over `docs` stored documents `{ id, title, done, n }` (half with
// `done: false`, `n` their position): a point get, a query returning about 3,000 of the open
// ones, a count of the open ones, a range (`n` above a bound: about 1,000 documents) and a page
// of 100 sorted by two fields (`done`, then `n`). Each read is repeated `reads` times (fewer if
// they take over 2 s); returns the mean milliseconds of each kind. The `i`th query asks for
// 3,000 - i documents, the `i`th range starts i lower and the `i`th page i further, so no two
// are the same and none is answered from a cache of the previous one. Each system declares the
// indexes these reads use.
import { BTreeIndex, createCollection, createLiveQueryCollection, eq, gt, localOnlyCollectionOptions, queryOnce } from '@tanstack/db';
import Dexie from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, rxTodoSchema, withFerrosync } from './common.js';
import { countPowerSync, powerSyncSystems } from './powersync.js';

const LIMIT = 3_000;
/** Documents a range returns (its first read). */
const RANGE = 1_000;
/** Documents a sorted page holds. */
const PAGE = 100;
/** A kind of read stops repeating after this long (checked every 10 reads), if it is slow. */
const BUDGET_MS = 2_000;
/** The indexes Ferrosync declares for these reads. */
const FERROSYNC_INDEXES = ['done', 'n', ['done', 'n']];

/** The benchmark documents with their position `n`. */
const readDocs = (count) => makeDocs(count).map((doc, n) => ({ ...doc, n }));

/** Times up to `reads` runs of each kind of read (each may be async; `range` and `sorted` may
 * be missing). */
async function timeReads(reads, docs, { get, query, count, range, sorted }) {
  const check = (what, got, expected) => {
    if (got !== expected) throw new Error(`${what} returned ${got}, expected ${expected}`);
  };
  // Gets and counts can take a microsecond, a hundredth of the clock's 0.1 ms: they are repeated
  // a hundred times as often, so that a loop lasts milliseconds and a single pause in it (a
  // garbage collection, the machine running something else) does not make its mean.
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
    get: await mean((i) => get(`d${(i * 7919) % docs}`), (doc) => check('get', doc?.title, 'document 0'), reads * 100),
    query: await mean((i) => query(LIMIT - i), (rows) => check('query', rows.length, Math.min(LIMIT, docs / 2))),
    count: await mean(count, (n) => check('count', n, docs / 2), reads * 100),
    // A system without `range` and `sorted` (PowerSync: its table has no `n`) is not timed on them.
    range: range && await mean((i) => range(docs - RANGE - 1 - i), (rows) => check('range', rows.length, RANGE)),
    sort: sorted && await mean((i) => sorted(i), (rows) => check('sort', `${rows.length} ${rows[0]?.n}`, `${PAGE} 0`)),
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
        range: (above) => todos.find({ where: { n: { $gt: above } } }),
        sorted: (offset) => todos.find({ sort: ['done', 'n'], offset, limit: PAGE }),
      });
    }, { indexes: FERROSYNC_INDEXES, make: readDocs });
  },

  /** The wasm memory of a page after writing `docs` documents into an engine declaring the
   * reads' indexes (`indexed`) or none, built before the documents arrive so that they grow
   * with them, as in an application. Run in a fresh page: the difference between the two is
   * what the indexes take. */
  memory({ docs, indexed }) {
    // A query on each index builds it (empty); each then follows every write.
    const ready = (engine) => {
      const todos = engine.collection('todos');
      todos.count({ where: { done: false } });
      todos.count({ where: { n: { $gt: 0 } } });
      todos.find({ sort: ['done', 'n'], limit: 1 });
    };
    const indexes = indexed ? FERROSYNC_INDEXES : [];
    return withFerrosync(docs, () => window.wasmMemory.buffer.byteLength, { indexes, make: readDocs, ready });
  },

  async tanstack({ docs, reads }) {
    const todos = createCollection(localOnlyCollectionOptions({ id: name('tanstack'), getKey: (d) => d.id, initialData: readDocs(docs) }));
    todos.createIndex((t) => t.n, { indexType: BTreeIndex });
    todos.createIndex((t) => t.done, { indexType: BTreeIndex });
    const open = createLiveQueryCollection({ query: (q) => q.from({ t: todos }).where(({ t }) => eq(t.done, false)), startSync: true });
    await open.preload();
    try {
      // The query and count read a live query collection, kept up to date: its current rows.
      // Ranges and pages differ each time: each is a one-shot query.
      return await timeReads(reads, docs, {
        get: (id) => todos.get(id),
        query: (limit) => open.toArray.slice(0, limit),
        count: () => open.size,
        range: (above) => queryOnce((q) => q.from({ t: todos }).where(({ t }) => gt(t.n, above))),
        sorted: (offset) => queryOnce((q) => q.from({ t: todos }).orderBy(({ t }) => t.done).orderBy(({ t }) => t.n).offset(offset).limit(PAGE)),
      });
    } finally {
      await open.cleanup();
      await todos.cleanup();
    }
  },

  async rxdb({ docs, reads }) {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const schema = {
        ...rxTodoSchema,
        properties: { ...rxTodoSchema.properties, n: { type: 'number', minimum: 0, maximum: 1e9, multipleOf: 1 } },
        required: [...rxTodoSchema.required, 'n'],
        indexes: ['done', 'n', ['done', 'n']],
      };
      const { todos } = await db.addCollections({ todos: { schema } });
      await todos.bulkInsert(readDocs(docs));
      return await timeReads(reads, docs, {
        get: (id) => todos.findOne(id).exec(),
        query: (limit) => todos.find({ selector: { done: false }, limit }).exec(),
        count: () => todos.count({ selector: { done: false } }).exec(),
        range: (above) => todos.find({ selector: { n: { $gt: above } } }).exec(),
        sorted: (offset) => todos.find({ selector: {}, sort: [{ done: 'asc' }, { n: 'asc' }], skip: offset, limit: PAGE }).exec(),
      });
    } finally {
      await db.remove();
    }
  },

  async dexie({ docs, reads }) {
    const db = new Dexie(name('dexie'));
    db.version(1).stores({ todos: 'id, done, n, [done+n]' });
    try {
      // IndexedDB cannot index booleans: `done` is stored as 0 or 1.
      await db.todos.bulkPut(readDocs(docs).map((d) => ({ ...d, done: d.done ? 1 : 0 })));
      return await timeReads(reads, docs, {
        get: (id) => db.todos.get(id),
        query: (limit) => db.todos.where('done').equals(0).limit(limit).toArray(),
        count: () => db.todos.where('done').equals(0).count(),
        range: (above) => db.todos.where('n').above(above).toArray(),
        sorted: (offset) => db.todos.orderBy('[done+n]').offset(offset).limit(PAGE).toArray(),
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
