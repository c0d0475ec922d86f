// The test harness users get: a real engine (on IndexedDB, or on memory storage) over a
// simulated backend that a test controls, so an app's own tests can drive latency, failures and remote updates.
import { SyncEngine } from './ferrosync.js';
import { failure } from './failure.js';
import type {
  Collection,
  Document,
  DocumentFields,
  EngineStorage,
  MutationStrategy,
  PendingChange,
  SyncData,
} from './ferrosync.js';

/** Options of {@link createTestCollection}. */
export interface TestCollectionOptions<T extends object = DocumentFields> {
  /** The backend's documents when the test starts. */
  initialData?: Document<T>[];
  /** How the simulated backend and the engine over it behave. */
  sync?: {
    /** The collection's name (default `'items'`). */
    collection?: string;
    /** The database's name (default: a new random one). */
    name?: string;
    /** Delay of every backend call in milliseconds (default 0); see `setNetworkDelay`. */
    networkDelay?: number;
    /**
     * Persisted writes come back through `onUpdate` after the delay, and transactions wait in
     * `persisted_awaiting_sync` until they do (default `true`).
     */
    awaitSync?: boolean;
    /** The engine's mutation strategy (default ordered). */
    mutationStrategy?: MutationStrategy;
    /** The engine's first retry delay in milliseconds (default 10, to keep tests fast). */
    retryDelay?: number;
    /** The engine's retry limit (default 4). */
    maxRetryAttempts?: number;
    /**
     * Where the engine keeps its data (default IndexedDB); `createMemoryStorage()` for a test
     * that keeps nothing after its page closes.
     */
    storage?: EngineStorage;
  };
}

/** Controls the simulated backend of a {@link TestCollection}. */
export interface SyncControl<T extends object = DocumentFields> {
  /** Delivers documents as if another client changed them on the backend. */
  emitUpdate(data: Document<T>[]): void;
  /** Delays every later backend call by `ms` milliseconds. */
  setNetworkDelay(ms: number): void;
  /**
   * Makes the next `persist` call fail with `error` (default: a retryable `Error` with code
   * `network`); pass a `NonRetriableError` to make the transaction fail at once.
   */
  failNextPersist(error?: Error): void;
  /** The backend's documents now, by id. */
  readonly backend: Map<string, Document<T>>;
  /** Every `persist` call so far, with the changes it carried and whether it failed. */
  readonly calls: { changes: PendingChange[]; attempt: number; failed: boolean }[];
}

/** What {@link createTestCollection} returns. */
export interface TestCollection<T extends object = DocumentFields> {
  /** The engine's collection, backed by the simulated backend. */
  collection: Collection<T>;
  /** The engine itself (for `transactions()`, `getStatus()`, ...). */
  engine: SyncEngine;
  /** Controls the simulated backend. */
  syncControl: SyncControl<T>;
  /** Destroys the engine and deletes its database. */
  destroy(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Opens an engine with one collection over a simulated backend holding `initialData`.
 * Call `init()` first, as for any engine.
 */
export async function createTestCollection<T extends object = DocumentFields>(
  options: TestCollectionOptions<T> = {},
): Promise<TestCollection<T>> {
  const settings = options.sync ?? {};
  const name = settings.name ?? `ferrosync-test-${crypto.randomUUID()}`;
  const collectionName = settings.collection ?? 'items';
  const echo = settings.awaitSync ?? true;
  let delay = settings.networkDelay ?? 0;
  const backend = new Map<string, Document<T>>();
  for (const doc of options.initialData ?? []) backend.set(doc._id, doc);
  const failures: Error[] = [];
  const calls: SyncControl<T>['calls'] = [];
  const echoed = new Map<number, Promise<void>>();
  let onUpdate: ((data: SyncData) => void) | undefined;

  // Writes apply like a server's: an update patches what the backend holds now.
  const apply = (changes: PendingChange[]): Document<T>[] =>
    changes.map((change) => {
      const current = backend.get(change.key);
      const doc = (change.type === 'update' && current
        ? { ...current, ...change.changes }
        : change.value) as Document<T>;
      backend.set(change.key, doc);
      return doc;
    });

  const engine = await SyncEngine.open({
    name,
    collections: [{ name: collectionName }],
    mutationStrategy: settings.mutationStrategy ?? { type: 'ordered' },
    retryDelay: settings.retryDelay ?? 10,
    maxRetryDelay: Math.max(1000, settings.retryDelay ?? 10),
    maxRetryAttempts: settings.maxRetryAttempts ?? 4,
    requestPersistence: false,
    ...(settings.storage ? { storage: settings.storage } : {}),
    sync: {
      id: 'test-backend',
      async setup(context) {
        onUpdate = context.onUpdate;
        await sleep(delay);
        return { data: [...backend.values()] };
      },
    },
    mutationFn: {
      async persist({ changes, attempt, transaction }) {
        await sleep(delay);
        const failure = failures.shift();
        calls.push({ changes, attempt, failed: failure !== undefined });
        if (failure) throw failure;
        const docs = apply(changes);
        if (echo) {
          echoed.set(
            transaction.id,
            sleep(delay).then(() => onUpdate?.(docs)),
          );
        }
      },
      ...(echo
        ? {
            async awaitSync({ transaction }: { transaction: { id: number } }) {
              await echoed.get(transaction.id);
              echoed.delete(transaction.id);
            },
          }
        : {}),
    },
  });

  return {
    collection: engine.collection<T>(collectionName),
    engine,
    syncControl: {
      emitUpdate(data) {
        for (const doc of data) backend.set(doc._id, doc);
        if (!onUpdate) throw failure('invalid_state', 'the backend is not connected yet (sync has not started)');
        onUpdate(data as SyncData);
      },
      setNetworkDelay(ms) {
        if (!(ms >= 0)) throw failure('invalid_argument', `setNetworkDelay needs a delay >= 0, got ${ms}`);
        delay = ms;
      },
      failNextPersist(error: Error = failure('network', 'simulated network failure', { retryable: true })) {
        failures.push(error);
      },
      backend,
      calls,
    },
    async destroy() {
      engine.destroy();
      await SyncEngine.deleteDatabase(name);
    },
  };
}
