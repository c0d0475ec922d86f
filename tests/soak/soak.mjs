// The chaos soak: engines in real Chromium contexts (two tabs of one app among them) write at
// random against real ferrosync-server processes while faults are injected at random; then
// everything heals, the outboxes drain, and the product's invariants are counted. Prints a
// table and writes the report as JSON.
//   node tests/soak/soak.mjs <ferrosync-server binary> <www> [seconds] [report.json]
// `www` holds page.html, page.js and the package in pkg/ (as for the end-to-end tests).
// Two phases share the time: one node on a SQLite file, then (when FERROSYNC_TEST_POSTGRES
// names a PostgreSQL server to create a database on) two nodes on one PostgreSQL database,
// each engine given both nodes' URLs. SOAK_SEED picks the random sequence (default: random,
// printed in the report); SOAK_FAULTS=name,name injects only those; SOAK_VERBOSE=1 logs each
// fault.
//
// Two tenants: in "own", each client writes only its own documents (inserts, updates that
// raise `rev`, deletes, three-write transactions), so every mutation is applied exactly once
// and the server's head must equal the mutations acknowledged; in "shared", clients also edit
// the same documents concurrently (last-write-wins), which checks convergence.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, launch, openPage, startServer } from '../e2e/harness.mjs';

const [binary, www, secondsArg = '60', out = 'target/soak/report.json'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** A small seeded generator (mulberry32), so a run can be repeated with SOAK_SEED. */
function rng(state) {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(seed);
const pick = (items) => items[Math.floor(random() * items.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An HS256 JWT for `tenant`, as the server's `--jwt-secret` checks it. */
function token(secret, tenant) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: `soak-${tenant}`, tenant, exp: 4_102_444_800 })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const SKEW_MS = 7 * 60_000; // past the server's 5-minute clamp

const dir = mkdtempSync(join(tmpdir(), 'ferrosync-soak-'));
const secret = createHmac('sha256', String(seed)).update(dir).digest('hex');
const pagePort = await freePort();
const origin = `http://127.0.0.1:${pagePort}`;
const pages = await startServer(binary, ['--listen', `127.0.0.1:${pagePort}`, '--db', `sqlite://${dir}/pages.db`, '--static', www, '--dev-token', 'unused']);
const browser = await launch();
// However the run ends, no server process outlives it.
const running = new Set([pages]);
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Server nodes on one database (`--db` URL), each on a port of its own, restartable. */
class Nodes {
  static async start(db, count) {
    const nodes = new Nodes();
    nodes.db = db;
    nodes.ports = await Promise.all(Array.from({ length: count }, freePort));
    nodes.children = await Promise.all(nodes.ports.map((port) => nodes.launch(port)));
    return nodes;
  }

  async launch(port) {
    const child = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', this.db, '--jwt-secret', secret, '--allowed-origin', origin]);
    running.add(child);
    return child;
  }

  /** The WebSocket URLs an engine is given. */
  urls() {
    return this.ports.map((port) => `ws://127.0.0.1:${port}/v1/sync`);
  }

  /** `kill -9` of one node, restarted after a while (the others keep serving). */
  async kill9() {
    const i = Math.floor(random() * this.ports.length);
    this.children[i].kill('SIGKILL');
    running.delete(this.children[i]);
    await sleep(500 + random() * 2000);
    this.children[i] = await this.launch(this.ports[i]);
  }

  stop() {
    for (const child of this.children) child.kill('SIGTERM');
  }
}

/** A new database on the PostgreSQL server at `base`; its URL. */
function createDatabase(base) {
  const name = `soak_${Date.now()}_${Math.floor(random() * 1e6)}`;
  execFileSync('psql', [base, '-qc', `CREATE DATABASE ${name}`]);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A client: one browser context (one IndexedDB), with one or two tabs running the engine. */
class Client {
  constructor(phase, name, tenant, { skew = 0, tabs = 1 } = {}) {
    Object.assign(this, { phase, name, tenant, skew, tabCount: tabs, tabs: [], next: 0, mutations: 0, uncertain: [], live: new Map(), deleted: new Set(), quotaFull: false, offline: false });
  }

  async start() {
    this.context = await browser.newContext();
    // A full quota, injected (Chromium's quota override does not reach these contexts): while
    // `__soakQuotaFull` is set, IndexedDB writes fail as they do when the origin is out of
    // quota.
    await this.context.addInitScript(() => {
      for (const method of ['put', 'add']) {
        const real = IDBObjectStore.prototype[method];
        IDBObjectStore.prototype[method] = function (...args) {
          if (globalThis.__soakQuotaFull) throw new DOMException('the quota is full (injected)', 'QuotaExceededError');
          return real.apply(this, args);
        };
      }
    });
    if (this.skew) {
      await this.context.addInitScript((skew) => {
        const now = Date.now;
        Date.now = () => now() + skew;
      }, this.skew);
    }
    for (let i = 0; i < this.tabCount; i++) this.tabs.push(await this.open());
  }

  /** A new tab with the engine open. */
  async open() {
    const page = await openPage(this.context, origin);
    if (process.env.SOAK_VERBOSE) page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`soak: ${this.name} console: ${m.text().slice(0, 300)}`); });
    page.on('crash', () => console.error(`soak: a tab of ${this.name} crashed`));
    page.on('close', () => { if (this.tabs.includes(page)) console.error(`soak: a tab of ${this.name} closed unasked at ${new Date().toISOString()}`); });
    await page.evaluate((full) => { globalThis.__soakQuotaFull = full; }, this.quotaFull);
    await page.evaluate(async ({ name, urls, authToken }) => {
      window.engine = await window.ferrosync.SyncEngine.open({
        name, collections: [{ name: 'todos' }], serverUrl: urls, authToken, requestPersistence: false, retryDelay: 200,
      });
    }, { name: `soak-${this.phase.name}-${this.name}`, urls: this.phase.nodes.urls(), authToken: token(secret, this.tenant) });
    return page;
  }

  /** Runs one random write in a random tab; updates the model once it is durable locally. */
  async write() {
    const page = pick(this.tabs);
    const own = [...this.live.keys()];
    const newId = () => `${this.name}-${this.next++}`;
    if (this.quotaFull) return this.writeOnFullQuota(page, newId());
    const op = own.length === 0 ? 0 : random();
    try {
      if (this.tenant === 'shared' && op > 0.5) {
        const id = `s${Math.floor(random() * 5)}`;
        await page.evaluate(async ({ id, by }) => {
          const todos = window.engine.collection('todos');
          if (todos.get(id)) await todos.update(id, { by, at: Date.now() });
          else await todos.insert({ _id: id, by, at: Date.now() });
        }, { id, by: this.name });
        this.count(1);
      } else if (op < 0.35) {
        const id = newId();
        await page.evaluate((doc) => window.engine.collection('todos').insert(doc), { _id: id, owner: this.name, rev: 0 });
        this.live.set(id, 0);
        this.count(1);
      } else if (op < 0.65) {
        const id = pick(own);
        const rev = this.live.get(id) + 1;
        await page.evaluate(({ id, rev }) => window.engine.collection('todos').update(id, { rev }), { id, rev });
        this.live.set(id, rev);
        this.count(1);
      } else if (op < 0.75) {
        const id = pick(own);
        await page.evaluate((id) => window.engine.collection('todos').delete(id), id);
        this.live.delete(id);
        this.deleted.add(id);
        this.count(1);
      } else {
        const [a, b, c] = [newId(), newId(), pick(own)];
        const rev = this.live.get(c) + 1;
        await page.evaluate(({ a, b, c, rev, owner }) => window.engine.transaction(async (t) => {
          t.collection('todos').insert({ _id: a, owner, rev: 0 });
          t.collection('todos').insert({ _id: b, owner, rev: 0 });
          t.collection('todos').update(c, { rev });
        }), { a, b, c, rev, owner: this.name });
        this.live.set(a, 0).set(b, 0).set(c, rev);
        this.count(3);
      }
    } catch (e) {
      // Only the faults close or reload a tab, and never during a write.
      throw new Error(`a write failed: ${e.message}`);
    }
  }

  /** An insert while the quota is full: it is visible at once but its promise waits until
   * storage takes it (or rejects). Whether it reached the server is settled at the end. */
  async writeOnFullQuota(page, id) {
    const outcome = await page.evaluate(async (doc) => {
      const write = window.engine.collection('todos').insert(doc).then(() => 'durable', () => 'refused');
      return Promise.race([write, new Promise((resolve) => setTimeout(() => resolve('waiting'), 1000))]);
    }, { _id: id, owner: this.name, rev: 0 });
    if (outcome === 'durable') {
      this.live.set(id, 0);
      this.count(1);
    } else {
      this.phase.counts[outcome === 'waiting' ? 'writes_waiting_for_storage' : 'writes_refused_locally']++;
      this.uncertain.push(id);
    }
  }

  /** Fills or frees the quota in every tab (and in tabs opened meanwhile). */
  async setQuotaFull(full) {
    this.quotaFull = full;
    await Promise.all(this.tabs.map((page) => page.evaluate((full) => { globalThis.__soakQuotaFull = full; }, full).catch(() => {})));
  }

  count(mutations) {
    this.mutations += mutations;
    this.phase.counts.writes_issued++;
    this.phase.counts.mutations_issued += mutations;
  }

  /** Every tab's visible documents, by id (fields without `_id`). */
  async views() {
    return Promise.all(this.tabs.map((page) => page.evaluate(() => Object.fromEntries(
      window.engine.collection('todos').find({}).map(({ _id, ...fields }) => [_id, fields])))));
  }

  /** Transactions not finished, and failed ones, in the first tab's engine. */
  async outbox() {
    return this.tabs[0].evaluate(() => {
      const txs = window.engine.transactions();
      return { pending: txs.filter((t) => t.state !== 'completed' && t.state !== 'failed').length, failed: txs.filter((t) => t.state === 'failed').length };
    });
  }
}

