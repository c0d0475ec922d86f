// What the benchmark runner and report share: the systems' display names, statistics and
// number formatting.

/** Display names of the systems under test. */
export const NAMES = {
  ferrosync: 'Ferrosync',
  raw: 'raw IndexedDB',
  rawWebSocket: 'raw WebSocket',
  tanstack: 'TanStack DB',
  tanstackOffline: 'TanStack offline-transactions',
  rxdb: 'RxDB (Dexie storage)',
  dexie: 'Dexie',
  pouchdb: 'PouchDB',
  powersync: 'PowerSync',
  powersyncOpfs: 'PowerSync (OPFS)',
  sqliteOpfs: 'SQLite wasm on OPFS',
};

/** Systems that are the platform's limit rather than a peer: shown, but never "the winner". */
export const PLATFORM = new Set(['raw', 'rawWebSocket', 'sqliteOpfs']);

/** The `q` quantile of `xs` (nearest rank). */
export function quantile(xs, q) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The median of `xs` (the mean of the middle two when their number is even). */
export function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A figure with three significant digits at most, thousands as "k". */
export function format(x) {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1000) return `${(x / 1000).toFixed(1)}k`;
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 0.1) return x.toFixed(2);
  return x.toPrecision(2);
}
