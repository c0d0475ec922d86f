// Scenario 5b: fan-out. `clients` engines (or raw sockets) in this page listen; one more writes
// `writes` documents, `spacingMs` apart; a write's latency at a client runs from the write call
// until that client has it. Returns the latencies of every (write, client) pair, in ms; throws,
// with the counts, if a client misses a write within `timeoutMs` of the last.
import { change, closeSynced, openSocket, openSynced } from './net.js';
import { now } from './common.js';

/** The arrivals of `writes` writes at `clients` clients: `issue(id)` starts a write's clock,
 * `arrive(client, id)` records its latency at a client (once per client and id). */
function arrivals(clients, writes) {
  const issued = new Map();
  const seen = Array.from({ length: clients }, () => new Set());
  const latencies = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  return {
    issue(id) {
      issued.set(id, now());
    },
    arrive(client, id) {
      const start = issued.get(id);
      if (start === undefined || seen[client].has(id)) return;
      seen[client].add(id);
      latencies.push(now() - start);
      if (latencies.length === clients * writes) done();
    },
    /** Resolves to the latencies once all arrived; rejects after `timeoutMs`. */
    async wait(timeoutMs) {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => {
          const missing = seen.map((s, c) => [c, writes - s.size]).filter(([, n]) => n > 0);
          reject(new Error(`${clients * writes - latencies.length} of ${clients * writes} arrivals missing after ${timeoutMs} ms ` +
            `(client: missing writes ${missing.map(([c, n]) => `${c}: ${n}`).join(', ')})`));
        }, timeoutMs);
      });
      try {
        await Promise.race([all, late]);
        return latencies;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Calls `write(i)` for each of `writes`, `spacingMs` apart. */
async function spaced(writes, spacingMs, write) {
  for (let i = 0; i < writes; i++) {
    write(i);
    await new Promise((resolve) => setTimeout(resolve, spacingMs));
  }
}

export const fanOut = {
  async ferrosync({ serverUrl, token, clients, writes, spacingMs, timeoutMs }) {
    const engines = await openSynced(clients + 1, { serverUrl, token });
    const [writer, ...readers] = engines;
    const log = arrivals(clients, writes);
    const stops = readers.map((engine, c) => engine.collection('todos').subscribe((changes) => {
      for (const { id, doc } of changes) if (doc) log.arrive(c, id);
    }));
    try {
      const todos = writer.collection('todos');
      await spaced(writes, spacingMs, (i) => {
        const id = `f${i}`;
        log.issue(id);
        todos.insert({ _id: id, title: `document ${i}`, done: false });
      });
      return await log.wait(timeoutMs);
    } finally {
      for (const stop of stops) stop();
      await closeSynced(engines);
    }
  },

  /** The server relays each change message from one socket to the others. */
  async rawWebSocket({ rawUrl, clients, writes, spacingMs, timeoutMs }) {
    const sockets = await Promise.all(Array.from({ length: clients + 1 }, () => openSocket(`${rawUrl}/broadcast`)));
    const [writer, ...readers] = sockets;
    const log = arrivals(clients, writes);
    readers.forEach((socket, c) => {
      socket.onmessage = (event) => log.arrive(c, JSON.parse(event.data).doc_id);
    });
    try {
      await spaced(writes, spacingMs, (i) => {
        const message = change(`f${i}`, i);
        log.issue(message.doc_id);
        writer.send(JSON.stringify(message));
      });
      return await log.wait(timeoutMs);
    } finally {
      for (const socket of sockets) socket.close();
    }
  },
};
