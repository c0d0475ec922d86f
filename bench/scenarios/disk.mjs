// Scenario 9: bytes on disk per document (bench/peers/disk.js).
export default ({ quick }) => ({
  id: 'disk',
  number: 9,
  title: 'Bytes on disk per document',
  about: 'The documents are stored (Ferrosync in transactions of 10,000, Dexie `bulkPut`, RxDB ' +
    '`bulkInsert`), each system is left idle for 3 s (Ferrosync folds its log into pages when ' +
    'idle) and closed; the growth of the origin\'s IndexedDB usage reported by ' +
    '`navigator.storage.estimate()` is divided by the documents. Each document is about 72 bytes ' +
    'of JSON. Chromium counts the files of its IndexedDB store, write-ahead log included, so the ' +
    'figure includes what the store has not compacted yet.',
  systems: ['ferrosync', 'dexie', 'rxdb'],
  page: 'diskBytes',
  cases: (quick ? [10_000] : [100_000]).map((docs) => ({ label: `${docs / 1000}k docs`, args: { docs } })),
  warmup: { docs: 1_000 },
  reps: (reps) => Math.min(reps, 2),
  metrics: [{
    id: 'disk',
    title: 'Bytes on disk per document',
    unit: 'bytes',
    lowerIsBetter: true,
    value: (bytes) => bytes,
  }],
});
