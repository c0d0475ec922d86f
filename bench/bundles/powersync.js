// PowerSync's web SDK: its database (wa-sqlite and its worker), schema, live queries and sync.
export { column, PowerSyncDatabase, Schema, Table } from '@powersync/web';
