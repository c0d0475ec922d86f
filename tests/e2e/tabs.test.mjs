// Two real tabs of one origin on one database. Both write while the sync server is down; the
// leading tab closes; the server starts; the remaining tab takes over and syncs. The server
// must hold every write exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, freePort, launch, openPage, serverState, startServer } from './harness.mjs';

export function tabTests(binary, www) {
  return {
    async two_tabs_write_offline_and_the_survivor_syncs_every_write_once() {
      const token = `e2e-${Math.random().toString(16).slice(2)}`;
      const dir = mkdtempSync(join(tmpdir(), 'ferrosync-e2e-'));
      const [pagePort, syncPort] = [await freePort(), await freePort()];
      const origin = `http://127.0.0.1:${pagePort}`;
      // Serves the page only; the engines sync with a second server, started later.
      const pages = await startServer(binary, ['--listen', `127.0.0.1:${pagePort}`, '--db', `sqlite://${dir}/pages.db`, '--static', www, '--dev-token', token]);
      const browser = await launch();
      try {
        const context = await browser.newContext();
        const open = async () => {
          const page = await openPage(context, origin);
          await page.evaluate(async ({ port, token }) => {
            window.engine = await window.ferrosync.SyncEngine.open({
              name: 'e2e-tabs',
              collections: [{ name: 'todos' }],
              serverUrl: `ws://127.0.0.1:${port}/v1/sync`,
              authToken: token,
              requestPersistence: false,
            });
          }, { port: syncPort, token });
          return page;
        };
        const write = (page, prefix) => page.evaluate(async (prefix) => {
          const todos = window.engine.collection('todos');
          for (let i = 0; i < 5; i++) await todos.insert({ _id: `${prefix}-${i}`, title: `${prefix} ${i}` });
          return window.engine.getStatus().value;
        }, prefix);

        const first = await open();
        const second = await open();
        check(await write(first, 'first') === 'offline', 'the server is down: offline');
        await write(second, 'second');
        const seen = await second.evaluate(() => window.engine.collection('todos').count());
        check(seen === 10, `the second tab sees both tabs' writes (${seen})`);

        await first.close();
        const sync = await startServer(binary, ['--listen', `127.0.0.1:${syncPort}`, '--db', `sqlite://${dir}/sync.db`, '--dev-token', token, '--allowed-origin', origin]);
        await second.waitForFunction(() => {
          const txs = window.engine.transactions();
          return txs.length === 10 && txs.every((t) => t.state === 'completed');
        }, null, { timeout: 45_000, polling: 100 });

        const state = await serverState(syncPort, token);
        const expected = ['first', 'second'].flatMap((p) => [0, 1, 2, 3, 4].map((i) => `${p}-${i}`)).sort();
        check(JSON.stringify(state.ids) === JSON.stringify(expected), `the server has every write: ${state.ids}`);
        check(state.head === 10, `each write applied once (head ${state.head})`);
        sync.kill('SIGTERM');
      } finally {
        await browser.close();
        pages.kill('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
