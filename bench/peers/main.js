// The peer benchmark page (bundled by Vite): every system under test in one page, so each
// scenario runs them side by side in the same browser and run. bench/peers.mjs drives it.
import init from 'ferrosync';
import { coldStart } from './cold-start.js';
import { durableWrites } from './durable-writes.js';
import { liveWrite } from './live-write.js';
import { reads } from './reads.js';

try {
  await init();
  window.peers = { liveWrite, durableWrites, coldStart, reads };
  window.peersReady = true;
} catch (error) {
  window.peersError = String(error?.stack ?? error);
}
