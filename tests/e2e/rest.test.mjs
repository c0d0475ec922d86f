// REST connectors in Chromium against json-server (npm), a small batch endpoint and an API that
// confirms writes later: async and sync writes reach the same state, batch creates, updates and
// deletes confirmed through extract, unmappable answers, the three write-mode switches,
// synchronous writes retried by the engine, temporary ids, incremental lists as json-server
// filters them, writes confirmed later by a poll (across a reload, refused, timed out), sync
// runs started in the background, a slow API not blocking local writes, and the codes of the
// connectors' errors.
import { check, freePort, withServedPage } from './harness.mjs';
import { startAsyncServer, startBatchServer, startJsonServer } from './rest-servers.mjs';

/**
 * Installs `window.openContacts(name, options)` in the page: an engine whose `contacts`
 * collection syncs through a REST connector to `options.api` (json-server), with batch
 * creates, updates and deletes through `options.batch` when given, and creates through the
 * asynchronous API `options.async` (confirmed by a poll every 100 ms, failing after
 * `options.timeoutMs`) when given. It sets `window.contacts`, `window.connector`,
 * `window.lines` (the connector's log), `window.urls` (every URL fetched) and counts the most
 * fetches under way (`window.peak`); `window.failNext(method)` makes the next fetch with that
 * method fail as a lost network would (fault injection).
 */
function install(page) {
  return page.evaluate(() => {
    const { SyncEngine, createRestConnector, createSyncConnector } = window.ferrosync;
    let inFlight = 0;
    window.peak = 0;
    window.urls = [];
    let failing;
    window.failNext = (method) => { failing = method; };
    const fetch = window.fetch.bind(window);
    window.fetch = async (url, init) => {
      window.urls.push(String(url));
      if (failing && (init?.method ?? 'GET') === failing) {
        failing = undefined;
        throw new TypeError('Failed to fetch (injected)');
      }
      window.peak = Math.max(window.peak, ++inFlight);
      try { return await fetch(url, init); } finally { inFlight--; }
    };
    window.openContacts = async (name, options) => {
      window.lines = [];
      const rest = createRestConnector({ baseUrl: options.api });
      const batchApi = options.batch && createRestConnector({ baseUrl: options.batch });
      const asyncApi = options.async && createRestConnector({ baseUrl: options.async });
      const items = (changes, item) => ({ items: changes.map((c) => ({ changeId: c.changeId, ...item(c) })) });
      const confirmed = (body) => body.map((r) => ({ changeId: r.changeId, externalId: r.id === undefined ? undefined : String(r.id) }));
      let builder = createSyncConnector(rest, 'contacts')
        .withModelConnector('contacts', (b) => {
          b.withList().withCreate().withUpdate().withDelete();
          if (batchApi) {
            b.withBatchCreate({ request: (changes) => ({ method: 'POST', path: '/contacts/batch', body: items(changes, (c) => ({ data: c.data })) }), extract: confirmed });
            b.withBatchUpdate({ request: (changes) => ({ method: 'PATCH', path: '/contacts/batch', body: items(changes, (c) => ({ id: c.localId, changes: c.changes })) }), extract: confirmed });
            b.withBatchDelete({ request: (changes) => ({ method: 'DELETE', path: '/contacts/batch', body: items(changes, (c) => ({ id: c.localId })) }), extract: confirmed });
          }
          if (asyncApi) {
            // Accepted with 202 and no body: nothing to confirm the change with yet.
            b.withCreate({ request: (c) => ({ method: 'POST', path: '/contacts/async', body: { ref: c.changeId, data: c.data } }), extract: (_body, c) => ({ changeId: c.changeId }) });
          }
          return b;
        })
        .onLog((line) => window.lines.push(line));
      if (options.builderAsync !== undefined) builder = builder.withAsyncWrites(options.builderAsync);
      if (options.syncWrites) builder = builder.withSyncWrites();
      if (options.batchSize) builder = builder.withBatchSize(options.batchSize);
      if (asyncApi) {
        builder = builder.withConfirmation({
          poll: async (change) => {
            const answer = await asyncApi.request({ path: `/contacts/async/${encodeURIComponent(change.changeId)}` });
            if (answer.status === 'done') return { status: 'confirmed', externalId: String(answer.id) };
            return answer.status === 'refused' ? { status: 'refused', error: answer.error } : { status: 'pending' };
          },
          intervalMs: 100,
          timeoutMs: options.timeoutMs ?? 30_000,
        });
      }
      const connector = builder.build();
      const request = rest.request;
      // Batch requests go to the batch endpoint, asynchronous ones to their API; the rest to
      // json-server.
      rest.request = (r) => {
        if (batchApi && r.path.endsWith('/batch')) return batchApi.request(r);
        if (asyncApi && r.path.startsWith('/contacts/async')) return asyncApi.request(r);
        return request(r);
      };
      window.connector = connector;
      window.engine = await SyncEngine.open({ name, collections: [{ name: 'contacts' }], retryDelay: 20, requestPersistence: false, ...connector.backend });
      window.contacts = window.engine.collection('contacts');
    };
  });
}

