// Storage faults injected into the real browser through the DevTools protocol: a full quota
// (QuotaExceededError) and the site's data cleared under an open engine (a closed
// connection). Both must show as status 'error' with the cause in lastError, be retried, and
// lose nothing.
import { check, withServedPage } from './harness.mjs';

/** A local-only engine (no server: only storage is exercised) in `page`. */
function openEngine(page) {
  return page.evaluate(async () => {
    window.engine = await window.ferrosync.SyncEngine.open({
      name: 'e2e-storage',
      collections: [{ name: 'notes', sync: false }],
      retryDelay: 50,
      maxRetryDelay: 200,
      requestPersistence: false,
    });
    window.statuses = [];
    window.engine.getStatus().subscribe((s) => window.statuses.push(s));
  });
}

/** Starts an insert of `size` incompressible characters; returns once storage fails. */
async function insertUntilError(page, id, size) {
  return page.evaluate(async ({ id, size }) => {
    const body = Array.from({ length: size / 10 }, () => Math.random().toString(36).slice(2, 12)).join('');
    // Every status shown since (window.statuses): the repair may end the error before a poll
    // of the current status would see it.
    const from = window.statuses.length;
    window.pending = window.engine.collection('notes').insert({ _id: id, body });
    for (let i = 0; i < 200 && !window.statuses.slice(from).includes('error'); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    return { statuses: window.statuses.slice(from), stats: window.engine.getStats().value };
  }, { id, size });
}

export function storageTests(binary, www) {
  /** Runs `body` with a page on a fresh origin, its engine open; `quota` (bytes) if given. */
  const withPage = (body, quota) => withServedPage(binary, www, async ({ context, page, origin }) => {
    const cdp = await context.newCDPSession(page);
    if (quota) {
      // Chromium reads an origin's quota before its first write, so it is set first.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: quota });
    }
    await openEngine(page);
    await body({ page, cdp, origin });
  });
  const ids = (page) => page.evaluate(() => window.engine.collection('notes').find().map((d) => d._id));
  const reload = async (page) => {
    await page.reload();
    await page.waitForFunction(() => window.ferrosyncReady === true);
    await openEngine(page);
  };

  return {
    async a_full_quota_shows_as_an_error_and_the_write_lands_once_there_is_room() {
      await withPage(async ({ page, cdp, origin }) => {
        await page.evaluate(() => window.engine.collection('notes').insert({ _id: 'before' }));
        const failing = await insertUntilError(page, 'big', 3_000_000);
        check(failing.statuses.includes('error'), `status error (got ${failing.statuses})`);
        check(/quota/i.test(failing.stats.lastError ?? ''), `lastError names the quota: ${failing.stats.lastError}`);
        check(failing.stats.lastErrorCode === 'storage_quota', `lastErrorCode: ${failing.stats.lastErrorCode}`);
        check(await page.evaluate(() => window.engine.collection('notes').get('big') !== undefined), 'still visible in memory');
        await cdp.send('Storage.overrideQuotaForOrigin', { origin });
        await page.evaluate(() => window.pending);
        const after = await page.evaluate(() => window.engine.getStatus().value);
        check(after === 'offline', `no longer failing (got ${after})`);
        await reload(page);
        check(JSON.stringify(await ids(page)) === '["before","big"]', 'both durable');
      }, 1_000_000);
    },

    async clearing_site_data_under_an_open_engine_is_repaired_from_memory() {
      await withPage(async ({ page, cdp, origin }) => {
        await page.evaluate(async () => {
          for (const id of ['a', 'b']) await window.engine.collection('notes').insert({ _id: id });
        });
        const from = await page.evaluate(() => window.statuses.length);
        await cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'indexeddb' });
        // The browser closes the connection: the engine shows the error and, without waiting
        // for another write, reopens the database and writes everything again.
        await page.waitForFunction((from) => window.statuses.slice(from).includes('error'), from);
        const { lastError, lastErrorCode } = await page.evaluate(() => window.engine.getStats().value);
        check(/closed/.test(lastError ?? ''), `lastError says why: ${lastError}`);
        check(lastErrorCode === 'storage_failed', `lastErrorCode: ${lastErrorCode}`);
        await page.waitForFunction(() => window.engine.getStatus().value === 'offline');
        await reload(page);
        check(JSON.stringify(await ids(page)) === '["a","b"]', `everything written again: ${await ids(page)}`);
        await page.evaluate(() => window.engine.collection('notes').insert({ _id: 'c' }));
        await reload(page);
        check(JSON.stringify(await ids(page)) === '["a","b","c"]', `and writes go on: ${await ids(page)}`);
      });
    },
  };
}
