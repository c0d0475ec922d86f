// Scenario 8: the transport's limit, a raw WebSocket echo with batched frames (bench/peers/echo.js).
import { expectCount, networkRuns } from './net.mjs';

/** Frames unanswered at most. */
const IN_FLIGHT = 4;

export default ({ quick }) => {
  const messages = quick ? 2_000 : 10_000;
  // One message a frame is slow for Ferrosync (a push and an SQLite commit each): fewer of them.
  const count = (frame) => (frame === 1 && !quick ? messages / 4 : messages);
  return {
    id: 'echo',
    number: 8,
    title: 'Raw WebSocket echo with batched frames',
    about: `${messages.toLocaleString('en')} change messages (${count(1).toLocaleString('en')} in frames of 1; the JSON of an insert as Ferrosync pushes ` +
      'it) over one WebSocket from headless Chromium to a Node echo server on loopback, in frames of 1 to ' +
      `1,000 messages, at most ${IN_FLIGHT} frames unanswered; timed until every echo is back: the ` +
      'transport\'s limit on a 2-core machine. Beside it, one Ferrosync engine pushes as many inserts ' +
      `to ferrosync-server with \`batchSize\` equal to the frame size and as many inserts in flight ` +
      `(${IN_FLIGHT} pushes' worth), timed until all are acknowledged, so the ratio is Ferrosync's share ` +
      'of the transport\'s limit (its server also stores every write in SQLite).',
    systems: ['ferrosync', 'rawWebSocket'],
    page: 'echo',
    ...networkRuns('echo', (result, args, docs) => {
      expectCount(result.pushed, args.messages, 'mutations the engine counts as pushed');
      expectCount(docs, args.messages, 'documents on the server');
    }),
    cases: [1, 10, 100, 1_000].map((frame) => ({
      label: `frames of ${frame.toLocaleString('en')}`, args: { messages: count(frame), frame, inFlight: IN_FLIGHT },
    })),
    warmup: { messages: 200, frame: 10, inFlight: IN_FLIGHT },
    metrics: [{
      id: 'echo',
      title: 'Change messages through one WebSocket',
      unit: 'messages/s',
      lowerIsBetter: false,
      value: ({ ms }, args) => (args.messages * 1000) / ms,
    }],
  };
};
