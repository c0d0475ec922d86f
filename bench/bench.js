// The benchmark scenarios, run inside the page (bench/run.mjs calls them one at a time).
// Each engine measurement has a raw IndexedDB twin doing the same writes in the same page, so
// the runner can report engine/raw ratios instead of absolute times on a noisy machine.
// Every function returns plain numbers (ms, counts); nothing here asserts a time.
import init, { SyncEngine, initPanicHook } from './pkg/ferrosync.js';

export async function setup() {
  await init();
  initPanicHook();
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

const now = () => performance.now();
let unique = 0;
const dbName = (what) => `bench-${what}-${Date.now().toString(36)}-${unique++}`;

/** Documents `{ _id, title, completed, n }`; ids are unique per `prefix`. */
function makeDocs(count, prefix, from = 0) {
  const docs = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = from + i;
    docs[i] = { _id: `${prefix}-${n}`, title: `todo ${String(n).padStart(7, '0')}`, completed: n % 3 === 0, n };
  }
  return docs;
}

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** A raw database with one store `records` (out-of-line keys, JSON-string values). */
async function openRaw(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => r.result.createObjectStore('records');
  return request(r);
}

async function dropRaw(db) {
  db.close();
  await request(indexedDB.deleteDatabase(db.name));
}

/** Puts `docs` as JSON strings in sequential read-write transactions of `batch` records. */
async function rawBatched(db, docs, batch) {
  for (let i = 0; i < docs.length; i += batch) {
    const tx = db.transaction('records', 'readwrite');
    const store = tx.objectStore('records');
    for (const doc of docs.slice(i, i + batch)) store.put(JSON.stringify(doc), doc._id);
    await committed(tx);
  }
}

async function open(config) {
  return SyncEngine.open({ collections: [{ name: 'todos', sync: true }], ...config });
}

async function close(engine) {
  const name = engine.name;
  engine.destroy();
  engine.free();
  await SyncEngine.deleteDatabase(name);
}

/** Rejects after `ms` with `what`, to bound a wait on the engine. */
function deadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const yieldToEventLoop = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The smallest step performance.now() takes here (ms): Chromium coarsens it to 0.1 ms unless cross-origin isolated. */
export function timerResolution() {
  let smallest = Infinity;
  let last = now();
  for (let steps = 0, spins = 0; steps < 200 && spins < 5e6; spins++) {
    const t = now();
    if (t !== last) {
      smallest = Math.min(smallest, t - last);
      last = t;
      steps++;
    }
  }
  return { resolutionMs: smallest, crossOriginIsolated: self.crossOriginIsolated === true };
}

// ------------------------------------------------------------------------------------------
// 1. Durable outbox throughput (and push throughput to the server, acknowledged)
// ------------------------------------------------------------------------------------------

/** Raw: `n` records in read-write transactions of 1,000. */
export async function outboxRaw({ n }) {
  const db = await openRaw(dbName('raw-outbox'));
  try {
    const docs = makeDocs(n, 'raw');
    const t0 = now();
    await rawBatched(db, docs, 1000);
    return { ms: now() - t0 };
  } finally {
    await dropRaw(db);
  }
}

/**
 * Engine: `n` inserts fired without awaiting each, then all awaited (each resolves once durable).
 * With `serverUrl`, also waits for `forceSync()`: every insert acknowledged by the server.
 */
