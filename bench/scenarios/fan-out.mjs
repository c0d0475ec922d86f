// Scenario 5b: one client's write reaching many others (bench/peers/fan-out.js).
import { quantile } from '../stats.mjs';
import { expectCount, networkRuns } from './net.mjs';

export default ({ quick }) => {
  const writes = quick ? 20 : 50;
  const spacingMs = 20;
  return {
    id: 'fan-out',
    number: '5b',
    title: 'Fan-out latency',
    about: `C clients subscribe to the collection; one more client writes ${writes} documents, ` +
      `${spacingMs} ms apart so they do not pile up. A write's latency at a client runs from the insert ` +
      'call until that client\'s subscription has the document (through ferrosync-server on loopback); ' +
      'the figures are over every (write, client) pair. All clients are Ferrosync engines with their own ' +
      'databases in one page of one headless Chromium, in one tenant, on a 2-core machine shared with ' +
      'the server and the runner; the server\'s document count is checked after each run, and a client ' +
      'missing a write fails the run. The raw WebSocket baseline: C + 1 sockets to a Node server on ' +
      'loopback that relays each change message from the writing socket to the others.',
    systems: ['ferrosync', 'rawWebSocket'],
    page: 'fanOut',
    ...networkRuns('fanOut', (latencies, args, docs) => {
      expectCount(latencies.length, args.clients * args.writes, 'arrivals');
      expectCount(docs, args.writes, 'documents on the server');
    }),
    cases: (quick ? [2, 8] : [2, 8, 32]).map((clients) => ({
      label: `${clients} clients`, args: { clients, writes, spacingMs, timeoutMs: 10_000 },
    })),
    warmup: { clients: 2, writes: 5, spacingMs, timeoutMs: 10_000 },
    metrics: [0.5, 0.95].map((q) => ({
      id: `fan-out-p${q * 100}`,
      title: `Fan-out latency (p${q * 100})`,
      unit: `ms (p${q * 100})`,
      lowerIsBetter: true,
      ...(q === 0.95 ? { target: { text: 'p95 ≤ 10 ms at 32 clients', value: 10, case: '32 clients' } } : {}),
      value: (latencies) => quantile(latencies, q),
    })),
  };
};
