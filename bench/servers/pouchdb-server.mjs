// pouchdb-server (npm, in memory), the CouchDB-compatible server PouchDB replicates from, with
// CORS open to the page (served by ferrosync-server on another port; PouchDB's requests carry
// credentials, so they are allowed) and its log in a file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const binary = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'pouchdb-server');

/** Starts pouchdb-server on `port`; resolves once it answers, to `{ url, seed(db, docs), close() }`. */
export async function startPouchdbServer(port) {
  const dir = mkdtempSync(join(tmpdir(), 'ferrosync-pouchdb-'));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    httpd: { enable_cors: true },
    cors: { origins: '*', credentials: true, methods: 'GET, PUT, POST, HEAD, DELETE', headers: 'accept, authorization, content-type, origin, referer' },
    log: { file: join(dir, 'log.txt'), level: 'error' },
  }));
  const child = spawn(binary, ['--in-memory', '--port', String(port), '--config', config, '--no-stdout-logs'], { cwd: dir, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  for (let waited = 0; ; waited += 100) {
    if (await fetch(url).then((r) => r.ok, () => false)) break;
    if (child.exitCode !== null || waited > 30_000) {
      await close();
      throw new Error(`pouchdb-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  /** Creates database `db` holding `docs` (written in bulk requests of 5,000). */
  const seed = async (db, docs) => {
    await fetch(`${url}/${db}`, { method: 'PUT' });
    for (let i = 0; i < docs.length; i += 5_000) {
      const response = await fetch(`${url}/${db}/_bulk_docs`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ docs: docs.slice(i, i + 5_000) }),
      });
      if (!response.ok) throw new Error(`seeding ${db}: ${response.status} ${await response.text()}`);
    }
    const info = await (await fetch(`${url}/${db}`)).json();
    if (info.doc_count !== docs.length) throw new Error(`seeding ${db}: it holds ${info.doc_count} documents, not ${docs.length}`);
  };
  return { url, seed, close };
}
