// The `ferrosync` package entry: the engine compiled to WebAssembly, plus the hand-written
// pieces around it (errors, REST connectors, the test harness, and the document cache below).
import {
  Collection,
  SyncEngine,
  TransactionHandle,
  type Document,
  type Transaction,
} from './ferrosync.js';

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
  ListContext,
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
  WriteSpec,
} from './connectors.js';
export { createTestCollection } from './testing.js';
export type { SyncControl, TestCollection, TestCollectionOptions } from './testing.js';

// Documents keep their identity: `get` and `find` return the same frozen object for a document
// until it changes, so a point get is a `Map` lookup and React skips unchanged rows. Each
// engine hands out one `Collection` object per name, which holds the cache on a property keyed
// by a symbol of this module (one property load, where a `WeakMap` would hash the object); the
// engine tells the cache which documents changed at once, before any callback runs
// (`_onInvalidate`). The first `get` that misses loads every document of the collection (one
// call, one parse), later ones the document they ask for; `find` loads the documents of its
// results it lacks. The cache also keeps counts by query until the collection next changes.

/** What the wasm `Collection` offers the cache (not part of the public API). */
interface CacheSource {
  _ids(query: unknown): string[];
  _docs(ids?: string[]): (Document | null)[];
  _onInvalidate(dropped: (ids: string[]) => void): () => void;
}

interface Cache {
  docs: Map<string, Document>;
  /** Every document was loaded once (a `get` missed). */
  loaded: boolean;
  /** Counts by query text, since the collection last changed. */
  counts: Map<string, number>;
  stop(): void;
}

/** Counts kept at most (a burst of distinct queries starts over). */
const COUNTS_KEPT = 256;

/** The key of each collection object's cache. */
const CACHE = Symbol('ferrosync.cache');
/** A collection object as this module sees it: with its cache once made. */
type Cached = Collection & { [CACHE]?: Cache };
/** Each engine's collection objects by name. */
const collections = new WeakMap<SyncEngine, Map<string, Collection>>();
/** The map each collection object was handed out from. */
const owners = new WeakMap<Collection, Map<string, Collection>>();
const wasm = {
  collection: SyncEngine.prototype.collection,
  get: Collection.prototype.get,
  count: Collection.prototype.count,
  free: Collection.prototype.free,
};

/** The cache of a collection object (made on first use). */
function cacheOf(collection: Collection): Cache {
  let cache = (collection as Cached)[CACHE];
  if (!cache) {
    const docs = new Map<string, Document>();
    const counts = new Map<string, number>();
    const stop = (collection as unknown as CacheSource)._onInvalidate((ids) => {
      for (const id of ids) docs.delete(id);
      counts.clear();
    });
    cache = { docs, loaded: false, counts, stop };
    (collection as Cached)[CACHE] = cache;
  }
  return cache;
}

/** Freezes a JSON value and everything in it. */
function freeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) freeze(inner);
    Object.freeze(value);
  }
  return value;
}

SyncEngine.prototype.collection = function collection(this: SyncEngine, name: string) {
  let byName = collections.get(this);
  if (!byName) {
    byName = new Map();
    collections.set(this, byName);
  }
  let found = byName.get(name);
  if (!found) {
    found = wasm.collection.call(this, name) as Collection;
    byName.set(name, found);
    owners.set(found, byName);
  }
  return found;
} as SyncEngine['collection'];

Collection.prototype.get = function get(this: Collection, id: string) {
  const cache = cacheOf(this);
  let doc = cache.docs.get(id);
  if (doc === undefined) {
    if (!cache.loaded) {
      cache.loaded = true;
      for (const loaded of (this as unknown as CacheSource)._docs()) {
        if (loaded && !cache.docs.has(loaded._id)) cache.docs.set(loaded._id, freeze(loaded));
      }
      doc = cache.docs.get(id);
    } else {
      doc = wasm.get.call(this, id);
      if (doc !== undefined) cache.docs.set(id, freeze(doc));
    }
    if (doc === undefined) return undefined;
  }
  return doc._deleted ? undefined : doc;
} as Collection['get'];

