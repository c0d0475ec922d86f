// The page of the React hook tests (tests/e2e/react.test.mjs runs each scenario in Chromium).
// It is bundled with React's development build, so StrictMode mounts, unmounts and mounts again
// as it does in an app under development. Subscriptions are counted by wrapping the engine's
// subscribe methods; nothing else is replaced.
import init, {
  Collection,
  NonRetriableError,
  Observable,
  SyncEngine,
  type Document,
  type SyncEngineConfig,
} from 'ferrosync';
import {
  SyncProvider,
  useCollection,
  useConflicts,
  useDocument,
  useMutations,
  useSyncEngine,
  useSyncProgress,
  useSyncStats,
  useSyncStatus,
  useTransactions,
} from 'ferrosync/react';
import { Component, memo, StrictMode, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';

interface Todo {
  title: string;
  done: boolean;
}

// ---------------------------------------------------------------------------------------------
// Counting subscriptions
// ---------------------------------------------------------------------------------------------

type Kind = 'collection' | 'observable' | 'transactions';
/** Subscriptions made, and those still active, by kind. */
const made: Record<Kind, number> = { collection: 0, observable: 0, transactions: 0 };
const active: Record<Kind, number> = { collection: 0, observable: 0, transactions: 0 };
/** The queries collection subscriptions followed (`null`: every change of the collection). */
const followed: (string | null)[] = [];

function counted(kind: Kind, unsubscribe: () => void): () => void {
  made[kind]++;
  active[kind]++;
  let done = false;
  return () => {
    if (!done) active[kind]--;
    done = true;
    unsubscribe();
  };
}

const collectionSubscribe = Collection.prototype.subscribe as (...args: unknown[]) => () => void;
Collection.prototype.subscribe = function (this: Collection, ...args: unknown[]) {
  followed.push(args.length > 1 ? JSON.stringify(args[0]) : null);
  return counted('collection', collectionSubscribe.apply(this, args));
} as Collection['subscribe'];
const observableSubscribe = Observable.prototype.subscribe;
Observable.prototype.subscribe = function <T>(this: Observable<T>, callback: (value: T) => void) {
  const subscription = observableSubscribe.call(this, callback as never);
  const unsubscribe = counted('observable', () => subscription.unsubscribe());
  return { unsubscribe };
};
const onTransaction = SyncEngine.prototype.onTransaction;
SyncEngine.prototype.onTransaction = function (this: SyncEngine, callback) {
  return counted('transactions', onTransaction.call(this, callback));
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Waits until `condition()` holds (polling), or fails with `message` after 10 s. */
async function until(condition: () => boolean, message: () => string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${message()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let opened = 0;
/** A new engine on a database of its own. */
function openEngine(config: Partial<SyncEngineConfig> = {}): Promise<SyncEngine> {
  return SyncEngine.open({
    name: `react-test-${Date.now()}-${opened++}`,
    collections: [{ name: 'todos' }],
    requestPersistence: false,
    ...config,
  });
}

/** The server that serves this page, as the engine's sync server. */
function server(): Partial<SyncEngineConfig> {
  return { serverUrl: `ws://${location.host}/v1/sync`, authToken: new URLSearchParams(location.search).get('token')! };
}

/** Renders `ui` under StrictMode and a provider of `engine` into a new root. */
function mount(engine: SyncEngine, ui: ReactNode): Root {
  const element = document.createElement('div');
  document.body.append(element);
  const root = createRoot(element);
  root.render(
    <StrictMode>
      <SyncProvider engine={engine}>{ui}</SyncProvider>
    </StrictMode>,
  );
  return root;
}

function text(id: string): string {
  return document.querySelector(`[data-test="${id}"]`)?.textContent ?? '(absent)';
}

function click(id: string): void {
  document.querySelector<HTMLButtonElement>(`[data-test="${id}"]`)!.click();
}

function snapshot(counts: Record<Kind, number>) {
  return JSON.stringify(counts);
}

/** Active subscriptions of `kind` (read through a call: the count changes under the checks). */
function live(kind: Kind): number {
  return active[kind];
}

// ---------------------------------------------------------------------------------------------
// Components under test
// ---------------------------------------------------------------------------------------------

/** Uses every hook once. */
function Everything() {
  const todos = useCollection<Todo>('todos');
  const first = useDocument<Todo>('todos', 'a');
  const status = useSyncStatus();
  const stats = useSyncStats();
  const transactions = useTransactions();
  const conflicts = useConflicts();
  useSyncEngine();
  return (
    <p data-test="everything">
      {todos.length} {first?.title ?? '-'} {status} {stats.conflictCount} {transactions.length} {conflicts.length}
    </p>
  );
}

const renders = { list: 0, rows: {} as Record<string, number> };

function OpenTodos({ done = false }: { done?: boolean }) {
  renders.list++;
  // A new query object on every render: compared by value.
  const todos = useCollection<Todo>('todos', { where: { done }, sort: 'title' });
  return (
    <ul data-test="list">
      {todos.map((t) => (
        <Row key={t._id} todo={t} />
      ))}
    </ul>
  );
}

const Row = memo(function Row({ todo }: { todo: Document<Todo> }) {
  renders.rows[todo._id] = (renders.rows[todo._id] ?? 0) + 1;
  return <li>{todo.title}</li>;
});

let documentRenders = 0;
function OneTodo({ id }: { id: string | null }) {
  documentRenders++;
  const todo = useDocument<Todo>('todos', id);
  return <p data-test="doc">{todo ? todo.title : 'none'}</p>;
}

function Sync() {
  const status = useSyncStatus();
  const stats = useSyncStats();
  const transactions = useTransactions();
  return (
    <>
      <p data-test="status">{status}</p>
      <p data-test="pushed">{stats.pushCount}</p>
      <p data-test="transactions">
        {transactions.map((t) => `${t.id}:${t.state}:${t.attempts.length}`).join(' ')}
      </p>
    </>
  );
}

function Conflicts() {
  const engine = useSyncEngine();
  const conflicts = useConflicts();
  return (
    <ul data-test="conflicts">
      {conflicts.map((c) => (
        <li key={c.id}>
          {String(c.local?.title)} vs {String(c.remote.title)}
          <button onClick={() => engine.resolveConflict(c.id, { title: 'merged', done: false })}>merge</button>
        </li>
      ))}
    </ul>
  );
}

/** Writes through `useMutations`, and shows them, whether they are pending, and the error. */
function Writer() {
  const todos = useCollection<Todo>('todos', { sort: 'title' });
  const { insert, withMutation, pending, error } = useMutations<Todo>('todos');
  const pair = () =>
    withMutation(
      (t) => {
        t.insert({ _id: 'p1', title: 'one', done: false });
        t.insert({ _id: 'p2', title: 'two', done: false });
      },
      { metadata: 'pair' },
    );
  return (
    <>
      <p data-test="written">{todos.map((t) => t.title).join(',')}</p>
      <p data-test="pending">{String(pending)}</p>
      <p data-test="error">{error?.message ?? ''}</p>
      <button data-test="pair" onClick={() => void pair()} />
      <button
        data-test="broken"
        onClick={() =>
          void withMutation(() => {
            throw new Error('the body failed');
          })
        }
      />
      <button data-test="again" onClick={() => void insert({ _id: 'p1', title: 'dup', done: false })} />
      <button data-test="third" onClick={() => void insert({ _id: 'p3', title: 'three', done: false })} />
    </>
  );
}

function Progress() {
  const { unsyncedWrites, pull } = useSyncProgress();
  return <p data-test="progress">{`${unsyncedWrites} ${pull ? `${pull.received}/${pull.total}` : '-'}`}</p>;
}

class Boundary extends Component<{ children: ReactNode }, { error: string | null }> {
  state = { error: null };
  static getDerivedStateFromError(error: Error) {
    return { error: error.message };
  }
  render() {
    return this.state.error ? <p data-test="caught">{this.state.error}</p> : this.props.children;
  }
}

function Bare() {
  useSyncEngine();
  return <p>unreachable</p>;
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

const scenarios: Record<string, () => Promise<unknown>> = {
  async strict_mode_subscribes_once_per_hook_and_unmount_releases_everything() {
    const engine = await openEngine();
    const before = { ...made };
    const root = mount(engine, <Everything />);
    await until(() => text('everything').startsWith('0 - offline'), () => text('everything'));
    // Six hooks: two on collections, two on observables, two on transactions. React subscribes
    // in effects that run after the first render shows, so wait for them.
    const six = snapshot({ collection: 2, observable: 2, transactions: 2 });
    await until(() => snapshot(active) === six, () => `active ${snapshot(active)}`);
    // StrictMode did subscribe, unsubscribe and subscribe again.
    const calls = made.collection - before.collection;
    check(calls === 4, `StrictMode's second mount subscribed again (${calls} collection subscriptions)`);

    await engine.collection<Todo>('todos').insert({ _id: 'a', title: 'first', done: false });
    await until(() => text('everything').startsWith('1 first offline 0 1 0'), () => text('everything'));

    root.unmount();
    check(snapshot(active) === snapshot({ collection: 0, observable: 0, transactions: 0 }), `left ${snapshot(active)}`);
    engine.destroy();
    return { made: made.collection - before.collection };
  },

  async use_collection_re_renders_only_when_its_result_changes() {
    const engine = await openEngine();
    const todos = engine.collection<Todo>('todos');
    renders.list = 0;
    renders.rows = {};
    const root = mount(engine, <OpenTodos />);
    await todos.insert({ _id: 'a', title: 'alpha', done: false });
    await until(() => text('list') === 'alpha', () => text('list'));
    const start = renders.list;

    // Writes outside the result, then one inside: a single re-render, for the last.
    await todos.insert({ _id: 'b', title: 'beta', done: true });
    await todos.update('b', { title: 'beta 2' });
    await todos.insert({ _id: 'c', title: 'gamma', done: false });
    await until(() => text('list') === 'alphagamma', () => text('list'));
    // StrictMode renders each update twice.
    check(renders.list - start === 2, `one re-render for three writes (${renders.list - start} renders)`);
    check(renders.rows.a === 2, `the unchanged row kept its identity (${renders.rows.a} renders of it)`);

    await todos.update('a', { title: 'alpha 2' });
    await until(() => text('list') === 'alpha 2gamma', () => text('list'));
    check(renders.rows.c === 2, `only the changed row re-rendered (${renders.rows.c} renders of c)`);
    check(live('collection') === 1, `one subscription however often it renders (${active.collection})`);
    // It follows its query's live query (the results change incrementally; reading them runs
    // nothing again), not every change of the collection.
    const query = JSON.stringify({ where: { done: false }, sort: 'title' });
    check(followed.at(-1) === query, `the hook subscribed to its query: ${followed.at(-1)}`);
    root.unmount();
    engine.destroy();
    return renders;
  },

  async use_document_follows_one_document() {
    const engine = await openEngine();
    const todos = engine.collection<Todo>('todos');
    await todos.insert({ _id: 'a', title: 'alpha', done: false });
    documentRenders = 0;
    const root = mount(engine, <OneTodo id="a" />);
    await until(() => text('doc') === 'alpha', () => text('doc'));
    const start = documentRenders;
    await todos.insert({ _id: 'b', title: 'beta', done: false });
    await todos.update('a', { title: 'alpha 2' });
    await until(() => text('doc') === 'alpha 2', () => text('doc'));
    check(documentRenders - start === 2, `only a's change re-rendered it (${documentRenders - start} renders)`);
    // A soft-deleted document is gone, as for `Collection.get`.
    await todos.delete('a');
    await until(() => text('doc') === 'none', () => text('doc'));
    await todos.insert({ _id: 'c', title: 'gamma', done: false });
    root.render(
      <StrictMode>
        <SyncProvider engine={engine}>
          <OneTodo id="c" />
        </SyncProvider>
      </StrictMode>,
    );
    await until(() => text('doc') === 'gamma', () => text('doc'));
    check(followed.at(-1) === JSON.stringify({ where: { _id: 'c' } }), `it follows c alone: ${followed.at(-1)}`);
    root.render(
      <StrictMode>
        <SyncProvider engine={engine}>
          <OneTodo id={null} />
        </SyncProvider>
      </StrictMode>,
    );
    await until(() => text('doc') === 'none', () => text('doc'));
    check(live('collection') === 0, `no subscription without an id (${live('collection')})`);
    root.unmount();
    engine.destroy();
  },

  async unmount_then_mount_again_shows_writes_made_meanwhile_and_a_new_query_resubscribes() {
    const engine = await openEngine();
    const todos = engine.collection<Todo>('todos');
    let root = mount(engine, <OpenTodos />);
    await todos.insert({ _id: 'a', title: 'alpha', done: false });
    await until(() => text('list') === 'alpha', () => text('list'));
    root.unmount();
    check(live('collection') === 0, 'unmounted: no subscription left');

    await todos.insert({ _id: 'b', title: 'beta', done: false });
    root = mount(engine, <OpenTodos />);
    await until(() => text('list') === 'alphabeta', () => text('list'));
    // The text can show before the subscribing effect has run.
    await until(() => live('collection') === 1, () => `mounted again: one subscription (${active.collection})`);

    await todos.update('b', { done: true });
    await until(() => text('list') === 'alpha', () => text('list'));
    root.render(
      <StrictMode>
        <SyncProvider engine={engine}>
          <OpenTodos done />
        </SyncProvider>
      </StrictMode>,
    );
    await until(() => text('list') === 'beta', () => text('list'));
    await until(() => live('collection') === 1, () => `the new query replaced the old subscription (${active.collection})`);
    await todos.insert({ _id: 'c', title: 'gamma', done: true });
    await until(() => text('list') === 'betagamma', () => text('list'));
    root.unmount();
    check(live('collection') === 0, 'nothing left after unmount');
    engine.destroy();
  },

  async status_stats_and_transactions_follow_the_server() {
    const engine = await openEngine(server());
    const root = mount(engine, <Sync />);
    await until(() => text('status') === 'idle', () => text('status'));
    const handle = await engine.collection<Todo>('todos').insert({ _id: 'a', title: 'alpha', done: false });
    await until(() => text('transactions') === `${handle.id}:completed:1`, () => text('transactions'));
    await until(() => text('pushed') === '1', () => text('pushed'));
    await engine.stop();
    await until(() => text('status') === 'offline', () => text('status'));
    await engine.start();
    await until(() => text('status') === 'idle', () => text('status'));
    root.unmount();
    check(live('observable') === 0 && live('transactions') === 0, 'nothing left after unmount');
    engine.destroy();
  },

  async use_conflicts_shows_a_parked_conflict_until_it_is_resolved() {
    const mine = await openEngine({ ...server(), conflictStrategy: 'custom', conflictResolver: () => undefined });
    const theirs = await openEngine(server());
    const id = `doc-${Date.now()}`;
    await (await mine.collection<Todo>('todos').insert({ _id: id, title: 'start', done: false })).settled();
    await until(() => theirs.collection('todos').get(id) !== undefined, () => 'the document reached the other engine');

    const root = mount(mine, <Conflicts />);
    await mine.stop();
    await mine.collection<Todo>('todos').update(id, { title: 'mine' });
    await (await theirs.collection<Todo>('todos').update(id, { title: 'theirs' })).settled();
    await mine.start();
    await until(() => text('conflicts') === 'mine vs theirsmerge', () => text('conflicts'));

    document.querySelector<HTMLButtonElement>('[data-test="conflicts"] button')!.click();
    await until(() => text('conflicts') === '', () => text('conflicts'));
    await until(() => theirs.collection<Todo>('todos').get(id)?.title === 'merged', () => 'the resolution synced');
    root.unmount();
    mine.destroy();
    theirs.destroy();
  },

  async use_mutations_groups_writes_and_shows_pending_and_errors() {
    // The backend answers when the test says, and refuses once `refuse` is set.
    let answer: (() => void) | undefined;
    let refuse = false;
    const engine = await openEngine({
      mutationFn: {
        persist: () =>
          new Promise((resolve, reject) => {
            answer = () => (refuse ? reject(new NonRetriableError('refused by the API')) : resolve({}));
          }),
      },
    });
    const root = mount(engine, <Writer />);
    await until(() => text('pending') === 'false', () => text('pending'));
    click('pair');
    await until(() => text('written') === 'one,two', () => text('written'));
    check(text('pending') === 'true', `pending until the backend confirms (${text('pending')})`);
    const pair = engine.transactions().at(-1)!;
    check(pair.mutations.length === 2 && pair.metadata === 'pair', `one transaction: ${JSON.stringify(pair)}`);
    await until(() => answer !== undefined, () => 'persist was called');
    answer!();
    await until(() => text('pending') === 'false', () => text('pending'));

    click('broken');
    await until(() => text('error') === 'the body failed', () => text('error'));
    check(engine.transactions().length === 1, 'a failed body writes nothing');
    click('again');
    await until(() => text('error').includes('already exists'), () => text('error'));

    answer = undefined;
    refuse = true;
    click('third');
    await until(() => text('written') === 'one,three,two' && text('error') === '', () => text('error'));
    await until(() => answer !== undefined, () => 'persist was called');
    answer!();
    await until(() => text('error') === 'refused by the API', () => text('error'));
    await until(() => text('written') === 'one,two' && text('pending') === 'false', () => text('written'));
    root.unmount();
    engine.destroy();
  },

  async use_sync_progress_counts_unsynced_writes_until_they_sync() {
    const engine = await openEngine({ ...server(), autoStart: false });
    const root = mount(engine, <Progress />);
    await until(() => text('progress') === '0 -', () => text('progress'));
    const todos = engine.collection<Todo>('todos');
    await todos.insert({ _id: `u1-${Date.now()}`, title: 'one', done: false });
    await todos.insert({ _id: `u2-${Date.now()}`, title: 'two', done: false });
    await until(() => text('progress') === '2 -', () => text('progress'));
    await engine.start();
    await until(() => text('progress') === '0 -', () => text('progress'));
    root.unmount();
    check(live('observable') === 0, 'nothing left after unmount');
    engine.destroy();
  },

  async use_sync_engine_outside_a_provider_throws_a_clear_error() {
    const element = document.createElement('div');
    document.body.append(element);
    const root = createRoot(element);
    const silence = console.error;
    console.error = () => {};
    try {
      root.render(
        <Boundary>
          <Bare />
        </Boundary>,
      );
      await until(() => text('caught') !== '(absent)', () => text('caught'));
    } finally {
      console.error = silence;
    }
    check(text('caught').includes('<SyncProvider engine={...}>'), text('caught'));
    root.unmount();
  },
};

declare global {
  interface Window {
    hookScenarios: typeof scenarios;
    hooksReady: boolean;
  }
}

await init();
window.hookScenarios = scenarios;
window.hooksReady = true;
