// Scenario 8: the transport's limit. `messages` change messages over one WebSocket to an echo
// server on loopback, in frames of `frame` messages, `inFlight` frames unanswered at most; beside
// it, Ferrosync pushing as many inserts with `batchSize` = `frame`. Returns `{ ms, ... }`.
import { push } from './push.js';
import { sendFrames } from './net.js';

export const echo = {
  ferrosync: ({ messages, frame, ...args }) => push.ferrosync({ ...args, writers: 1, total: messages, batchSize: frame }),

  rawWebSocket: ({ rawUrl, messages, frame, inFlight }) =>
    sendFrames(`${rawUrl}/echo`, { writers: 1, messages, batch: frame, inFlight }, (answer, data) => {
      if (answer !== data) throw new Error('the echo differs from the frame sent');
    }),
};
