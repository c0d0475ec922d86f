// Runs every end-to-end test: node tests/e2e/run.mjs <ferrosync-server binary> <www directory>
// (`www` holds page.html, page.js and the built package in pkg/).
import { run } from './harness.mjs';
import { harnessTests } from './harness-collection.test.mjs';
import { restTests } from './rest.test.mjs';
import { storageTests } from './storage.test.mjs';
import { tabTests } from './tabs.test.mjs';

const [binary, www] = process.argv.slice(2);
await run({
  ...tabTests(binary, www),
  ...storageTests(binary, www),
  ...harnessTests(binary, www),
  ...restTests(binary, www),
});
