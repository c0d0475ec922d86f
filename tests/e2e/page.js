// Loads the wasm package and hands it to the test driving this tab.
import init, { SyncEngine } from './pkg/ferrosync.js';

await init();
window.ferrosync = { SyncEngine };
window.ferrosyncReady = true;
