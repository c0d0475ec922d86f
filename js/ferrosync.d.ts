// Ferrosync's public TypeScript API, written by hand in js/ferrosync.d.ts and embedded verbatim
// into the generated pkg/ferrosync.d.ts by the wasm crate. It therefore holds top-level module
// declarations only: no imports, no default export, no `declare module` wrapper.

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/** Any value that survives a JSON round trip. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The fields of an untyped document. */
export type DocumentFields = { [field: string]: JsonValue };

/**
 * A stored document: the user's fields plus the system fields.
 * @typeParam T - the shape of the user's fields
 */
export type Document<T extends object = DocumentFields> = T & {
  /** The document id, unique within its collection. */
  _id: string;
  /** Present (and `true`) only on soft-deleted documents. */
  _deleted?: true;
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * The stable `code` of every error the engine and its helpers throw, reject with or report
 * (a failed transaction's `error.code`, an attempt's and a sync-log entry's `errorCode`,
 * `getStats().lastErrorCode`). The engine's own codes come first, then the sync protocol's
 * (docs/PROTOCOL.md), which a server's refusal carries as sent. docs/GUIDE.md (Errors) says
 * what each means and whether it is retryable; a code this version does not know (from a newer
 * server) reads as `unknown`.
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'invalid_config'
  | 'invalid_query'
  | 'invalid_state'
  | 'unknown_collection'
  | 'unknown_conflict'
  | 'pending_writes'
  | 'destroyed'
  | 'storage_failed'
  | 'storage_quota'
  | 'corrupt_storage'
  | 'network'
  | 'protocol_violation'
  | 'bad_remote_data'
  | 'persist_failed'
  | 'non_retriable'
  | 'confirm_failed'
  | 'retries_exhausted'
  | 'conflict'
  | 'not_found'
  | 'already_exists'
  | 'deleted'
  | 'aborted'
  | 'abandoned'
  | 'unknown_outcome'
  | 'mutation_gap'
  | 'bad_request'
  | 'forbidden'
  | 'too_large'
  | 'too_deep'
  | 'batch_too_large'
  | 'hello_required'
  | 'too_many_messages'
  | 'too_many_collections'
  | 'too_many_connections'
  | 'timeout'
  | 'unknown_endpoint'
  | 'method_not_allowed'
  | 'unsupported_protocol'
  | 'unauthorized'
  | 'forbidden_origin'
  | 'rate_limited'
  | 'storage'
  | 'internal'
  | 'busy'
  | 'http_error'
  | 'unknown';

/**
 * Every error the engine and its helpers throw or reject with. `name` stays what it was:
 * `TypeError` for a bad argument, query or config, `StorageError` when storage cannot be opened,
 * `SyncError` when a sync run fails, `TransactionError` for a failed transaction, `Error`
 * otherwise. Branch on `code`, not on the message.
 */
export interface FerrosyncError extends Error {
  /** What went wrong, stable across versions. */
  code: ErrorCode;
  /**
   * Whether the same request may succeed later; absent where that does not apply (a bad
   * argument, a destroyed engine).
   */
  retryable?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Sync status and statistics
// ---------------------------------------------------------------------------------------------

/** The engine's connection and sync state. */
export type SyncStatus = 'idle' | 'syncing' | 'error' | 'offline';

/** Running totals about syncing since the engine was opened. */
export interface SyncStats {
  /** Mutations pushed to and acknowledged by the server. */
  pushCount: number;
  /** Changes pulled from the server. */
  pullCount: number;
  /** Conflicts detected. */
  conflictCount: number;
  /** When the last sync run finished successfully (ms since epoch), or `null` if none has. */
  lastSyncAt: number | null;
  /** The message of the most recent sync error, or `null`. */
  lastError: string | null;
  /** The code of the most recent sync error, or `null`. */
  lastErrorCode: ErrorCode | null;
  /**
   * Finished transactions the history's retention (`transactionHistory`) has dropped, in all:
   * kept across reloads, so no drop goes unseen.
   */
  historyDropped: number;
}

/**
 * A pull run's progress, in versions of the server's change log: from the cursor when the run
 * began to the server's newest version (other collections' changes count too).
 */
export interface PullProgress {
  /** Versions received so far. */
  received: number;
  /** Versions the run has to receive in all (grows if the server takes writes meanwhile). */
  total: number;
}

/** How far sync has come, for progress bars and counters. */
export interface SyncProgress {
  /** Local writes (transactions to synced collections) the backend has not confirmed yet. */
  unsyncedWrites: number;
  /** The pull under way (an initial sync, catching up after being offline), or `null`. */
  pull: PullProgress | null;
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/**
 * The life cycle of a transaction:
 * `queued` → `pending` → `persisting` → `persisted_awaiting_sync` → `completed`, or `failed`.
 */
export type TransactionState =
  | 'queued'
  | 'pending'
  | 'persisting'
  | 'persisted_awaiting_sync'
  | 'completed'
  | 'failed';

/** One attempt at sending a transaction to the server. */
export interface Attempt {
  /** The attempt number, starting at 1. */
  id: number;
  /** When the attempt started (ms since epoch). */
  startedAt: number;
  /** When the attempt finished (ms since epoch), or `null` while it runs. */
  completedAt: number | null;
  /** Why the attempt failed, or `null`. */
  error: string | null;
  /**
   * What made the attempt fail, as a stable code, or `null` when it did not fail: `network`
   * when its answer was lost (the connection dropped, no answer in time, the page reloaded),
   * the server's code when the server refused it, `conflict` when it met a newer version and
   * the conflict strategy resolved it, `persist_failed` or `non_retriable` when a custom
   * backend's `persist` rejected. `null` also in an attempt stored before attempts recorded
   * their code.
   */
  errorCode: ErrorCode | null;
  /** When the next attempt is due (ms since epoch), or `null` if none is scheduled. */
  retryScheduledFor: number | null;
}

/** One write inside a transaction. */
export type Mutation = {
  /** The collection written to. */
  collection: string;
  /** The id of the document written. */
  id: string;
  /** The client-local mutation id, or `null` until one is assigned. */
  mutationId: number | null;
  /**
   * The document as the application saw it when it made the write (synced, with earlier
   * pending writes applied), or `null` if there was none.
   */
  original: Document | null;
  /** The document after the write, or `null` if the write cannot apply to `original`. */
  modified: Document | null;
  /**
   * The fields the write changed, with their new values: `null` for a field it removed (a
   * replacement), `_deleted: true` for a delete.
   */
  changes: DocumentFields;
  /** The `metadata` given with the write (`insert(doc, { metadata })`), or `null`. */
  metadata: JsonValue | null;
  /** When the write was made (ms since epoch): its transaction's `createdAt`. */
  createdAt: number;
  /**
   * When the write last changed (ms since epoch): a conflict's resolution, or an id the
   * backend assigned; `createdAt` until then.
   */
  updatedAt: number;
} & (
  | {
      /** Creates a document. */
      type: 'insert';
      /** The fields of the new document. */
      fields: DocumentFields;
    }
  | {
      /** Changes some fields of a document. */
      type: 'update';
      /** The fields changed. */
      patch: DocumentFields;
    }
  | {
      /** Soft-deletes a document. */
      type: 'delete';
    }
  | {
      /** Replaces a document as a whole. */
      type: 'put';
      /** The complete fields of the document. */
      fields: DocumentFields;
    }
);

/** Why a transaction failed. */
export interface TransactionError {
  /** The id of the failed transaction (of the root cause, for one that waited on it). */
  transactionId: number;
  /** What failed, as a stable code (for a server's refusal, the server's code). */
  code: ErrorCode;
  /** A human-readable description of the failure. */
  message: string;
  /** Whether the same writes may succeed if made again later. */
  retryable: boolean;
}

/** A snapshot of a transaction with its full state and attempt history. Times are ms since epoch. */
export interface Transaction {
  /** The transaction id. */
  id: number;
  /** The state at the time of the snapshot. */
  state: TransactionState;
  /** When the transaction was created. */
  createdAt: number;
  /** When the transaction last changed state. */
  updatedAt: number;
  /** The writes of the transaction, in order. */
  mutations: Mutation[];
  /** Every attempt at sending the transaction, oldest first. */
  attempts: Attempt[];
  /** The id of the attempt under way, or `null`. */
  currentAttempt: number | null;
  /** The ids of the transactions this one waits for. */
  queuedBehind: number[];
  /** Why the transaction failed, or `null`. */
  error: TransactionError | null;
  /** How many retries have been made after the first attempt. */
  retries: number;
  /** The `metadata` given to `engine.transaction(body, { metadata })`, or `null`. */
  metadata: JsonValue | null;
}

/**
 * Which transactions {@link SyncEngine.transactions} returns: the `limit` newest with ids below
 * `before`, in `state` if given, oldest first. Page back through the history by passing the
 * first id of a page as the next page's `before`.
 */
export interface TransactionQuery {
  /** The largest number of transactions returned (the newest of those matching). */
  limit?: number;
  /** Only transactions with smaller ids. */
  before?: number;
  /** Only transactions in this state. */
  state?: TransactionState;
}

/** An object held by an in-flight transaction under the ordered strategy. */
export interface LockedObject {
  /** The collection. */
  collection: string;
  /** The document id. */
  id: string;
  /** The transaction holding it (persisting, or persisted and awaiting sync). */
  transaction: Transaction;
}

/** Options of a write (`insert`, `update`, `delete`) or of `engine.transaction`. */
export interface WriteOptions {
  /** The application's data about the write, kept with it (`Mutation.metadata`). */
  metadata?: JsonValue;
}

/** A handle on one transaction, returned by every write. */
export declare class TransactionHandle {
  private constructor();
  /** The transaction id. */
  readonly id: number;
  /**
   * The current state (live: read again to see changes). `undefined` when read inside a
   * `conflictResolver` or `merge`, which cannot read the engine, unless `settled()` resolved.
   */
  readonly state: TransactionState;
  /**
   * A snapshot of the transaction as it is now. `undefined` when read inside a
   * `conflictResolver` or `merge`, which cannot read the engine, unless `settled()` resolved.
   */
  readonly transaction: Transaction;
  /**
   * Waits until the transaction is settled.
   * @returns the transaction once `completed`; rejects with a {@link FerrosyncError} named
   * `TransactionError` that also carries `transactionId: number` once `failed`.
   */
  settled(): Promise<Transaction>;
  /** Releases the handle's memory. */
  free(): void;
}

// ---------------------------------------------------------------------------------------------
// Queries and live changes
// ---------------------------------------------------------------------------------------------

/** What happened to a document. */
export type ChangeType = 'added' | 'updated' | 'removed';

/**
 * A change to one document of a collection.
 * @typeParam T - the shape of the collection's documents
 */
export interface Change<T extends object = DocumentFields> {
  /** What happened. */
  type: ChangeType;
  /** The collection of the document. */
  collection: string;
  /** The document id. */
  id: string;
  /** The document after the change, or `null` when it was removed. */
  doc: Document<T> | null;
}

/** An operand of the comparisons: numbers compare with numbers, strings with strings. */
export type Comparable = number | string;

/**
 * Operators on one field's value, all of which must hold. For `$eq`, `$ne`, `$in` and `$nin` a
 * missing field counts as `null`; the comparisons only match values of their operand's type
 * (numbers by value, strings by code point); `$exists` tells a present field from a missing one.
 * Arrays and objects compare as whole values. An unknown operator, or an operand of the wrong
 * type, is a `TypeError` naming the operator.
 * @typeParam V - the field's type
 */
export interface FieldOperators<V = JsonValue> {
  /** Equal to the value. */
  $eq?: V | null;
  /** Not equal to the value. */
  $ne?: V | null;
  /** Greater than the operand. */
  $gt?: Extract<V, Comparable>;
  /** Greater than or equal to the operand. */
  $gte?: Extract<V, Comparable>;
  /** Less than the operand. */
  $lt?: Extract<V, Comparable>;
  /** Less than or equal to the operand. */
  $lte?: Extract<V, Comparable>;
  /** Equal to one of the values. */
  $in?: (V | null)[];
  /** Equal to none of the values. */
  $nin?: (V | null)[];
  /** The field is present (`true`) or missing (`false`). */
  $exists?: boolean;
}

/**
 * What `where` asks of one field: a value (equality) or {@link FieldOperators}.
 * @typeParam V - the field's type
 */
export type FieldCondition<V = JsonValue> = V | null | FieldOperators<V>;

/**
 * The conditions of a query, all of which must hold, by field: a top-level field, `_id`,
 * `_deleted`, or a dotted path into nested objects (`'address.city'`).
 * @typeParam T - the shape of the documents' fields
 */
export type Where<T extends object = DocumentFields> = {
  [K in keyof T & string]?: FieldCondition<T[K]>;
} & { [path: string]: FieldCondition | undefined };

/**
 * Selects, orders and pages the documents of a collection. Queries that differ only in how
 * they are written (key order, `{ f: v }` or `{ f: { $eq: v } }`) are the same query: live
 * queries are shared by it.
 * @typeParam T - the shape of the documents' fields
 */
export interface Query<T extends object = DocumentFields> {
  /** The conditions (all must hold). */
  where?: Where<T>;
  /**
   * `"field"` sorts ascending, `"-field"` descending (dotted paths too); later fields break
   * ties, then `_id`. Values of different types order null < booleans < numbers < strings <
   * arrays < objects; a missing field sorts as `null`.
   */
  sort?: string | string[];
  /** Skips this many results. @defaultValue `0` */
  offset?: number;
  /** The largest number of documents returned (after the offset). */
  limit?: number;
  /** Also return soft-deleted documents. @defaultValue `false` */
  includeDeleted?: boolean;
}

/** A registration made by {@link Observable.subscribe}. */
export interface Subscription {
  /** Stops the callback from being called again. */
  unsubscribe(): void;
}

/**
 * A value that changes over time.
 * @typeParam T - the type of the value
 */
export declare class Observable<T> {
  private constructor();
  /** The current value. */
  readonly value: T;
  /**
   * Calls `callback` at once with the current value, then on each change.
   * @returns the subscription, to unsubscribe
   */
  subscribe(callback: (value: T) => void): Subscription;
  /** Releases the observable's memory. */
  free(): void;
}

// ---------------------------------------------------------------------------------------------
// Sync log
// ---------------------------------------------------------------------------------------------

/** The direction of one sync run. */
export type SyncType = 'push' | 'pull';

/** The outcome of one sync run. */
export type SyncLogStatus = 'running' | 'completed' | 'failed';

/** The persisted record of one sync run. */
export interface SyncLogEntry {
  /** The entry id. */
  id: number;
  /** Whether the run pushed or pulled. */
  syncType: SyncType;
  /** The outcome of the run. */
  status: SyncLogStatus;
  /** When the entry was created (ms since epoch): when its run started. */
  createdAt: number;
  /** When the run started (ms since epoch). */
  startedAt: number;
  /** When the run finished (ms since epoch), or `null` while it runs. */
  completedAt: number | null;
  /** How many changes were synced. */
  syncedCount: number;
  /** How many changes failed. */
  errorCount: number;
  /** Why the run failed, or `null`. */
  error: string | null;
  /**
   * What made the run fail, as a stable code, or `null` when it did not fail: `network` when
   * the connection dropped, no answer came in time or the page reloaded during the run, the
   * server's code when the server refused the push or pull, a failed custom backend call's
   * code; a `forceSync`, `push` or `pull` the run served rejects with it. `null` also in an
   * entry stored before entries recorded their code.
   */
  errorCode: ErrorCode | null;
}

/** Filters for {@link SyncEngine.syncLog}. */
export interface SyncLogQuery {
  /** The largest number of entries returned. */
  limit?: number;
  /** Only entries with this outcome. */
  status?: SyncLogStatus;
  /** Only entries of this direction. */
  syncType?: SyncType;
  /** Only entries created at or after this time (ms since epoch). */
  from?: number;
  /** Only entries created at or before this time (ms since epoch). */
  to?: number;
}

// ---------------------------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------------------------

/** A conflict parked in the inbox, waiting for {@link SyncEngine.resolveConflict}. */
export interface Conflict {
  /** The conflict id. */
  id: string;
  /** The collection of the document. */
  collection: string;
  /** The id of the conflicting document. */
  docId: string;
  /** The local version, or `null` if there is none. */
  local: Document | null;
  /** The server's version. */
  remote: Document;
  /** The last version both sides agreed on, or `null` if unknown. */
  base: Document | null;
}

/** What a {@link ConflictResolver} is given. */
export interface ConflictInput {
  /** The collection of the document. */
  collection: string;
  /** The id of the document. */
  id: string;
  /** The local version, if any. */
  local: Document | undefined;
  /** The server's version. */
  remote: Document;
  /** The last version both sides agreed on, if known. */
  base: Document | undefined;
}

/**
 * Resolves a conflict for the `'custom'` strategy.
 * @returns the merged fields, or `undefined` to park the conflict in the inbox
 */
export type ConflictResolver = (input: ConflictInput) => DocumentFields | undefined;

/**
 * Rebases a pending local document onto a newly synced one (parallel mutation strategy).
 * @param synced - the document as last synced
 * @param pending - the document with the pending local writes
 * @returns the document to show and send
 */
export type MergeFunction = (synced: Document, pending: Document) => Document;

/**
 * How transactions are sent: one after another (`ordered`), or concurrently with
 * pending writes merged by `merge` (`parallel`).
 */
export type MutationStrategy = { type: 'ordered' } | { type: 'parallel'; merge?: MergeFunction };

/** How conflicts between local and server writes are resolved. */
export type ConflictStrategy = 'last-write-wins' | 'server-wins' | 'client-wins' | 'custom';

/** Which way changes flow. */
export type SyncDirection = 'push' | 'pull' | 'both';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** One collection of the engine. */
export interface CollectionConfig {
  /** The collection name. */
  name: string;
  /** Sync with the server; `false` keeps the collection local only. @defaultValue `true` */
  sync?: boolean;
  /**
   * Indexes to keep in memory: a field (`'done'`), or several (`['done', 'title']`: by `done`,
   * then `title`). An index serves queries whose equalities cover its first fields, then a range
   * or `$in` on the next, and sorts on its remaining fields. Fields that queries keep scanning
   * for also get an index automatically (see the guide).
   */
  indexes?: (string | string[])[];
}

/**
 * Where an engine keeps its data: made by {@link createIndexedDBStorage} or
 * {@link createMemoryStorage}.
 */
export interface EngineStorage {
  /** Which storage. */
  readonly kind: 'indexeddb' | 'memory';
}

/**
 * How many finished transactions the history keeps (`transactions()`), in memory and storage.
 * Entries go oldest first: while more than `keep` are held, or while the oldest finished more
 * than `maxAgeMs` ago. Each drop is counted in `getStats().historyDropped`.
 */
export interface TransactionHistoryConfig {
  /** How many to keep (the newest), or `'all'`. @defaultValue `'all'` */
  keep?: number | 'all';
  /** Drop finished transactions this long (ms) after they finished. @defaultValue none */
  maxAgeMs?: number;
}

/** Options of {@link SyncEngine.open}. Unknown options are rejected at runtime. */
export interface SyncEngineConfig {
  /** The database name (of IndexedDB, or of the memory storage). */
  name: string;
  /** The collections of the engine. */
  collections: CollectionConfig[];
  /**
   * The sync server: `ws://` or `wss://` syncs over a WebSocket, `http://` or `https://` by
   * HTTP polling. Omit it for a local-only engine.
   *
   * A list names several nodes of one service (servers sharing one database): the engine
   * connects to the first, and whenever a connection fails or breaks, tries the next one
   * (round the list) after the usual reconnect backoff.
   */
  serverUrl?: string | string[];
  /** The bearer token sent to the server. */
  authToken?: string;
  /** Which way changes flow. @defaultValue `'both'` */
  direction?: SyncDirection;
  /** How conflicts are resolved. @defaultValue `'last-write-wins'` */
  conflictStrategy?: ConflictStrategy;
  /** Resolves conflicts; required with `conflictStrategy: 'custom'` and used only there. */
  conflictResolver?: ConflictResolver;
  /** How transactions are sent. @defaultValue `{ type: 'ordered' }` */
  mutationStrategy?: MutationStrategy;
  /** Retry failed sends with exponential backoff. @defaultValue `true` */
  autoRetry?: boolean;
  /** The first retry delay, in ms. @defaultValue `1000` */
  retryDelay?: number;
  /** Retries after the first attempt. @defaultValue `4` */
  maxRetryAttempts?: number;
  /** The longest retry delay, in ms. @defaultValue `30000` */
  maxRetryDelay?: number;
  /** Use a WebSocket for live updates where the server URL allows it. @defaultValue `true` */
  useWebSocket?: boolean;
  /** How often to pull when polling, in ms. @defaultValue `30000` */
  pullInterval?: number;
  /** Mutations per push, 1 to 1000 (pulls ask for pages of up to 1000 changes). @defaultValue `100` */
  batchSize?: number;
  /** How long to wait for the server's acknowledgement, in ms. @defaultValue `10000` */
  ackTimeout?: number;
  /** Start syncing on open when `serverUrl` is set. @defaultValue `true` */
  autoStart?: boolean;
  /** Ask the browser to keep the data (`navigator.storage.persist()`). @defaultValue `true` */
  requestPersistence?: boolean;
  /**
   * Where the data is kept: {@link createIndexedDBStorage} (kept across reloads, shared by the
   * tabs of the database) or {@link createMemoryStorage} (gone with the page, private to its
   * tab). When IndexedDB cannot be opened, `open` rejects and says so: it never falls back.
   * @defaultValue `createIndexedDBStorage()`
   */
  storage?: EngineStorage;
  /** How many finished transactions are kept. @defaultValue `{ keep: 'all' }` */
  transactionHistory?: TransactionHistoryConfig;
  /**
   * A custom sync source instead of `serverUrl`: `setup` runs when sync starts; the `data` it
   * resolves to is the backend's whole state, and `onUpdate` delivers changes later.
   */
  sync?: CustomSync;
  /**
   * A custom backend's write side: `persist` writes a transaction (retried under the retry
   * policy unless it throws a `NonRetriableError`); `awaitSync`, if given, resolves once the
   * persisted writes came back through `sync`.
   */
  mutationFn?: MutationFn;
}

/**
 * Documents from a custom sync source: an array when the engine has one synced collection, or
 * arrays by collection name. A document with `_deleted: true` is a tombstone.
 */
export type SyncData = Document[] | { [collection: string]: Document[] };

/** A custom sync source (`SyncEngineConfig.sync`). */
export interface CustomSync {
  /** Names the source: its errors (a failed `setup`, data `onUpdate` refuses) start with `sync source "<id>"`. */
  id: string;
  /**
   * Connects the source. Call `onUpdate` with changed documents whenever the backend changes;
   * pass `{ complete: true }` when they are the whole state of their collections.
   * @returns the backend's current data, which replaces the synced state
   */
  setup(context: {
    onUpdate(data: SyncData, options?: { complete?: boolean }): void;
  }): Promise<{ data?: SyncData } | void>;
}

/** One write of a transaction, as a custom backend receives it. */
export interface PendingChange {
  /** The change id, `tx-<n>/<index>`: key `externalIds` by it. */
  id: string;
  /** What the write does. */
  type: 'insert' | 'update' | 'delete';
  /** The collection. */
  collection: string;
  /** The document id. */
  key: string;
  /** The fields the write sets (`{}` for a delete). */
  changes: DocumentFields;
  /** The document after the write (`null` if it does not apply). */
  value: Document | null;
  /** The synced document before the write, if any. */
  original: Document | null;
}

/** What `persist` may resolve to. */
export interface PersistResult {
  /**
   * The backend's ids for documents the transaction created, by change id: the local documents
   * (and queued writes to them) take these ids.
   */
  externalIds?: { [changeId: string]: string };
  /**
   * The backend accepted the writes but confirms them later (an API answering `202`): this is
   * kept with the transaction, durably, and handed to `awaitSync` (required then), which is
   * called again after a reload until it resolves (confirmed) or rejects (refused, timed out).
   */
  confirm?: JsonValue;
}

/** What `awaitSync` may resolve to. */
export interface AwaitSyncResult {
  /** The backend's ids for created documents, by change id, if only known once confirmed. */
  externalIds?: { [changeId: string]: string };
}

/** A custom backend's write side (`SyncEngineConfig.mutationFn`). */
export interface MutationFn {
  /** Writes a transaction to the backend; rejects to retry, throws `NonRetriableError` to fail. */
  persist(call: {
    changes: PendingChange[];
    attempt: number;
    transaction: Transaction;
  }): Promise<PersistResult | void>;
  /**
   * Resolves once the persisted writes came back through the sync source, or were confirmed
   * (`confirm`: what `persist` returned as such); rejects when they never will be.
   */
  awaitSync?(call: {
    changes: PendingChange[];
    transaction: Transaction;
    sync: CustomSync | undefined;
    confirm: JsonValue | undefined;
  }): Promise<AwaitSyncResult | void>;
}

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

/**
 * A collection of documents, read synchronously from memory and written durably.
 * @typeParam T - the shape of the documents' fields
 */
export declare class Collection<T extends object = DocumentFields> {
  private constructor();
  /** The collection name. */
  readonly name: string;
  /**
   * Inserts a document. It is visible to `get` and `find` at once.
   * @returns the transaction handle, once the write is durable in storage
   */
  insert(doc: T & { _id: string }, options?: WriteOptions): Promise<TransactionHandle>;
  /**
   * Changes some fields of a document.
   * @returns the transaction handle, once the write is durable in storage
   */
  update(id: string, patch: Partial<T>, options?: WriteOptions): Promise<TransactionHandle>;
  /**
   * Soft-deletes a document: it gets `_deleted: true`, is hidden from `find` unless
   * `includeDeleted` is set, and the deletion syncs.
   * @returns the transaction handle, once the write is durable in storage
   */
  delete(id: string, options?: WriteOptions): Promise<TransactionHandle>;
  /**
   * Removes the local copy of a document for good; this is not synced. Resolves once the
   * removal is in IndexedDB (while storage is failing, it waits for the retried write).
   */
  hardDelete(id: string): Promise<void>;
  /**
   * The document with this id, or `undefined` if there is none. Documents are frozen, and a
   * document keeps the same object (for `get` and `find`) until it changes.
   */
  get(id: string): Document<T> | undefined;
  /**
   * The documents matching `query`, in its order; soft-deleted ones only with
   * `includeDeleted`. Answered from the live query of a subscription with the same query, or
   * through an index, or by reading every document. Throws a `TypeError` for a bad query.
   */
  find(query?: Query<T>): Document<T>[];
  /** How many documents match `query` (all but the soft-deleted ones without a query). */
  count(query?: Query<T>): number;
  /**
   * Calls `callback` with every batch of changes to the collection.
   * @returns a function that unsubscribes
   */
  subscribe(callback: (changes: Change<T>[]) => void): () => void;
  /**
   * Calls `callback` with every batch of changes to the results of `query`: documents that
   * entered them (`added`), changed in them (`updated`) or left them (`removed`, `doc: null`),
   * within its `offset` and `limit`. Subscribers of the same query share one live query, kept
   * up to date incrementally; `find` and `count` with that query read its results.
   * @returns a function that unsubscribes
   */
  subscribe(query: Query<T>, callback: (changes: Change<T>[]) => void): () => void;
  /** Releases the collection's memory. */
  free(): void;
}

/**
 * A collection inside {@link SyncEngine.transaction}: writes are recorded and commit together.
 * @typeParam T - the shape of the documents' fields
 */
export declare class TransactionCollection<T extends object = DocumentFields> {
  private constructor();
  /** Records an insert. */
  insert(doc: T & { _id: string }, options?: WriteOptions): void;
  /** Records an update of some fields. */
  update(id: string, patch: Partial<T>, options?: WriteOptions): void;
  /** Records a soft delete. */
  delete(id: string, options?: WriteOptions): void;
  /** Releases the object's memory. */
  free(): void;
}

/** The argument of the body of {@link SyncEngine.transaction}. */
export declare class TransactionScope {
  private constructor();
  /** The collection `name`, for writes in this transaction: the same object as the call before when it named the same collection (unless that one was `free()`d). */
  collection<T extends object = DocumentFields>(name: string): TransactionCollection<T>;
  /** Releases the object's memory. */
  free(): void;
}

// ---------------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------------

/** A local-first database that syncs its collections with a server. */
export declare class SyncEngine {
  private constructor();
  /**
   * Opens (or creates) the engine's database and loads it. Rejects with a `StorageError` when
   * IndexedDB cannot be opened (private browsing may refuse it), naming
   * `createMemoryStorage()` as the choice for such places.
   */
  static open(config: SyncEngineConfig): Promise<SyncEngine>;
  /** Deletes the IndexedDB database `name` with all its data (memory storage needs no deleting). */
  static deleteDatabase(name: string): Promise<void>;
  /** The database name. */
  readonly name: string;
  /** The id of this client, kept across reloads. */
  readonly clientId: string;
  /** The collection `name`; it must be listed in the config. */
  collection<T extends object = DocumentFields>(name: string): Collection<T>;
  /**
   * Runs `body` and commits all its writes atomically after it resolves; nothing is written if
   * it throws or rejects. `options.metadata` is kept with the transaction.
   * @returns the transaction handle, once the writes are durable in storage
   */
  transaction(
    body: (t: TransactionScope) => void | Promise<void>,
    options?: WriteOptions,
  ): Promise<TransactionHandle>;
  /** The sync status, live. */
  getStatus(): Observable<SyncStatus>;
  /** The sync statistics, live. */
  getStats(): Observable<SyncStats>;
  /** The sync progress (unsynced writes, the pull under way), live. */
  getProgress(): Observable<SyncProgress>;
  /**
   * Snapshots of the transactions, oldest first: the unfinished ones and the history of
   * finished ones, with every state and attempt, kept across reloads under
   * `transactionHistory`. `query` pages through them. In a tab that is not the leading tab of
   * its database: the unfinished ones and the 500 newest finished.
   */
  transactions(query?: TransactionQuery): Transaction[];
  /**
   * The objects in-flight transactions hold under the ordered strategy (later writes to them
   * wait), each with the transaction holding it; always empty under the parallel strategy.
   */
  getLockedObjects(): LockedObject[];
  /**
   * Calls `callback` with a snapshot of a transaction each time one changes.
   * @returns a function that unsubscribes
   */
  onTransaction(callback: (transaction: Transaction) => void): () => void;
  /**
   * The persisted records of sync runs, newest first (the last 200; in a tab that is not the
   * leading tab of its database, the 50 newest the leading tab shared).
   */
  syncLog(query?: SyncLogQuery): SyncLogEntry[];
  /** The conflicts parked in the inbox. */
  conflicts(): Conflict[];
  /**
   * Resolves the parked conflict `id` with `doc` as the winning fields. Throws for an unknown
   * id; in a tab that is not the leading tab of its database, the leading tab applies it (a
   * later refusal is reported on the console).
   */
  resolveConflict(id: string, doc: DocumentFields): void;
  /** Starts syncing. */
  start(): Promise<void>;
  /** Stops syncing; local reads and writes keep working. */
  stop(): Promise<void>;
  /**
   * Pushes and pulls now, without waiting for the next scheduled run. Resolves once sync is
   * idle. Rejects with a `SyncError` whose `code` is that of a failed run it waited for
   * (under way when it was called, or one it caused: the run's {@link SyncLogEntry.errorCode}), or `network` while the server is unreachable; with
   * `invalid_state` while sync is stopped.
   */
  forceSync(): Promise<void>;
  /** Pushes pending transactions now; settles as {@link SyncEngine.forceSync} does. */
  push(): Promise<void>;
  /** Pulls changes from the server now; settles as {@link SyncEngine.forceSync} does. */
  pull(): Promise<void>;
  /**
   * Resolves once everything the engine holds in memory (writes, their ends, documents received
   * from the server) is durable in IndexedDB; it waits while storage is failing. A write's own
   * promise already resolves once it is durable: this is for what sync brought in, as before a
   * test or a benchmark reads storage.
   */
  flush(): Promise<void>;
  /** Stops syncing and closes the database; the engine cannot be used afterwards. */
  destroy(): void;
  /** Releases the engine's memory. */
  free(): void;
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/**
 * IndexedDB storage, the default: the data outlives reloads, and the tabs of one database share
 * it (one tab leads, the others follow).
 */
export declare function createIndexedDBStorage(): EngineStorage;

/**
 * Memory storage: the data lives as long as the page, in this tab alone. For tests, private
 * browsing that refuses IndexedDB, and short-lived sessions; writes still sync.
 */
export declare function createMemoryStorage(): EngineStorage;

// ---------------------------------------------------------------------------------------------
// Utilities
// ---------------------------------------------------------------------------------------------

/** The version of this package. */
export declare function version(): string;

/**
 * Makes a Rust panic surface as a readable message on the browser console. Call it once after
 * `init()`; further calls do nothing.
 */
export declare function initPanicHook(): void;
