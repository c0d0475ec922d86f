// TanStack DB with live queries, plus its offline transactions (a persisted outbox), from the
// one copy of TanStack DB that offline-transactions works with (see bench/peers/tanstack-offline.js).
export { createCollection, createLiveQueryCollection, eq, localOnlyCollectionOptions } from '../../node_modules/@tanstack/offline-transactions/node_modules/@tanstack/db/dist/esm/index.js';
export { startOfflineExecutor, IndexedDBAdapter } from '@tanstack/offline-transactions';
