// A small server for RxDB's replication protocol, so RxDB's initial sync can be measured beside
// Ferrosync's: `GET /pull/ROWS?updatedAt=U&id=I&limit=N` returns the next N of ROWS generated
// documents after the checkpoint { id, updatedAt } (documents ordered by updatedAt, then id), as
// `{ documents, checkpoint }`. The rows live in memory; answers allow any origin (the page is
// served by ferrosync-server on another port).
import { createServer } from 'node:http';

/** `rows` documents shaped like the page's (`bench/peers/common.js` makeDocs), plus the
 * replication fields; `updatedAt` increases with the index. */
function makeRows(rows) {
  return Array.from({ length: rows }, (_, i) => ({
    id: `doc${String(i).padStart(7, '0')}`, title: `document ${i}`, done: i % 2 === 1, updatedAt: i + 1, _deleted: false,
  }));
}

/** The documents after `checkpoint`, at most `limit`. */
function pull(docs, checkpoint, limit) {
  const after = (d) => d.updatedAt > checkpoint.updatedAt || (d.updatedAt === checkpoint.updatedAt && d.id > checkpoint.id);
  let start = 0;
  let end = docs.length;
  while (start < end) {
    const mid = (start + end) >> 1;
    if (after(docs[mid])) end = mid;
    else start = mid + 1;
  }
  const documents = docs.slice(start, start + limit);
  const last = documents.at(-1);
  return { documents, checkpoint: last ? { id: last.id, updatedAt: last.updatedAt } : checkpoint };
}

/** Starts the server on `port` (loopback); resolves to `{ url, close() }`. */
export function startReplicationServer(port) {
  const sets = new Map();
  const server = createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    const url = new URL(req.url, 'http://localhost');
    const match = /^\/pull\/(\d+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      res.writeHead(404).end();
      return;
    }
    const rows = Number(match[1]);
    if (!sets.has(rows)) sets.set(rows, makeRows(rows));
    const checkpoint = { id: url.searchParams.get('id') ?? '', updatedAt: Number(url.searchParams.get('updatedAt') ?? 0) };
    const body = JSON.stringify(pull(sets.get(rows), checkpoint, Number(url.searchParams.get('limit') ?? 1000)));
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise((done) => server.close(done)),
    }));
  });
}
