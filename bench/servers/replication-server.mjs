// A small in-memory server for RxDB's replication protocol over HTTP (`replicateRxCollection`),
// the initial-sync benchmark's RxDB backend. It holds named collections of documents
// `{ id, ..., updatedAt, _deleted }`:
// - `GET /<collection>/pull?id=&updatedAt=&limit=`: up to `limit` documents after the checkpoint
//   `{ id, updatedAt }` (omit both for the start), ordered by `updatedAt` then `id`, and the new
//   checkpoint: `{ documents, checkpoint }`;
// - `POST /<collection>/push` with `[{ assumedMasterState?, newDocumentState }]`: writes the rows
//   whose assumed state is the server's (stamping `updatedAt`), and answers the server's state of
//   the others, the conflicts.
// Every answer allows any origin (CORS), since the benchmark page is served from elsewhere.
import { createServer } from 'node:http';

/** `a` before `b` in checkpoint order: `updatedAt`, then `id`. */
const before = (a, b) => a.updatedAt < b.updatedAt || (a.updatedAt === b.updatedAt && a.id < b.id);

/** One collection: its documents by id and, in checkpoint order, as a list. */
class Collection {
  byId = new Map();
  ordered = [];
  clock = 0;

  /** The index of the first document after `checkpoint` (binary search). */
  after(checkpoint) {
    let lo = 0;
    let hi = this.ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(checkpoint, this.ordered[mid])) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  pull(checkpoint, limit) {
    const from = checkpoint ? this.after(checkpoint) : 0;
    const documents = this.ordered.slice(from, from + limit);
    const last = documents.at(-1);
    return { documents, checkpoint: last ? { id: last.id, updatedAt: last.updatedAt } : checkpoint };
  }

  push(rows) {
    const conflicts = [];
    for (const { assumedMasterState, newDocumentState } of rows) {
      const master = this.byId.get(newDocumentState.id);
      if (master && master.updatedAt !== assumedMasterState?.updatedAt) {
        conflicts.push(master);
        continue;
      }
      if (master) this.ordered.splice(this.after(master) - 1, 1);
      this.clock = Math.max(this.clock, Date.now());
      const doc = { ...newDocumentState, updatedAt: this.clock };
      this.byId.set(doc.id, doc);
      this.ordered.splice(this.after(doc), 0, doc);
    }
    return conflicts;
  }
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type',
};

/** Answers one request against `collections`. */
async function handle(collections, req, res) {
  const url = new URL(req.url, 'http://localhost');
  const [, name, action] = url.pathname.split('/');
  const send = (status, body) => {
    res.writeHead(status, { ...CORS, 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS);
    return res.end();
  }
  const collection = () => {
    if (!collections.has(name)) collections.set(name, new Collection());
    return collections.get(name);
  };
  if (req.method === 'GET' && action === 'pull') {
    const q = url.searchParams;
    const checkpoint = q.has('id') ? { id: q.get('id'), updatedAt: Number(q.get('updatedAt')) } : undefined;
    return send(200, collection().pull(checkpoint, Number(q.get('limit') ?? 100)));
  }
  if (req.method === 'POST' && action === 'push') {
    let body = '';
    for await (const chunk of req) body += chunk;
    return send(200, collection().push(JSON.parse(body)));
  }
  return send(404, { error: `no route ${req.method} ${url.pathname}` });
}

/** Starts the server on a free loopback port; resolves to `{ url, close() }`. */
export function startReplicationServer() {
  const collections = new Map();
  const server = createServer((req, res) => {
    handle(collections, req, res).catch((e) => {
      res.writeHead(500, CORS);
      res.end(String(e?.message ?? e));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((done) => server.close(done)),
    }));
  });
}
