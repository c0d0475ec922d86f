// Scenario 5: push throughput and ack latency. `writers` engines (or raw sockets) in this page
// write `total` documents between them, each with at most `inFlight` batches' worth unacknowledged,
// until the server acknowledged every one. Returns `{ ms, latencies, pushed? }`: the total time,
// each write's time from the call to its acknowledgement, and (Ferrosync) the mutations its stats
// count as pushed.
import { now } from './common.js';
import { closeSynced, openSynced, sendFrames, share, windowed } from './net.js';

export const push = {
  async ferrosync({ serverUrl, token, writers, total, batchSize, inFlight }) {
    const engines = await openSynced(writers, { serverUrl, token, batchSize });
    try {
      const pushed = () => engines.reduce((sum, engine) => sum + engine.getStats().value.pushCount, 0);
      const before = pushed();
      const latencies = [];
      const t0 = now();
      await Promise.all(engines.map((engine, w) => {
        const todos = engine.collection('todos');
        const { first, count } = share(total, writers, w);
        return windowed(count, inFlight * batchSize, async (k) => {
          const i = first + k;
          const start = now();
          const handle = await todos.insert({ _id: `w${w}-${i}`, title: `document ${i}`, done: false });
          await handle.settled();
          latencies.push(now() - start);
          handle.free();
        });
      }));
      return { ms: now() - t0, latencies, pushed: pushed() - before };
    } finally {
      await closeSynced(engines);
    }
  },

  /** The same writes as change messages in frames of `batchSize`, acknowledged per frame. */
  rawWebSocket({ rawUrl, writers, total, batchSize, inFlight }) {
    return sendFrames(`${rawUrl}/ack`, { writers, messages: total, batch: batchSize, inFlight }, (answer, data, frame) => {
      if (JSON.parse(answer).ack !== frame.length) throw new Error(`wrong acknowledgement: ${answer}`);
    });
  },
};