Collection.prototype.find = function find(this: Collection, query?: unknown) {
  const { docs } = cacheOf(this);
  const source = this as unknown as CacheSource;
  const ids = source._ids(query);
  const found = new Array<Document>(ids.length);
  let missing: number[] | undefined;
  for (let i = 0; i < ids.length; i++) {
    const doc = docs.get(ids[i]!);
    if (doc === undefined) (missing ??= []).push(i);
    else found[i] = doc;
  }
  if (missing) {
    const loaded = source._docs(missing.map((i) => ids[i]!));
    missing.forEach((at, i) => {
      const doc = freeze(loaded[i]!);
      docs.set(doc._id, doc);
      found[at] = doc;
    });
  }
  return found;
} as Collection['find'];

Collection.prototype.count = function count(this: Collection, query?: unknown) {
  const { counts } = cacheOf(this);
  const key = query === undefined ? '' : JSON.stringify(query);
  let n = counts.get(key);
  if (n === undefined) {
    n = wasm.count.call(this, query as never);
    if (counts.size >= COUNTS_KEPT) counts.clear();
    counts.set(key, n);
  }
  return n;
} as Collection['count'];

Collection.prototype.free = function free(this: Collection) {
  const cached = this as Cached;
  cached[CACHE]?.stop();
  cached[CACHE] = undefined;
  // Forgotten, so the engine hands out a new one for this name.
  const owner = owners.get(this);
  if (owner?.get(this.name) === this) owner.delete(this.name);
  wasm.free.call(this);
};

// `settled()` resolves with the finished transaction, and most callers only wait for it: built
// as JavaScript objects at once, its strings crossing from WebAssembly, it was about a fifth of
// the page's time when pushing thousands of writes. So it resolves with an object whose
// properties build the whole view on the first read of any of them (then it is a plain object
// like any other), from the transaction the engine hands over (`_settledLazily`).

/** A completed transaction as the wasm `TransactionHandle` hands it over (not public API). */
interface Finished {
  _view(): Transaction;
  free(): void;
}

/** The properties of a `Transaction`, in the order the engine builds them. */
const TRANSACTION_KEYS: readonly (keyof Transaction)[] = [
  'id',
  'state',
  'createdAt',
  'updatedAt',
  'mutations',
  'attempts',
  'currentAttempt',
  'queuedBehind',
  'error',
  'retries',
  'metadata',
];

/** Each lazy transaction's source, until one of its properties is read. */
const unbuilt = new WeakMap<object, Finished>();

/** Turns a lazy transaction into a plain object holding its view (once). */
function built(lazy: object): Record<string, unknown> {
  const finished = unbuilt.get(lazy);
  if (finished) {
    unbuilt.delete(lazy);
    const view = finished._view();
    finished.free();
    for (const key of TRANSACTION_KEYS) {
      Object.defineProperty(lazy, key, { value: view[key], writable: true, enumerable: true, configurable: true });
    }
  }
  return lazy as Record<string, unknown>;
}

/** Accessors for every property: the first read (or write) builds the view. */
const LAZY_PROPERTIES: PropertyDescriptorMap = Object.fromEntries(
  TRANSACTION_KEYS.map((key) => [
    key,
    {
      enumerable: true,
      configurable: true,
      get(this: object) {
        return built(this)[key];
      },
      set(this: object, value: unknown) {
        built(this)[key] = value;
      },
    },
  ]),
);

TransactionHandle.prototype.settled = function settled(this: TransactionHandle) {
  const source = this as unknown as { _settledLazily(): Promise<Finished> };
  return source._settledLazily().then((finished) => {
    const lazy = Object.defineProperties({}, LAZY_PROPERTIES);
    unbuilt.set(lazy, finished);
    return lazy as Transaction;
  });
};
