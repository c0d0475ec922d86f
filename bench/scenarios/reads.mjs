// Scenario 6: reads over stored documents (bench/peers/reads.js).
export default ({ quick }) => ({
  id: 'reads',
  number: 6,
  title: 'Reads: point get, a 3,000-document query, a count',
  about: 'Each system holds the documents (half with `done: false`), then times repeated reads: a ' +
    'get by id, a query for about 3,000 of the open documents, and a count of the open ones. The ' +
    '*i*th query asks for 3,000 − *i* documents, so no query repeats the previous one and none is ' +
    'answered from a query cache. The count does repeat: RxDB answers it from its query cache. ' +
    'TanStack DB reads a live query collection that is kept up to date as writes happen (its ' +
    'design), so its query and count read results that are already computed. Gets and counts run ' +
    'ten times as often as queries, since one can take less than the page clock\'s 0.1 ms; a kind of ' +
    'read stops repeating after 2 s (at least 10 reads). PowerSync (on IndexedDB, its default, or ' +
    'OPFS) runs each read as SQL in its worker, a round trip to it (the query and the count through an ' +
    'index on `done`).',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie', 'powersync', 'powersyncOpfs'],
  page: 'reads',
  cases: (quick ? [10_000] : [10_000, 100_000]).map((docs) => ({ label: `${docs / 1000}k docs`, args: { docs, reads: quick ? 20 : 100 } })),
  warmup: { docs: 10_000, reads: 20 },
  // 100k documents take long to write for the slower peers: two runs there.
  reps: (reps, { docs }) => (docs >= 100_000 ? Math.min(reps, 2) : reps),
  metrics: ['get', 'query', 'count'].map((kind) => ({
    id: `reads-${kind}`,
    title: { get: 'Point get by id', query: 'Query returning 3,000 documents', count: 'Count of the matching half' }[kind],
    unit: 'ms per read (mean)',
    lowerIsBetter: true,
    value: (times) => times[kind],
  })),
});
