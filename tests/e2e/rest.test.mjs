// REST connectors in Chromium against json-server (npm) and a small batch endpoint: async and
// sync writes reach the same state, batches confirmed through extract, unmappable answers,
// the three write-mode switches, temporary ids, and a slow API not blocking local writes.
import { check, freePort, withServedPage } from './harness.mjs';
import { startBatchServer, startJsonServer } from './rest-servers.mjs';

/**
 * Installs `window.openContacts(name, options)` in the page: an engine whose `contacts`
 * collection syncs through a REST connector to `options.api` (json-server), with batch creates
 * through `options.batch` when given. It sets `window.contacts`, `window.connector`,
 * `window.lines` (the connector's log) and counts the most fetches under way (`window.peak`).
 */
function install(page) {
  return page.evaluate(() => {
    const { SyncEngine, createRestConnector, createSyncConnector } = window.ferrosync;
    let inFlight = 0;
    window.peak = 0;
    const fetch = window.fetch.bind(window);
    window.fetch = async (...args) => {
      window.peak = Math.max(window.peak, ++inFlight);
      try { return await fetch(...args); } finally { inFlight--; }
    };
    window.openContacts = async (name, options) => {
      window.lines = [];
      const rest = createRestConnector({ baseUrl: options.api });
      const batchApi = options.batch && createRestConnector({ baseUrl: options.batch });
      let builder = createSyncConnector(rest, 'contacts')
        .withModelConnector('contacts', (b) => {
          b.withList().withCreate().withUpdate().withDelete();
          if (batchApi) {
            b.withBatchCreate({
              request: (changes) => ({ method: 'POST', path: '/contacts/batch', body: { items: changes.map((c) => ({ changeId: c.changeId, data: c.data })) } }),
              extract: (body) => body.map((r) => ({ changeId: r.changeId, externalId: r.id })),
            });
          }
          return b;
        })
        .onLog((line) => window.lines.push(line));
      if (options.builderAsync !== undefined) builder = builder.withAsyncWrites(options.builderAsync);
      if (options.batchSize) builder = builder.withBatchSize(options.batchSize);
      const connector = builder.build();
      if (batchApi) {
        // Batch requests go to the batch endpoint; the rest to json-server.
        const request = rest.request;
        rest.request = (r) => (r.path.endsWith('/batch') ? batchApi.request(r) : request(r));
      }
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
  const withApi = ({ delay = 0, batch = false } = {}, body) => withServedPage(binary, www, async ({ page, dir }) => {
    const [apiPort, batchPort] = [await freePort(), await freePort()];
    const api = `http://127.0.0.1:${apiPort}`;
    const json = await startJsonServer({ port: apiPort, dir, delay });
    const batchServer = batch ? await startBatchServer({ port: batchPort, target: api }) : undefined;
    try {
      await install(page);
      await body({ page, api, batch: batchServer && `http://127.0.0.1:${batchPort}`, stats: batchServer?.stats });
    } finally {
      batchServer?.server.close();
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
        check(run.lines.includes('Confirmed 100 changes') && run.lines.includes('Confirmed 50 changes'), run.lines.join('\n'));
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
