// Compile-only check of the public TypeScript surface (js/ferrosync.d.ts); never executed.
// `npx tsc --noEmit -p js` must pass: every line below is either valid use that must type-check,
// or misuse marked `@ts-expect-error` that must be rejected.

import {
  Collection,
  Observable,
  SyncEngine,
  TransactionHandle,
  createIndexedDBStorage,
  createMemoryStorage,
  initPanicHook,
  version,
} from './ferrosync';
import type {
  Attempt,
  Change,
  Conflict,
  ConflictInput,
  ConflictResolver,
  Document,
  DocumentFields,
  ErrorCode,
  FerrosyncError,
  JsonValue,
  LockedObject,
  MergeFunction,
  Mutation,
  PullProgress,
  Query,
  Subscription,
  SyncEngineConfig,
  SyncLogEntry,
  SyncProgress,
  SyncStats,
  SyncStatus,
  Transaction,
  TransactionQuery,
  TransactionState,
} from './ferrosync';

/** Fails to compile unless `A` and `B` are the same type. */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

interface Todo {
  title: string;
  completed: boolean;
  tags?: string[];
}

const resolver: ConflictResolver = ({ collection, id, local, remote, base }: ConflictInput) => {
  if (collection !== 'todos' || local === undefined) return undefined; // park it in the inbox
  const merged: DocumentFields = { ...remote, title: local['title'] ?? remote['title'] ?? id };
  if (base !== undefined && base['completed'] === true) merged['completed'] = true;
  return merged;
};

const merge: MergeFunction = (synced, pending) => ({ ...synced, ...pending, _id: synced._id });

