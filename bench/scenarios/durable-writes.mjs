// Scenario 2: durable local writes in bursts (bench/peers/durable-writes.js).
export default ({ quick }) => {
  const total = quick ? 1_000 : 10_000;
  // A system still writing after this long stops at the end of its burst (keeps the full run
  // within its 20 minutes: TanStack's outbox drains ever more slowly as it grows).
  const budgetMs = 3_000;
  return {
    id: 'durable-writes',
    number: 2,
    title: 'Durable local writes in bursts',
    about: `${total.toLocaleString('en')} inserts (${(total / 5).toLocaleString('en')} in bursts of 1), issued ` +
      'in bursts; each burst is awaited until durable before the next. A system still ' +
      `writing after ${budgetMs / 1000} s stops at the end of its burst, and its rate is taken from the inserts made ` +
      'until then (TanStack offline-transactions slows down as its outbox grows: 10,000 inserts in ' +
      'bursts of 10 took it 8 minutes). Ferrosync and ' +
      'TanStack offline-transactions make each insert a transaction of its own in their outbox; raw ' +
      'IndexedDB writes each burst in one transaction (the platform\'s limit); Dexie `bulkPut` and ' +
      'RxDB `bulkInsert` write each burst as one call. A TanStack outbox entry counts as durable when ' +
      'its storage adapter\'s write resolves, which it does on the put request\'s success, a little ' +
      'before its IndexedDB transaction commits (in TanStack\'s favour); its mutation function, the ' +
      'server, resolves at once. (offline-transactions 1.0.53 requires TanStack DB 0.8.7 exactly, so ' +
      'its collection comes from that version; the other scenarios use TanStack DB 0.15.2.) PowerSync ' +
      'writes each burst with one `writeTransaction` (an `executeBatch` of INSERTs into a synced table, ' +
      'so each row is also queued for upload in `ps_crud`) through its worker to wa-sqlite, with ' +
      'SQLite\'s defaults (a rollback journal, `synchronous = FULL`): on its default VFS, ' +
      'IDBBatchAtomicVFS (the database\'s pages in IndexedDB), a commit waits for IndexedDB transactions ' +
      'of durability "strict", where the others use the browser\'s default (relaxed in Chromium); on ' +
      'OPFSCoopSyncVFS (OPFS), it flushes its files. SQLite wasm on OPFS (`@sqlite.org/sqlite-wasm` with its ' +
      '`opfs-sahpool` VFS, in a dedicated worker: the `opfs` VFS needs cross-origin isolation, which the ' +
      'benchmark\'s server does not set) writes each burst in one transaction, with a write-ahead log ' +
      'and `synchronous = NORMAL`: as durable as IndexedDB\'s default in Chromium (a commit is written to ' +
      'the OS, not flushed to the disk), and the fastest storage the browser offers, a limit like raw ' +
      'IndexedDB. Both SQLite times include posting each burst to the worker and its answer. Every ' +
      'system\'s documents are counted after the run.',
    systems: ['ferrosync', 'raw', 'sqliteOpfs', 'tanstackOffline', 'dexie', 'rxdb', 'powersync', 'powersyncOpfs'],
    page: 'durableWrites',
    cases: [1, 10, 100, 1_000].map((burst) => ({
      label: `bursts of ${burst.toLocaleString('en')}`, args: { total: burst === 1 ? total / 5 : total, burst, budgetMs },
    })),
    warmup: { total: 200, burst: 10, budgetMs },
    metrics: [{
      id: 'durable-writes',
      title: 'Durable local writes',
      unit: 'inserts/s',
      lowerIsBetter: false,
      target: { text: '≥ 20k mutations/s (outbox throughput)', value: 20_000, case: 'bursts of 1,000' },
      value: ({ ms, inserts }) => (inserts * 1000) / ms,
    }],
  };
};
