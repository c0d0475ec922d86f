// SQLite's official wasm build on the Origin Private File System, in a dedicated worker (driven by
// bench/peers/sqlite-opfs.js). Its `opfs-sahpool` VFS needs no cross-origin isolation, which the
// benchmark's server cannot give (SQLite's `opfs` VFS needs SharedArrayBuffer). Set up as the
// platform's limit with IndexedDB's durability in Chromium (a commit is written to the OS, not
// flushed to the disk): a write-ahead log (exclusive locking: this VFS has no shared memory) and
// `synchronous = NORMAL`, which flushes at checkpoints only. SQLite's defaults (a rollback
// journal, `synchronous = FULL`) flush every commit several times.
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';

let pool;
let db;
let file;

const ops = {
  /** Loads SQLite, installs the VFS (taking its pool of OPFS files), opens `path` (created with
   * the `todos` table and an index on `done` if new). */
  async open({ path }) {
    const sqlite3 = await sqlite3InitModule();
    pool = await sqlite3.installOpfsSAHPoolVfs();
    file = path;
    db = new pool.OpfsSAHPoolDb(file);
    db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA synchronous = NORMAL;');
    const journal = db.selectValue('PRAGMA journal_mode = WAL');
    if (journal !== 'wal') throw new Error(`journal mode ${journal}, not wal`);
    db.exec('CREATE TABLE IF NOT EXISTS todos (id TEXT PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL);' +
      'CREATE INDEX IF NOT EXISTS todos_done ON todos (done);');
  },

  /** Inserts `docs` in one transaction, committed when this returns. */
  insert({ docs }) {
    db.transaction(() => {
      const statement = db.prepare('INSERT INTO todos (id, title, done) VALUES (?, ?, ?)');
      try {
        for (const d of docs) statement.bind([d.id, d.title, d.done ? 1 : 0]).stepReset();
      } finally {
        statement.finalize();
      }
    });
  },

  /** The first `limit` documents with `done` false, through the index. */
  first: ({ limit }) => db.selectObjects('SELECT id, title, done FROM todos WHERE done = 0 LIMIT ?', [limit]),

  count: () => db.selectValue('SELECT count(*) FROM todos'),

  /** Closes the database, deletes its file if `drop`, and lets go of the VFS's files, so that
   * another worker can take them. */
  close({ drop }) {
    db.close();
    if (drop) pool.unlink(file);
    pool.pauseVfs();
  },
};

self.onmessage = async ({ data: { op, args } }) => {
  try {
    self.postMessage({ result: await ops[op](args) });
  } catch (e) {
    self.postMessage({ error: String(e?.message ?? e) });
  }
};