export async function main(): Promise<void> {
  initPanicHook();
  const v: string = version();

  const config: SyncEngineConfig = {
    name: 'my-app',
    collections: [{ name: 'todos', sync: true, indexes: ['completed', ['completed', 'title']] }, { name: 'cache', sync: false }],
    serverUrl: 'ws://127.0.0.1:8787/v1/sync',
    authToken: 'token',
    direction: 'both',
    conflictStrategy: 'custom',
    conflictResolver: resolver,
    mutationStrategy: { type: 'parallel', merge },
    autoRetry: true,
    retryDelay: 1000,
    maxRetryAttempts: 4,
    maxRetryDelay: 30_000,
    useWebSocket: true,
    pullInterval: 30_000,
    batchSize: 100,
    ackTimeout: 10_000,
    autoStart: false,
    requestPersistence: false,
    storage: createIndexedDBStorage(),
    transactionHistory: { keep: 1000, maxAgeMs: 7 * 24 * 3600 * 1000 },
  };
  const engine: SyncEngine = await SyncEngine.open(config);
  const inMemory = await SyncEngine.open({
    name: 'session',
    collections: [{ name: 'todos' }],
    storage: createMemoryStorage(),
    transactionHistory: { keep: 'all' },
  });
  inMemory.destroy();
  const localOnly = await SyncEngine.open({ name: 'local', collections: [{ name: 'notes' }] });
  const ids: string[] = [engine.name, engine.clientId, localOnly.name, v];

  // Typed collection.
  const todos: Collection<Todo> = engine.collection<Todo>('todos');
  const name: string = todos.name;
  const tx: TransactionHandle = await todos.insert({ _id: '1', title: 'Task', completed: false });
  const txId: number = tx.id;
  const state: TransactionState = tx.state;
  const snapshot: Transaction = tx.transaction;
  const done: Transaction = await tx.settled();
  tx.free();
  await todos.update('1', { completed: true });
  await todos.update('1', { tags: ['home'] }, { metadata: { source: 'editor' } });
  await todos.delete('1', { metadata: 'swiped' });
  await todos.hardDelete('1');

  const one = todos.get('1');
  assertType<Equals<typeof one, Document<Todo> | undefined>>();
  if (one !== undefined) {
    const title: string = one.title;
    const docId: string = one._id;
    const deleted: true | undefined = one._deleted;
    ids.push(title, docId, String(deleted));
  }

  const query: Query = { where: { completed: false, _deleted: true }, sort: ['-title', 'completed'], limit: 50, includeDeleted: true };
  const open = todos.find({ where: { completed: false }, sort: 'title', limit: 50 });
  assertType<Equals<typeof open, Document<Todo>[]>>();
  const first = open[0]; // noUncheckedIndexedAccess: possibly undefined
  assertType<Equals<typeof first, Document<Todo> | undefined>>();
  const all: Document<Todo>[] = todos.find();
  const n: number = todos.count() + todos.count(query) + all.length;
  // Operators, dotted paths, several sort fields, offset.
  const page: Query<Todo> = {
    where: { completed: { $ne: true }, title: { $gte: 'a', $lt: 'n' }, tags: { $exists: true }, 'meta.owner': { $in: ['ada', null] } },
    sort: ['-title', 'meta.rank'],
    offset: 20,
    limit: 10,
  };
  const paged: Document<Todo>[] = todos.find(page);
  const stopPage: () => void = todos.subscribe(page, (changes: Change<Todo>[]) => ids.push(String(changes.length + paged.length)));
  stopPage();

  const stopTodos: () => void = todos.subscribe((changes: Change<Todo>[]) => {
    for (const change of changes) {
      if (change.type === 'removed') continue;
      const completed: boolean | undefined = change.doc?.completed;
      ids.push(change.collection, change.id, String(completed));
    }
  });
  stopTodos();

  // Untyped collection: fields are JSON values.
  const cache = engine.collection('cache');
  await cache.insert({ _id: 'k', value: { nested: [1, 'two', null, true] } });
  const cached: JsonValue | undefined = cache.get('k')?.['value'];

  // Atomic transaction.
  const handle: TransactionHandle = await engine.transaction(async (t) => {
    const tt = t.collection<Todo>('todos');
    tt.insert({ _id: '2', title: 'Second', completed: false });
    tt.update('1', { completed: true });
    tt.delete('3');
    t.collection('cache').insert({ _id: 'k2', value: 1 }, { metadata: null });
  }, { metadata: { screen: 'list' } });
  await engine.transaction((t) => {
    t.collection('cache').delete('k2');
  });
  try {
    await handle.settled();
  } catch (error) {
    if (error instanceof Error && 'transactionId' in error) ids.push(String(error.transactionId));
  }

  // Observables.
  const status: Observable<SyncStatus> = engine.getStatus();
  const current: SyncStatus = status.value;
  const sub: Subscription = status.subscribe((s) => {
    if (s === 'offline' || s === 'error') ids.push(s);
  });
  sub.unsubscribe();
  status.free();
  const stats: SyncStats = engine.getStats().value;
  const lastSyncAt: number | null = stats.lastSyncAt;
  engine.getStats().subscribe(({ pushCount, pullCount, conflictCount, lastError, lastErrorCode }) => {
    ids.push(String(pushCount + pullCount + conflictCount), lastError ?? '', lastErrorCode ?? '');
  });
  try {
    await engine.forceSync();
  } catch (e) {
    const error = e as FerrosyncError;
    const code: ErrorCode = error.code;
    const retryable: boolean | undefined = error.retryable;
    if (code === 'network' || code === 'unauthorized' || retryable) ids.push(error.message);
  }
  const failure = engine.transactions().find((t) => t.error)?.error;
  if (failure && !failure.retryable && failure.code === 'too_large') ids.push(String(failure.transactionId));
  // @ts-expect-error: codes are a closed list
  const made: ErrorCode = 'oops';

  const progress: Observable<SyncProgress> = engine.getProgress();
  progress.subscribe(({ unsyncedWrites, pull }) => {
    const bar: PullProgress | null = pull;
    ids.push(String(unsyncedWrites), String(bar ? bar.received / bar.total : 1));
  });

  // Transaction history, paged, and the objects in-flight transactions hold.
  const historyPage: TransactionQuery = { limit: 50, before: 100, state: 'failed' };
  const transactions: Transaction[] = [...engine.transactions(), ...engine.transactions(historyPage)];
  const locked: LockedObject[] = engine.getLockedObjects();
  for (const { collection, id, transaction } of locked) ids.push(collection, id, transaction.state);
  for (const t of transactions) {
    const meta: JsonValue | null = t.metadata;
    ids.push(String(meta));
    for (const m of t.mutations) {
      const before: Document | null = m.original;
      const after: Document | null = m.modified;
      const changed: DocumentFields = m.changes;
      const mine: JsonValue | null = m.metadata;
      ids.push(String(before?._id), String(after?._deleted), Object.keys(changed).join(), String(mine));
      ids.push(String(m.createdAt + m.updatedAt));
    }
    const attempts: Attempt[] = t.attempts;
    const retryAt: number | null | undefined = attempts[0]?.retryScheduledFor;
    const attemptCode: ErrorCode | null | undefined = attempts[0]?.errorCode;
    const message: string | undefined = t.error?.message;
    const mutations: Mutation[] = t.mutations;
    for (const m of mutations) {
      switch (m.type) {
        case 'insert':
        case 'put':
          ids.push(m.collection, m.id, String(m.fields['title']));
          break;
        case 'update':
          ids.push(String(m.patch['completed']), String(m.mutationId));
          break;
        case 'delete':
          ids.push(m.id);
          break;
      }
    }
    ids.push(String(retryAt), attemptCode ?? '', message ?? '', String(t.queuedBehind.length + t.retries));
  }
  ids.push(String(stats.historyDropped));
  const offTransaction: () => void = engine.onTransaction((t) => ids.push(t.state));
  offTransaction();

  // Sync log and conflicts.
  const log: SyncLogEntry[] = engine.syncLog({ limit: 10, status: 'completed', syncType: 'push', from: 0, to: Date.now() });
  const created: number | undefined = log[0]?.createdAt;
  const runCode: ErrorCode | null | undefined = log[0]?.errorCode;
  ids.push(String(created), runCode ?? '');
  const everything: SyncLogEntry[] = engine.syncLog();
  const conflicts: Conflict[] = engine.conflicts();
  for (const c of conflicts) {
    const local: Document | null = c.local;
    engine.resolveConflict(c.id, { ...c.remote, title: local?.['title'] ?? null });
  }

  await engine.start();
  await engine.forceSync();
  await engine.push();
  await engine.pull();
  await engine.stop();
  engine.destroy();
  engine.free();
  await SyncEngine.deleteDatabase('my-app');

  ids.push(name, String(txId + n), state, snapshot.state, done.state, current, String(cached));
  ids.push(String(lastSyncAt), String(log.length + everything.length));

  // ----- Misuse that must be rejected -----

  // @ts-expect-error: unknown conflict strategy
  await SyncEngine.open({ name: 'x', collections: [], conflictStrategy: 'newest-wins' });
  // @ts-expect-error: unknown option
  await SyncEngine.open({ name: 'x', collections: [], retries: 3 });
  // @ts-expect-error: `merge` belongs to the parallel strategy only
  await SyncEngine.open({ name: 'x', collections: [], mutationStrategy: { type: 'ordered', merge } });
  // @ts-expect-error: wrong type for a patched field
  await todos.update('1', { completed: 'yes' });
  // @ts-expect-error: unknown field in a patch
  await todos.update('1', { done: true });
  // @ts-expect-error: insert needs `_id`
  await todos.insert({ title: 'No id', completed: false });
  // @ts-expect-error: insert needs every required field
  await todos.insert({ _id: '4', title: 'Missing completed' });
  // @ts-expect-error: untyped documents hold JSON values only
  await cache.insert({ _id: 'f', fn: () => 1 });
  // @ts-expect-error: not a sync status
  if (current === 'done') ids.push('never');
  // @ts-expect-error: not a transaction state
  if (tx.state === 'succeeded') ids.push('never');
  // @ts-expect-error: the state is read-only
  tx.state = 'completed';
  // @ts-expect-error: engines are created with SyncEngine.open
  new SyncEngine();
  // @ts-expect-error: not a sync log status
  engine.syncLog({ status: 'ok' });
  // @ts-expect-error: storage comes from createIndexedDBStorage() or createMemoryStorage()
  await SyncEngine.open({ name: 'x', collections: [], storage: 'memory' });
  // @ts-expect-error: keep is a number or 'all'
  await SyncEngine.open({ name: 'x', collections: [], transactionHistory: { keep: 'some' } });
  // @ts-expect-error: not a transaction state
  engine.transactions({ state: 'done' });
  // @ts-expect-error: metadata is JSON
  await todos.delete('1', { metadata: () => 1 });
  // @ts-expect-error: a resolver returns fields or undefined
  const badResolver: ConflictResolver = () => null;
  // @ts-expect-error: a transaction body is given a scope, not a collection
  await engine.transaction((t: Collection) => t.name);
  // @ts-expect-error: find results may be undefined when indexed
  const surely: Document<Todo> = open[0];
  // @ts-expect-error: a boolean field is compared with booleans
  todos.find({ where: { completed: 'yes' } });
  // @ts-expect-error: ranges take numbers or strings
  todos.count({ where: { title: { $gt: true } } });
  // @ts-expect-error: `$in` takes a list
  todos.find({ where: { title: { $in: 'a' } } });

  ids.push(String(badResolver), String(surely));
}

