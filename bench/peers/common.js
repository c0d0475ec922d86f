// What the peer scenarios share: names, documents, the clock.

let unique = 0;
/** A fresh database name for `system`. */
export const name = (system) => `peers-${system}-${Date.now().toString(36)}-${unique++}`;

export const now = () => performance.now();

/** `count` documents `{ id, title, done }`; those with an even index have `done: false`. */
export function makeDocs(count, prefix = 'd') {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, title: `document ${i}`, done: i % 2 === 1 }));
}

/** The RxDB schema of those documents. */
export const rxTodoSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: { id: { type: 'string', maxLength: 64 }, title: { type: 'string' }, done: { type: 'boolean' } },
  required: ['id', 'title', 'done'],
};
