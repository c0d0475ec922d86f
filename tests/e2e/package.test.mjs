// The built package resolves the way an app imports it: `ferrosync` and `ferrosync/react`
// through package.json's `exports`, from an app's node_modules (Node's resolution, which
// bundlers follow too), with React from the app.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { check } from './harness.mjs';

export function packageTests(pkg) {
  return {
    async the_package_and_its_react_entry_resolve_by_name() {
      const app = mkdtempSync(join(tmpdir(), 'ferrosync-app-'));
      try {
        mkdirSync(join(app, 'node_modules'));
        symlinkSync(resolve(pkg), join(app, 'node_modules', 'ferrosync'), 'dir');
        const script = `
          const engine = await import('ferrosync');
          const react = await import('ferrosync/react');
          console.log(JSON.stringify({
            engine: ['default', 'SyncEngine', 'NonRetriableError', 'createSyncConnector', 'createTestCollection'].filter((n) => typeof engine[n] !== 'function'),
            react: Object.keys(react).sort(),
          }));`;
        const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' }));
        check(out.engine.length === 0, `ferrosync exports functions for all of these: ${out.engine}`);
        const hooks = ['SyncProvider', 'useCollection', 'useConflicts', 'useDocument', 'useSyncEngine', 'useSyncStats', 'useSyncStatus', 'useTransactions'];
        check(JSON.stringify(out.react) === JSON.stringify(hooks), `ferrosync/react exports ${out.react}`);
      } finally {
        rmSync(app, { recursive: true, force: true });
      }
    },
  };
}
