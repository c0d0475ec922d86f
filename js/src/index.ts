// The `ferrosync` package entry: the engine compiled to WebAssembly, plus the hand-written
// pieces around it (errors, REST connectors, the test harness).
export { default } from './ferrosync.js';
export * from './ferrosync.js';
export { NonRetriableError } from './errors.js';
export { createRestConnector, createSyncConnector } from './connectors.js';
export type {
  ChangeFailure,
  ConfirmationOptions,
  ConfirmationStatus,
  ConnectorChangeType,
  ConnectorChange,
  LogListener,
  ModelConnectorBuilder,
  RestConnector,
  RestConnectorOptions,
  RestRequest,
  SyncConnector,
  SyncConnectorBuilder,
  SyncMode,
  SyncOptions,
  SyncReport,
  SyncRun,
  SyncRunState,
  UnconfirmedChange,
  WriteConfirmation,
} from './connectors.js';
export { createTestCollection } from './testing.js';
export type { SyncControl, TestCollection, TestCollectionOptions } from './testing.js';
