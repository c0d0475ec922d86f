// What the network scenarios share (push, fan-out, echo, in bench/peers/): the raw WebSocket
// baseline's server for the scenario's duration, a tenant of its own for every run, and a check of
// what ferrosync-server holds afterwards.
import { startWsServer } from '../servers/ws-server.mjs';

let runs = 0;

/** The `setup` and `measure` of a scenario run by `window.peers[page]`: each run gets a fresh
 * tenant (`token`), and after a Ferrosync run `verify(result, args, docs)` gets the number of
 * documents the server holds for it, and throws if a count is wrong. */
export function networkRuns(page, verify) {
  return {
    async setup(ctx) {
      const server = await startWsServer();
      return { args: { serverUrl: ctx.serverUrl, rawUrl: server.url('') }, teardown: () => server.close() };
    },
    async measure(system, args, ctx) {
      const tenant = `${page}-${runs++}`;
      const token = ctx.token(tenant);
      const result = await ctx.page.evaluate(([p, s, a]) => window.peers[p][s](a), [page, system, { ...args, token }]);
      if (system === 'ferrosync') verify(result, args, await serverDocuments(ctx.base, token, `bench-${tenant}`));
      return result;
    },
  };
}

/** Throws `message` unless `actual === expected`. */
export function expectCount(actual, expected, message) {
  if (actual !== expected) throw new Error(`${message}: ${actual}, expected ${expected}`);
}

/** How many live documents of `todos` the server holds for `token`'s tenant, pulled over HTTP as
 * `client` (a client id belongs to one tenant and user). */
async function serverDocuments(base, token, client) {
  const call = async (path, body) => {
    const response = await fetch(`${base}/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-ferrosync-client': client },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
    return response.json();
  };
  await call('hello', { type: 'hello', protocol: 1, client_id: client, collections: ['todos'] });
  let count = 0;
  for (let cursor = 0, seq = 1, more = true; more; seq++) {
    const page = await call('pull', { type: 'pull', seq, cursor, limit: 1000 });
    count += page.changes.filter((c) => c.collection === 'todos' && !c.doc.deleted).length;
    ({ cursor, has_more: more } = page);
  }
  return count;
}
