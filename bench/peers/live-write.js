// Scenario 1: an optimistic write, timed until a live query over `docs` documents reports it.
// Each system holds `docs` documents (half of them matching the query `done == false`), then
// inserts `writes` (a multiple of 50) matching documents one by one; a write's time runs from the
// call until the live query's callback has it. With `queries` > 1, that many live queries follow
// the open documents sorted by title, each with its own limit, and a write's time runs until all
// of them have it (each written title sorts before every other, so each write enters every
// window). Returns times in milliseconds.
import { BTreeIndex, createCollection, createLiveQueryCollection, eq, localOnlyCollectionOptions } from '@tanstack/db';
import Dexie, { liveQuery } from 'dexie';
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { makeDocs, name, now, rxTodoSchema, withFerrosync } from './common.js';
import { INSERT, powerSyncSystems, rows } from './powersync.js';

/** Browsers coarsen `performance.now()` (to 0.1 ms here), and a write can take less: writes are
 * timed in groups of this many, one after the other, and each group gives its mean. */
const GROUP = 50;

/** Times up to `writes` writes: `write(doc)` starts one, and `waitFor(id, i)` resolves when the
 * live query has the `i`th. Stops early, after one group at least, once `budgetMs` have passed.
 * Returns the mean time of each group of writes. */
async function timeWrites({ writes, budgetMs }, write, waitFor) {
  const times = [];
  const began = now();
  for (let g = 0; g < writes && (times.length === 0 || now() - began < budgetMs); g += GROUP) {
    const start = now();
    for (let i = g; i < g + GROUP; i++) {
      const doc = { id: `w${i}`, title: `a ${999_999 - i}`, done: false };
      const seen = waitFor(doc.id, i);
      write(doc);
      await seen;
    }
    times.push((now() - start) / GROUP);
  }
  return times;
}

/** Resolves `waitFor(key)` promises once `report(keys)` saw the key `queries` times. Queries
 * that hand over their whole result report its length (a write adds one), so checking costs
 * the same for all. */
function waiter(queries = 1) {
  const pending = new Map();
  return {
    waitFor: (id) => new Promise((resolve) => pending.set(id, { resolve, left: queries })),
    report(ids) {
      for (const id of ids) {
        const wait = pending.get(id);
        if (wait && --wait.left === 0) {
          wait.resolve();
          pending.delete(id);
        }
      }
    },
  };
}

/** The `k`th of several live queries: the open documents by title, its own limit. */
const LIMIT = (k) => 10 + k;

export const liveWrite = {
  ferrosync({ docs, queries = 1, ...limits }) {
    const indexes = queries > 1 ? [['done', 'title']] : [];
    return withFerrosync(docs, async (engine) => {
      const todos = engine.collection('todos');
      const w = waiter(queries);
      const report = (changes) => w.report(changes.filter((c) => c.type === 'added').map((c) => c.id));
      const stops = queries > 1
        ? Array.from({ length: queries }, (_, k) => todos.subscribe({ where: { done: false }, sort: 'title', limit: LIMIT(k) }, report))
        : [todos.subscribe({ where: { done: false } }, report)];
      const durable = [];
      const times = await timeWrites(limits, (doc) => {
        const { id, ...rest } = doc;
        durable.push(todos.insert({ _id: id, ...rest }));
      }, w.waitFor);
      for (const stop of stops) stop();
      // Not timed: every write is durable before the engine closes.
      await Promise.all(durable);
      return times;
    }, { indexes });
  },

  async tanstack({ docs, queries = 1, ...limits }) {
    const todos = createCollection(localOnlyCollectionOptions({ id: name('tanstack'), getKey: (d) => d.id, initialData: makeDocs(docs) }));
    if (queries > 1) todos.createIndex((t) => t.title, { indexType: BTreeIndex });
    const open = queries > 1
      ? Array.from({ length: queries }, (_, k) => createLiveQueryCollection({
        query: (q) => q.from({ t: todos }).where(({ t }) => eq(t.done, false)).orderBy(({ t }) => t.title).limit(LIMIT(k)),
        startSync: true,
      }))
      : [createLiveQueryCollection({ query: (q) => q.from({ t: todos }).where(({ t }) => eq(t.done, false)), startSync: true })];
    await Promise.all(open.map((o) => o.preload()));
    const w = waiter(queries);
    const subscriptions = open.map((o) => o.subscribeChanges((changes) => w.report(changes.filter((c) => c.type === 'insert').map((c) => c.key))));
    const times = await timeWrites(limits, (doc) => todos.insert(doc), w.waitFor);
    for (const subscription of subscriptions) subscription.unsubscribe();
    await Promise.all(open.map((o) => o.cleanup()));
    await todos.cleanup();
    return times;
  },

  async rxdb({ docs, ...limits }) {
    const db = await createRxDatabase({ name: name('rxdb'), storage: getRxStorageDexie(), multiInstance: false });
    try {
      const { todos } = await db.addCollections({ todos: { schema: rxTodoSchema } });
      await todos.bulkInsert(makeDocs(docs));
      const w = waiter();
      const subscription = todos.find({ selector: { done: false } }).$.subscribe((results) => w.report([results.length]));
      const base = docs / 2;
      const times = await timeWrites(limits, (doc) => todos.insert(doc), (_, i) => w.waitFor(base + i + 1));
      subscription.unsubscribe();
      return times;
    } finally {
      await db.remove();
    }
  },

  async dexie({ docs, ...limits }) {
    const db = new Dexie(name('dexie'));
    db.version(1).stores({ todos: 'id, done' });
    try {
      // IndexedDB cannot index booleans: `done` is stored as 0 or 1.
      await db.todos.bulkPut(makeDocs(docs).map((d) => ({ ...d, done: d.done ? 1 : 0 })));
      const w = waiter();
      const subscription = liveQuery(() => db.todos.where('done').equals(0).toArray()).subscribe((results) => w.report([results.length]));
      const base = docs / 2;
      const times = await timeWrites(limits, (doc) => db.todos.put({ ...doc, done: 0 }), (_, i) => w.waitFor(base + i + 1));
      subscription.unsubscribe();
      return times;
    } finally {
      db.close();
      await Dexie.delete(db.name);
    }
  },

  /** Each write is an `execute` of one INSERT; `watch` runs the query again in the worker once
   * the write has committed (with its trailing throttle, 30 ms by default, set to 0). */
  ...powerSyncSystems((variant) => ({ docs, ...limits }) => variant.with(docs, async (db) => {
    const w = waiter();
    const stop = new AbortController();
    const initial = w.waitFor(docs / 2);
    db.watch('SELECT * FROM todos WHERE done = 0', [], { onResult: (result) => w.report([result.rows.length]) },
      { throttleMs: 0, signal: stop.signal });
    await initial;
    const base = docs / 2;
    const durable = [];
    const times = await timeWrites(limits, (doc) => durable.push(db.execute(INSERT, rows([doc])[0])), (_, i) => w.waitFor(base + i + 1));
    stop.abort();
    await Promise.all(durable);
    return times;
  })),
};
