// Dexie with live queries (IndexedDB only: no sync).
export { default as Dexie, liveQuery } from 'dexie';