// A custom backend, a REST connector and the test harness, through the package entry.
import {
  NonRetriableError,
  createRestConnector,
  createSyncConnector,
  createTestCollection,
} from './src/index';

export async function customBackends(): Promise<number> {
  const engine = await SyncEngine.open({
    name: 'custom',
    collections: [{ name: 'todos' }],
    sync: { id: 'api', setup: async ({ onUpdate }) => { onUpdate([{ _id: '1', title: 't' }]); return { data: [] }; } },
    mutationFn: {
      persist: async ({ changes, attempt }) => {
        if (attempt > 3) throw new NonRetriableError('give up');
        return { externalIds: { [changes[0]?.id ?? '']: 'server-1' } };
      },
    },
  });
  const rest = createRestConnector({ baseUrl: 'https://api.example.com' });
  const connector = createSyncConnector(rest, 'todos')
    .withModelConnector('todos', (b) => b.withList().withCreate().withBatchCreate({
      request: (changes) => ({ method: 'POST', path: '/todos/batch', body: changes.map((c) => c.data) }),
      extract: (_body, changes) => changes.map((c) => ({ changeId: c.changeId, externalId: c.localId })),
    }))
    .withSyncWrites()
    .withConfirmation({
      poll: async ({ changeId, ticket, acceptedAt }) => {
        const status = (await rest.request({ path: `/todos/status/${changeId}`, query: { ticket: String(ticket) } })) as { id?: string };
        if (status.id) return { status: 'confirmed', externalId: status.id };
        return Date.now() - acceptedAt > 5000 ? { status: 'refused', error: 'lost' } : { status: 'pending' };
      },
      intervalMs: 500,
      timeoutMs: 30_000,
    })
    .build();
  const report = await connector.sync('INCREMENTAL', { useAsyncWrites: true });
  const { runId } = connector.syncAsync('FULL');
  const run: SyncRun | undefined = connector.runStatus(runId);
  const runState: SyncRunState | undefined = run?.state;
  const later: number = (run?.report?.unconfirmed ?? 0) + report.unconfirmed;
  const { collection, syncControl } = await createTestCollection<{ title: string }>({ initialData: [{ _id: 'a', title: 'x' }] });
  syncControl.failNextPersist(new NonRetriableError('no'));
  const fixed: { code: 'non_retriable'; retryable: false } = new NonRetriableError('no');
  syncControl.setNetworkDelay(5);
  // @ts-expect-error: the sync mode is FULL or INCREMENTAL
  await connector.sync('PARTIAL');
  // @ts-expect-error: persist receives changes, not documents
  await SyncEngine.open({ name: 'x', collections: [], mutationFn: { persist: async ({ docs }: { docs: [] }) => docs } });
  // @ts-expect-error: test documents have the collection's shape
  syncControl.emitUpdate([{ _id: 'b', title: 1 }]);
  // @ts-expect-error: a poll answers a status, not a boolean
  createSyncConnector(rest, 'todos').withConfirmation({ poll: async () => true });
  engine.destroy();
  return report.confirmed + collection.count() + later + String(runState).length + report.runId.length + fixed.code.length;
}

// The package entry exports the engine's `ChangeType` (what happened to a document), not the
// connectors' `ConnectorChangeType`.
import type { ChangeType as EntryChangeType, ConnectorChangeType, SyncRun, SyncRunState } from './src/index';
export const changeKind: EntryChangeType = 'added';
export const connectorKind: ConnectorChangeType = 'CREATE';
// @ts-expect-error: a connector's change kind is not a document change type
export const mixedKind: EntryChangeType = 'CREATE';
