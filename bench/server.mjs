// BENCHMARKS.md's server section, from bench/results/server.json: the load generator's suite
// (crates/server/examples/load, run by scripts/load.sh), SQLite on one node beside PostgreSQL
// on two nodes, in one run. The causes of what it finds are written by hand in
// bench/server-analysis.md, which follows the tables.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The suite's results, or `undefined` when it has not been run. */
export function serverResults(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

const backend = (r) => `${r.database === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${r.nodes} node${r.nodes > 1 ? 's' : ''}` +
  (r.durability === 'full' ? ', `--durability full`' : '');
const n = (x) => x.toLocaleString('en-US');
const cpu = (r) => {
  const c = r.cpu;
  const postgres = r.database === 'postgres' ? c.postgres_pct ?? '—' : '—';
  return `${c.servers_pct} / ${postgres} / ${c.generator_pct} / ${c.machine_pct} / ${c.cpu_stall_pct ?? '—'}`;
};

/** The BRIEF's server row for the summary table. */
export function serverSummaryRow(results) {
  const target = results.rate.find((r) => r.database === 'postgres' && r.tenant_size === 10 && r.clients === 2000 && r.spread);
  const held = results.limit.filter((r) => r.database === 'postgres' && r.holds).map((r) => r.clients);
  const most = Math.max(target?.holds ? target.clients : 0, ...held);
  return `| S | server: clients at 1 write/s held, tenants of 10, two nodes on PostgreSQL (ack p99 ≤ 250 ms, every live update ≤ 1 s) | ≥ 2,000 | ` +
    `${most ? `${n(most)} (at 2,000: ack p99 ${target.ack.p99_ms} ms, slowest delivery ${target.delivery.max_ms} ms)` : 'none'} | ` +
    `${target?.holds ? 'yes' : '**no**'} | — | — |`;
}

/** The section's Markdown lines. */
export function serverSection(results) {
  const when = new Date(results.date_ms).toISOString().slice(0, 16).replace('T', ' ');
  const settings = results.postgres.map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    '## Server: nodes, databases and many clients',
    '',
    `The reference server under load from many WebSocket clients, SQLite on one node beside PostgreSQL on two nodes sharing one database, in one run ` +
      `(${when} UTC, \`scripts/load.sh\`: the load generator \`crates/server/examples/load\` and the release build of \`ferrosync-server\`, ` +
      `all on this ${results.cpus}-core machine, which the generator, PostgreSQL and the nodes share, with other work running). PostgreSQL: ${settings}, on a throwaway cluster with default settings otherwise.`,
    '',
    '- **Clients × writes/s:** each client is a WebSocket of its own, a user of its own, in a tenant of the given size. Its tenant *spans the nodes* (client *i* connects to node *i* mod *nodes*, ' +
      'as a round-robin load balancer would place it: the worst case, every tenant written from both nodes) or sits on *one node* (a load balancer routing by tenant). ' +
      'Each sends one push of one new document every second (phased evenly over the second), at most one in flight.',
    '- **Ack:** from when a write was due to its `push_result` (a write sent late because the previous one was slow is charged the wait).',
    '- **Live delivery:** from when a write was due to when another client of its tenant had it, for every (write, other client) pair: its cursor passed the write\'s version through a live `changes` frame, or through the pull a gap or a resync made it send, as the engine does. ' +
      '**Missing** counts writes a client never got within 10 s after the run.',
    '- **Holds:** ack p99 ≤ 250 ms and every live update delivered within 1 s (the BRIEF\'s server target).',
    '- **Push throughput:** 16 clients, each in its own tenant, each pushing 100 transactions of one mutation and waiting for the answer before the next push; mutations acknowledged `applied` per second.',
    '- **CPU:** percent of one core over the run: server nodes / PostgreSQL (postmaster and backends) / load generator / whole machine (of all cores, other users included) / ' +
      'CPU stall (Linux pressure stall information: the share of the time some runnable task waited for a core; far above a few percent, every latency here includes waiting for a core that other work holds).',
    '',
    '| case | database | writes acked/s | ack p50 / p99 (ms) | delivery p50 / p99 / max (ms) | within 1 s | missing | holds | CPU % nodes / PG / generator / machine / stall |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of [...results.rate, ...results.limit]) {
    const tenants = r.tenant_size === r.clients ? 'one tenant' : `tenants of ${r.tenant_size}`;
    const placed = r.nodes === 1 ? '' : r.spread ? ' spanning the nodes' : ' on one node each';
    const shape = `${n(r.clients)} clients × ${r.rate}/s, ${tenants}${placed}, ${r.seconds} s`;
    lines.push(`| ${shape} | ${backend(r)} | ${n(r.writes_per_second)} | ${r.ack.p50_ms} / ${r.ack.p99_ms} | ` +
      `${r.delivery.p50_ms} / ${r.delivery.p99_ms} / ${r.delivery.max_ms} | ${r.delivered_within_1s_pct} % | ${n(r.deliveries_missing)} of ${n(r.deliveries_expected)} | ` +
      `${r.holds ? 'yes' : '**no**'} | ${cpu(r)} |`);
  }
  lines.push('', '| push throughput | database | mutations/s | push p50 / p99 (ms) | CPU % nodes / PG / generator / machine / stall |', '|---|---|---|---|---|');
  for (const r of results.throughput) {
    lines.push(`| ${r.clients} clients × pushes of ${r.batch}, ${r.seconds} s | ${backend(r)} | ${n(r.mutations_per_second)} | ${r.push.p50_ms} / ${r.push.p99_ms} | ${cpu(r)} |`);
  }
  const find = (database, durability) => results.throughput.find((r) => r.database === database && (r.durability ?? 'normal') === durability);
  const [sqlite, full, postgres] = [find('sqlite', 'normal'), find('sqlite', 'full'), find('postgres', 'normal')];
  if (sqlite && postgres) {
    lines.push('', `PostgreSQL on two nodes pushes ${(postgres.mutations_per_second / sqlite.mutations_per_second).toFixed(2)}× SQLite's throughput (the target: at least 0.5×).`);
  }
  if (sqlite && full) {
    lines.push('', `SQLite with \`--durability full\` (synchronous=FULL: the WAL synced at every group commit) pushes ${(full.mutations_per_second / sqlite.mutations_per_second).toFixed(2)}× ` +
      'the default\'s throughput (WAL, synchronous=NORMAL: an acknowledged commit survives a server crash but may be lost with the last ones on power loss; docs/RELIABILITY.md).');
  }
  lines.push('', readFileSync(join(import.meta.dirname, 'server-analysis.md'), 'utf8').trim(), '');
  return lines;
}
