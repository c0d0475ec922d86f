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
    window.pending = window.engine.collection('notes').insert({ _id: id, body });
    for (let i = 0; i < 200 && window.engine.getStatus().value !== 'error'; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    return { status: window.engine.getStatus().value, stats: window.engine.getStats().value };
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
        check(failing.status === 'error', `status error (got ${failing.status})`);
        check(/quota/i.test(failing.stats.lastError ?? ''), `lastError names the quota: ${failing.stats.lastError}`);
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
        await cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'indexeddb' });
        const failing = await insertUntilError(page, 'c', 100);
        check(failing.status === 'error', `status error (got ${failing.status})`);
        check(/closed|abort/.test(failing.stats.lastError ?? ''), `lastError says why: ${failing.stats.lastError}`);
        await page.evaluate(() => window.pending);
        await reload(page);
        check(JSON.stringify(await ids(page)) === '["a","b","c"]', `everything written again: ${await ids(page)}`);
      });
    },
  };
}
