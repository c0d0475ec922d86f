// Loads the package through its entry point, as users import it, and hands it to the test
// driving this tab.
import * as ferrosync from './pkg/index.js';

await ferrosync.default();
window.ferrosync = ferrosync;
window.ferrosyncReady = true;
