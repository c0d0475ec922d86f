// Scenario 3: reopen a database holding the documents, until the first query result
// (bench/peers/cold-start.js).
export default ({ quick }) => ({
  id: 'cold-start',
  number: 3,
  title: 'Cold start to the first query result',
  about: 'A database holding the documents (written first, not timed) is opened again by a new ' +
    'instance; the time runs from opening until the first query result, the first 50 open documents. ' +
    'Ferrosync answers only once fully loaded (every page read and its documents in memory, their ' +
    'fields kept as the JSON text stored, not parsed), so its figure is also the time to a fully ' +
    'loaded engine. ' +
    'PowerSync (on IndexedDB, its default, or OPFS) and SQLite wasm on OPFS start a worker of their own ' +
    'for the new instance, as a page load would, so their time includes the worker\'s start-up, loading ' +
    'and compiling SQLite\'s wasm (from the browser\'s caches after the first run), opening the database ' +
    '(PowerSync: with its schema check; SQLite: installing the `opfs-sahpool` VFS), then the query ' +
    'through an index on `done`. Ferrosync\'s wasm module is compiled once, with the page, and not ' +
    'counted.',
  systems: ['ferrosync', 'sqliteOpfs', 'rxdb', 'dexie', 'powersync', 'powersyncOpfs'],
  page: 'coldStart',
  cases: (quick ? [10_000] : [10_000, 100_000]).map((docs) => ({ label: `${docs / 1000}k docs`, args: { docs } })),
  warmup: { docs: 1_000 },
  // 100k documents take long to write for the slower peers: two runs there.
  reps: (reps, { docs }) => (docs >= 100_000 ? Math.min(reps, 2) : reps),
  metrics: [{ id: 'cold-start', title: 'Cold start to the first query result', unit: 'ms', lowerIsBetter: true, value: (ms) => ms }],
});
