// Scenario 10: memory per document (bench/peers/memory.js), each run in a fresh page.

/** A fresh benchmark page, ready, with a DevTools session to weigh it. */
async function freshPage(context) {
  const page = await context.page.context().newPage();
  await page.goto(`${context.base}/peers/index.html`);
  await page.waitForFunction(() => window.peersReady || window.peersError, null, { timeout: 60_000 });
  const error = await page.evaluate(() => window.peersError);
  if (error) throw new Error(error);
  const cdp = await page.context().newCDPSession(page);
  /** The JS heap after a forced garbage collection, and the wasm memory (which never shrinks:
   * its size is its peak); with a package built with the `alloc-stats` feature
   * (scripts/package.sh), also `[held, peak]`, the bytes the engine has allocated in wasm memory
   * and the most since the last weighing, as its allocator counts them (the wasm memory adds
   * the allocator's own overhead and free space to that peak). */
  const weigh = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    const [wasm, alloc] = await page.evaluate(() => [window.wasmMemory.buffer.byteLength, window.ferrosync.allocStats?.(true)]);
    return { heap: usedSize, wasm, alloc };
  };
  return { page, weigh };
}

/** Runs `call` (a `window.peers.memory` entry) with `args` in a fresh page and returns what it
 * returned with the growth of the JS heap and of the wasm memory it caused; then `after`
 * (`release` deletes the database, `close` keeps it). */
async function weighed(context, call, args, after = 'release') {
  const { page, weigh } = await freshPage(context);
  try {
    const before = await weigh();
    const result = await page.evaluate(([c, a]) => window.peers.memory[c](a), [call, args]);
    const grown = await weigh();
    await page.evaluate((a) => window.peers.memory[a](), after);
    const allocated = before.alloc && { heldBytes: grown.alloc[0] - before.alloc[0], peakBytes: grown.alloc[1] - before.alloc[0] };
    return { ...result, ...allocated, heapBytes: grown.heap - before.heap, wasmBytes: grown.wasm - before.wasm };
  } finally {
    await page.close();
  }
}

const perDoc = ({ heapBytes, wasmBytes, count }) => (heapBytes + wasmBytes) / count;

export default ({ quick }) => {
  const total = quick ? 10_000 : 100_000;
  const batch = 1_000;
  const write = { total, batch };
  return {
    id: 'memory',
    number: 10,
    title: `Memory per document (${total.toLocaleString('en')} documents)`,
    about: `Each system gets ${total.toLocaleString('en')} documents \`{ id, title, done }\` (about 50 ` +
      'bytes of JSON each), in a fresh page of its own: in transactions of 1,000 (Ferrosync ' +
      '`transaction`, TanStack DB one `insert` of 1,000, RxDB `bulkInsert`), or as single inserts ' +
      '(each its own transaction), issued 1,000 at a time, each thousand awaited until the system ' +
      'has it (RxDB, whose single inserts are each an IndexedDB transaction, only in bulk). Ferrosync and RxDB store them in IndexedDB; TanStack DB holds a local-only ' +
      'collection. A system\'s memory is the growth of the page\'s JS heap, weighed after a ' +
      'garbage collection forced through the DevTools protocol, plus, for Ferrosync, the growth ' +
      'of its wasm memory, which never shrinks: its size is its peak, so Ferrosync\'s figure ' +
      'includes the peak of the writes, where the peers\' figures are what they keep. The ' +
      'documents themselves are made in the page and dropped before it is weighed. The ratio ' +
      'divides the memory by the documents\' JSON (`JSON.stringify` of each as given). "Reopened" ' +
      'is Ferrosync opening the database written in transactions of 1,000 again in a new page: ' +
      'the memory of a load. Ferrosync keeps every finished transaction in its history (the ' +
      'default retention), so its figures include a history of the writes.',
    systems: ['ferrosync', 'tanstack', 'rxdb'],
    cases: [
      { label: 'transactions of 1,000', args: { ...write, single: false } },
      // RxDB writes each insert in an IndexedDB transaction of its own: 100,000 take minutes.
      { label: 'single inserts', args: { ...write, single: true }, systems: ['ferrosync', 'tanstack'] },
      { label: 'reopened', args: { ...write, reopen: true }, systems: ['ferrosync'] },
    ],
    // Memory varies little from run to run, and each run writes every document again.
    reps: (reps) => Math.min(reps, 2),
    async measure(system, args, context) {
      if (!args.reopen) return weighed(context, system, args);
      const { name, jsonBytes } = await weighed(context, system, { ...args, single: false }, 'close');
      return { ...(await weighed(context, 'ferrosyncLoad', { name })), jsonBytes };
    },
    metrics: [
      {
        id: 'memory-ratio',
        title: 'Memory per document, as a multiple of its JSON size',
        unit: '× JSON',
        lowerIsBetter: true,
        target: { text: '≤ 3× the documents\' JSON size, peak included', value: 3, case: 'transactions of 1,000' },
        value: (r) => (r.jsonBytes ? (perDoc(r) * r.count) / r.jsonBytes : undefined),
      },
      {
        id: 'memory-per-doc',
        title: 'Memory per document',
        unit: 'bytes',
        lowerIsBetter: true,
        value: perDoc,
      },
      {
        id: 'memory-wasm',
        title: 'Wasm memory per document (Ferrosync\'s part of the figure above)',
        unit: 'bytes',
        lowerIsBetter: true,
        value: (r) => (r.wasmBytes ? r.wasmBytes / r.count : undefined),
      },
      // Only with a package built with the `alloc-stats` feature (scripts/package.sh).
      {
        id: 'memory-wasm-held',
        title: 'Wasm memory the engine holds per document when weighed (alloc-stats builds)',
        unit: 'bytes',
        lowerIsBetter: true,
        value: (r) => (r.heldBytes !== undefined ? r.heldBytes / r.count : undefined),
      },
      {
        id: 'memory-wasm-peak',
        title: 'Most wasm memory the engine held per document (alloc-stats builds)',
        unit: 'bytes',
        lowerIsBetter: true,
        value: (r) => (r.peakBytes !== undefined ? r.peakBytes / r.count : undefined),
      },
    ],
  };
};
