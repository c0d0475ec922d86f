// PowerSync's web SDK with its local database only (no service connected): SQLite (wa-sqlite) in a
// worker. Two systems: `powersync` on its default VFS, IDBBatchAtomicVFS (the database's pages in
// IndexedDB), and `powersyncOpfs` on OPFSCoopSyncVFS (a file in OPFS). `enableMultiTabs: false`
// gives each database a dedicated worker that closing it ends (with the default, a shared worker,
// the page would keep it running, and no reopening would start one).
import { column, PowerSyncDatabase, Schema, Table, WASQLiteVFS } from '@powersync/web';
import { makeDocs, name } from './common.js';

/** `makeDocs` documents as a synced table (its writes also queue uploads in `ps_crud`), with
 * `done` as 0 or 1 (SQLite has no booleans) and indexed. */
const schema = new Schema({
  todos: new Table({ title: column.text, done: column.integer }, { indexes: { done: ['done'] } }),
});

export const INSERT = 'INSERT INTO todos (id, title, done) VALUES (?, ?, ?)';

/** The parameters of `INSERT` for each document. */
export const rows = (docs) => docs.map((d) => [d.id, d.title, d.done ? 1 : 0]);

/** One PowerSync system: `open(dbFilename)` opens a database of it (created if new),
 * `drop(db)` closes one and deletes its storage. */
class Variant {
  constructor(options, deleteStorage) {
    this.options = options;
    this.deleteStorage = deleteStorage;
  }

  open(dbFilename) {
    return new PowerSyncDatabase({ schema, database: { dbFilename, enableMultiTabs: false, ...this.options } });
  }

  /** A new database holding `docs` documents, written in transactions of 10,000. */
  async seed(docs) {
    const db = this.open(`${name('powersync')}.db`);
    await db.waitForReady();
    const all = rows(makeDocs(docs));
    for (let i = 0; i < all.length; i += 10_000) {
      await db.writeTransaction((tx) => tx.executeBatch(INSERT, all.slice(i, i + 10_000)));
    }
    return db;
  }

  async drop(db) {
    const file = db.database.name;
    await db.close();
    await this.deleteStorage(file);
  }

  /** Runs `body(db)` on `seed(docs)`, then drops the database. */
  async with(docs, body) {
    const db = await this.seed(docs);
    try {
      return await body(db);
    } finally {
      await this.drop(db);
    }
  }
}

const deleteIndexedDB = (file) => new Promise((resolve, reject) => {
  const r = indexedDB.deleteDatabase(file);
  r.onsuccess = resolve;
  r.onerror = () => reject(r.error);
});

/** Deletes the database's file and its journals from the root of OPFS. */
async function deleteOpfsFiles(file) {
  const root = await navigator.storage.getDirectory();
  for (const suffix of ['', '-journal', '-wal']) {
    await root.removeEntry(`${file}${suffix}`).catch((e) => {
      if (e.name !== 'NotFoundError') throw e;
    });
  }
}

const VARIANTS = {
  powersync: new Variant({}, deleteIndexedDB),
  powersyncOpfs: new Variant({ vfs: WASQLiteVFS.OPFSCoopSyncVFS }, deleteOpfsFiles),
};

/** A scenario's functions for both PowerSync systems: `{ powersync: make(variant), ... }`. */
export const powerSyncSystems = (make) =>
  Object.fromEntries(Object.entries(VARIANTS).map(([system, variant]) => [system, make(variant)]));

/** How many documents `db` holds (`where` filters them). */
export async function countPowerSync(db, where = '') {
  return (await db.get(`SELECT count(*) AS n FROM todos ${where}`)).n;
}
