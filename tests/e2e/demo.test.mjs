// The demo app (www/, built with Vite) as users meet it: served by a real ferrosync-server over
// a SQLite file, opened in separate browser contexts (separate devices), driven by clicks and
// keys. Also saves the README's screenshot (docs/screenshot.png).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, freePort, freeze, launch, seedServer, serverState, startServer } from './harness.mjs';

const TOKEN = 'e2e-demo-token';
const SCREENSHOT = fileURLToPath(new URL('../../docs/screenshot.png', import.meta.url));

export function demoTests(binary, demo) {
  const withDemo = (body) => withDemoServer(binary, demo, body);
  return {
    two_devices_converge_within_a_second: () => withDemo(async ({ browser, origin, port }) => {
      const a = await openApp(browser, origin);
      const b = await openApp(browser, origin);

      await add(a, 'Buy oat milk');
      // Each step: a write on one device shows on the other within a second.
      await todo(b, 'Buy oat milk').waitFor({ timeout: 1000 });
      await todo(b, 'Buy oat milk').getByRole('checkbox').check();
      await a.locator('[data-testid=todo].done', { hasText: 'Buy oat milk' }).waitFor({ timeout: 1000 });
      await rename(a, 'Buy oat milk', 'Buy oat milk and bread');
      await todo(b, 'Buy oat milk and bread').waitFor({ timeout: 1000 });
      await todo(a, 'Buy oat milk and bread').getByRole('button', { name: 'delete' }).click();
      await todo(b, 'Buy oat milk and bread').waitFor({ state: 'detached', timeout: 1000 });

      // The deletion is soft: both keep the tombstone until they purge it.
      const purge = b.getByTestId('purge');
      check((await purge.textContent()) === 'Purge 1 deleted', 'the deleted todo waits to be purged');
      await purge.click();
      await purge.waitFor({ state: 'detached' });
      const server = Object.values((await serverState(port, TOKEN)).docs);
      check(server.length === 1 && server[0].deleted === true, 'the server keeps the deletion (purging is local)');
      check(
        await a.evaluate(() => document.querySelector('[data-testid=purge]')?.textContent) === 'Purge 1 deleted',
        'the other device still has its tombstone',
      );

      // The README's screenshot: a few todos, one done, one pending on a device that is offline.
      for (const title of ['Write the release notes', 'Review the sync protocol', 'Water the plants']) {
        await add(a, title);
      }
      await todo(a, 'Water the plants').getByRole('checkbox').check();
      await todo(b, 'Water the plants').waitFor();
      await a.getByTestId('online').uncheck();
      await add(a, 'Book the team offsite');
      await todo(a, 'Book the team offsite').getByText('unsynced').waitFor();
      await a.screenshot({ path: SCREENSHOT });
    }),

    offline_edits_converge_under_last_write_wins: () => withDemo(async ({ browser, origin, port }) => {
      const a = await openApp(browser, origin);
      const b = await openApp(browser, origin);
      await add(a, 'Plan the trip');
      await todo(b, 'Plan the trip').waitFor();

      await a.getByTestId('online').uncheck();
      await waitForStatus(a, 'offline');
      await rename(a, 'Plan the trip', 'Plan the trip to Lisbon');
      await add(a, 'Pack the bags');
      check(await todo(a, 'Plan the trip to Lisbon').getByText('unsynced').isVisible(), 'the offline edit waits');
      // The later write: it wins once both are in.
      await rename(b, 'Plan the trip', 'Plan the trip to Porto');
      await waitForStatus(b, 'idle');

      await a.getByTestId('online').check();
      for (const page of [a, b]) {
        await todo(page, 'Pack the bags').waitFor({ timeout: 10_000 });
        await todo(page, 'Plan the trip to Porto').waitFor({ timeout: 10_000 });
        await waitForStatus(page, 'idle');
      }
      const [left, right] = [await titles(a), await titles(b)];
      check(JSON.stringify(left) === JSON.stringify(right), `both show the same list: ${left} / ${right}`);
      const server = Object.values((await serverState(port, TOKEN)).docs).map((d) => d.fields.title).sort();
      check(JSON.stringify(server) === JSON.stringify([...left].sort()), `the server agrees: ${server}`);
      check((await a.getByText('unsynced').count()) === 0, 'nothing is left unsynced');
    }),

    a_conflict_resolved_by_hand_in_the_conflict_view_reaches_both_devices: () => withDemo(async ({ browser, origin, port }) => {
      const a = await openApp(browser, origin);
      const b = await openApp(browser, origin);
      await add(a, 'Choose a venue');
      await todo(b, 'Choose a venue').waitFor();
      // Device A resolves conflicts by hand: the page opens its engine again with that strategy.
      await Promise.all([a.waitForEvent('load'), a.getByTestId('manual-conflicts').click()]);
      await waitForStatus(a, 'idle');

      await a.getByTestId('online').uncheck();
      await rename(a, 'Choose a venue', 'Venue: the park');
      await rename(b, 'Choose a venue', 'Venue: the hall');
      await waitForStatus(b, 'idle');
      await a.getByTestId('online').check();

      const conflict = a.getByTestId('conflict');
      await conflict.waitFor({ timeout: 10_000 });
      const shown = await conflict.textContent();
      check(shown.includes('Mine: Venue: the park') && shown.includes('Theirs: Venue: the hall'), `the conflict view shows both: ${shown}`);
      await conflict.getByRole('button', { name: 'Keep mine' }).click();
      await conflict.waitFor({ state: 'detached' });
      await todo(b, 'Venue: the park').waitFor({ timeout: 10_000 });
      await todo(a, 'Venue: the park').waitFor();
      const server = Object.values((await serverState(port, TOKEN)).docs).map((d) => d.fields.title);
      check(JSON.stringify(server) === '["Venue: the park"]', `the server has the choice: ${server}`);
    }),

    a_reload_in_the_middle_of_a_write_loses_nothing: () => withDemo(async ({ browser, origin, port, server }) => {
      const a = await openApp(browser, origin);
      const b = await openApp(browser, origin);
      // Frozen, the server takes the push but answers nothing: the write is under way.
      await freeze(server);
      try {
        await add(a, 'Survive the reload');
        await a.locator('[data-testid=transaction][data-state=persisting]').waitFor();
        // The page goes away before the server answers (a reload would wait for the frozen
        // server to serve the page, and the old page could get the answer first); then the
        // server applies the push it holds, and the page, loaded again, sends the same write.
        await a.goto('about:blank');
        server.kill('SIGCONT');
        await a.goto(`${origin}/`);
      } finally {
        server.kill('SIGCONT');
      }
      await todo(a, 'Survive the reload').waitFor();
      await todo(b, 'Survive the reload').waitFor({ timeout: 10_000 });
      await waitForStatus(a, 'idle');
      await b.waitForTimeout(500);
      check((await todo(b, 'Survive the reload').count()) === 1, 'the other device has it once');
      const state = await serverState(port, TOKEN);
      check(state.ids.length === 1 && state.head === 1, `the server applied it once (head ${state.head})`);
      const tx = a.getByTestId('transaction').first();
      check((await tx.getAttribute('data-state')) === 'completed', 'the reloaded device sees it completed');
    }),

    changes_received_live_count_as_pulled_and_complete_all_is_one_transaction: () => withDemo(async ({ browser, origin }) => {
      const a = await openApp(browser, origin);
      const b = await openApp(browser, origin);
      check((await b.getByTestId('pulled').textContent()) === '0', 'nothing pulled yet');
      await add(a, 'Buy stamps');
      await add(a, 'Post the letter');
      await todo(b, 'Post the letter').waitFor({ timeout: 1000 });
      await b.locator('[data-testid=pulled]', { hasText: /^2$/ }).waitFor();

      await b.getByTestId('complete-all').click();
      for (const page of [a, b]) {
        await page.locator('[data-testid=left]', { hasText: '0 of 2 left' }).waitFor({ timeout: 10_000 });
      }
      const newest = b.getByTestId('transaction').first();
      check((await newest.textContent()).includes('update completed, update completed'), `one transaction: ${await newest.textContent()}`);
    }),

    a_large_initial_sync_shows_a_progress_bar_and_offline_writes_count_as_unsynced: () => withDemo(async ({ browser, origin, port }) => {
      await seedServer(port, TOKEN, 3000, (i) => ({ title: `Seeded ${i}`, completed: false, createdAt: i }));
      const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
      // Whether the progress bar was ever on screen, recorded in the page from the first paint.
      await context.addInitScript(() => {
        window.progressShown = [];
        new MutationObserver(() => {
          const bar = document.querySelector('[data-testid=pull-progress]');
          if (bar) window.progressShown.push([bar.value, bar.max]);
        }).observe(document, { subtree: true, childList: true, attributes: true });
      });
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      await waitForStatus(page, 'idle', 30_000);
      await page.locator('[data-testid=left]', { hasText: '3000 of 3000 left' }).waitFor({ timeout: 30_000 });
      const shown = await page.evaluate(() => window.progressShown);
      check(shown.length > 0 && shown.every(([value, max]) => max >= 3000 && value < max), `the bar showed the pull: ${JSON.stringify(shown.slice(0, 5))}`);
      check((await page.getByTestId('pull-progress').count()) === 0, 'and went away once done');

      await page.getByTestId('online').uncheck();
      await add(page, 'Offline one');
      await add(page, 'Offline two');
      await page.locator('[data-testid=unsynced]', { hasText: '2 unsynced writes' }).waitFor();
      await page.getByTestId('online').check();
      await page.getByTestId('unsynced').waitFor({ state: 'detached', timeout: 10_000 });
    }),

    the_status_indicator_shows_each_state: () => withDemo(async ({ browser, origin, server }) => {
      const context = await browser.newContext();
      // Every status the indicator shows, in order, recorded in the page from the first paint.
      await context.addInitScript(() => {
        window.statusesShown = [];
        new MutationObserver(() => {
          const shown = document.querySelector('[data-testid=status]')?.getAttribute('data-status');
          if (shown && shown !== window.statusesShown.at(-1)) window.statusesShown.push(shown);
        }).observe(document, { subtree: true, childList: true, attributes: true });
      });
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      await waitForStatus(page, 'idle');

      await page.getByTestId('online').uncheck();
      await waitForStatus(page, 'offline');
      await page.getByTestId('online').check();
      await waitForStatus(page, 'idle');

      // The server stops answering: the write is syncing, then unanswered (error, retried)...
      await freeze(server);
      try {
        await add(page, 'Wait for the server');
        await waitForStatus(page, 'syncing');
        await waitForStatus(page, 'error', 30_000);
      } finally {
        server.kill('SIGCONT');
      }
      // ...until it answers again.
      await waitForStatus(page, 'idle', 30_000);
      const shown = await page.evaluate(() => window.statusesShown);
      const expected = ['syncing', 'idle', 'offline', 'idle', 'syncing', 'error', 'idle'];
      check(isSubsequence(expected, shown), `the indicator showed ${shown}`);
      check(
        (await page.getByTestId('transaction').first().getAttribute('data-state')) === 'completed',
        'the write went through',
      );
    }),
  };
}

