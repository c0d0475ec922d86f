// `ferrosync/react`: React hooks over an open engine. Each hook is a `useSyncExternalStore`
// over a small store that subscribes to the engine only while React is subscribed, re-reads
// the engine at most once per burst of notifications, and keeps the previous result when the
// new one is equal, so components re-render only when what they show changed.
import {
  createContext,
  createElement,
  useContext,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';
import { failure } from './failure.js';
import type {
  Conflict,
  Document,
  DocumentFields,
  Observable,
  Query,
  SyncEngine,
  SyncProgress,
  SyncStats,
  SyncStatus,
  Transaction,
  TransactionCollection,
  TransactionHandle,
  WriteOptions,
} from './ferrosync.js';

const EngineContext = createContext<SyncEngine | null>(null);

/** Props of {@link SyncProvider}. */
export interface SyncProviderProps {
  /** The open engine the hooks below read from (see `SyncEngine.open`). */
  engine: SyncEngine;
  /** The components that use the hooks. */
  children?: ReactNode;
}

/**
 * Makes `engine` available to the hooks in `children`. The provider neither opens nor destroys
 * the engine: the application owns its lifetime.
 */
export function SyncProvider({ engine, children }: SyncProviderProps): ReactNode {
  return createElement(EngineContext.Provider, { value: engine }, children);
}

/** The engine of the nearest {@link SyncProvider}; throws outside one. */
export function useSyncEngine(): SyncEngine {
  const engine = useContext(EngineContext);
  if (!engine) {
    throw failure('invalid_state', 'ferrosync/react: useSyncEngine() needs a <SyncProvider engine={...}> above it');
  }
  return engine;
}

/** The sync status (`'idle' | 'syncing' | 'error' | 'offline'`), live. */
export function useSyncStatus(): SyncStatus {
  const engine = useSyncEngine();
  return useStore(useMemo(() => observableStore(engine.getStatus()), [engine]));
}

/** The sync statistics, live. */
export function useSyncStats(): SyncStats {
  const engine = useSyncEngine();
  return useStore(useMemo(() => observableStore(engine.getStats()), [engine]));
}

/**
 * The documents of collection `name` matching `query`, live. The hook subscribes to the query
 * (one live query, shared with every subscriber of the same query and kept up to date as
 * documents change) and re-renders only when its results change, reading them from that live
 * query. The array keeps its identity until the results change, and each document until it
 * changes; `query` is compared by value, so an inline object literal is fine.
 */
export function useCollection<T extends object = DocumentFields>(
  name: string,
  query?: Query<T>,
): Document<T>[] {
  const engine = useSyncEngine();
  const key = JSON.stringify(query ?? {});
  const store = useMemo(() => {
    const collection = engine.collection<T>(name);
    const parsed: Query<T> = JSON.parse(key);
    return createStore(
      (previous?: Document<T>[]) => keepIfSame(previous, collection.find(parsed)),
      (changed) => collection.subscribe(parsed, changed),
    );
  }, [engine, name, key]);
  return useStore(store);
}

/**
 * The document `id` of collection `name`, live: `undefined` if there is none, once it is
 * soft-deleted (as `Collection.get`), or while `id` is null. It subscribes to that document
 * alone (a live query on its `_id`), so it re-renders only for changes to it.
 */
export function useDocument<T extends object = DocumentFields>(
  name: string,
  id: string | null | undefined,
): Document<T> | undefined {
  const engine = useSyncEngine();
  const store = useMemo(() => {
    const collection = engine.collection<T>(name);
    const query: Query<T> = { where: { _id: id } } as Query<T>;
    return createStore(
      () => (id == null ? undefined : collection.get(id)),
      (changed) => (id == null ? () => {} : collection.subscribe(query, changed)),
    );
  }, [engine, name, id]);
  return useStore(store);
}

/** Every transaction the engine knows about, with its state and attempts, live. */
export function useTransactions(): Transaction[] {
  const engine = useSyncEngine();
  return useStore(
    useMemo(
      () => createStore(() => engine.transactions(), (changed) => engine.onTransaction(changed)),
      [engine],
    ),
  );
}

/** The conflicts parked in the inbox, live; settle them with `engine.resolveConflict`. */
export function useConflicts(): Conflict[] {
  const engine = useSyncEngine();
  // A conflict is parked on, and cleared from, a transaction's write: each change of the
  // inbox is a transaction update.
  return useStore(
    useMemo(
      () => createStore(() => engine.conflicts(), (changed) => engine.onTransaction(changed)),
      [engine],
    ),
  );
}

/** The sync progress (unsynced writes, the pull under way), live: for progress bars. */
export function useSyncProgress(): SyncProgress {
  const engine = useSyncEngine();
  return useStore(useMemo(() => observableStore(engine.getProgress()), [engine]));
}

/**
 * What {@link useMutations} gives a component for one collection. Every write resolves to its
 * transaction once durable (or to `undefined` when it was refused, then `error` says why); none
 * rejects, so event handlers can call them without catching.
 * @typeParam T - the shape of the collection's documents
 */
export interface CollectionMutations<T extends object = DocumentFields> {
  /** `collection.insert`, tracked. */
  insert(doc: T & { _id: string }, options?: WriteOptions): Promise<TransactionHandle | undefined>;
  /** `collection.update`, tracked. */
  update(id: string, patch: Partial<T>, options?: WriteOptions): Promise<TransactionHandle | undefined>;
  /** `collection.delete`, tracked. */
  delete(id: string, options?: WriteOptions): Promise<TransactionHandle | undefined>;
  /**
   * Runs `body` with the collection inside one transaction (`engine.transaction`): its writes
   * commit together, atomically, once it resolves; nothing is written if it throws.
   */
  withMutation(
    body: (collection: TransactionCollection<T>) => void | Promise<void>,
    options?: WriteOptions,
  ): Promise<TransactionHandle | undefined>;
  /** Whether a write made through this hook has not settled yet (the backend has not confirmed it). */
  pending: boolean;
  /**
   * Why the latest write failed: refused at once, thrown by a `withMutation` body, or rejected
   * by the backend later; cleared when the next write starts.
   */
  error: Error | null;
}

/**
 * Writes to collection `name`: `insert`, `update`, `delete` and `withMutation` (several writes
 * in one transaction), with `pending` and `error` for rendering. Read the documents with
 * {@link useCollection}.
 */
export function useMutations<T extends object = DocumentFields>(name: string): CollectionMutations<T> {
  const engine = useSyncEngine();
  const [state, setState] = useState<{ unsettled: number; error: Error | null }>({ unsettled: 0, error: null });
  const writes = useMemo(() => {
    const collection = engine.collection<T>(name);
    /** Counts a write as pending from now until it settles, and keeps its failure. */
    const track = async (write: () => Promise<TransactionHandle>) => {
      setState((s) => ({ unsettled: s.unsettled + 1, error: null }));
      const end = (error: unknown) =>
        setState((s) => ({ unsettled: s.unsettled - 1, error: error === undefined ? s.error : asError(error) }));
      try {
        const handle = await write();
        handle.settled().then(() => end(undefined), end);
        return handle;
      } catch (error) {
        end(error);
        return undefined;
      }
    };
    return {
      insert: (doc: T & { _id: string }, options?: WriteOptions) => track(() => collection.insert(doc, options)),
      update: (id: string, patch: Partial<T>, options?: WriteOptions) => track(() => collection.update(id, patch, options)),
      delete: (id: string, options?: WriteOptions) => track(() => collection.delete(id, options)),
      withMutation: (body: (collection: TransactionCollection<T>) => void | Promise<void>, options?: WriteOptions) =>
        track(() => engine.transaction((t) => body(t.collection<T>(name)), options)),
    };
  }, [engine, name]);
  return useMemo(() => ({ ...writes, pending: state.unsettled > 0, error: state.error }), [writes, state]);
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** What `useSyncExternalStore` needs. */
interface Store<T> {
  subscribe(notify: () => void): () => void;
  getSnapshot(): T;
}

function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/**
 * A store over `read` (given the previous value, to share what is unchanged), told of
 * possible changes by `listen`. While nobody is subscribed it reads the engine on every
 * snapshot; while subscribed it reads again only after a notification.
 */
function createStore<T>(
  read: (previous: T | undefined) => T,
  listen: (changed: () => void) => () => void,
): Store<T> {
  let value: T | undefined;
  let fresh = false;
  let subscribers = 0;
  const refresh = () => {
    const next = read(value);
    if (!fresh || !same(value, next)) value = next;
    fresh = true;
  };
  return {
    getSnapshot() {
      if (subscribers === 0 || !fresh) refresh();
      return value as T;
    },
    subscribe(notify) {
      subscribers++;
      // Whatever changed between the render and this subscription shows at once.
      fresh = false;
      let active = true;
      let scheduled = false;
      const stop = listen(() => {
        fresh = false;
        if (scheduled) return;
        scheduled = true;
        // One re-read per burst: the engine calls back once per change.
        queueMicrotask(() => {
          scheduled = false;
          if (active) notify();
        });
      });
      return () => {
        if (!active) return;
        active = false;
        subscribers--;
        stop();
      };
    },
  };
}

/** A store over an engine observable (status or stats). */
function observableStore<T>(observable: Observable<T>): Store<T> {
  return createStore(
    () => observable.value,
    (changed) => {
      const subscription = observable.subscribe(changed);
      return () => subscription.unsubscribe();
    },
  );
}

/** `previous` if it holds the same documents as `next` (documents keep their identity until
 * they change), else `next`. */
function keepIfSame<T>(previous: T[] | undefined, next: T[]): T[] {
  const same = previous !== undefined && previous.length === next.length && previous.every((doc, i) => doc === next[i]);
  return same ? previous : next;
}

/** Deep equality of JSON-like values. */
function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((k) => Object.prototype.hasOwnProperty.call(right, k) && same(left[k], right[k]));
}
