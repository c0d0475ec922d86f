// Ferrosync: the engine (wasm and its JS), with sync, persistence, live queries and retries.
export { default as init, SyncEngine } from 'ferrosync';
