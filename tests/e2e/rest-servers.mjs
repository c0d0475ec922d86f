// The REST APIs the connector tests and benchmark write to: json-server (npm, unchanged) for
// list/create/update/delete; a small batch endpoint that creates, updates and deletes through
// json-server; and an asynchronous endpoint that accepts a create with `202` and no id, makes
// it later, and answers a status for it.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts json-server on `port` over a fresh `contacts` file in `dir`, answering after `delay` ms. */
export async function startJsonServer({ port, dir, delay = 0 }) {
  const db = join(dir, `rest-${port}.json`);
  writeFileSync(db, JSON.stringify({ contacts: [] }));
  const child = spawn(join(root, 'node_modules/.bin/json-server'),
    [db, '--port', String(port), '--host', '127.0.0.1', '--delay', String(delay), '--quiet'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/contacts`)).ok) return child;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`json-server did not start: ${log}`);
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'content-type',
  'access-control-allow-methods': 'GET, POST, PATCH, DELETE',
};

/** A JSON request to json-server at `target`. */
function call(target, method, path, body) {
  return fetch(`${target}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((r) => r.json());
}

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : undefined;
}

/**
 * Serves `/contacts/batch` through json-server at `target`, answering after `delay` ms:
 * `POST` `{ items: [{ changeId, data }] }` creates each record and answers `[{ changeId, id }]`
 * (a record named `no-id` gets no id in the answer: a response the connector cannot map);
 * `PATCH` `{ items: [{ changeId, id, changes }] }` updates each and answers
 * `[{ changeId, id, updatedAt }]`; `DELETE` `{ items: [{ changeId, id }] }` deletes each and
 * answers `[{ changeId, id }]`. `stats` counts requests (in all and by method) and the most
 * under way at once.
 */
export function startBatchServer({ port, target, delay = 0 }) {
  const stats = { requests: 0, byMethod: {}, inFlight: 0, maxInFlight: 0 };
  const server = createServer(async (req, res) => {
    if (req.method === 'OPTIONS') return res.writeHead(204, CORS).end();
    const write = {
      POST: async ({ changeId, data }) => {
        const created = await call(target, 'POST', '/contacts', data);
        return data.name === 'no-id' ? { changeId } : { changeId, id: created.id };
      },
      PATCH: async ({ changeId, id, changes }) => {
        const updated = await call(target, 'PATCH', `/contacts/${id}`, changes);
        return { changeId, id: updated.id, updatedAt: updated.updatedAt };
      },
      DELETE: async ({ changeId, id }) => {
        await call(target, 'DELETE', `/contacts/${id}`);
        return { changeId, id };
      },
    }[req.method];
    if (!write || req.url !== '/contacts/batch') return res.writeHead(404, CORS).end();
    stats.requests++;
    stats.byMethod[req.method] = (stats.byMethod[req.method] ?? 0) + 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    const { items } = await readJson(req);
    await new Promise((r) => setTimeout(r, delay));
    const results = [];
    for (const item of items) results.push(await write(item));
    stats.inFlight--;
    res.writeHead(200, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify(results));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, stats })));
}

/**
 * An API that confirms writes later: `POST /contacts/async` with `{ ref, data }` answers `202`
 * with no body, and `delay` ms later creates the record through json-server at `target`
 * (`ref` kept on it), refuses it (a record named `refuse`), or never gets to it (named
 * `never`). `GET /contacts/async/<ref>` answers `{ status: 'pending' }`, `{ status: 'done', id }`
 * or `{ status: 'refused', error }`. `stats` counts the writes accepted and the records made.
 */
export function startAsyncServer({ port, target, delay }) {
  const stats = { accepted: 0, created: 0 };
  const statuses = new Map();
  const server = createServer(async (req, res) => {
    if (req.method === 'OPTIONS') return res.writeHead(204, CORS).end();
    const json = (status, body) =>
      res.writeHead(status, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method === 'POST' && req.url === '/contacts/async') {
      const { ref, data } = await readJson(req);
      stats.accepted++;
      statuses.set(ref, { status: 'pending' });
      setTimeout(async () => {
        if (data.name === 'never') return;
        if (data.name === 'refuse') {
          statuses.set(ref, { status: 'refused', error: 'the name is not allowed' });
          return;
        }
        const created = await call(target, 'POST', '/contacts', { ...data, ref });
        stats.created++;
        statuses.set(ref, { status: 'done', id: created.id });
      }, delay);
      return res.writeHead(202, CORS).end();
    }
    const ref = req.method === 'GET' && req.url.startsWith('/contacts/async/')
      ? decodeURIComponent(req.url.slice('/contacts/async/'.length))
      : undefined;
    if (ref === undefined || !statuses.has(ref)) return json(404, { error: 'unknown write' });
    return json(200, statuses.get(ref));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, stats })));
}
