// Runs every end-to-end test:
//   node tests/e2e/run.mjs <ferrosync-server binary> <www> <demo> <react> <tarball>
// `www` holds page.html, page.js and the built package in pkg/; `demo` the bundled demo app;
// `react` the bundled page of the React hook tests; `tarball` the packed release package.
import { run } from './harness.mjs';
import { appTests } from './app.test.mjs';
import { demoTests } from './demo.test.mjs';
import { engineTests } from './engine.test.mjs';
import { harnessTests } from './harness-collection.test.mjs';
import { nodeTests } from './nodes.test.mjs';
import { packageTests } from './package.test.mjs';
import { queryTests } from './queries.test.mjs';
import { reactTests } from './react.test.mjs';
import { restTests } from './rest.test.mjs';
import { storageTests } from './storage.test.mjs';
import { tabTests } from './tabs.test.mjs';

const [binary, www, demo, react, tarball] = process.argv.slice(2);
await run({
  ...packageTests(`${www}/pkg`),
  ...tabTests(binary, www),
  ...queryTests(binary, www),
  ...storageTests(binary, www),
  ...engineTests(binary, www),
  ...harnessTests(binary, www),
  ...nodeTests(binary, www),
  ...restTests(binary, www),
  ...reactTests(binary, react),
  ...demoTests(binary, demo),
  ...appTests(binary, tarball),
});
