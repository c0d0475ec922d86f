// The peer benchmark page (bundled by Vite): every system under test in one page, so each
// scenario runs them side by side in the same browser and run. bench/run.mjs drives it.
import * as ferrosync from 'ferrosync';
import { coldStart } from './cold-start.js';
import { diskBytes } from './disk.js';
import { durableWrites } from './durable-writes.js';
import { echo } from './echo.js';
import { fanOut } from './fan-out.js';
import { initialSync, seedFerrosync } from './initial-sync.js';
import { liveWrite } from './live-write.js';
import { memory } from './memory.js';
import { push } from './push.js';
import { reads } from './reads.js';

try {
  // Its exports hold the wasm memory, whose size the reads and memory scenarios report.
  window.wasmMemory = (await ferrosync.default()).memory;
  // The package itself, for benchmarks that drive it directly (bench/rest.mjs).
  window.ferrosync = ferrosync;
  window.peers = { liveWrite, durableWrites, coldStart, initialSync, push, fanOut, reads, echo, diskBytes, memory };
  // Fills a Ferrosync server tenant before the initial-sync scenario.
  window.seedFerrosync = seedFerrosync;
  window.peersReady = true;
} catch (error) {
  window.peersError = String(error?.stack ?? error);
}
