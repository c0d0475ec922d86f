// The README's "Use it in your app", done as a user does it: a new app in a temporary directory
// outside the repository, made of the README's own files, installs the packed package (the
// tarball `npm pack` makes of `npm run build`'s package) with React and Vite from the npm
// registry, is built for production by Vite without plugins or aliases, and is served by a real
// ferrosync-server. A todo added through the `ferrosync/react` hooks in one browser context
// reaches another.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, freePort, launch, serverState, startServer } from './harness.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// The README's server command and app use this development token.
const TOKEN = 'dev-token';

/** `tarball` is the packed package. */
export function appTests(binary, tarball) {
  return {
    async a_new_vite_app_installs_the_packed_package_and_syncs_through_the_hooks() {
      const app = mkdtempSync(join(tmpdir(), 'ferrosync-my-app-'));
      check(!app.startsWith(ROOT), `the app is outside the repository: ${app}`);
      let server;
      let browser;
      try {
        const files = readmeFiles();
        check(JSON.stringify(Object.keys(files)) === '["index.html","src/main.jsx"]', `the README's files: ${Object.keys(files)}`);
        for (const [path, text] of Object.entries(files)) {
          mkdirSync(dirname(join(app, path)), { recursive: true });
          writeFileSync(join(app, path), text);
        }
        // The README's commands. React and Vite at the versions this repository installs, so
        // that npm finds them in its cache.
        const npm = (...args) => execFileSync('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
        npm('init', '-y');
        npm('install', resolve(tarball), `react@${versionHere('react')}`, `react-dom@${versionHere('react-dom')}`);
        npm('install', '--save-dev', `vite@${versionHere('vite')}`);
        execFileSync('npx', ['--no-install', 'vite', 'build', '--logLevel', 'warn'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });

        const installed = join(app, 'node_modules', 'ferrosync');
        check(!lstatSync(installed).isSymbolicLink(), 'the package is installed from the tarball, not linked');
        check(readdirSync(app).every((f) => !f.startsWith('vite.config')), 'the app has no Vite config');
        const assets = readdirSync(join(app, 'dist', 'assets'));
        check(assets.some((f) => f.endsWith('.wasm')), `Vite emitted the engine's wasm: ${assets}`);

        const port = await freePort();
        server = await startServer(binary, ['--listen', `127.0.0.1:${port}`, '--db', `sqlite://${app}/app.db`, '--static', join(app, 'dist'), '--dev-token', TOKEN]);
        browser = await launch();
        const errors = [];
        const open = async () => {
          const page = await (await browser.newContext()).newPage();
          page.on('pageerror', (e) => errors.push(e.message));
          await page.goto(`http://127.0.0.1:${port}/`);
          await page.locator('output', { hasText: 'idle' }).waitFor({ timeout: 10_000 });
          return page;
        };
        const [a, b] = [await open(), await open()];

        await a.getByPlaceholder('What needs doing?').fill('Ship the package');
        await a.getByRole('button', { name: 'Add' }).click();
        await a.getByRole('listitem').filter({ hasText: 'Ship the package' }).waitFor();
        await b.getByRole('listitem').filter({ hasText: 'Ship the package' }).waitFor({ timeout: 10_000 });
        const titles = Object.values((await serverState(port, TOKEN)).docs).map((d) => d.fields.title);
        check(JSON.stringify(titles) === '["Ship the package"]', `the server has the todo: ${titles}`);
        check(errors.length === 0, `no page errors: ${errors}`);
      } finally {
        await browser?.close();
        server?.kill('SIGTERM');
        rmSync(app, { recursive: true, force: true });
      }
    },
  };
}

/** The files the README's "Use it in your app" shows, by path: each code block after a line
 * ending in "`PATH`:". */
function readmeFiles() {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## Use it in your app\n')[1]?.split('\n## ')[0] ?? '';
  const blocks = section.matchAll(/`([\w./-]+)`:\n\n```\w*\n([\s\S]*?)^```$/gm);
  return Object.fromEntries([...blocks].map(([, path, text]) => [path, text]));
}

/** The version of an npm package installed in this repository. */
function versionHere(name) {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}
