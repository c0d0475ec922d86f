// Scenario 1: an optimistic write, timed until a live query reports it (bench/peers/live-write.js).
import { quantile } from '../stats.mjs';

export default ({ quick }) => ({
  id: 'live-write',
  number: 1,
  title: 'Optimistic write → live query callback',
  about: 'Each system holds the documents (half match `done == false`), subscribes a live query to ' +
    'the matching ones, then inserts matching documents one by one; a write\'s time runs from the call ' +
    'until the query\'s callback has it. `performance.now()` is coarsened to 0.1 ms, so writes are timed ' +
    'in groups of 50 and each group gives its mean; the figure is the median group (up to 500 writes, ' +
    'fewer when a system needs more than 3 s). PowerSync (on its default VFS, in IndexedDB) has no optimistic layer: a write is an ' +
    '`execute` of one INSERT, committed to its database in IndexedDB before its `watch` runs the query ' +
    'again in its worker (with `throttleMs: 0`: its default trailing throttle would wait 30 ms first).',
  systems: ['ferrosync', 'tanstack', 'rxdb', 'dexie', 'powersync'],
  page: 'liveWrite',
  cases: (quick ? [1_000] : [1_000, 10_000, 100_000]).map((docs) => ({
    label: `${docs / 1000}k docs`, args: { docs, writes: quick ? 100 : 500, budgetMs: 3_000 },
  })),
  warmup: { docs: 1_000, writes: 50, budgetMs: 3_000 },
  // 100k documents take long to write for the slower peers: two runs there.
  reps: (reps, { docs }) => (docs >= 100_000 ? Math.min(reps, 2) : reps),
  metrics: [{
    id: 'live-write',
    title: 'Optimistic write visible to a live query',
    unit: 'ms per write (p50)',
    lowerIsBetter: true,
    target: { text: 'p50 ≤ 0.1 ms at 100k docs', value: 0.1, case: '100k docs' },
    value: (times) => quantile(times, 0.5),
  }],
});