export async function outboxEngine({ n, serverUrl, token, batchSize }) {
  const remote = serverUrl ? { serverUrl, authToken: token, batchSize } : {};
  const engine = await open({ name: dbName('outbox'), ...remote });
  try {
    if (serverUrl) await deadline(engine.forceSync(), 30_000, 'forceSync before the run');
    const todos = engine.collection('todos');
    const docs = makeDocs(n, engine.name);
    const pushedBefore = engine.getStats().value.pushCount;
    const t0 = now();
    const inserts = new Array(n);
    for (let i = 0; i < n; i++) inserts[i] = todos.insert(docs[i]);
    const handles = await deadline(Promise.all(inserts), 120_000, `${n} inserts durable`);
    const durableMs = now() - t0;
    let ackedMs = null;
    let pushed = null;
    if (serverUrl) {
      await deadline(engine.forceSync(), 120_000, `forceSync after ${n} inserts`);
      ackedMs = now() - t0;
      pushed = engine.getStats().value.pushCount - pushedBefore;
    }
    // Every handle should now report its state, and (with a server) be settled.
    const states = {};
    for (const h of handles) states[h.state] = (states[h.state] ?? 0) + 1;
    const sortedStates = Object.fromEntries(Object.entries(states).sort());
    let settled = null;
    if (serverUrl) {
      settled = 0;
      const all = Promise.all(handles.map((h) => h.settled().then(() => settled++)));
      await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    for (const h of handles) h.free();
    return { durableMs, ackedMs, pushed, states: sortedStates, settled };
  } finally {
    await close(engine);
  }
}

// ------------------------------------------------------------------------------------------
// 2. One durable write acknowledgement
// ------------------------------------------------------------------------------------------

const WARMUP = 20;

/** Raw: `n` sequential single-record read-write transactions, each awaited until committed. */
export async function ackRaw({ n }) {
  const db = await openRaw(dbName('raw-ack'));
  try {
    const docs = makeDocs(n + WARMUP, 'raw');
    const times = [];
    for (let i = 0; i < docs.length; i++) {
      const t0 = now();
      const tx = db.transaction('records', 'readwrite');
      tx.objectStore('records').put(JSON.stringify(docs[i]), docs[i]._id);
      await committed(tx);
      if (i >= WARMUP) times.push(now() - t0);
    }
    return { times };
  } finally {
    await dropRaw(db);
  }
}

/** Engine: `n` sequential `await todos.insert(doc)` (local only). */
export async function ackEngine({ n }) {
  const engine = await open({ name: dbName('ack') });
  try {
    const todos = engine.collection('todos');
    const docs = makeDocs(n + WARMUP, engine.name);
    const times = [];
    for (let i = 0; i < docs.length; i++) {
      const t0 = now();
      const handle = await todos.insert(docs[i]);
      if (i >= WARMUP) times.push(now() - t0);
      handle.free();
    }
    return { times };
  } finally {
    await close(engine);
  }
}

// ------------------------------------------------------------------------------------------
// 3. Initial sync from the server into IndexedDB
// ------------------------------------------------------------------------------------------

/** Fills the tenant of `token` with `rows` documents (not measured). */
export async function seedServer({ rows, serverUrl, token }) {
  const engine = await open({ name: dbName('seed'), serverUrl, authToken: token, batchSize: 1000 });
  try {
    const t0 = now();
    for (let from = 0; from < rows; from += 1000) {
      const docs = makeDocs(Math.min(1000, rows - from), 'doc', from);
      const handle = await engine.transaction((t) => {
        const todos = t.collection('todos');
        for (const doc of docs) todos.insert(doc);
      });
      handle.free();
    }
    await deadline(engine.forceSync(), 300_000, `forceSync after seeding ${rows} documents`);
    return { ms: now() - t0, pushed: engine.getStats().value.pushCount };
  } finally {
    await close(engine);
  }
}

/**
 * Engine: a fresh database from `SyncEngine.open` until its `documents` store holds all `rows`
 * (raw IndexedDB `count()` every 50 ms), and until `collection.count() === rows`.
 */
export async function initialSyncEngine({ rows, serverUrl, token }) {
  const t0 = now();
  const engine = await open({ name: dbName('initial'), serverUrl, authToken: token, batchSize: 1000 });
  const openedMs = now() - t0;
  // Opened only now, so the engine has created the database and its stores.
  const db = await request(indexedDB.open(engine.name));
  const todos = engine.collection('todos');
  let memoryMs = null;
  const checkMemory = () => {
    if (memoryMs === null && todos.count() === rows) memoryMs = now() - t0;
  };
  const unsubscribe = todos.subscribe(checkMemory);
  try {
    checkMemory();
    let stored = 0;
    let storedMs = null;
    const limit = t0 + 300_000;
    while (storedMs === null || memoryMs === null) {
      const tx = db.transaction('documents', 'readonly');
      stored = await request(tx.objectStore('documents').count());
      if (storedMs === null && stored >= rows) storedMs = now() - t0;
      checkMemory();
      if (now() > limit) {
        const stats = engine.getStats().value;
        throw new Error(`initial sync of ${rows} rows timed out: IndexedDB holds ${stored}, ` +
          `collection.count() = ${todos.count()}, status ${engine.getStatus().value}, ` +
          `lastError ${stats.lastError}`);
      }
      if (storedMs === null || memoryMs === null) await new Promise((r) => setTimeout(r, 50));
    }
    return { openedMs, storedMs, memoryMs, stored, counted: todos.count() };
  } finally {
    unsubscribe();
    db.close();
    await close(engine);
  }
}

/** Raw: the same `rows` documents written in read-write transactions of 1,000. */
export async function initialSyncRaw({ rows }) {
  const db = await openRaw(dbName('raw-initial'));
  try {
    const docs = makeDocs(rows, 'doc');
    const t0 = now();
    await rawBatched(db, docs, 1000);
    return { ms: now() - t0 };
  } finally {
    await dropRaw(db);
  }
}

// ------------------------------------------------------------------------------------------
// 4. Optimistic write visible to a live query
// ------------------------------------------------------------------------------------------

/**
 * A local-only collection preloaded with `rows` documents and one subscriber. Then `writes`
 * inserts, each timed until the subscriber runs (before `insert` returns); with `batch` > 1 (a
 * coarse clock) `batch` inserts are timed together and the time divided. Then `finds` more
 * inserts, each timed with a `find({ where: { completed: false }, sort: 'title', limit: 50 })`
 * right after (milliseconds: a coarse clock is precise enough).
 */
export async function liveQuery({ rows, writes, batch, finds }) {
  const engine = await SyncEngine.open({ name: dbName('live'), collections: [{ name: 'todos', sync: false }] });
  try {
    const todos = engine.collection('todos');
    for (let from = 0; from < rows; from += 1000) {
      const docs = makeDocs(Math.min(1000, rows - from), 'doc', from);
      const handle = await engine.transaction((t) => {
        const c = t.collection('todos');
        for (const doc of docs) c.insert(doc);
      });
      handle.free();
    }
    const preloaded = todos.count();
    let seen = 0;
    let seenAt = 0;
    const unsubscribe = todos.subscribe(() => {
      seenAt = now();
      seen++;
    });
    const docs = makeDocs(writes + finds, 'live');
    const durable = [];
    const visible = [];
    let late = 0;
    for (let i = 0; i < writes; i += batch) {
      const t0 = now();
      for (let j = i; j < i + batch; j++) {
        const before = seen;
        durable.push(todos.insert(docs[j]));
        if (seen === before) late++; // the subscriber had not run when insert returned
      }
      visible.push((seenAt - t0) / batch);
      // Let storage writes and timers run between writes, as they would in an app.
      if (i % 100 === 100 - batch) await yieldToEventLoop();
    }
    const query = { where: { completed: false }, sort: 'title', limit: 50 };
    const withFind = [];
    let found = 0;
    for (let i = writes; i < writes + finds; i++) {
      const t0 = now();
      durable.push(todos.insert(docs[i]));
      found = todos.find(query).length;
      withFind.push(now() - t0);
      await yieldToEventLoop();
    }
    unsubscribe();
    for (const handle of await deadline(Promise.all(durable), 60_000, 'live-query inserts durable')) handle.free();
    return { preloaded, visible, withFind, late, found, count: todos.count() };
  } finally {
    await close(engine);
  }
}
