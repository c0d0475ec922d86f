// RxDB on its Dexie (IndexedDB) storage, with its replication protocol.
export { createRxDatabase } from 'rxdb';
export { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
export { replicateRxCollection } from 'rxdb/plugins/replication';
