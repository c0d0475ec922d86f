// What an application observes of the engine, in Chromium against a real server: the
// transaction history across reloads and under its retention, each write's documents and
// metadata, the objects in-flight transactions hold, sync progress, stats counting live
// changes, the sync log by date, and the storage choice (memory, or IndexedDB refused).
import { check, freePort, freeze, openPage, seedServer, serverState, startServer, withServedPage } from './harness.mjs';

const TOKEN = 'unused'; // the development token withServedPage starts the server with

/** Opens `window.engines[key]` in `page` on the page's own server, with `options`. */
function openEngine(page, key, options = {}) {
  return page.evaluate(async ({ key, options }) => {
    const { SyncEngine, createMemoryStorage } = window.ferrosync;
    const { memory, ...rest } = options;
    window.engines ??= {};
    window.engines[key] = await SyncEngine.open({
      name: key,
      collections: [{ name: 'todos' }, { name: 'notes', sync: false }],
      serverUrl: `ws://${location.host}/v1/sync`,
      authToken: 'unused',
      requestPersistence: false,
      ...(memory ? { storage: createMemoryStorage() } : {}),
      ...rest,
    });
  }, { key, options });
}

async function reload(page) {
  await page.reload();
  await page.waitForFunction(() => window.ferrosyncReady === true);
}

