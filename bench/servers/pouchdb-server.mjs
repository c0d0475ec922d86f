// pouchdb-server (a CouchDB-compatible server on PouchDB) for the initial-sync benchmark: in
// memory, on a free loopback port, logging to a file, answering CORS requests from the page.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../tests/e2e/harness.mjs';

/** Starts pouchdb-server with its config and log in `dir`, allowing `origin`; resolves to
 * `{ url, close() }` once it answers. */
export async function startPouchServer({ dir, origin }) {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    log: { file: join(dir, 'log.txt') },
    httpd: { enable_cors: true },
    cors: { origins: origin, credentials: true, methods: 'GET, HEAD, POST, PUT, DELETE' },
  }));
  const port = await freePort();
  const child = spawn('node', ['node_modules/pouchdb-server/bin/pouchdb-server', '--in-memory',
    '--no-stdout-logs', '--port', String(port), '--config', config], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pouchdb-server exited with ${child.exitCode} (log: ${dir})`);
    if (await fetch(url).then((r) => r.ok, () => false)) return { url, close };
    if (Date.now() > deadline) {
      await close();
      throw new Error(`pouchdb-server did not answer on ${url} (log: ${dir})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