/** Serves the demo (with a config.json holding the token) from its own server and browser. */
async function withDemoServer(binary, demo, body) {
  writeFileSync(join(demo, 'config.json'), JSON.stringify({ authToken: TOKEN }));
  const dir = mkdtempSync(join(tmpdir(), 'ferrosync-demo-'));
  const port = await freePort();
  const server = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', `sqlite://${dir}/demo.db`, '--static', demo, '--dev-token', TOKEN]);
  const browser = await launch();
  try {
    await body({ browser, origin: `http://127.0.0.1:${port}`, port, server });
  } finally {
    await browser.close();
    server.kill('SIGCONT');
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The app in a new browser context (a device with its own storage), synced and idle. */
async function openApp(browser, origin) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/`);
  await waitForStatus(page, 'idle');
  return page;
}

function waitForStatus(page, status, timeout = 10_000) {
  return page.locator(`[data-testid=status][data-status=${status}]`).waitFor({ timeout });
}

function todo(page, title) {
  return page.getByTestId('todo').filter({ has: page.getByTestId('title').getByText(title, { exact: true }) });
}

async function add(page, title) {
  await page.getByTestId('new-todo').fill(title);
  await page.getByTestId('new-todo').press('Enter');
  await todo(page, title).waitFor();
}

async function rename(page, from, to) {
  await todo(page, from).getByTestId('title').dblclick();
  await page.getByTestId('edit').fill(to);
  await page.getByTestId('edit').press('Enter');
  await todo(page, to).waitFor();
}

function titles(page) {
  return page.getByTestId('title').allTextContents();
}

/** Whether `expected` appears in `seen` in order (other entries may come between). */
function isSubsequence(expected, seen) {
  let i = 0;
  for (const s of seen) if (s === expected[i]) i++;
  return i === expected.length;
}
