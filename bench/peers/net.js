// What the network scenarios share (push, fan-out, echo): synced Ferrosync engines, raw
// WebSockets to the Node baseline server (bench/servers/ws-server.mjs), change messages.
import { SyncEngine } from 'ferrosync';
import { name, now } from './common.js';

/** `count` engines syncing the collection `todos` with the server, connected when this resolves. */
export async function openSynced(count, { serverUrl, token, batchSize }) {
  const engines = await Promise.all(Array.from({ length: count }, () => SyncEngine.open({
    name: name('ferrosync'), collections: [{ name: 'todos' }], serverUrl, authToken: token,
    requestPersistence: false, ...(batchSize ? { batchSize } : {}),
  })));
  await Promise.all(engines.map((engine) => engine.forceSync()));
  return engines;
}

/** Destroys `engines` and deletes their databases. */
export async function closeSynced(engines) {
  for (const engine of engines) engine.destroy();
  await Promise.all(engines.map((engine) => SyncEngine.deleteDatabase(engine.name)));
}

/** Runs `task(i)` for i in [0, count), at most `window` at a time. */
export async function windowed(count, window, task) {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}

/** The `k`th of `parts` near-equal shares of `total` items: `{ first, count }`. */
export function share(total, parts, k) {
  const size = Math.ceil(total / parts);
  const first = Math.min(total, k * size);
  return { first, count: Math.min(size, total - first) };
}

/** An insert of document `id` as Ferrosync pushes it (the size of a change on the wire). */
export const change = (id, i) => ({
  base_version: 0, collection: 'todos', doc_id: id, hlc: { counter: 0, node: 2166136261, wall: Date.now() },
  id: i, op: { fields: { done: false, title: `document ${i}` }, type: 'insert' },
});

/** A WebSocket to `url`, open when this resolves. */
export function openSocket(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
}

/** A socket whose server answers every frame with one frame, in order: `call(data)` sends a
 * frame and resolves to the answer's text. */
export async function callSocket(url) {
  const socket = await openSocket(url);
  const waiting = [];
  socket.onmessage = (event) => waiting.shift()(event.data);
  return {
    call(data) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        socket.send(data);
      });
    },
    close: () => socket.close(),
  };
}

/** Sends `messages` as `writers` sockets' frames of `batch` messages to the server at `url`, at
 * most `inFlight` frames unanswered per socket, until every frame is answered. `check(answer,
 * data, frame)` throws on a wrong answer. Returns `{ ms, latencies }`: the total time, and each
 * message's time from its frame's send to the answer. */
export async function sendFrames(url, { writers, messages, batch, inFlight }, check) {
  const sockets = await Promise.all(Array.from({ length: writers }, () => callSocket(url)));
  const latencies = [];
  try {
    const t0 = now();
    await Promise.all(sockets.map((socket, w) => {
      const { first, count } = share(messages, writers, w);
      return windowed(Math.ceil(count / batch), inFlight, async (f) => {
        const frame = [];
        for (let i = first + f * batch; i < first + Math.min(count, (f + 1) * batch); i++) frame.push(change(`w${w}-${i}`, i));
        const sent = now();
        const data = JSON.stringify(frame);
        check(await socket.call(data), data, frame);
        const ms = now() - sent;
        for (let i = 0; i < frame.length; i++) latencies.push(ms);
      });
    }));
    return { ms: now() - t0, latencies };
  } finally {
    for (const socket of sockets) socket.close();
  }
}
