// Scenario 5: push throughput and ack latency with several writers (bench/peers/push.js).
import { quantile } from '../stats.mjs';
import { expectCount, networkRuns } from './net.mjs';

/** Mutations per push (Ferrosync's default `batchSize`) and pushes' worth in flight per writer. */
const BATCH = 100;
const IN_FLIGHT = 4;

export default ({ quick }) => {
  const total = quick ? 2_000 : 10_000;
  const label = (writers) => `${writers} writer${writers === 1 ? '' : 's'}`;
  return {
    id: 'push',
    number: 5,
    title: 'Push throughput and ack latency',
    about: `W writers write ${total.toLocaleString('en')} documents between them to ferrosync-server ` +
      'on loopback, each document a transaction of its own, each writer keeping at most ' +
      `${IN_FLIGHT * BATCH} inserts unacknowledged (${IN_FLIGHT} pushes of \`batchSize\` ${BATCH}); ` +
      'the run ends when the server has acknowledged every write (`settled()`). The writers are ' +
      'Ferrosync engines with their own databases in one page of one headless Chromium, in one tenant, ' +
      'on a 2-core machine shared with the server and the runner; the server\'s document count and the ' +
      'engines\' `pushCount` are checked after each run. Throughput is writes acknowledged per second; ' +
      'a write\'s latency runs from the insert call until `settled()` resolves, so with this many ' +
      'writes in flight it is mostly queueing (about the writes in flight over the throughput). The raw WebSocket ' +
      'baseline sends the same number of change messages of the same JSON size over W sockets in ' +
      `frames of ${BATCH}, as many frames in flight, to a Node server on loopback that acknowledges ` +
      'each frame: the transport\'s limit (its latency runs from a frame\'s send to its acknowledgement).',
    systems: ['ferrosync', 'rawWebSocket'],
    page: 'push',
    ...networkRuns('push', (result, args, docs) => {
      expectCount(result.latencies.length, args.total, 'writes settled');
      expectCount(result.pushed, args.total, 'mutations the engines count as pushed');
      expectCount(docs, args.total, 'documents on the server');
    }),
    cases: (quick ? [1, 4] : [1, 4, 16]).map((writers) => ({
      label: label(writers), args: { writers, total, batchSize: BATCH, inFlight: IN_FLIGHT },
    })),
    warmup: { writers: 1, total: 500, batchSize: BATCH, inFlight: IN_FLIGHT },
    // 16 writers take about 10 s a run.
    reps: (reps, { writers }) => (writers === 16 ? Math.min(reps, 2) : reps),
    metrics: [
      {
        id: 'push-throughput',
        title: 'Push throughput',
        unit: 'mutations acked/s',
        lowerIsBetter: false,
        target: { text: '≥ 20k mutations/s', value: 20_000, case: label(1) },
        value: ({ ms }, args) => (args.total * 1000) / ms,
      },
      ...[0.5, 0.95].map((q) => ({
        id: `push-ack-p${q * 100}`,
        title: `Ack latency (p${q * 100})`,
        unit: `ms (p${q * 100})`,
        lowerIsBetter: true,
        value: ({ latencies }) => quantile(latencies, q),
      })),
    ],
  };
};
