// Scenario 1: an optimistic write, timed until live queries report it (bench/peers/live-write.js).
import { quantile } from '../stats.mjs';

const MANY = '100k docs, 100 queries';

export default ({ quick }) => ({
  id: 'live-write',
  number: 1,
  title: 'Optimistic write → live query callback',
  about: 'Each system holds the documents (half match `done == false`), subscribes a live query to ' +
    'the matching ones, then inserts matching documents one by one; a write\'s time runs from the call ' +
    'until the query\'s callback has it. `performance.now()` is coarsened to 0.1 ms, so writes are timed ' +
    'in groups of 50 and each group gives its mean; the figure is the median group (up to 500 writes, ' +
    'fewer when a system needs more than 3 s). PowerSync (on its default VFS, in IndexedDB) has no ' +
    'optimistic layer: a write is an `execute` of one INSERT, committed to its database in IndexedDB ' +
    'before its `watch` runs the query again in its worker (with `throttleMs: 0`: its default ' +
    'trailing throttle would wait 30 ms first). In the last case 100 live queries follow the open ' +
    'documents sorted by title, each with its own limit (10 to 109), and every write enters all of ' +
    'them (its title sorts first): a write\'s time runs until all 100 callbacks have it. Ferrosync ' +
    'declares an index on `done` and `title`, TanStack DB a B-tree index on `title`. RxDB, Dexie ' +
    'and PowerSync run each of their queries again after a write (about 2 s and 10 s per write ' +
    'for 100 queries here for RxDB and Dexie), so they are left out of that case.',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie', 'powersync'],
  page: 'liveWrite',
  cases: [
    ...(quick ? [1_000] : [1_000, 10_000, 100_000]).map((docs) => ({
      label: `${docs / 1000}k docs`, args: { docs, writes: quick ? 100 : 500, budgetMs: 3_000 },
    })),
    {
      label: quick ? '10k docs, 100 queries' : MANY,
      args: { docs: quick ? 10_000 : 100_000, queries: 100, writes: quick ? 100 : 500, budgetMs: 3_000 },
      systems: ['ferrosync', 'tanstack'],
    },
  ],
  warmup: { docs: 1_000, writes: 50, budgetMs: 3_000 },
  // 100k documents take long to write for the slower peers: two runs there.
  reps: (reps, { docs }) => (docs >= 100_000 ? Math.min(reps, 2) : reps),
  metrics: [{
    id: 'live-write',
    title: 'Optimistic write visible to a live query',
    unit: 'ms per write (p50)',
    lowerIsBetter: true,
    target: { text: 'p50 ≤ 0.1 ms at 100k docs', value: 0.1, case: '100k docs' },
    cases: ['1k docs', '10k docs', '100k docs'],
    value: (times) => quantile(times, 0.5),
  }, {
    id: 'live-write-100',
    title: 'Optimistic write visible to 100 live queries',
    unit: 'ms per write (p50)',
    lowerIsBetter: true,
    target: { text: 'p50 ≤ 1 ms at 100k docs', value: 1, case: MANY },
    cases: [MANY, '10k docs, 100 queries'],
    value: (times) => quantile(times, 0.5),
  }],
});
