// Scenario 6: reads over stored documents (bench/peers/reads.js), and the memory Ferrosync's
// indexes take.

/** Ferrosync's index memory per document: the wasm memory of a fresh page holding `docs`
 * documents with the reads' indexes, less that of one holding them without. */
async function indexBytesPerDoc(context, docs) {
  const memory = [];
  for (const indexed of [false, true]) {
    const page = await context.page.context().newPage();
    try {
      await page.goto(`${context.base}/peers/index.html`);
      await page.waitForFunction(() => window.peersReady || window.peersError, null, { timeout: 60_000 });
      memory.push(await page.evaluate((args) => window.peers.reads.memory(args), { docs, indexed }));
    } finally {
      await page.close();
    }
  }
  return (memory[1] - memory[0]) / docs;
}

const TITLES = {
  get: 'Point get by id',
  query: 'Query returning 3,000 documents',
  count: 'Count of the matching half',
  range: 'Range query ($gt on a number, 1,000 documents)',
  sort: 'Page of 100 sorted by two fields',
};

export default ({ quick }) => ({
  id: 'reads',
  number: 6,
  title: 'Reads: point get, a 3,000-document query, a count, a range, a two-field sort',
  about: 'Each system holds the documents `{ id, title, done, n }` (half with `done: false`; `n` ' +
    'is a document\'s position), with the indexes these reads use declared (Ferrosync ' +
    '`indexes: [\'done\', \'n\', [\'done\', \'n\']]`, RxDB the same, Dexie `done, n, [done+n]`, ' +
    'TanStack DB B-tree indexes on `n` and `done`), then times repeated reads: a get by id, a ' +
    'query for about 3,000 of the open documents, a count of the open ones, a range (`n` above a ' +
    'bound, 1,000 documents: `$gt`, TanStack DB `gt` in a one-shot query, RxDB `$gt`, Dexie ' +
    '`above`) and a page of 100 documents sorted by `done` then `n` (`offset`/`skip` grows by ' +
    'one each time). The *i*th query asks for 3,000 − *i* documents, the *i*th range starts *i* ' +
    'lower and the *i*th page one further, so no read repeats the previous one and none is ' +
    'answered from a query cache. The count does repeat: RxDB answers it from its query cache. ' +
    'TanStack DB reads a live query collection that is kept up to date as writes happen (its ' +
    'design), so its query and count read results that are already computed; its ranges and ' +
    'pages are one-shot queries (`queryOnce`). PowerSync (on IndexedDB, its default, or OPFS) ' +
    'runs each read as SQL in its worker, a round trip to it (the query and the count through an ' +
    'index on `done`); its table has no `n`, so it runs no range or page. Gets and counts run a ' +
    'hundred times as often as the others (each get a different document), since one can take a ' +
    'hundredth of the page clock\'s 0.1 ms; a kind ' +
    'of read stops repeating after 2 s (at least 10 reads). The index memory is the growth of the ' +
    'wasm memory of a fresh page holding the documents with Ferrosync\'s indexes over one holding ' +
    'them without, per document (the indexes are declared before the documents are written, so ' +
    'they grow with them as in an application).',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie', 'powersync', 'powersyncOpfs'],
  page: 'reads',
  cases: (quick ? [10_000] : [10_000, 100_000]).map((docs) => ({ label: `${docs / 1000}k docs`, args: { docs, reads: quick ? 20 : 100 } })),
  warmup: { docs: 10_000, reads: 20 },
  // 100k documents take long to write for the slower peers: two runs there.
  reps: (reps, { docs }) => (docs >= 100_000 ? Math.min(reps, 2) : reps),
  async measure(system, args, context) {
    const times = await context.page.evaluate(([s, a]) => window.peers.reads[s](a), [system, args]);
    // Memory is measured once per case, in pages of its own.
    if (system === 'ferrosync' && args.rep === 0) times.indexBytes = await indexBytesPerDoc(context, args.docs);
    return times;
  },
  metrics: [
    ...Object.entries(TITLES).map(([kind, title]) => ({
      id: `reads-${kind}`,
      title,
      unit: 'ms per read (mean)',
      lowerIsBetter: true,
      value: (times) => times[kind],
    })),
    {
      id: 'reads-index-memory',
      title: 'Index memory per document (Ferrosync)',
      unit: 'bytes per document',
      lowerIsBetter: true,
      value: (times) => times.indexBytes,
    },
  ],
});
