// A sync connector at work: the changes the engine hands over (`persist`, `awaitSync`), the sync
// runs that write them to the API (batched and in parallel, or one request at a time) and list
// its records, and the poll that confirms changes the API accepted without an id.
import { NonRetriableError } from './errors.js';
import { failure } from './failure.js';
import type {
  AwaitSyncResult,
  Document,
  JsonValue,
  MutationFn,
  PersistResult,
} from './ferrosync.js';
import { toConnectorChanges, type ModelSpec } from './connector-model.js';
import type {
  ChangeFailure,
  ConfirmationOptions,
  ConfirmationStatus,
  ConnectorChange,
  ConnectorChangeType,
  LogListener,
  RestConnector,
  RestRequest,
  SyncConnector,
  SyncMode,
  SyncOptions,
  SyncReport,
  SyncRun,
  WriteConfirmation,
} from './connectors.js';

/** A transaction handed over by the engine: its changes waiting to be written (`persist`), or
 * to be confirmed (`awaitSync`). */
interface Pending<Result> {
  changes: ConnectorChange[];
  externalIds: Record<string, string>;
  /** Changes accepted but not confirmed, with what confirming them needs. */
  unconfirmed: Record<string, Ticket>;
  errors: string[];
  remaining: number;
  resolve: (result: Result) => void;
  reject: (error: Error) => void;
}

/** What is kept, durably in the transaction (`confirm`), to confirm a change later. */
interface Ticket {
  ticket: JsonValue | null;
  acceptedAt: number;
  runId: string;
}

/** Changes a sync run's writes confirmed, and accepted to confirm later. */
interface Counts {
  confirmed: number;
  unconfirmed: number;
}

/** How one change ended for now. */
type Outcome = { externalId: string } | { error: string } | { unconfirmed: Ticket };

