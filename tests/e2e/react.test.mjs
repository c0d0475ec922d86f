// The React hooks (`ferrosync/react`) in Chromium: each scenario of tests/react/hooks.tsx (a
// page bundled with React's development build) runs against a real engine, IndexedDB and a
// real server, which also serves the page.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, freePort, launch, startServer } from './harness.mjs';

const TOKEN = 'e2e-react-token';
const SCENARIOS = [
  'strict_mode_subscribes_once_per_hook_and_unmount_releases_everything',
  'use_collection_re_renders_only_when_its_result_changes',
  'use_document_follows_one_document',
  'unmount_then_mount_again_shows_writes_made_meanwhile_and_a_new_query_resubscribes',
  'status_stats_and_transactions_follow_the_server',
  'use_conflicts_shows_a_parked_conflict_until_it_is_resolved',
  'use_mutations_groups_writes_and_shows_pending_and_errors',
  'use_sync_progress_counts_unsynced_writes_until_they_sync',
  'use_sync_engine_outside_a_provider_throws_a_clear_error',
];

/** `page` is the directory of the bundled hook test page. */
export function reactTests(binary, page) {
  let shared;
  const open = async () => {
    if (shared) return shared;
    const dir = mkdtempSync(join(tmpdir(), 'ferrosync-react-'));
    const port = await freePort();
    const server = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', `sqlite://${dir}/react.db`, '--static', page, '--dev-token', TOKEN]);
    const browser = await launch();
    const tab = await (await browser.newContext()).newPage();
    tab.on('pageerror', (e) => console.error('page error:', e.message));
    await tab.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
    await tab.waitForFunction(() => window.hooksReady === true);
    const onPage = await tab.evaluate(() => Object.keys(window.hookScenarios));
    check(JSON.stringify(onPage) === JSON.stringify(SCENARIOS), `the page's scenarios: ${onPage}`);
    const close = async () => {
      await browser.close();
      server.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    };
    shared = { tab, close };
    return shared;
  };
  const tests = {};
  SCENARIOS.forEach((name, i) => {
    tests[`react_${name}`] = async () => {
      const { tab, close } = await open();
      try {
        await tab.evaluate((name) => window.hookScenarios[name](), name);
      } finally {
        if (i === SCENARIOS.length - 1) await close();
      }
    };
  });
  return tests;
}
