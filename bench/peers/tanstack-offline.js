// TanStack offline-transactions 1.0.53 (its newest release) depends on @tanstack/db 0.8.7
// exactly, and installs it beside itself, while the other scenarios use TanStack DB 0.15.2. Its
// transactions only see collections made by its own copy of the library (the two copies keep
// separate transaction state), so collections for it come from that copy, by path.
export { createCollection, localOnlyCollectionOptions } from '../../node_modules/@tanstack/offline-transactions/node_modules/@tanstack/db/dist/esm/index.js';
export { IndexedDBAdapter, startOfflineExecutor } from '@tanstack/offline-transactions';
