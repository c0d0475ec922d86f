// The test harness users get (createTestCollection), run in Chromium: retries driven by
// failNextPersist, NonRetriableError rollbacks, the codes of failed writes, remote updates held
// back by locks, reloads with persisted and unpersisted transactions, and the harness on memory
// storage.
import { check, withServedPage } from './harness.mjs';

/** Opens a test collection named `name` in `page` as `window.t`. */
function open(page, name, sync = {}, initialData = [{ _id: 'a', title: 'from the backend' }]) {
  return page.evaluate(async ({ name, sync, initialData }) => {
    window.t = await window.ferrosync.createTestCollection({ initialData, sync: { name, ...sync } });
    window.states = [];
    window.t.engine.onTransaction((tx) => window.states.push(tx.state));
  }, { name, sync, initialData });
}

export function harnessTests(binary, www) {
  const withPage = (body) => withServedPage(binary, www, ({ page }) => body(page));
  const waitFor = (page, predicate, arg) => page.waitForFunction(predicate, arg, { timeout: 10_000 });

  return {
    async the_harness_starts_with_its_initial_data_and_persists_writes_to_its_backend() {
      await withPage(async (page) => {
        await open(page, 'h-basic');
        await waitFor(page, () => window.t.collection.get('a') !== undefined);
        const result = await page.evaluate(async () => {
          const tx = await window.t.collection.insert({ _id: 'b', title: 'local' });
          await tx.settled();
          return { backend: window.t.syncControl.backend.get('b'), states: window.states };
        });
        check(result.backend?.title === 'local', `the backend got the write: ${JSON.stringify(result.backend)}`);
        check(result.states.includes('persisted_awaiting_sync'), `awaited sync: ${result.states}`);
        check(result.states.at(-1) === 'completed', `completed: ${result.states}`);
      });
    },

    async fail_next_persist_drives_a_retry_and_then_success() {
      await withPage(async (page) => {
        await open(page, 'h-retry');
        const tx = await page.evaluate(async () => {
          window.t.syncControl.failNextPersist();
          const handle = await window.t.collection.insert({ _id: 'b', title: 'x' });
          await handle.settled();
          return window.t.engine.transactions().find((t) => t.id === handle.id);
        });
        check(tx.state === 'completed', `completed after the retry (got ${tx.state})`);
        check(tx.attempts.length === 2, `two attempts (got ${tx.attempts.length})`);
        check(/simulated network failure/.test(tx.attempts[0].error), `the first attempt's error: ${tx.attempts[0].error}`);
        check(tx.attempts[0].errorCode === 'persist_failed' && tx.attempts[1].errorCode === null, `the attempts' codes: ${JSON.stringify(tx.attempts)}`);
        check(tx.attempts[0].retryScheduledFor !== null, 'the retry was scheduled');
        const calls = await page.evaluate(() => window.t.syncControl.calls.map((c) => [c.attempt, c.failed]));
        check(JSON.stringify(calls) === '[[1,true],[2,false]]', `persist calls: ${JSON.stringify(calls)}`);
      });
    },

    async a_non_retriable_error_fails_at_once_and_rolls_back() {
      await withPage(async (page) => {
        await open(page, 'h-fatal');
        const result = await page.evaluate(async () => {
          const { NonRetriableError } = window.ferrosync;
          window.t.syncControl.failNextPersist(new NonRetriableError('title is invalid'));
          const handle = await window.t.collection.insert({ _id: 'b', title: 'x' });
          const error = await handle.settled().then(() => null, (e) => e.message);
          const tx = window.t.engine.transactions().find((t) => t.id === handle.id);
          return { error, state: tx.state, attempts: tx.attempts.length, visible: window.t.collection.get('b') ?? null, isError: new NonRetriableError('x') instanceof Error };
        });
        check(result.isError, 'NonRetriableError is an Error');
        check(/title is invalid/.test(result.error ?? ''), `settled() rejects with the reason: ${result.error}`);
        check(result.state === 'failed' && result.attempts === 1, `failed after one attempt: ${JSON.stringify(result)}`);
        check(result.visible === null, 'rolled back');
      });
    },

    async a_failed_persist_rejects_with_a_stable_code() {
      await withPage(async (page) => {
        await open(page, 'h-codes', { maxRetryAttempts: 1 });
        const seen = await page.evaluate(async () => {
          const { NonRetriableError } = window.ferrosync;
          const control = window.t.syncControl;
          /** Inserts `id` after queueing `errors` for persist; how it ended. */
          const outcome = async (id, errors) => {
            for (const error of errors) control.failNextPersist(error);
            const handle = await window.t.collection.insert({ _id: id, title: 'x' });
            const error = await handle.settled().then(() => null, (e) => e);
            const tx = window.t.engine.transactions().find((t) => t.id === handle.id);
            return { name: error?.name, code: error?.code, retryable: error?.retryable, id: error?.transactionId === handle.id, tx: tx.error };
          };
          return {
            fatal: await outcome('fatal', [new NonRetriableError('title is invalid')]),
            exhausted: await outcome('exhausted', [undefined, undefined]),
            stats: window.t.engine.getStats().value.lastErrorCode,
            harness: await Promise.resolve().then(() => control.setNetworkDelay(-1)).catch((e) => e.code),
          };
        });
        const { fatal, exhausted } = seen;
        check(fatal.name === 'TransactionError' && fatal.code === 'non_retriable' && fatal.retryable === false && fatal.id, `NonRetriableError: ${JSON.stringify(fatal)}`);
        check(fatal.tx.code === 'non_retriable' && fatal.tx.retryable === false, `in the history: ${JSON.stringify(fatal.tx)}`);
        check(exhausted.code === 'retries_exhausted' && exhausted.retryable === true, `a retryable error, twice: ${JSON.stringify(exhausted)}`);
        check(exhausted.tx.code === 'retries_exhausted', `in the history: ${JSON.stringify(exhausted.tx)}`);
        check(seen.stats === 'retries_exhausted', `lastErrorCode: ${seen.stats}`);
        check(seen.harness === 'invalid_argument', `the harness's own errors have codes: ${seen.harness}`);
      });
    },

    async an_update_for_a_locked_object_waits_for_its_transaction() {
      await withPage(async (page) => {
        await open(page, 'h-lock', { networkDelay: 300 });
        await waitFor(page, () => window.t.collection.get('a') !== undefined);
        const seen = await page.evaluate(async () => {
          const handle = await window.t.collection.update('a', { title: 'mine' });
          while (window.t.engine.transactions().find((t) => t.id === handle.id).state !== 'persisting') {
            await new Promise((r) => setTimeout(r, 5));
          }
          window.t.syncControl.emitUpdate([{ _id: 'a', title: 'theirs', extra: 1 }]);
          const during = window.t.collection.get('a');
          await handle.settled();
          await new Promise((r) => setTimeout(r, 350)); // the write's own echo arrives after the delay
          return { during, after: window.t.collection.get('a') };
        });
        check(seen.during.title === 'mine' && seen.during.extra === undefined, `held back while locked: ${JSON.stringify(seen.during)}`);
        check(seen.after.title === 'mine' && seen.after.extra === 1, `applied after, under the write: ${JSON.stringify(seen.after)}`);
      });
    },

    async after_a_reload_persisted_writes_are_done_and_unpersisted_ones_are_retried() {
      await withPage(async (page) => {
        // A write whose persist never answers before the reload.
        await open(page, 'h-reload', { networkDelay: 60_000 });
        await page.evaluate(async () => {
          const handle = await window.t.collection.insert({ _id: 'unpersisted', title: 'x' });
          while (window.t.engine.transactions().find((t) => t.id === handle.id).state !== 'persisting') {
            await new Promise((r) => setTimeout(r, 10));
          }
          await new Promise((r) => setTimeout(r, 200)); // the attempt's record reaches IndexedDB
        });
        await page.reload();
        await page.waitForFunction(() => window.ferrosyncReady === true);
        await open(page, 'h-reload', { networkDelay: 0 });
        await waitFor(page, () => window.t.engine.transactions().some((t) => t.state === 'completed'));
        const retried = await page.evaluate(() => ({
          calls: window.t.syncControl.calls.map((c) => [c.changes[0].key, c.attempt]),
          backend: window.t.syncControl.backend.has('unpersisted'),
        }));
        check(retried.backend, 'the unpersisted write reached the backend after the reload');
        check(retried.calls.length === 1 && retried.calls[0][1] === 2, `retried as attempt 2: ${JSON.stringify(retried.calls)}`);

        // A write persisted but still awaiting sync when the page closes.
        await page.evaluate(async () => {
          window.t.syncControl.setNetworkDelay(1_000);
          const handle = await window.t.collection.insert({ _id: 'persisted', title: 'y' });
          while (window.t.engine.transactions().find((t) => t.id === handle.id).state !== 'persisted_awaiting_sync') {
            await new Promise((r) => setTimeout(r, 10));
          }
        });
        await page.reload();
        await page.waitForFunction(() => window.ferrosyncReady === true);
        // The backend has the write: it is in the new page's backend data.
        await open(page, 'h-reload', {}, [{ _id: 'persisted', title: 'y' }]);
        const after = await page.evaluate(async () => {
          await new Promise((r) => setTimeout(r, 100));
          const tx = window.t.engine.transactions().find((t) => t.mutations[0].id === 'persisted');
          return { calls: window.t.syncControl.calls.length, state: tx?.state, doc: window.t.collection.get('persisted') ?? null };
        });
        check(after.calls === 0, `not persisted again (${after.calls} calls)`);
        check(after.state === 'completed', `done after the reload (got ${after.state})`);
        check(after.doc?.title === 'y', `kept: ${JSON.stringify(after.doc)}`);
      });
    },

    async on_memory_storage_the_harness_syncs_and_leaves_no_database_behind() {
      await withPage(async (page) => {
        const result = await page.evaluate(async () => {
          const { createTestCollection, createMemoryStorage } = window.ferrosync;
          const t = await createTestCollection({
            initialData: [{ _id: 'a', title: 'from the backend' }],
            sync: { name: 'h-memory', storage: createMemoryStorage() },
          });
          while (t.collection.get('a') === undefined) await new Promise((r) => setTimeout(r, 10));
          await (await t.collection.insert({ _id: 'b', title: 'local' })).settled();
          const databases = (await indexedDB.databases()).map((d) => d.name);
          const backend = t.syncControl.backend.get('b') ?? null;
          await t.destroy();
          return { backend, databases };
        });
        check(result.backend?.title === 'local', `the backend got the write: ${JSON.stringify(result.backend)}`);
        check(!result.databases.includes('h-memory'), `no IndexedDB database: ${result.databases}`);
      });
    },
  };
}
