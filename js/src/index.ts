// The `ferrosync` package entry: the engine compiled to WebAssembly, plus the hand-written
// pieces around it (errors, REST connectors, the test harness, and the document cache below).
import { Collection, SyncEngine, type Document } from './ferrosync.js';

export { default } from './ferrosync.js';
export * from './ferrosync.js';
export { NonRetriableError } from './errors.js';
export { createRestConnector, createSyncConnector } from './connectors.js';
export type {
  ChangeFailure,
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
  WriteConfirmation,
} from './connectors.js';
export { createTestCollection } from './testing.js';
export type { SyncControl, TestCollection, TestCollectionOptions } from './testing.js';

// Documents keep their identity: `get` and `find` return the same frozen object for a document
// until it changes, so a point get is a `Map` lookup and React skips unchanged rows. Each
// engine hands out one `Collection` object per name, which holds the cache; the engine tells
// the cache which documents changed at once, before any callback runs (`_onInvalidate`).

/** What the wasm `Collection` offers the cache (not part of the public API). */
interface CacheSource {
  _ids(query: unknown): string[];
  _docs(ids: string[]): (Document | null)[];
  _onInvalidate(dropped: (ids: string[]) => void): () => void;
}

interface Cache {
  docs: Map<string, Document>;
  stop(): void;
}

const caches = new WeakMap<Collection, Cache>();
/** Each engine's collection objects by name. */
const collections = new WeakMap<SyncEngine, Map<string, Collection>>();
/** The map each collection object was handed out from. */
const owners = new WeakMap<Collection, Map<string, Collection>>();
const wasm = {
  collection: SyncEngine.prototype.collection,
  get: Collection.prototype.get,
  free: Collection.prototype.free,
};

/** The cache of a collection object (made on first use). */
function cacheOf(collection: Collection): Cache {
  let cache = caches.get(collection);
  if (!cache) {
    const docs = new Map<string, Document>();
    const stop = (collection as unknown as CacheSource)._onInvalidate((ids) => {
      for (const id of ids) docs.delete(id);
    });
    cache = { docs, stop };
    caches.set(collection, cache);
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
  const { docs } = cacheOf(this);
  let doc = docs.get(id);
  if (doc === undefined) {
    doc = wasm.get.call(this, id);
    if (doc === undefined) return undefined;
    docs.set(id, freeze(doc));
  }
  return doc._deleted ? undefined : doc;
} as Collection['get'];

Collection.prototype.find = function find(this: Collection, query?: unknown) {
  const { docs } = cacheOf(this);
  const source = this as unknown as CacheSource;
  const ids = source._ids(query);
  const missing = ids.filter((id) => !docs.has(id));
  if (missing.length > 0) {
    source._docs(missing).forEach((doc, i) => {
      if (doc) docs.set(missing[i]!, freeze(doc));
    });
  }
  return ids.map((id) => docs.get(id)!);
} as Collection['find'];

Collection.prototype.free = function free(this: Collection) {
  caches.get(this)?.stop();
  caches.delete(this);
  // Forgotten, so the engine hands out a new one for this name.
  const owner = owners.get(this);
  if (owner?.get(this.name) === this) owner.delete(this.name);
  wasm.free.call(this);
};
