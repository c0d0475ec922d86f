// The built package resolves the way an app imports it: `ferrosync` and `ferrosync/react`
// through package.json's `exports`, from an app's node_modules (Node's resolution, which
// bundlers follow too), with React from the app. And the package build follows wasm-pack.toml.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check } from './harness.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

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
            engine: ['default', 'SyncEngine', 'NonRetriableError', 'createSyncConnector', 'createTestCollection', 'createIndexedDBStorage', 'createMemoryStorage'].filter((n) => typeof engine[n] !== 'function'),
            react: Object.keys(react).sort(),
          }));`;
        const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' }));
        check(out.engine.length === 0, `ferrosync exports functions for all of these: ${out.engine}`);
        const hooks = ['SyncProvider', 'useCollection', 'useConflicts', 'useDocument', 'useMutations', 'useSyncEngine', 'useSyncProgress', 'useSyncStats', 'useSyncStatus', 'useTransactions'];
        check(JSON.stringify(out.react) === JSON.stringify(hooks), `ferrosync/react exports ${out.react}`);
      } finally {
        rmSync(app, { recursive: true, force: true });
      }
    },

    // `pkg` was built with wasm-pack.toml's `dev` profile; built again from a copy whose
    // target, out-dir and wasm-opt arguments differ, the package changes accordingly.
    async the_package_build_follows_wasm_pack_toml() {
      const dir = mkdtempSync(join(tmpdir(), 'ferrosync-build-'));
      try {
        let settings = readFileSync(join(ROOT, 'wasm-pack.toml'), 'utf8');
        for (const [from, to] of [
          [/^target = "web"$/m, 'target = "bundler"'],
          [/^out-dir = "pkg"$/m, `out-dir = "${dir}/out"`],
          [/(^\[profile\.dev\]\n(?:[^[].*\n)*)wasm-opt = \[\]$/m, '$1wasm-opt = ["--strip-debug"]'],
        ]) {
          check(from.test(settings), `wasm-pack.toml has ${from}`);
          settings = settings.replace(from, to);
        }
        writeFileSync(join(dir, 'wasm-pack.toml'), settings);
        execFileSync('bash', ['-c', 'set -euo pipefail; source scripts/package.sh; build_package dev'], {
          cwd: ROOT,
          env: { ...process.env, FERROSYNC_WASM_PACK_TOML: join(dir, 'wasm-pack.toml') },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        const glue = (out) => readFileSync(join(out, 'ferrosync.js'), 'utf8');
        // The web target's module exports init(), which fetches the wasm; the bundler target's
        // imports the wasm as a module.
        const wasmImport = /from "\.\/ferrosync_bg\.wasm"/;
        check(/__wbg_init as default/.test(glue(pkg)) && !wasmImport.test(glue(pkg)), 'the dev package targets the web');
        check(wasmImport.test(glue(`${dir}/out`)), 'the changed target builds for bundlers');
        // --strip-debug drops the name section that the dev build keeps.
        const names = (out) => WebAssembly.Module.customSections(new WebAssembly.Module(readFileSync(join(out, 'ferrosync_bg.wasm'))), 'name').length;
        check(names(pkg) === 1 && names(`${dir}/out`) === 0, 'wasm-opt runs with wasm-pack.toml\'s arguments');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },

    // The package users get has a size budget; a build whose gzipped .wasm is over its
    // profile's budget fails and says by how much, and one within it passes.
    async the_package_build_fails_over_its_size_budget() {
      const settings = readFileSync(join(ROOT, 'wasm-pack.toml'), 'utf8');
      check(/^\[profile\.release\]\n(?:[^[].*\n|\n)*gzip-budget-kb = \d+/m.test(settings), 'the release profile has a gzip-budget-kb');
      const dir = mkdtempSync(join(tmpdir(), 'ferrosync-budget-'));
      const build = (budget) => {
        writeFileSync(join(dir, 'wasm-pack.toml'), settings.replace(/^\[profile\.dev\]\n/m, `$&gzip-budget-kb = ${budget}\n`));
        return spawnSync('bash', ['-c', `set -euo pipefail; source scripts/package.sh; build_package dev ${dir}/out`], {
          cwd: ROOT,
          env: { ...process.env, FERROSYNC_WASM_PACK_TOML: join(dir, 'wasm-pack.toml') },
          encoding: 'utf8',
        });
      };
      try {
        const over = build(1);
        const [, size, bytes, budget] = over.stderr.match(/ferrosync_bg\.wasm is ([\d.]+) KB gzipped \((\d+) bytes\), over its budget of ([\d.]+) KB \(.*\[profile\.dev\] gzip-budget-kb\)/) ?? [];
        check(over.status !== 0 && size && budget === '1.0', `a build over its budget fails and names the figures: ${over.stderr}`);
        check(!existsSync(join(dir, 'out', 'index.js')), 'a build over its budget stops before the rest of the package');
        const within = build(Math.ceil(Number(bytes) / 1000));
        check(within.status === 0 && existsSync(join(dir, 'out', 'index.js')), `a build within its budget passes: ${within.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
