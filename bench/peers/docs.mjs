// The benchmark documents, shared by the page and the servers the runner seeds in Node.

/** `count` documents `{ id, title, done }`; those with an even index have `done: false`. */
export function makeDocs(count, prefix = 'd') {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, title: `document ${i}`, done: i % 2 === 1 }));
}
