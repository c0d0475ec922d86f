// The benchmark scenarios, in the order of the report (BENCHMARKS.md). Each module exports a
// function of `{ quick }` returning the scenario's description; bench/run.mjs documents the
// fields it reads:
// - id, number, title, about (how it is measured, one paragraph of Markdown);
// - systems: ids of bench/stats.mjs NAMES, Ferrosync first;
// - page (the `window.peers` entry of bench/peers/ that runs it) or measure(system, args, ctx);
// - cases: [{ label, args }]; warmup: args of one unmeasured run per case and system;
// - reps(reps, args)?: fewer repetitions for a slow case; setup(ctx)?: { args, teardown };
// - metrics: [{ id, title, unit, lowerIsBetter, target?, value(result, args) }], where
//   target = { text, value, case } is the BRIEF's target, checked on the case named.
import bundles from './bundles.mjs';
import coldStart from './cold-start.mjs';
import disk from './disk.mjs';
import durableWrites from './durable-writes.mjs';
import echo from './echo.mjs';
import fanOut from './fan-out.mjs';
import initialSync from './initial-sync.mjs';
import liveWrite from './live-write.mjs';
import memory from './memory.mjs';
import push from './push.mjs';
import reads from './reads.mjs';

export const scenarios = [liveWrite, durableWrites, coldStart, initialSync, push, fanOut, reads, bundles, echo, disk, memory];