/** The write mode a sync uses: its option, then the builder, then the global switch. */
function resolveAsyncWrites(option: boolean | undefined, builder: boolean | undefined): boolean {
  if (option !== undefined) return option;
  if (builder !== undefined) return builder;
  const global = (globalThis as { FERROSYNC_ASYNC_WRITES?: unknown }).FERROSYNC_ASYNC_WRITES;
  return !(global === 'false' || global === '0' || global === false);
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `tasks` with at most `limit` under way at once; `started` is called once the last has
 * started. */
async function runLimited(tasks: (() => Promise<void>)[], limit: number, started?: () => void): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      if (next === tasks.length) started?.();
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** How many runs {@link SyncConnector.runStatus} remembers. */
const RUNS_KEPT = 100;

/** The connector `createSyncConnector(...).build()` returns. */
export function connector(
  rest: RestConnector,
  collection: string,
  model: ModelSpec,
  settings: {
    asyncWrites: boolean | undefined;
    concurrency: number;
    batchSize: number;
    confirmation: Required<ConfirmationOptions> | undefined;
    listeners: LogListener[];
  },
): SyncConnector {
  let queue: Pending<PersistResult>[] = [];
  let onUpdate: ((data: Document[], options?: { complete?: boolean }) => void) | undefined;
  let since: string | number | undefined;
  const failures: ChangeFailure[] = [];
  const lines: string[] = [];
  /** The transaction each change waits in: to be written, or to be confirmed. */
  const byChange = new Map<string, Pending<PersistResult> | Pending<AwaitSyncResult>>();
  /** Changes waiting for their confirmation, with the change each is. */
  const unconfirmed = new Map<string, { change: ConnectorChange; ticket: Ticket }>();
  let polling: ReturnType<typeof setTimeout> | undefined;
  const runs = new Map<string, SyncRun>();
  let runCount = 0;
  let running: Promise<unknown> = Promise.resolve();

  const log = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    for (const listener of settings.listeners) listener(line);
  };
  const newer = (at: unknown) => {
    if ((typeof at === 'string' || typeof at === 'number') && (since === undefined || at > since)) since = at;
  };

  /** Settles one change of the transaction it waits in; the last one settles the transaction. */
  const settle = (change: ConnectorChange, outcome: Outcome, asyncWrites: boolean) => {
    const owner = byChange.get(change.changeId);
    if (!owner) return;
    byChange.delete(change.changeId);
    if ('error' in outcome) {
      owner.errors.push(outcome.error);
      failures.push({ changeId: change.changeId, type: change.type, model: model.name, error: outcome.error });
    } else if ('unconfirmed' in outcome) {
      owner.unconfirmed[change.changeId] = outcome.unconfirmed;
    } else if (change.type === 'CREATE') {
      owner.externalIds[change.changeId] = outcome.externalId;
    }
    if (--owner.remaining > 0) return;
    if (owner.errors.length > 0) {
      const message = owner.errors.join('; ');
      // In asynchronous mode failures are reported, not retried.
      owner.reject(asyncWrites ? new NonRetriableError(message) : failure('persist_failed', message, { retryable: true }));
    } else if (Object.keys(owner.unconfirmed).length > 0) {
      owner.resolve({ externalIds: owner.externalIds, confirm: owner.unconfirmed as unknown as JsonValue });
    } else {
      owner.resolve({ externalIds: owner.externalIds });
    }
  };

  /** Reads a write's answer into per-change outcomes; counts them in `counts`. */
  const confirmAll = (changes: ConnectorChange[], confirmations: unknown, asyncWrites: boolean, runId: string, counts: Counts) => {
    const list = Array.isArray(confirmations) ? confirmations : [confirmations];
    const found = new Map<string, WriteConfirmation>();
    for (const item of list as Partial<WriteConfirmation>[]) {
      if (item && typeof item.changeId === 'string') found.set(item.changeId, item as WriteConfirmation);
    }
    let confirmed = 0;
    for (const change of changes) {
      const c = found.get(change.changeId);
      const id = c?.externalId;
      if (id !== undefined && id !== null && id !== '') {
        newer(c?.externalUpdatedAt);
        settle(change, { externalId: String(id) }, asyncWrites);
        confirmed++;
      } else if (settings.confirmation) {
        settle(change, { unconfirmed: { ticket: c?.ticket ?? null, acceptedAt: Date.now(), runId } }, asyncWrites);
        counts.unconfirmed++;
      } else {
        const error = `Could not extract externalId for change ${change.changeId}`;
        log(error);
        settle(change, { error }, asyncWrites);
      }
    }
    if (confirmed > 0) log(`Confirmed ${confirmed} changes for sync ${runId}`);
    counts.confirmed += confirmed;
  };

  /** Writes what is queued now, counting the answers in `counts`; resolves when every request
   * answered. */
  const flush = async (asyncWrites: boolean, runId: string, counts: Counts): Promise<void> => {
    const taken = queue;
    queue = [];
    const byType: Record<ConnectorChangeType, ConnectorChange[]> = { CREATE: [], UPDATE: [], DELETE: [] };
    for (const q of taken) for (const c of q.changes) byType[c.type].push(c);
    const tasks: (() => Promise<void>)[] = [];
    for (const type of ['CREATE', 'UPDATE', 'DELETE'] as const) {
      const changes = byType[type];
      if (changes.length === 0) continue;
      const batch = model.batch[type];
      const single = model.single[type];
      const how = `${asyncWrites ? 'async' : 'sync'} ${batch ? 'batch' : 'individual'}`;
      log(`Processing ${changes.length} ${type} changes for model ${model.name} (${how})`);
      const fail = (group: ConnectorChange[], error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        log(`Failed ${group.length} ${type} changes: ${message}`);
        for (const change of group) settle(change, { error: message }, asyncWrites);
      };
      /** One request for `group`, whose answer `extract` reads. */
      const send = (group: ConnectorChange[], request: RestRequest, extract: (body: unknown) => unknown) =>
        tasks.push(async () => {
          try {
            confirmAll(group, extract(await rest.request(request)), asyncWrites, runId, counts);
          } catch (error) {
            fail(group, error);
          }
        });
      if (batch) {
        for (const group of chunks(changes, settings.batchSize)) {
          send(group, batch.request(group), (body) => batch.extract!(body, group));
        }
      } else if (single) {
        for (const change of changes) {
          const extract = single.extract ?? (() => ({ changeId: change.changeId, externalId: change.localId }));
          send([change], single.request(change), (body) => extract(body, change));
        }
      } else {
        fail(changes, new NonRetriableError(`model ${model.name} has no ${type.toLowerCase()} operation`));
      }
    }
    const sent = () => {
      if (!asyncWrites) return;
      log(`Sent ${tasks.length} async requests`);
      log('Waiting for pending async operations');
    };
    await runLimited(tasks, asyncWrites ? settings.concurrency : 1, sent);
  };

  const list = async (mode: SyncMode): Promise<number> => {
    if (!model.list) return 0;
    const body = await rest.request(model.list.request({ mode, since: mode === 'FULL' ? undefined : since }));
    const records = model.list.extract ? model.list.extract(body, { mode, since }) : body;
    if (!Array.isArray(records)) throw failure('bad_remote_data', `the list of ${model.name} is not an array`, { retryable: false });
    const docs = records.map((record: Record<string, unknown>) => {
      const { [model.idField]: id, ...fields } = record;
      if (id === undefined || id === null) throw failure('bad_remote_data', `a ${model.name} record has no ${model.idField}`, { retryable: false });
      newer(record[model.updatedAtField]);
      return { ...fields, _id: String(id) } as Document;
    });
    onUpdate?.(docs, { complete: mode === 'FULL' });
    log(`Pulled ${docs.length} ${model.name} records (${mode})`);
    return docs.length;
  };

  const run = async (runId: string, mode: SyncMode, options: SyncOptions): Promise<SyncReport> => {
    const asyncWrites = resolveAsyncWrites(options.useAsyncWrites, settings.asyncWrites);
    if (asyncWrites) log('Using async writes');
    const failedBefore = failures.length;
    const counts: Counts = { confirmed: 0, unconfirmed: 0 };
    // Confirmed creates release queued writes to the same documents (with their new ids),
    // which the engine hands over on its next turn: keep flushing until nothing is queued.
    do {
      await flush(asyncWrites, runId, counts);
      await new Promise((resolve) => setTimeout(resolve, 0));
    } while (queue.length > 0);
    const pulled = await list(mode);
    return { runId, ...counts, failed: failures.slice(failedBefore), pulled, asyncWrites };
  };

  /** Queues a run; it starts once the runs before it ended. */
  const startRun = (mode: SyncMode, options: SyncOptions): { runId: string; done: Promise<SyncReport> } => {
    if (mode !== 'FULL' && mode !== 'INCREMENTAL') {
      throw failure('invalid_argument', `sync mode must be 'FULL' or 'INCREMENTAL', got ${String(mode)}`);
    }
    const runId = `run-${++runCount}`;
    const status: SyncRun = { runId, mode, state: 'queued', queuedAt: Date.now(), startedAt: null, completedAt: null, report: null, error: null };
    runs.set(runId, status);
    for (const old of runs.keys()) {
      if (runs.size <= RUNS_KEPT) break;
      runs.delete(old);
    }
    const done = running.catch(() => undefined).then(async () => {
      status.state = 'running';
      status.startedAt = Date.now();
      try {
        status.report = await run(runId, mode, options);
        status.state = 'completed';
        return status.report;
      } catch (error) {
        status.state = 'failed';
        status.error = error instanceof Error ? error.message : String(error);
        throw error;
      } finally {
        status.completedAt = Date.now();
      }
    });
    running = done;
    return { runId, done };
  };

  /** Ends one unconfirmed change: confirmed, refused or timed out. */
  const endUnconfirmed = (changeId: string, outcome: { externalId: string } | { error: string }) => {
    const waiting = unconfirmed.get(changeId);
    if (!waiting) return;
    unconfirmed.delete(changeId);
    settle(waiting.change, outcome, true);
  };

  /** One poll round over every unconfirmed change, then the next, while any is left. */
  const poll = async (options: Required<ConfirmationOptions>) => {
    const round = [...unconfirmed.entries()];
    log(`Processing ${round.length} unconfirmed changes`);
    const confirmedBy = new Map<string, number>();
    const tasks = round.map(([changeId, { change, ticket }]) => async () => {
      let status: ConfirmationStatus = { status: 'pending' };
      try {
        status = await options.poll({ ...change, ...ticket });
      } catch (error) {
        log(`Polling change ${changeId} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (status.status === 'confirmed') {
        newer(status.externalUpdatedAt);
        confirmedBy.set(ticket.runId, (confirmedBy.get(ticket.runId) ?? 0) + 1);
        endUnconfirmed(changeId, { externalId: String(status.externalId) });
      } else if (status.status === 'refused') {
        const error = `Change ${changeId} was refused: ${status.error}`;
        log(error);
        endUnconfirmed(changeId, { error });
      } else if (Date.now() - ticket.acceptedAt >= options.timeoutMs) {
        const error = `Change ${changeId} was not confirmed within ${options.timeoutMs} ms`;
        log(error);
        endUnconfirmed(changeId, { error });
      }
    });
    await runLimited(tasks, settings.concurrency);
    for (const [runId, count] of confirmedBy) log(`Confirmed ${count} changes for sync ${runId}`);
    polling = undefined;
    schedulePoll();
  };
  const schedulePoll = () => {
    const options = settings.confirmation;
    if (!options || polling !== undefined || unconfirmed.size === 0) return;
    polling = setTimeout(() => void poll(options), options.intervalMs);
  };

  /** `awaitSync`: resolves once the transaction's unconfirmed changes (their tickets in
   * `confirm`) are confirmed, and rejects once one is refused or timed out. */
  const awaitSync: NonNullable<MutationFn['awaitSync']> = ({ changes, confirm }) => {
    const tickets = (confirm ?? {}) as unknown as Record<string, Ticket>;
    const mine = toConnectorChanges(changes, model.name).filter((c) => tickets[c.changeId]);
    if (mine.length === 0) return Promise.resolve({});
    return new Promise<AwaitSyncResult>((resolve, reject) => {
      const waiting: Pending<AwaitSyncResult> = { changes: mine, externalIds: {}, unconfirmed: {}, errors: [], remaining: mine.length, resolve, reject };
      for (const change of mine) {
        byChange.set(change.changeId, waiting);
        unconfirmed.set(change.changeId, { change, ticket: tickets[change.changeId]! });
      }
      schedulePoll();
    });
  };

  return {
    backend: {
      sync: {
        id: `rest:${rest.baseUrl}/${model.name}`,
        async setup(context) {
          onUpdate = context.onUpdate as typeof onUpdate;
          return {};
        },
      },
      mutationFn: {
        // Only a connector that confirms writes later waits for anything after `persist`.
        ...(settings.confirmation ? { awaitSync } : {}),
        persist({ changes }) {
          return new Promise<PersistResult>((resolve, reject) => {
            const mine = toConnectorChanges(
              changes.filter((c) => c.collection === collection),
              model.name,
            );
            if (mine.length === 0) return resolve({});
            const queued: Pending<PersistResult> = { changes: mine, externalIds: {}, unconfirmed: {}, errors: [], remaining: mine.length, resolve, reject };
            for (const c of mine) byChange.set(c.changeId, queued);
            queue.push(queued);
          });
        },
      },
    },
    sync(mode = 'FULL', options = {}) {
      return startRun(mode, options).done;
    },
    syncAsync(mode = 'FULL', options = {}) {
      const { runId, done } = startRun(mode, options);
      // Its outcome is read through runStatus.
      done.catch(() => undefined);
      return { runId };
    },
    runStatus(runId) {
      const run = runs.get(runId);
      return run && { ...run };
    },
    failures: () => [...failures],
    log: () => [...lines],
  };
}