export function engineTests(binary, www) {
  const withPage = (body) => withServedPage(binary, www, body);
  return {
    async finished_transactions_keep_their_states_and_attempts_across_a_reload() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'history');
        const before = await page.evaluate(async () => {
          const todos = window.engines.history.collection('todos');
          await (await todos.insert({ _id: 'ok', title: 'fine' })).settled();
          // Over the server's document limit: rejected.
          const refused = await todos.insert({ _id: 'big', blob: 'x'.repeat(300 * 1024) });
          await refused.settled().catch(() => undefined);
          await window.engines.history.flush();
          return window.engines.history.transactions();
        });
        check(before.map((t) => t.state).join() === 'completed,failed', `before: ${before.map((t) => t.state)}`);
        await reload(page);
        await openEngine(page, 'history', { autoStart: false });
        const after = await page.evaluate(() => {
          const engine = window.engines.history;
          return {
            all: engine.transactions(),
            newest: engine.transactions({ limit: 1 }).map((t) => t.id),
            older: engine.transactions({ limit: 1, before: engine.transactions().at(-1).id }).map((t) => t.id),
            failed: engine.transactions({ state: 'failed' }).map((t) => t.error.message),
          };
        });
        check(JSON.stringify(after.all) === JSON.stringify(before), `the same after a reload:\n${JSON.stringify(after.all)}\n${JSON.stringify(before)}`);
        check(after.all[0].attempts.length === 1 && after.all[0].attempts[0].completedAt > 0, 'attempts kept');
        check(JSON.stringify(after.newest) === JSON.stringify([before[1].id]), `newest page: ${after.newest}`);
        check(JSON.stringify(after.older) === JSON.stringify([before[0].id]), `older page: ${after.older}`);
        check(after.failed.length === 1 && after.failed[0].includes('larger than the limit'), `failed: ${after.failed}`);
      });
    },

    async settled_resolves_with_the_finished_transaction_as_a_plain_object() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'settled');
        const seen = await page.evaluate(async () => {
          const todos = window.engines.settled.collection('todos');
          const first = await todos.insert({ _id: 's1', title: 'one' });
          const settled = await first.settled();
          const second = await todos.update('s1', { title: 'two' });
          const unread = await second.settled();
          const keys = Object.keys(unread);
          const cloned = structuredClone(unread);
          const spread = { ...(await second.settled()) };
          const third = await todos.delete('s1');
          const deleted = await third.settled();
          third.free();
          const seen = {
            settled: JSON.stringify(settled),
            snapshot: JSON.stringify(first.transaction),
            keys,
            viewKeys: Object.keys(first.transaction),
            cloned: [cloned.state, cloned.mutations[0].patch.title],
            spread: [spread.state, spread.mutations[0].type],
            deleted: deleted.mutations[0].type,
          };
          settled.state = 'mine';
          return { ...seen, written: settled.state };
        });
        check(seen.settled === seen.snapshot, `settled() as the transaction's snapshot:\n${seen.settled}\n${seen.snapshot}`);
        check(seen.keys.join() === seen.viewKeys.join(), `its keys before any read: ${seen.keys}`);
        check(seen.cloned.join() === 'completed,two', `structuredClone copies it: ${seen.cloned}`);
        check(seen.spread.join() === 'completed,update', `spreading copies it: ${seen.spread}`);
        check(seen.written === 'mine', 'its properties can be written like any object\'s');
        check(seen.deleted === 'delete', 'it is readable after the handle was freed');
      });
    },

    async the_history_retention_drops_the_oldest_and_counts_every_drop() {
      await withPage(async ({ page }) => {
        const write = () => page.evaluate(async () => {
          const notes = window.engines.kept.collection('notes');
          for (let i = 0; i < 5; i++) await (await notes.insert({ _id: `n${Date.now()}-${i}` })).settled();
          await window.engines.kept.flush();
        });
        const seen = () => page.evaluate(() => ({
          ids: window.engines.kept.transactions().map((t) => t.id),
          dropped: window.engines.kept.getStats().value.historyDropped,
        }));
        await openEngine(page, 'kept', { autoStart: false, transactionHistory: { keep: 2 } });
        await write();
        const first = await seen();
        check(JSON.stringify(first) === JSON.stringify({ ids: [4, 5], dropped: 3 }), `kept the newest two: ${JSON.stringify(first)}`);
        await reload(page);
        await openEngine(page, 'kept', { autoStart: false, transactionHistory: { keep: 2 } });
        const again = await seen();
        check(JSON.stringify(again) === JSON.stringify(first), `the same after a reload: ${JSON.stringify(again)}`);
        await reload(page);
        await openEngine(page, 'kept', { autoStart: false, transactionHistory: { keep: 'all' } });
        await write();
        const all = await seen();
        check(all.ids.length === 7 && all.dropped === 3, `keep all from now on: ${JSON.stringify(all)}`);
      });
    },

    async each_write_shows_its_documents_changes_and_metadata() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'meta');
        const [inserted, edited] = await page.evaluate(async () => {
          const engine = window.engines.meta;
          const todos = engine.collection('todos');
          const first = await todos.insert({ _id: '1', title: 'a', n: 1 }, { metadata: { by: 'form' } });
          await first.settled();
          const second = await engine.transaction(async (t) => {
            t.collection('todos').update('1', { title: 'b' }, { metadata: 'rename' });
            t.collection('todos').delete('1');
          }, { metadata: { screen: 'list' } });
          await second.settled();
          await engine.flush();
          return [first.id, second.id].map((id) => engine.transactions().find((t) => t.id === id));
        });
        const [insert] = inserted.mutations;
        check(JSON.stringify(insert.metadata) === '{"by":"form"}' && insert.original === null, JSON.stringify(insert));
        check(JSON.stringify(insert.modified) === '{"_id":"1","n":1,"title":"a"}', JSON.stringify(insert.modified));
        check(insert.createdAt === inserted.createdAt && insert.updatedAt === inserted.createdAt, 'made with its transaction');
        const [rename, remove] = edited.mutations;
        check(JSON.stringify(edited.metadata) === '{"screen":"list"}', JSON.stringify(edited));
        check(rename.metadata === 'rename' && JSON.stringify(rename.changes) === '{"title":"b"}', JSON.stringify(rename));
        check(JSON.stringify(rename.original) === '{"_id":"1","n":1,"title":"a"}', JSON.stringify(rename.original));
        check(JSON.stringify(remove.original) === '{"_id":"1","n":1,"title":"b"}', 'the delete found the rename');
        check(remove.modified._deleted === true && JSON.stringify(remove.changes) === '{"_deleted":true}', JSON.stringify(remove));
      });
    },

    async in_flight_ordered_transactions_hold_their_objects_until_they_end() {
      await withPage(async ({ page }) => {
        const locked = await page.evaluate(async () => {
          const { SyncEngine } = window.ferrosync;
          let release;
          const engine = await SyncEngine.open({
            name: 'locks', collections: [{ name: 'todos' }], requestPersistence: false,
            mutationFn: { persist: () => new Promise((resolve) => { release = resolve; }) },
          });
          const todos = engine.collection('todos');
          const held = await todos.insert({ _id: 'a' });
          const queued = await todos.update('a', { n: 1 });
          while (!release) await new Promise((r) => setTimeout(r, 10));
          const during = engine.getLockedObjects().map((o) => [o.collection, o.id, o.transaction.id, o.transaction.state]);
          const queuedState = queued.state;
          release({});
          await held.settled();
          const between = engine.getLockedObjects().map((o) => o.transaction.id);
          release({});
          await queued.settled();
          const after = engine.getLockedObjects();
          engine.destroy();
          return { during, queuedState, between, after, ids: [held.id, queued.id] };
        });
        const [held, queued] = locked.ids;
        check(JSON.stringify(locked.during) === JSON.stringify([['todos', 'a', held, 'persisting']]), JSON.stringify(locked.during));
        check(locked.queuedState === 'queued', `the later write waits: ${locked.queuedState}`);
        check(JSON.stringify(locked.between) === JSON.stringify([queued]), `then the next holds it: ${locked.between}`);
        check(locked.after.length === 0, 'nothing held once both ended');
      });
    },

    async a_custom_sync_source_is_named_in_its_errors() {
      await withPage(async ({ page }) => {
        const seen = await page.evaluate(async () => {
          const { SyncEngine } = window.ferrosync;
          const open = (name, setup) => SyncEngine.open({
            name, collections: [{ name: 'todos' }], requestPersistence: false,
            sync: { id: 'feed', setup }, mutationFn: { persist: async () => {} },
          });
          const failing = await open('named-failing', async () => { throw new Error('backend down'); });
          let stats;
          const subscription = failing.getStats().subscribe((s) => { stats = s; });
          while (!stats?.lastError) await new Promise((r) => setTimeout(r, 10));
          subscription.unsubscribe();
          failing.destroy();
          let onUpdate;
          const fed = await open('named-fed', async (context) => { onUpdate = context.onUpdate; });
          let thrown;
          try {
            onUpdate(42);
          } catch (e) {
            thrown = { name: e.name, code: e.code, message: e.message };
          }
          fed.destroy();
          return { lastError: stats.lastError, thrown };
        });
        check(/sync source "feed": setup failed: .*backend down/.test(seen.lastError), seen.lastError);
        check(seen.thrown?.name === 'TypeError' && seen.thrown.message.startsWith('sync source "feed": '), JSON.stringify(seen.thrown));
      });
    },

    async progress_shows_a_large_pull_and_the_unsynced_writes() {
      await withPage(async ({ page, port }) => {
        await seedServer(port, TOKEN, 5000);
        await page.evaluate(() => {
          window.progress = [];
        });
        await openEngine(page, 'progress', { autoStart: false });
        const run = await page.evaluate(async () => {
          const engine = window.engines.progress;
          engine.getProgress().subscribe((p) => window.progress.push(p));
          const todos = engine.collection('todos');
          await todos.insert({ _id: 'offline-1' });
          await todos.insert({ _id: 'offline-2' });
          const offline = engine.getProgress().value.unsyncedWrites;
          await engine.start();
          await engine.forceSync();
          return { offline, count: todos.count(), seen: window.progress, now: engine.getProgress().value };
        });
        check(run.offline === 2, `two unsynced writes offline (got ${run.offline})`);
        check(run.count === 5002, `all pulled (got ${run.count})`);
        const pulls = run.seen.map((p) => p.pull).filter(Boolean);
        check(pulls.length >= 2 && pulls[0].received === 0 && pulls[0].total >= 5000, `pull progress from 0: ${JSON.stringify(pulls)}`);
        check(pulls.some((p) => p.received > 0 && p.received < p.total), `partway: ${JSON.stringify(pulls)}`);
        check(run.now.pull === null && run.now.unsyncedWrites === 0, `done: ${JSON.stringify(run.now)}`);
      });
    },

    async pull_count_counts_changes_received_live() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'writer');
        await openEngine(page, 'reader');
        const stats = await page.evaluate(async () => {
          const { writer, reader } = window.engines;
          await reader.forceSync();
          for (const id of ['x', 'y']) await (await writer.collection('todos').insert({ _id: id })).settled();
          while (reader.collection('todos').count() < 2) await new Promise((r) => setTimeout(r, 20));
          return { reader: reader.getStats().value, writer: writer.getStats().value };
        });
        check(stats.reader.pullCount === 2, `the reader counts both live changes: ${JSON.stringify(stats.reader)}`);
        check(stats.writer.pullCount === 0, 'own writes are not counted as pulled');
      });
    },

    async the_sync_log_filters_by_creation_time() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'log');
        const run = await page.evaluate(async () => {
          const engine = window.engines.log;
          const todos = engine.collection('todos');
          await (await todos.insert({ _id: 'first' })).settled();
          await new Promise((r) => setTimeout(r, 30));
          const middle = Date.now();
          await new Promise((r) => setTimeout(r, 30));
          await (await todos.insert({ _id: 'second' })).settled();
          const pushes = engine.syncLog({ syncType: 'push' });
          return {
            pushes,
            before: engine.syncLog({ syncType: 'push', to: middle }),
            after: engine.syncLog({ syncType: 'push', from: middle }),
          };
        });
        check(run.pushes.length === 2 && run.pushes.every((e) => e.createdAt === e.startedAt), JSON.stringify(run.pushes));
        check(run.before.length === 1 && run.before[0].id === run.pushes[1].id, `before: ${JSON.stringify(run.before)}`);
        check(run.after.length === 1 && run.after[0].id === run.pushes[0].id, `after: ${JSON.stringify(run.after)}`);
      });
    },

    async memory_storage_syncs_and_keeps_nothing_once_the_page_closes() {
      await withPage(async ({ page, port }) => {
        await openEngine(page, 'session', { memory: true });
        const written = await page.evaluate(async () => {
          const engine = window.engines.session;
          const tx = await engine.collection('todos').insert({ _id: 'in-memory', title: 'synced' });
          await tx.settled();
          const databases = (await indexedDB.databases()).map((d) => d.name);
          engine.destroy();
          return { state: tx.state, databases };
        });
        check(written.state === 'completed', 'the write reached the server');
        check(!written.databases.includes('session'), `no IndexedDB database: ${written.databases}`);
        const server = await serverState(port, TOKEN);
        check(server.ids.includes('in-memory'), `the server has it: ${server.ids}`);
        await reload(page);
        await openEngine(page, 'session', { memory: true, autoStart: false });
        const count = await page.evaluate(() => window.engines.session.collection('todos').count());
        check(count === 0, `nothing kept after the page closed (got ${count})`);
      });
    },

    async a_refused_indexeddb_is_an_error_that_names_memory_storage() {
      await withPage(async ({ browser, origin, port }) => {
        const context = await browser.newContext();
        // Fault injection: this context's IndexedDB refuses every open, as private browsing
        // modes may.
        await context.addInitScript(() => {
          IDBFactory.prototype.open = function open() {
            throw new DOMException('IndexedDB is disabled in this browsing mode', 'InvalidStateError');
          };
        });
        const page = await openPage(context, origin);
        const refused = await page.evaluate(() => window.ferrosync.SyncEngine.open({
          name: 'private', collections: [{ name: 'todos' }], requestPersistence: false,
        }).then(() => null, (e) => ({ name: e.name, message: e.message, code: e.code, retryable: e.retryable })));
        check(refused?.name === 'StorageError', `refused: ${JSON.stringify(refused)}`);
        check(refused.code === 'storage_failed' && refused.retryable === true, `with its code: ${JSON.stringify(refused)}`);
        check(refused.message.includes('cannot open IndexedDB') && refused.message.includes('createMemoryStorage()'), refused.message);
        await openEngine(page, 'private', { memory: true });
        const state = await page.evaluate(async () => {
          const tx = await window.engines.private.collection('todos').insert({ _id: 'private-1' });
          return (await tx.settled()).state;
        });
        check(state === 'completed', 'memory storage works where IndexedDB is refused');
        check((await serverState(port, TOKEN)).ids.includes('private-1'), 'and syncs');
      });
    },

    async attempts_and_sync_runs_carry_their_codes_and_force_sync_rejects_with_its_runs() {
      await withPage(async ({ page, origin, dir, port: pagePort }) => {
        // A server of its own (the page's serves the page), frozen then killed under a sync.
        const port = await freePort();
        const server = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', `sqlite://${dir}/runs.db`, '--dev-token', TOKEN, '--allowed-origin', origin]);
        try {
          check(port !== pagePort, 'two servers');
          await openEngine(page, 'runs', { serverUrl: `ws://127.0.0.1:${port}/v1/sync` });
          const refused = await page.evaluate(async () => {
            const engine = window.engines.runs;
            const big = await engine.collection('todos').insert({ _id: 'big', blob: 'x'.repeat(300 * 1024) });
            await big.settled().catch(() => {});
            return {
              attempt: engine.transactions().find((t) => t.id === big.id).attempts[0],
              run: engine.syncLog({ syncType: 'push', limit: 1 })[0],
              stats: engine.getStats().value.lastErrorCode,
            };
          });
          check(refused.attempt.errorCode === 'too_large' && /larger than the limit/.test(refused.attempt.error), `the refused attempt: ${JSON.stringify(refused.attempt)}`);
          check(refused.run.status === 'completed' && refused.run.errorCount === 1 && refused.run.errorCode === null, `its run worked: ${JSON.stringify(refused.run)}`);
          check(refused.stats === 'too_large', `lastErrorCode: ${refused.stats}`);
          // Frozen, the server takes a push and a pull and answers neither; then it dies.
          await freeze(server);
          await page.evaluate(async () => {
            const engine = window.engines.runs;
            const late = await engine.collection('todos').insert({ _id: 'late' });
            window.late = late.id;
            while (engine.transactions().find((t) => t.id === late.id).state !== 'persisting') {
              await new Promise((r) => setTimeout(r, 10));
            }
            window.forced = engine.forceSync().then(() => null, (e) => ({ name: e.name, code: e.code, retryable: e.retryable, message: e.message }));
          });
          server.kill('SIGKILL');
          const lost = await page.evaluate(async () => {
            const engine = window.engines.runs;
            const forced = await window.forced;
            return {
              forced,
              attempt: engine.transactions().find((t) => t.id === window.late).attempts[0],
              failed: engine.syncLog({ status: 'failed' }),
            };
          });
          check(lost.forced?.name === 'SyncError' && lost.forced.code === 'network' && lost.forced.retryable === true, `forceSync rejects with its run's code: ${JSON.stringify(lost.forced)}`);
          check(lost.forced.message.startsWith('connection lost'), lost.forced.message);
          check(lost.attempt.errorCode === 'network' && lost.attempt.error.startsWith('connection lost'), `the lost attempt: ${JSON.stringify(lost.attempt)}`);
          const types = lost.failed.map((e) => e.syncType).sort().join();
          check(types === 'pull,push', `the push and the pull failed: ${JSON.stringify(lost.failed)}`);
          check(lost.failed.every((e) => e.errorCode === 'network' && e.error === lost.forced.message), `each with its code: ${JSON.stringify(lost.failed)}`);
        } finally {
          server.kill('SIGKILL');
        }
      });
    },

    async every_error_carries_a_stable_code() {
      await withPage(async ({ page }) => {
        await openEngine(page, 'codes');
        const seen = await page.evaluate(async () => {
          const { SyncEngine } = window.ferrosync;
          const engine = window.engines.codes;
          const todos = engine.collection('todos');
          /** What `f` threw or rejected with. */
          const caught = async (f) => {
            try {
              await f();
              return null;
            } catch (e) {
              return { name: e.name, code: e.code, retryable: e.retryable ?? null, message: e.message };
            }
          };
          await (await todos.insert({ _id: 'a' })).settled();
          const big = await todos.insert({ _id: 'big', blob: 'x'.repeat(300 * 1024) });
          const refused = await caught(() => big.settled());
          const local = await SyncEngine.open({ name: 'codes-local', collections: [{ name: 'todos' }], requestPersistence: false });
          const seen = {
            argument: await caught(() => todos.insert('not a document')),
            query: await caught(() => todos.find({ where: { title: { $regex: 'a' } } })),
            collection: await caught(() => engine.collection('nope')),
            missing: await caught(() => todos.update('nobody', { n: 1 })),
            duplicate: await caught(() => todos.insert({ _id: 'a' })),
            conflict: await caught(() => engine.resolveConflict('c-1', {})),
            config: await caught(() => SyncEngine.open({ name: 'x', collections: [], batchSize: 0 })),
            stopped: await caught(() => local.forceSync()),
            refused,
            transaction: engine.transactions().find((t) => t.id === big.id).error,
            stats: engine.getStats().value.lastErrorCode,
          };
          local.destroy();
          seen.destroyed = await caught(() => local.collection('todos').insert({ _id: 'b' }));
          return seen;
        });
        const expect = {
          argument: ['TypeError', 'invalid_argument', null],
          query: ['TypeError', 'invalid_query', null],
          collection: ['Error', 'unknown_collection', null],
          missing: ['Error', 'not_found', false],
          duplicate: ['Error', 'already_exists', false],
          conflict: ['Error', 'unknown_conflict', null],
          config: ['TypeError', 'invalid_config', null],
          stopped: ['Error', 'invalid_state', null],
          destroyed: ['Error', 'destroyed', null],
          refused: ['TransactionError', 'too_large', false],
        };
        for (const [what, [name, code, retryable]] of Object.entries(expect)) {
          const error = seen[what];
          check(error?.name === name && error.code === code && error.retryable === retryable, `${what}: ${JSON.stringify(error)}`);
        }
        check(/larger than the limit/.test(seen.refused.message), `the server's message: ${seen.refused.message}`);
        check(seen.transaction.code === 'too_large' && seen.transaction.retryable === false, `the transaction's error: ${JSON.stringify(seen.transaction)}`);
        check(seen.stats === 'too_large', `lastErrorCode: ${seen.stats}`);
      });
    },
  };
}