/** Runs one phase on `nodes` for `seconds`: writes and faults, healing, drain; its report. */
async function phase(name, nodes, seconds) {
  const counts = {
    writes_issued: 0, mutations_issued: 0, writes_waiting_for_storage: 0, writes_refused_locally: 0,
    faults: { kill_9: 0, reload: 0, offline: 0, leader_closed: 0, throttle: 0, quota_full: 0 },
  };
  const context = { name, nodes, counts };
  const clients = [
    new Client(context, 'a', 'own', { tabs: 2 }),
    new Client(context, 'b', 'own', { skew: SKEW_MS }),
    new Client(context, 'c', 'shared'),
    new Client(context, 'd', 'shared', { skew: -SKEW_MS }),
  ];
  for (const client of clients) await client.start();

  /** A fault: injects it and returns how to heal it (nothing when it heals itself, `false`
   * when it does not apply now). */
  const faults = {
    kill_9: () => nodes.kill9(),
    async reload() {
      // A page cannot load offline (the test page has no service worker).
      const online = clients.filter((c) => !c.offline);
      if (!online.length) return false;
      const client = pick(online);
      const i = Math.floor(random() * client.tabs.length);
      const [tab] = client.tabs.splice(i, 1);
      await tab.close();
      client.tabs.splice(i, 0, await client.open());
    },
    async offline() {
      const client = pick(clients);
      if (client.offline) return false;
      await client.context.setOffline(true);
      client.offline = true;
      return async () => {
        await client.context.setOffline(false);
        client.offline = false;
      };
    },
    async leader_closed() {
      // The first tab opened holds the database's lock: it closes, the other takes over.
      const [a] = clients;
      if (a.offline) return false;
      await a.tabs.shift().close();
      a.tabs.push(await a.open());
    },
    async throttle() {
      const client = pick(clients);
      const cdps = await Promise.all(client.tabs.map((page) => client.context.newCDPSession(page)));
      const slow = { offline: false, latency: 300, downloadThroughput: 16_000, uploadThroughput: 16_000 };
      await Promise.all(cdps.map((cdp) => cdp.send('Network.emulateNetworkConditions', slow)));
      return () => Promise.all(cdps.map((cdp) => cdp.send('Network.emulateNetworkConditions',
        { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 }).catch(() => {})));
    },
    async quota_full() {
      const client = pick(clients);
      await client.setQuotaFull(true);
      return () => client.setQuotaFull(false);
    },
  };

  const faultNames = process.env.SOAK_FAULTS?.split(',') ?? Object.keys(faults);
  const started = Date.now();
  const end = started + seconds * 1000;
  let nextFault = started + 2000;
  const healing = [];
  while (Date.now() < end) {
    const now = Date.now();
    for (let i = healing.length - 1; i >= 0; i--) {
      if (healing[i].at <= now) await healing.splice(i, 1)[0].heal();
    }
    if (now >= nextFault) {
      const fault = pick(faultNames);
      const heal = await faults[fault]();
      if (heal !== false) {
        counts.faults[fault]++;
        if (process.env.SOAK_VERBOSE) console.error(`soak: ${context.name}: ${((now - started) / 1000).toFixed(1)} s: ${fault}`);
      }
      if (heal) healing.push({ at: now + 1000 + random() * 4000, heal });
      nextFault = now + 1000 + random() * 4000;
    }
    await pick(clients).write();
    await sleep(random() * 20);
  }

  // Heal everything, then wait for every outbox to drain and every replica to match the server.
  for (const { heal } of healing) await heal();
  const healed = Date.now();

  /** A tenant's documents on the server, paged, as a new client sees them: `{ head, docs }`. */
  async function serverDocs(tenant) {
    const call = (path, body) => fetch(`http://127.0.0.1:${nodes.ports[0]}/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token(secret, tenant)}`, 'content-type': 'application/json', 'x-ferrosync-client': 'soak-inspector' },
      body: JSON.stringify(body),
    }).then((r) => r.json());
    const { head } = await call('hello', { type: 'hello', protocol: 1, client_id: 'soak-inspector', collections: ['todos'] });
    const docs = {};
    for (let cursor = 0, more = true; more;) {
      const page = await call('pull', { type: 'pull', seq: 1, cursor, limit: 1000 });
      for (const { doc } of page.changes) docs[doc.id] = doc;
      [cursor, more] = [page.cursor, page.has_more];
    }
    return { head, docs };
  }

  const visible = (docs) => Object.fromEntries(Object.entries(docs).filter(([, d]) => !d.deleted)
    .map(([id, d]) => [id, d.fields]).sort(([x], [y]) => (x < y ? -1 : 1)));
  const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

  async function unconverged() {
    let pending = 0;
    let diverged = 0;
    for (const client of clients) {
      pending += (await client.outbox()).pending;
      const server = visible((await serverDocs(client.tenant)).docs);
      for (const view of await client.views()) if (!same(view, server)) diverged++;
    }
    return { pending, diverged };
  }

  let state = await unconverged();
  while ((state.pending || state.diverged) && Date.now() - healed < 120_000) {
    if (process.env.SOAK_VERBOSE) console.error(`soak: ${new Date().toISOString()} draining: ${JSON.stringify(state)}`);
    await sleep(250);
    state = await unconverged();
  }
  const drainMs = Date.now() - healed;

  // The invariants, counted.
  const own = await serverDocs('own');
  const tenants = { own, shared: await serverDocs('shared') };
  let lost = 0;
  let orderViolations = 0;
  let resurrected = 0;
  let refusedButWritten = 0;
  for (const client of clients) {
    const { docs } = tenants[client.tenant];
    for (const id of client.uncertain) {
      if (docs[id]) {
        refusedButWritten++;
        client.live.set(id, 0);
        client.count(1);
      }
    }
    for (const [id, rev] of client.live) {
      const doc = docs[id];
      if (!doc || doc.deleted) lost++;
      else if (doc.fields.rev !== rev) orderViolations++;
    }
    for (const id of client.deleted) if (docs[id] && !docs[id].deleted) resurrected++;
  }
  const ownClients = clients.filter((c) => c.tenant === 'own');
  let failed = 0;
  for (const client of clients) failed += (await client.outbox()).failed;
  const replicas = clients.reduce((n, c) => n + c.tabs.length, 0);
  const report = {
    phase: name,
    nodes: nodes.ports.length,
    seconds,
    clients: clients.map((c) => ({ name: c.name, tenant: c.tenant, tabs: c.tabs.length, clock_skew_ms: c.skew })),
    ...counts,
    writes_held_then_synced_after_storage_recovered: refusedButWritten,
    writes_acknowledged: counts.writes_issued - failed - state.pending,
    writes_rejected: failed,
    writes_pending_after_drain: state.pending,
    acknowledged_writes_lost: lost,
    // "own": one version per applied mutation, and every mutation issued there was acknowledged.
    own_tenant_head: own.head,
    own_tenant_mutations_acknowledged: ownClients.reduce((n, c) => n + c.mutations, 0),
    writes_applied_twice: Math.max(0, own.head - ownClients.reduce((n, c) => n + c.mutations, 0)),
    order_violations: orderViolations,
    deleted_documents_back: resurrected,
    replicas,
    replicas_not_equal_to_server: state.diverged,
    drain_ms_after_healing: drainMs,
  };
  report.ok = !report.writes_pending_after_drain && !lost && !report.writes_applied_twice && !orderViolations &&
    !resurrected && !state.diverged && report.own_tenant_head === report.own_tenant_mutations_acknowledged;
  for (const client of clients) {
    client.tabs = [];
    await client.context.close();
  }
  return report;
}

const reports = [];
const postgres = process.env.FERROSYNC_TEST_POSTGRES;
const phases = [['sqlite', () => Nodes.start(`sqlite://${dir}/sync.db`, 1)]];
if (postgres) phases.push(['postgres', () => Nodes.start(createDatabase(postgres), 2)]);
for (const [name, start] of phases) {
  const nodes = await start();
  try {
    reports.push(await phase(name, nodes, seconds / phases.length));
  } finally {
    nodes.stop();
  }
}
const result = { seed, seconds, ok: reports.every((r) => r.ok), phases: reports };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
const rows = (column) => Object.fromEntries(reports.map((r) => [r.phase, column(r)]));
const scalars = (r) => Object.fromEntries(Object.entries(r).filter(([, v]) => typeof v !== 'object'));
console.table(rows(scalars));
console.table(rows((r) => r.faults));
await browser.close();
pages.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
console.log(`soak: ${result.ok ? 'ok' : 'FAILED'} (seed ${seed}; report: ${out})`);
process.exit(result.ok ? 0 : 1);
