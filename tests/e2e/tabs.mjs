// End-to-end: two real tabs of one origin on one database, driven by Playwright in Debian's
// Chromium. Both write while the sync server is down; the leading tab closes; the server
// starts; the remaining tab takes over and syncs. The server must hold every write once.
//
// Usage: node tests/e2e/tabs.mjs <ferrosync-server binary> <directory with page.html + pkg/>
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [binary, www] = process.argv.slice(2);
const token = `e2e-${Math.random().toString(16).slice(2)}`;
const dir = mkdtempSync(join(tmpdir(), 'ferrosync-e2e-'));
const children = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startServer(args) {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  children.push(child);
  const port = args[args.indexOf('--listen') + 1].split(':')[1];
  for (let i = 0; i < 300; i++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) return child;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not start: ${log}`);
}

async function serverState(port) {
  const call = (path, body) => fetch(`http://127.0.0.1:${port}/v1/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-ferrosync-client': 'e2e-inspector' },
    body: JSON.stringify(body),
  }).then((r) => r.json());
  const welcome = await call('hello', { type: 'hello', protocol: 1, client_id: 'e2e-inspector', collections: ['todos'] });
  const page = await call('pull', { type: 'pull', seq: 1, cursor: 0, limit: 1000 });
  return { head: welcome.head, ids: page.changes.map((c) => c.doc.id).sort() };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const [pagePort, syncPort] = [await freePort(), await freePort()];
  const origin = `http://127.0.0.1:${pagePort}`;
  // Serves the page only; the engines sync with the second server, started later.
  await startServer(['--listen', `127.0.0.1:${pagePort}`, '--db', `sqlite://${dir}/pages.db`, '--static', www, '--dev-token', token]);

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const context = await browser.newContext();
    const open = async () => {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e.message));
      await page.goto(`${origin}/page.html`);
      await page.waitForFunction(() => window.ferrosyncReady === true);
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
    await startServer(['--listen', `127.0.0.1:${syncPort}`, '--db', `sqlite://${dir}/sync.db`, '--dev-token', token, '--allowed-origin', origin]);
    await second.waitForFunction(() => {
      const txs = window.engine.transactions();
      return txs.length === 10 && txs.every((t) => t.state === 'completed');
    }, null, { timeout: 45_000, polling: 100 });

    const state = await serverState(syncPort);
    const expected = ['first', 'second'].flatMap((p) => [0, 1, 2, 3, 4].map((i) => `${p}-${i}`)).sort();
    check(JSON.stringify(state.ids) === JSON.stringify(expected), `the server has every write: ${state.ids}`);
    check(state.head === 10, `each write applied once (head ${state.head})`);
    console.log('test two_tabs_write_offline_and_the_survivor_syncs_every_write_once ... ok');
  } finally {
    await browser.close();
  }
}

try {
  await main();
  console.log('test result: ok. 1 passed; 0 failed');
} catch (e) {
  console.error(e);
  console.log('test result: FAILED. 0 passed; 1 failed');
  process.exitCode = 1;
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