/** The records as json-server holds them, without ids, sorted. */
async function apiState(api) {
  const records = await fetch(`${api}/contacts`).then((r) => r.json());
  return records.map(({ id, ...rest }) => JSON.stringify(rest)).sort();
}

export function restTests(binary, www) {
  const withApi = ({ delay = 0, batch = false, confirmAfter } = {}, body) => withServedPage(binary, www, async ({ page, dir }) => {
    const [apiPort, batchPort, asyncPort] = [await freePort(), await freePort(), await freePort()];
    const api = `http://127.0.0.1:${apiPort}`;
    const json = await startJsonServer({ port: apiPort, dir, delay });
    const batchServer = batch ? await startBatchServer({ port: batchPort, target: api }) : undefined;
    const asyncServer = confirmAfter === undefined
      ? undefined
      : await startAsyncServer({ port: asyncPort, target: api, delay: confirmAfter });
    try {
      await install(page);
      await body({
        page,
        api,
        json,
        batch: batchServer && `http://127.0.0.1:${batchPort}`,
        stats: batchServer?.stats,
        async: asyncServer && `http://127.0.0.1:${asyncPort}`,
        asyncStats: asyncServer?.stats,
      });
    } finally {
      batchServer?.server.close();
      asyncServer?.server.close();
      json.kill();
    }
  });

  /** Creates, updates and deletes contacts with temporary ids, then syncs. */
  const scenario = (page, api, useAsyncWrites) => page.evaluate(async ({ api, useAsyncWrites }) => {
    await window.openContacts(`rest-${useAsyncWrites}`, { api });
    for (let i = 0; i < 12; i++) await window.contacts.insert({ _id: `tmp-${i}`, name: `c${i}`, n: i });
    await window.contacts.update('tmp-3', { n: 30 });
    await window.contacts.update('tmp-4', { name: 'renamed' });
    await window.contacts.delete('tmp-5');
    const report = await window.connector.sync('FULL', { useAsyncWrites });
    // The queued update and delete go out once their creates are confirmed: sync again.
    const again = await window.connector.sync('FULL', { useAsyncWrites });
    const local = window.contacts.find().map(({ _id, ...rest }) => JSON.stringify(rest)).sort();
    const ids = window.contacts.find().map((d) => d._id);
    return { report, again, local, ids, peak: window.peak, lines: window.lines };
  }, { api, useAsyncWrites });

  return {
    async async_and_sync_writes_reach_the_same_final_state() {
      const states = [];
      for (const useAsyncWrites of [true, false]) {
        await withApi({}, async ({ page, api }) => {
          const run = await scenario(page, api, useAsyncWrites);
          check(run.report.asyncWrites === useAsyncWrites, `write mode ${useAsyncWrites}`);
          check(run.report.failed.length === 0 && run.again.failed.length === 0, `no failures: ${JSON.stringify(run.report.failed)}`);
          check(run.ids.every((id) => !id.startsWith('tmp-')), `temporary ids replaced: ${run.ids}`);
          const remote = await apiState(api);
          check(JSON.stringify(remote) === JSON.stringify(run.local), `local matches the API:\n${remote}\n${run.local}`);
          check(useAsyncWrites ? run.peak > 1 : run.peak === 1, `requests at once: ${run.peak}`);
          states.push(remote);
        });
      }
      check(states[0].length === 11, `11 contacts left (got ${states[0].length})`);
      check(JSON.stringify(states[0]) === JSON.stringify(states[1]), 'async and sync writes end the same');
    },

    async batch_creates_are_confirmed_through_extract() {
      await withApi({ batch: true }, async ({ page, api, batch, stats }) => {
        const run = await page.evaluate(async ({ api, batch }) => {
          await window.openContacts('rest-batch', { api, batch, batchSize: 100 });
          await window.engine.transaction(async (t) => {
            for (let i = 0; i < 250; i++) t.collection('contacts').insert({ _id: `tmp-${i}`, name: `c${i}` });
          });
          const report = await window.connector.sync('FULL');
          return { report, lines: window.lines, ids: window.contacts.find().map((d) => d._id) };
        }, { api, batch });
        check(stats.requests === 3, `3 batch requests for 250 changes (got ${stats.requests})`);
        check(run.report.confirmed === 250, `250 confirmed (got ${run.report.confirmed})`);
        check(run.lines.includes('Processing 250 CREATE changes for model contacts (async batch)'), run.lines.join('\n'));
        const runId = run.report.runId;
        check(run.lines.includes(`Confirmed 100 changes for sync ${runId}`) && run.lines.includes(`Confirmed 50 changes for sync ${runId}`), run.lines.join('\n'));
        for (const line of ['Using async writes', 'Sent 3 async requests', 'Waiting for pending async operations']) {
          check(run.lines.includes(line), `logs "${line}": ${run.lines.join('\n')}`);
        }
        const remoteIds = (await fetch(`${api}/contacts`).then((r) => r.json())).map((r) => String(r.id)).sort();
        check(JSON.stringify(run.ids.sort()) === JSON.stringify(remoteIds), 'local ids are the API ids');
      });
    },

    async an_answer_without_an_id_fails_that_change_with_a_clear_error() {
      await withApi({ batch: true }, async ({ page, api, batch }) => {
        const run = await page.evaluate(async ({ api, batch }) => {
          await window.openContacts('rest-noid', { api, batch });
          await window.contacts.insert({ _id: 'tmp-ok', name: 'fine' });
          const bad = await window.contacts.insert({ _id: 'tmp-bad', name: 'no-id' });
          const report = await window.connector.sync('INCREMENTAL');
          const error = await bad.settled().then(() => null, (e) => e.message);
          return { report, error, failures: window.connector.failures(), badVisible: window.contacts.get('tmp-bad') ?? null, lines: window.lines, badTx: bad.id };
        }, { api, batch });
        const expected = `Could not extract externalId for change tx-${run.badTx}/0`;
        check(run.report.failed.length === 1 && run.report.failed[0].error === expected, `reported: ${JSON.stringify(run.report.failed)}`);
        check(run.error === expected, `the transaction failed with it: ${run.error}`);
        check(run.failures.length === 1, 'recorded in failures()');
        check(run.lines.includes(expected), 'logged');
        check(run.report.confirmed === 1, 'the other change was confirmed');
      });
    },

    async the_sync_option_beats_the_builder_which_beats_the_global_switch() {
      await withApi({}, async ({ page, api }) => {
        const modes = await page.evaluate(async ({ api }) => {
          const out = [];
          const write = async (label) => {
            await window.contacts.insert({ _id: `tmp-${label}`, name: label });
            const report = await window.connector.sync('FULL', label === 'option' ? { useAsyncWrites: false } : {});
            out.push([label, report.asyncWrites, window.lines.findLast((l) => l.startsWith('Processing'))]);
          };
          await window.openContacts('rest-default', { api });
          await write('default');
          window.engine.destroy();
          globalThis.FERROSYNC_ASYNC_WRITES = 'false';
          await window.openContacts('rest-global', { api });
          await write('global');
          window.engine.destroy();
          await window.openContacts('rest-builder', { api, builderAsync: true });
          await write('builder');
          await write('option');
          return out;
        }, { api });
        const expected = [['default', true, '(async individual)'], ['global', false, '(sync individual)'], ['builder', true, '(async individual)'], ['option', false, '(sync individual)']];
        for (const [i, [label, async, suffix]] of expected.entries()) {
          const [, got, line] = modes[i];
          check(got === async && line?.endsWith(suffix), `${label}: ${JSON.stringify(modes[i])}`);
        }
      });
    },

    async a_temporary_id_is_replaced_in_the_document_and_in_queued_writes() {
      await withApi({}, async ({ page, api }) => {
        const run = await page.evaluate(async ({ api }) => {
          await window.openContacts('rest-tempid', { api });
          await window.contacts.insert({ _id: 'tmp-1', name: 'Ada' });
          const edit = await window.contacts.update('tmp-1', { email: 'ada@example.com' });
          await window.connector.sync('FULL');
          await edit.settled();
          const [doc] = window.contacts.find();
          return { doc, old: window.contacts.get('tmp-1') ?? null };
        }, { api });
        const [record] = await fetch(`${api}/contacts`).then((r) => r.json());
        check(run.old === null, 'the temporary id is gone');
        check(run.doc._id === String(record.id), `the API id: ${run.doc._id} vs ${record.id}`);
        check(record.email === 'ada@example.com', `the queued update reached the API: ${JSON.stringify(record)}`);
      });
    },

    async batch_updates_and_deletes_are_confirmed_through_extract() {
      await withApi({ batch: true }, async ({ page, api, batch, stats }) => {
        const run = await page.evaluate(async ({ api, batch }) => {
          await window.openContacts('rest-batch-edit', { api, batch });
          await window.engine.transaction(async (t) => {
            for (let i = 0; i < 5; i++) t.collection('contacts').insert({ _id: `tmp-${i}`, name: `c${i}`, n: i });
          });
          await window.connector.sync('FULL');
          const [a, b, c, d, e] = window.contacts.find({ sort: 'n' }).map((doc) => doc._id);
          await window.engine.transaction(async (t) => {
            for (const id of [a, b, c]) t.collection('contacts').update(id, { n: 10 });
            for (const id of [d, e]) t.collection('contacts').delete(id);
          });
          const report = await window.connector.sync('FULL');
          const local = window.contacts.find({ sort: 'n' }).map(({ _id, name, n }) => ({ id: _id, name, n }));
          return { report, local, lines: window.lines };
        }, { api, batch });
        check(JSON.stringify(stats.byMethod) === '{"POST":1,"PATCH":1,"DELETE":1}', `one request of each: ${JSON.stringify(stats.byMethod)}`);
        check(run.report.confirmed === 5 && run.report.failed.length === 0, JSON.stringify(run.report));
        check(run.lines.includes('Processing 3 UPDATE changes for model contacts (async batch)'), run.lines.join('\n'));
        check(run.lines.includes('Processing 2 DELETE changes for model contacts (async batch)'), run.lines.join('\n'));
        const remote = (await fetch(`${api}/contacts`).then((r) => r.json()))
          .map(({ id, name, n }) => ({ id: String(id), name, n }))
          .sort((x, y) => x.n - y.n || x.name.localeCompare(y.name));
        const local = [...run.local].sort((x, y) => x.n - y.n || x.name.localeCompare(y.name));
        check(remote.length === 3 && remote.every((r) => r.n === 10), `json-server: ${JSON.stringify(remote)}`);
        check(JSON.stringify(remote) === JSON.stringify(local), `local matches json-server:\n${JSON.stringify(local)}`);
      });
    },

    async synchronous_writes_go_one_at_a_time_and_the_engine_retries_a_failure() {
      await withApi({}, async ({ page, api }) => {
        const run = await page.evaluate(async ({ api }) => {
          await window.openContacts('rest-sync', { api, syncWrites: true });
          for (let i = 0; i < 4; i++) await window.contacts.insert({ _id: `tmp-${i}`, name: `c${i}` });
          // Fault injection: the first create is lost on the network.
          window.failNext('POST');
          const first = await window.connector.sync('FULL');
          const retried = window.engine.transactions().find((t) => t.attempts.length > 0 && t.attempts[0].error);
          // The engine retries it after its retry delay: a later sync writes it.
          while (window.engine.transactions().some((t) => t.state !== 'completed')) {
            await new Promise((r) => setTimeout(r, 30));
            await window.connector.sync('FULL');
          }
          return { first, retried, peak: window.peak, lines: window.lines, final: window.engine.transactions().find((t) => t.id === retried.id) };
        }, { api });
        check(!run.first.asyncWrites && run.peak === 1, `one request at a time: ${run.peak}`);
        check(run.first.failed.length === 1 && run.first.failed[0].error.includes('Failed to fetch'), JSON.stringify(run.first.failed));
        check(run.lines.includes('Processing 4 CREATE changes for model contacts (sync individual)'), run.lines.join('\n'));
        check(!run.lines.includes('Using async writes'), 'no async lines');
        check(run.final.state === 'completed' && run.final.attempts.length === 2, `retried once: ${JSON.stringify(run.final.attempts)}`);
        const remote = await fetch(`${api}/contacts`).then((r) => r.json());
        check(remote.length === 4, `each written once: ${remote.length}`);
      });
    },

    async the_connectors_errors_carry_stable_codes() {
      await withApi({}, async ({ page, api }) => {
        const seen = await page.evaluate(async ({ api }) => {
          const { createRestConnector, createSyncConnector } = window.ferrosync;
          const caught = async (f) => {
            try {
              await f();
              return null;
            } catch (e) {
              return { name: e.name, code: e.code, retryable: e.retryable ?? null };
            }
          };
          const rest = createRestConnector({ baseUrl: api });
          return {
            url: await caught(() => createRestConnector({ baseUrl: 'ftp://example.com' })),
            missing: await caught(() => rest.request({ path: '/nothing-here' })),
            lost: await caught(() => {
              window.failNext('GET');
              return rest.request({ path: '/contacts' });
            }),
            build: await caught(() => createSyncConnector(rest, 'contacts').build()),
            mode: await caught(() => createSyncConnector(rest, 'contacts').withModelConnector('contacts', (b) => b.withList()).build().sync('PARTIAL')),
          };
        }, { api });
        const expect = {
          url: ['TypeError', 'invalid_argument', null],
          missing: ['NonRetriableError', 'non_retriable', false],
          lost: ['Error', 'network', true],
          build: ['TypeError', 'invalid_config', null],
          mode: ['TypeError', 'invalid_argument', null],
        };
        for (const [what, [name, code, retryable]] of Object.entries(expect)) {
          const error = seen[what];
          check(error?.name === name && error.code === code && error.retryable === retryable, `${what}: ${JSON.stringify(error)}`);
        }
      });
    },

    async an_incremental_sync_lists_what_json_server_filters_by_updated_at() {
      await withApi({}, async ({ page, api }) => {
        const post = (record) => fetch(`${api}/contacts`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(record),
        }).then((r) => r.json());
        for (const [name, updatedAt] of [['a', 100], ['b', 200], ['c', 300]]) await post({ name, updatedAt });
        await page.evaluate(async ({ api }) => {
          await window.openContacts('rest-incremental', { api });
          await window.connector.sync('FULL');
        }, { api });
        await post({ name: 'older', updatedAt: 250 });
        await post({ name: 'newer', updatedAt: 400 });
        const run = await page.evaluate(async () => {
          const from = window.urls.length;
          const report = await window.connector.sync('INCREMENTAL');
          const listed = window.urls.slice(from).filter((u) => new URL(u).pathname === '/contacts');
          return { report, listed, names: window.contacts.find({ sort: 'name' }).map((d) => d.name) };
        });
        check(run.listed.length === 1 && new URL(run.listed[0]).searchParams.get('updatedAt_gte') === '300', `asked since the newest seen: ${run.listed}`);
        const expected = await fetch(`${api}/contacts?updatedAt_gte=300`).then((r) => r.json());
        check(run.report.pulled === expected.length && expected.length === 2, `pulled ${run.report.pulled}, json-server filters ${expected.length}`);
        check(JSON.stringify(run.names) === JSON.stringify(['a', 'b', 'c', 'newer']), `an incremental list adds, keeps the rest, skips older changes: ${run.names}`);
      });
    },

    async writes_accepted_without_an_id_are_confirmed_later_even_across_a_reload() {
      await withApi({ confirmAfter: 1500 }, async ({ page, api, async, asyncStats }) => {
        const before = await page.evaluate(async ({ api, async }) => {
          await window.openContacts('rest-confirm', { api, async });
          const tx = await window.contacts.insert({ _id: 'tmp-ada', name: 'Ada' });
          const report = await window.connector.sync('FULL');
          while (!window.lines.includes('Processing 1 unconfirmed changes')) await new Promise((r) => setTimeout(r, 20));
          return { report, state: tx.state, lines: window.lines };
        }, { api, async });
        check(before.report.unconfirmed === 1 && before.report.confirmed === 0, JSON.stringify(before.report));
        check(before.state === 'persisted_awaiting_sync', `waiting for its confirmation: ${before.state}`);
        for (const line of ['Using async writes', 'Sent 1 async requests', 'Waiting for pending async operations', 'Processing 1 unconfirmed changes']) {
          check(before.lines.includes(line), `logs "${line}": ${before.lines.join('\n')}`);
        }
        // The page goes away before the API confirms; the reloaded page polls again.
        await page.reload();
        await page.waitForFunction(() => window.ferrosyncReady === true);
        await install(page);
        const after = await page.evaluate(async ({ api, async }) => {
          await window.openContacts('rest-confirm', { api, async });
          const waiting = window.engine.transactions()[0].state;
          while (window.engine.transactions()[0].state !== 'completed') await new Promise((r) => setTimeout(r, 20));
          return { waiting, tx: window.engine.transactions()[0], ids: window.contacts.find().map((d) => d._id), lines: window.lines };
        }, { api, async });
        check(after.waiting === 'persisted_awaiting_sync', `still waiting after the reload: ${after.waiting}`);
        const records = await fetch(`${api}/contacts`).then((r) => r.json());
        check(records.length === 1 && asyncStats.accepted === 1, `written once: ${records.length} records, ${asyncStats.accepted} accepted`);
        check(JSON.stringify(after.ids) === JSON.stringify([String(records[0].id)]), `the confirmed id: ${after.ids}`);
        check(after.lines.includes(`Confirmed 1 changes for sync ${before.report.runId}`), after.lines.join('\n'));
      });
    },

    async a_refused_or_never_confirmed_write_fails_its_transaction() {
      await withApi({ confirmAfter: 100 }, async ({ page, api, async }) => {
        const run = await page.evaluate(async ({ api, async }) => {
          await window.openContacts('rest-refused', { api, async, timeoutMs: 800 });
          const refused = await window.contacts.insert({ _id: 'tmp-r', name: 'refuse' });
          const lost = await window.contacts.insert({ _id: 'tmp-n', name: 'never' });
          const report = await window.connector.sync('FULL');
          const outcome = async (tx) => tx.settled().then(() => 'completed', (e) => e.message);
          return {
            report,
            refused: await outcome(refused),
            lost: await outcome(lost),
            left: window.contacts.count(),
            failures: window.connector.failures().map((f) => f.error),
          };
        }, { api, async });
        check(run.report.unconfirmed === 2, JSON.stringify(run.report));
        // The transaction's error: awaitSync (where the confirmation was awaited) rejected.
        check(run.refused === 'awaitSync failed: Change tx-1/0 was refused: the name is not allowed', run.refused);
        check(run.lost === 'awaitSync failed: Change tx-2/0 was not confirmed within 800 ms', run.lost);
        check(run.left === 0, 'both rolled back');
        check(run.failures.length === 2, `reported: ${run.failures}`);
      });
    },

    async a_sync_run_started_in_the_background_is_read_by_its_id() {
      await withApi({ delay: 200 }, async ({ page, api, json }) => {
        const started = await page.evaluate(async ({ api }) => {
          await window.openContacts('rest-runs', { api });
          await window.contacts.insert({ _id: 'tmp-1', name: 'Ada' });
          const first = window.connector.syncAsync('FULL');
          const second = window.connector.syncAsync('INCREMENTAL');
          return { first, second, states: [first, second].map(({ runId }) => window.connector.runStatus(runId).state) };
        }, { api });
        check(started.first.runId !== started.second.runId, 'each run has its id');
        check(started.states[0] !== 'completed' && started.states[1] === 'queued', `answered at once: ${started.states}`);
        const done = await page.evaluate(async ({ first, second }) => {
          const finished = (id) => ['completed', 'failed'].includes(window.connector.runStatus(id).state);
          while (!finished(first.runId) || !finished(second.runId)) await new Promise((r) => setTimeout(r, 20));
          return [window.connector.runStatus(first.runId), window.connector.runStatus(second.runId)];
        }, started);
        check(done.every((r) => r.state === 'completed'), JSON.stringify(done));
        check(done[0].report.confirmed === 1 && done[0].report.runId === started.first.runId, JSON.stringify(done[0].report));
        check(done[1].startedAt >= done[0].completedAt, 'runs go one at a time, in order');
        json.kill();
        const failed = await page.evaluate(async () => {
          const { runId } = window.connector.syncAsync('FULL');
          while (window.connector.runStatus(runId).state !== 'failed') await new Promise((r) => setTimeout(r, 20));
          return { run: window.connector.runStatus(runId), unknown: window.connector.runStatus('run-999') ?? null };
        });
        check(failed.run.error !== null && failed.run.report === null, `a failed run says why: ${JSON.stringify(failed.run)}`);
        check(failed.unknown === null, 'an unknown id has no status');
      });
    },

    async a_slow_api_does_not_hold_up_local_writes() {
      await withApi({ delay: 400 }, async ({ page, api }) => {
        const run = await page.evaluate(async ({ api }) => {
          await window.openContacts('rest-slow', { api });
          for (let i = 0; i < 5; i++) await window.contacts.insert({ _id: `tmp-${i}`, name: `c${i}` });
          let synced = false;
          const sync = window.connector.sync('FULL').then(() => { synced = true; });
          const later = await window.contacts.insert({ _id: 'later', name: 'while syncing' });
          const visible = window.contacts.get('later') !== undefined;
          const durableBeforeSync = !synced;
          await sync;
          await window.connector.sync('FULL');
          await later.settled();
          return { visible, durableBeforeSync, count: window.contacts.count() };
        }, { api });
        check(run.visible && run.durableBeforeSync, `the later write was visible and durable while the sync waited: ${JSON.stringify(run)}`);
        check(run.count === 6, `all six synced (got ${run.count})`);
      });
    },
  };
}
