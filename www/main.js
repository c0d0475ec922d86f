// Loads the wasm package built by `wasm-pack build --target web` into ./pkg and reports what happened.
import init, { initPanicHook, version } from './pkg/ferrosync.js';

const title = document.getElementById('title');
const status = document.getElementById('status');

try {
  await init();
  initPanicHook();
  title.textContent = `Ferrosync ${version()}`;
  status.textContent = 'Engine loaded: the WebAssembly module is initialised.';
  status.dataset.state = 'ready';
} catch (error) {
  status.textContent = `The engine failed to load: ${error}`;
  status.dataset.state = 'error';
  throw error;
}
