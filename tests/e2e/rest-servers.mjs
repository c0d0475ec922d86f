// The REST APIs the connector tests and benchmark write to: json-server (npm, unchanged) for
// list/create/update/delete, and a small batch endpoint that creates through json-server.
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

/**
 * Serves `POST /contacts/batch` with `{ items: [{ changeId, data }] }`: creates each record
 * through json-server at `target` and answers `[{ changeId, id }]` after `delay` ms. A record
 * named `no-id` gets no id in the answer (a response the connector cannot map). `stats` counts
 * requests and the most under way at once.
 */
export function startBatchServer({ port, target, delay = 0 }) {
  const stats = { requests: 0, inFlight: 0, maxInFlight: 0 };
  const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type', 'access-control-allow-methods': 'POST' };
  const server = createServer(async (req, res) => {
    if (req.method === 'OPTIONS') return res.writeHead(204, cors).end();
    if (req.method !== 'POST' || req.url !== '/contacts/batch') return res.writeHead(404, cors).end();
    stats.requests++;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    let body = '';
    for await (const chunk of req) body += chunk;
    await new Promise((r) => setTimeout(r, delay));
    const results = [];
    for (const { changeId, data } of JSON.parse(body).items) {
      const created = await fetch(`${target}/contacts`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(data),
      }).then((r) => r.json());
      results.push(data.name === 'no-id' ? { changeId } : { changeId, id: created.id });
    }
    stats.inFlight--;
    res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify(results));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, stats })));
}
