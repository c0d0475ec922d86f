// What the end-to-end tests share: free ports, real server processes, Debian's Chromium driven
// by playwright-core, the test page, and a runner printing one line per test and a total.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = [];

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts `ferrosync-server` with `args` and waits until it answers /healthz. */
export async function startServer(binary, args) {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let log = '';
  let exited = false;
  child.stderr.on('data', (chunk) => { log += chunk; });
  child.once('exit', () => { exited = true; });
  children.push(child);
  const port = args[args.indexOf('--listen') + 1].split(':')[1];
  for (let i = 0; i < 300 && !exited; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not start: ${log}`);
}

/** Freezes a server process with `SIGSTOP` and waits until every thread of it has stopped.
 * The stop is not immediate: it takes effect once the thread given the signal runs, and on a busy
 * machine the process's other threads can go on serving for milliseconds before that (a frozen
 * server was seen acknowledging a push sent after the signal). */
export async function freeze(child) {
  child.kill('SIGSTOP');
  const tasks = `/proc/${child.pid}/task`;
  // A thread's state follows the command's closing parenthesis in its stat: `T` once stopped.
  const state = (task) => {
    const stat = readFileSync(`${tasks}/${task}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  };
  const stopped = () => readdirSync(tasks).every((task) => state(task) === 'T');
  for (let i = 0; !stopped(); i++) {
    if (i === 500) throw new Error(`server ${child.pid} did not stop within 5 s of SIGSTOP`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Headless Chromium with the flags this machine needs. */
export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A tab on the test page with the package loaded (`window.ferrosync`). */
export async function openPage(context, origin) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/page.html`);
  await page.waitForFunction(() => window.ferrosyncReady === true);
  return page;
}

/** What a tenant's server holds: `{ head, ids, docs }` (`docs` by id, as the server sends
 * them), asked over HTTP as a new client. */
export async function serverState(port, token) {
  const call = (path, body) => fetch(`http://127.0.0.1:${port}/v1/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-ferrosync-client': 'e2e-inspector' },
    body: JSON.stringify(body),
  }).then((r) => r.json());
  const welcome = await call('hello', { type: 'hello', protocol: 1, client_id: 'e2e-inspector', collections: ['todos'] });
  const page = await call('pull', { type: 'pull', seq: 1, cursor: 0, limit: 1000 });
  return {
    head: welcome.head,
    ids: page.changes.map((c) => c.doc.id).sort(),
    docs: Object.fromEntries(page.changes.map((c) => [c.doc.id, c.doc])),
  };
}

/** Writes `count` documents (`{ _id: 'seed-<i>', ...fields(i) }`) to a tenant's `todos` over
 * HTTP, as a client of its own, in pushes of 1,000. */
export async function seedServer(port, token, count, fields = (i) => ({ n: i })) {
  const client = `e2e-seeder-${Date.now()}`;
  const call = (path, body) => fetch(`http://127.0.0.1:${port}/v1/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-ferrosync-client': client },
    body: JSON.stringify(body),
  }).then((r) => r.json());
  await call('hello', { type: 'hello', protocol: 1, client_id: client, collections: ['todos'] });
  for (let from = 0; from < count; from += 1000) {
    const mutations = Array.from({ length: Math.min(1000, count - from) }, (_, i) => ({
      id: from + i + 1, collection: 'todos', doc_id: `seed-${from + i}`, base_version: 0,
      hlc: { wall: Date.now(), counter: 0, node: 1 }, op: { type: 'insert', fields: fields(from + i) },
    }));
    const answer = await call('push', { type: 'push', seq: from + 1, transactions: mutations.map((m) => ({ mutations: [m] })) });
    if (answer.type !== 'push_result') throw new Error(`seeding failed: ${JSON.stringify(answer).slice(0, 300)}`);
  }
}

/**
 * Runs `body({ context, page, origin, dir, port, browser })` with a page of `www` served by its
 * own ferrosync-server (over a SQLite file in the temporary directory `dir`; `port` is its
 * port, its development token `unused`), then closes all.
 */
export async function withServedPage(binary, www, body) {
  const dir = mkdtempSync(join(tmpdir(), 'ferrosync-e2e-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', `sqlite://${dir}/pages.db`, '--static', www, '--dev-token', 'unused']);
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const page = await openPage(context, origin);
    await body({ context, page, origin, dir, port, browser });
  } finally {
    await browser.close();
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Throws `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs the tests (`{ name: async fn }`) one by one, each within two minutes; prints a line
 * each and the total. */
export async function run(tests) {
  let passed = 0;
  let failed = 0;
  for (const [name, test] of Object.entries(tests)) {
    let timer;
    try {
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out after 120 s')), 120_000);
      });
      await Promise.race([test(), timeout]);
      console.log(`test ${name} ... ok`);
      passed++;
    } catch (e) {
      console.log(`test ${name} ... FAILED`);
      console.error(e);
      failed++;
    } finally {
      clearTimeout(timer);
    }
  }
  for (const child of children) child.kill('SIGTERM');
  console.log(`test result: ${failed ? 'FAILED' : 'ok'}. ${passed} passed; ${failed} failed`);
  // A test that timed out may leave its browser open: do not wait for it.
  process.exit(failed ? 1 : 0);
}
