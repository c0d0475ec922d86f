// What the peer scenarios share: names, documents, the clock, a seeded Ferrosync engine.
import { SyncEngine } from 'ferrosync';
import { makeDocs } from './docs.mjs';

export { makeDocs };

let unique = 0;
/** A fresh database name for `system`. */
export const name = (system) => `peers-${system}-${Date.now().toString(36)}-${unique++}`;

export const now = () => performance.now();

/** The RxDB schema of `makeDocs` documents. */
export const rxTodoSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: { id: { type: 'string', maxLength: 64 }, title: { type: 'string' }, done: { type: 'boolean' } },
  required: ['id', 'title', 'done'],
};

/** A new local-only Ferrosync engine holding `docs` documents (written in transactions of
 * 10,000, durable when this resolves). Options: `indexes` the collection declares, `make` the
 * documents (`makeDocs` by default), `ready(engine)` runs before the documents are written. */
export async function openFerrosync(docs, { indexes = [], make = makeDocs, ready } = {}) {
  const engine = await SyncEngine.open({ name: name('ferrosync'), collections: [{ name: 'todos', sync: false, indexes }], requestPersistence: false });
  await ready?.(engine);
  const seed = make(docs).map(({ id, ...rest }) => ({ _id: id, ...rest }));
  for (let i = 0; i < seed.length; i += 10_000) {
    await engine.transaction((t) => {
      for (const doc of seed.slice(i, i + 10_000)) t.collection('todos').insert(doc);
    });
  }
  return engine;
}

/** Runs `body(engine)` on `openFerrosync(docs, options)`, then destroys it and deletes its
 * database. */
export async function withFerrosync(docs, body, options) {
  const engine = await openFerrosync(docs, options);
  try {
    return await body(engine);
  } finally {
    engine.destroy();
    await SyncEngine.deleteDatabase(engine.name);
  }
}
