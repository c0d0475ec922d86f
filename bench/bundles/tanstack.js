// TanStack DB with live queries, plus its offline transactions (a persisted outbox).
export { createCollection, createLiveQueryCollection, eq, localOnlyCollectionOptions } from '@tanstack/db';
export { startOfflineExecutor, IndexedDBAdapter } from '@tanstack/offline-transactions';
