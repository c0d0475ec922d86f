// The page's side of SQLite on OPFS (bench/peers/sqlite-opfs-worker.js): one dedicated worker per
// open database, asked one operation at a time.
import { name } from './common.js';

/** Starts a worker and opens `path` in it (a new database unless given): `{ path, call(op, args),
 * close(drop) }`. The time this takes is the worker's start-up, loading and compiling SQLite's
 * wasm, installing the VFS and opening the database. */
export async function openSqliteOpfs(path = `/${name('sqlite')}.sqlite3`) {
  const worker = new Worker(new URL('./sqlite-opfs-worker.js', import.meta.url), { type: 'module' });
  const call = (op, args) => new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.error ? reject(new Error(`SQLite on OPFS, ${op}: ${data.error}`)) : resolve(data.result));
    worker.onerror = (e) => reject(new Error(`SQLite on OPFS, ${op}: ${e.message}`));
    worker.postMessage({ op, args });
  });
  try {
    await call('open', { path });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return {
    path,
    call,
    /** Closes the database (deleting it if `drop`) and ends the worker. */
    async close(drop) {
      try {
        await call('close', { drop });
      } finally {
        worker.terminate();
      }
    },
  };
}
