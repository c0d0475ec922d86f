// REST connectors: sync an engine collection with an existing REST API. The connector is the
// engine's custom backend: the engine hands it each durable transaction (`persist`), and
// `connector.sync()` writes what is queued to the API (batched and in parallel, or one request
// at a time), confirms each change, then lists the API's records into the collection. Writes
// the API accepts without confirming (`202`, no id) are confirmed later by a poll
// (`withConfirmation`), through the engine's `awaitSync`, which keeps them durably meanwhile.
import { NonRetriableError } from './errors.js';
import { failure } from './failure.js';
import type {
  AwaitSyncResult,
  CustomSync,
  Document,
  DocumentFields,
  JsonValue,
  MutationFn,
  PendingChange,
  PersistResult,
} from './ferrosync.js';

/** A request to the API, relative to the connector's `baseUrl`. */
export interface RestRequest {
  /** HTTP method (default `GET`). */
  method?: string;
  /** Path after `baseUrl`, e.g. `/contacts/12`. */
  path: string;
  /** Query parameters. */
  query?: Record<string, string | number>;
  /** JSON body. */
  body?: unknown;
  /** Extra headers. */
  headers?: Record<string, string>;
}

/** Options of {@link createRestConnector}. */
export interface RestConnectorOptions {
  /** The API's base URL, e.g. `https://api.example.com/v2`. */
  baseUrl: string;
  /** Headers sent with every request (e.g. `Authorization`). */
  headers?: Record<string, string>;
}

/** Sends requests to one REST API. */
export interface RestConnector {
  /** The API's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** Sends `request`; resolves to the parsed JSON body (or `null`), rejects on a non-2xx. */
  request(request: RestRequest): Promise<unknown>;
}

/** Creates a {@link RestConnector}. */
export function createRestConnector(options: RestConnectorOptions): RestConnector {
  if (typeof options?.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
    throw failure('invalid_argument', `createRestConnector needs an http(s) baseUrl, got ${options?.baseUrl}`);
  }
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const headers = options.headers ?? {};
  return {
    baseUrl,
    async request(request) {
      const url = new URL(baseUrl + request.path);
      for (const [key, value] of Object.entries(request.query ?? {})) {
        url.searchParams.set(key, String(value));
      }
      const hasBody = request.body !== undefined;
      const what = `${request.method ?? 'GET'} ${request.path}`;
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, {
          method: request.method ?? 'GET',
          headers: {
            ...(hasBody ? { 'content-type': 'application/json' } : {}),
            ...headers,
            ...request.headers,
          },
          body: hasBody ? JSON.stringify(request.body) : undefined,
        });
        text = await response.text();
      } catch (cause) {
        throw failure('network', `${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { retryable: true, cause });
      }
      if (!response.ok) {
        const message = `${what} answered ${response.status}: ${text.slice(0, 200)}`;
        // Client errors will not go away by retrying; server errors and throttling might.
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          throw new NonRetriableError(message);
        }
        throw failure('http_error', message, { retryable: true });
      }
      try {
        return text ? JSON.parse(text) : null;
      } catch (cause) {
        throw failure('bad_remote_data', `${what} answered with a body that is not JSON`, { retryable: false, cause });
      }
    },
  };
}

/** The kinds of change a model connector writes. */
export type ConnectorChangeType = 'CREATE' | 'UPDATE' | 'DELETE';

/** A local change, as the request builders receive it. */
export interface ConnectorChange {
  /** The engine's change id (`tx-<n>/<index>`). */
  changeId: string;
  /** What it does. */
  type: ConnectorChangeType;
  /** The model it belongs to. */
  model: string;
  /** The local document id (for a create: the temporary id). */
  localId: string;
  /** The document's fields after the change, without `_id` (for a delete: before it). */
  data: DocumentFields;
  /** The fields the change sets (for a create: all of them). */
  changes: DocumentFields;
}

/** What a write's `extract` returns for one change. */
export interface WriteConfirmation {
  /** The change confirmed. */
  changeId: string;
  /**
   * The API's id for the record. Without one, the change is accepted but unconfirmed when the
   * connector has {@link SyncConnectorBuilder.withConfirmation} (and fails otherwise).
   */
  externalId?: string;
  /** The API's update time of the record, if it has one (used by incremental syncs). */
  externalUpdatedAt?: string | number;
  /** What the confirmation poll needs to find the change later (a ticket, a location). */
  ticket?: JsonValue;
}

/** A change the API accepted without confirming it, as the confirmation poll receives it. */
export interface UnconfirmedChange extends ConnectorChange {
  /** What `extract` gave to find it later, or `null`. */
  ticket: JsonValue | null;
  /** When the API accepted it (ms since epoch). */
  acceptedAt: number;
  /** The sync run that sent it. */
  runId: string;
}

/** What the confirmation poll answers for one change. */
export type ConfirmationStatus =
  | { status: 'pending' }
  | { status: 'confirmed'; externalId: string; externalUpdatedAt?: string | number }
  | { status: 'refused'; error: string };

/** Options of {@link SyncConnectorBuilder.withConfirmation}. */
export interface ConfirmationOptions {
  /** Asks the API about one unconfirmed change; a rejection is tried again next round. */
  poll: (change: UnconfirmedChange) => Promise<ConfirmationStatus>;
  /** How long between poll rounds, in ms. @defaultValue `1000` */
  intervalMs?: number;
  /** How long after its acceptance a change fails as not confirmed, in ms. @defaultValue `60000` */
  timeoutMs?: number;
}

/** A change the API did not take. */
export interface ChangeFailure {
  /** The change. */
  changeId: string;
  /** Its type and model. */
  type: ConnectorChangeType;
  model: string;
  /** Why. */
  error: string;
}

/** `FULL`: list every record and replace the collection; `INCREMENTAL`: only those changed. */
export type SyncMode = 'FULL' | 'INCREMENTAL';

/** Options of {@link SyncConnector.sync}. */
export interface SyncOptions {
  /** Overrides the builder's and the global write mode for this sync. */
  useAsyncWrites?: boolean;
}

/** What one {@link SyncConnector.sync} did. */
export interface SyncReport {
  /** The run's id (as in the connector's log lines and {@link SyncConnector.runStatus}). */
  runId: string;
  /** Changes the API confirmed. */
  confirmed: number;
  /** Changes the API accepted but confirms later (polled for; see `withConfirmation`). */
  unconfirmed: number;
  /** Changes it did not take (also in {@link SyncConnector.failures}). */
  failed: ChangeFailure[];
  /** Records listed from the API. */
  pulled: number;
  /** Whether writes were asynchronous. */
  asyncWrites: boolean;
}

/** Where a sync run is. */
export type SyncRunState = 'queued' | 'running' | 'completed' | 'failed';

/** A sync run started by {@link SyncConnector.syncAsync} (or `sync`), as it is now. */
export interface SyncRun {
  /** Its id. */
  runId: string;
  /** Its mode. */
  mode: SyncMode;
  /** Where it is. */
  state: SyncRunState;
  /** When it was asked for (ms since epoch). */
  queuedAt: number;
  /** When it started (runs go one at a time), or `null` while queued. */
  startedAt: number | null;
  /** When it ended, or `null`. */
  completedAt: number | null;
  /** What it did, once `completed`. */
  report: SyncReport | null;
  /** Why it failed, once `failed`. */
  error: string | null;
}

/** Receives the connector's progress lines. */
export type LogListener = (line: string) => void;

interface WriteSpec<In> {
  request: (input: In) => RestRequest;
  extract?: (body: unknown, input: In) => unknown;
}

interface ListContext {
  mode: SyncMode;
  /** The newest `externalUpdatedAt` seen (for `INCREMENTAL`), if any. */
  since: string | number | undefined;
}

interface ModelSpec {
  name: string;
  idField: string;
  updatedAtField: string;
  list?: WriteSpec<ListContext>;
  single: Partial<Record<ConnectorChangeType, WriteSpec<ConnectorChange>>>;
  batch: Partial<Record<ConnectorChangeType, WriteSpec<ConnectorChange[]>>>;
}

/** Declares how one model is read and written. */
export interface ModelConnectorBuilder {
  /**
   * How records are listed. Default: `GET /<model>` (with `<updatedAtField>_gte=<since>` for an
   * incremental sync) and a body that is an array of records.
   */
  withList(spec?: Partial<WriteSpec<ListContext>>): ModelConnectorBuilder;
  /** How one record is created. Default: `POST /<model>` with the data; the answer's id. */
  withCreate(spec?: Partial<WriteSpec<ConnectorChange>>): ModelConnectorBuilder;
  /** How one record is updated. Default: `PATCH /<model>/<id>` with the changed fields. */
  withUpdate(spec?: Partial<WriteSpec<ConnectorChange>>): ModelConnectorBuilder;
  /** How one record is deleted. Default: `DELETE /<model>/<id>`. */
  withDelete(spec?: Partial<WriteSpec<ConnectorChange>>): ModelConnectorBuilder;
  /** How many records are created in one request; `extract` returns a confirmation per change. */
  withBatchCreate(spec: WriteSpec<ConnectorChange[]>): ModelConnectorBuilder;
  /** How many records are updated in one request. */
  withBatchUpdate(spec: WriteSpec<ConnectorChange[]>): ModelConnectorBuilder;
  /** How many records are deleted in one request. */
  withBatchDelete(spec: WriteSpec<ConnectorChange[]>): ModelConnectorBuilder;
  /** The records' id field (default `id`); documents keep it as `_id`. */
  withIdField(field: string): ModelConnectorBuilder;
  /** The records' update-time field (default `updatedAt`), for incremental syncs. */
  withUpdatedAtField(field: string): ModelConnectorBuilder;
}

/** Configures a {@link SyncConnector}. */
export interface SyncConnectorBuilder {
  /** Declares the model the collection holds. */
  withModelConnector(name: string, build: (b: ModelConnectorBuilder) => ModelConnectorBuilder): SyncConnectorBuilder;
  /** Asynchronous writes on or off (see {@link SyncConnector.sync}). */
  withAsyncWrites(enabled: boolean): SyncConnectorBuilder;
  /** Shorthand for `withAsyncWrites(false)`. */
  withSyncWrites(): SyncConnectorBuilder;
  /** At most this many requests at once in asynchronous mode (default 8). */
  withConcurrency(requests: number): SyncConnectorBuilder;
  /** At most this many changes per batch request (default 100). */
  withBatchSize(changes: number): SyncConnectorBuilder;
  /**
   * Confirms later the changes the API accepts without an id (`202` and no body, say): they
   * stay unfinished, kept durably by the engine (across reloads), and `poll` is asked about
   * them every `intervalMs` until each is confirmed, refused, or `timeoutMs` passed; each end
   * shows on its transaction (completed, or failed with the reason).
   */
  withConfirmation(options: ConfirmationOptions): SyncConnectorBuilder;
  /** Receives progress lines. */
  onLog(listener: LogListener): SyncConnectorBuilder;
  /** The connector. */
  build(): SyncConnector;
}

/** Syncs one engine collection with a REST API. */
export interface SyncConnector {
  /**
   * The engine options that make the connector its backend: spread them into
   * `SyncEngine.open({ ..., ...connector.backend })`.
   */
  readonly backend: { sync: CustomSync; mutationFn: MutationFn };
  /**
   * Writes every queued local change to the API, then lists records into the collection.
   * Asynchronous writes (the default) send requests without waiting for each answer (batched
   * where batch operations exist) and fail changes the API refuses without retrying them;
   * synchronous writes send one request at a time and let the engine retry failures.
   * Precedence: `options.useAsyncWrites`, then the builder, then
   * `globalThis.FERROSYNC_ASYNC_WRITES = 'false' | '0'`.
   */
  sync(mode?: SyncMode, options?: SyncOptions): Promise<SyncReport>;
  /**
   * Starts a sync run in the background and answers at once with its id; read how it goes
   * with {@link SyncConnector.runStatus}. Runs go one at a time, in the order asked for.
   */
  syncAsync(mode?: SyncMode, options?: SyncOptions): { runId: string };
  /** The run `runId` as it is now (the latest 100 runs are kept), or `undefined`. */
  runStatus(runId: string): SyncRun | undefined;
  /** Every change the API did not take, oldest first. */
  failures(): ChangeFailure[];
  /** The latest progress lines (at most 200). */
  log(): string[];
}

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

/** Starts configuring a connector for the engine collection `collection`. */
export function createSyncConnector(rest: RestConnector, collection: string): SyncConnectorBuilder {
  if (!rest || typeof rest.request !== 'function') {
    throw failure('invalid_argument', 'createSyncConnector needs a connector from createRestConnector');
  }
  if (typeof collection !== 'string' || collection === '') {
    throw failure('invalid_argument', 'createSyncConnector needs the name of the collection to sync');
  }
  let model: ModelSpec | undefined;
  let asyncWrites: boolean | undefined;
  let concurrency = 8;
  let batchSize = 100;
  let confirmation: Required<ConfirmationOptions> | undefined;
  const listeners: LogListener[] = [];
  const positive = (what: string, n: number) => {
    if (!Number.isInteger(n) || n < 1) throw failure('invalid_argument', `${what} must be a whole number >= 1, got ${n}`);
    return n;
  };
  const builder: SyncConnectorBuilder = {
    withModelConnector(name, build) {
      if (model) throw failure('invalid_config', `a sync connector holds one model; ${model.name} is already declared`);
      model = buildModel(name, build);
      return builder;
    },
    withAsyncWrites(enabled) {
      asyncWrites = enabled;
      return builder;
    },
    withSyncWrites() {
      asyncWrites = false;
      return builder;
    },
    withConcurrency(requests) {
      concurrency = positive('withConcurrency', requests);
      return builder;
    },
    withBatchSize(changes) {
      batchSize = positive('withBatchSize', changes);
      return builder;
    },
    withConfirmation(options) {
      if (typeof options?.poll !== 'function') throw failure('invalid_argument', 'withConfirmation needs a poll function');
      confirmation = {
        poll: options.poll,
        intervalMs: positive('withConfirmation intervalMs', options.intervalMs ?? 1000),
        timeoutMs: positive('withConfirmation timeoutMs', options.timeoutMs ?? 60_000),
      };
      return builder;
    },
    onLog(listener) {
      listeners.push(listener);
      return builder;
    },
    build() {
      if (!model) throw failure('invalid_config', 'declare the model with withModelConnector() before build()');
      return connector(rest, collection, model, { asyncWrites, concurrency, batchSize, confirmation, listeners });
    },
  };
  return builder;
}

function buildModel(name: string, build: (b: ModelConnectorBuilder) => ModelConnectorBuilder): ModelSpec {
  const path = `/${encodeURIComponent(name)}`;
  const spec: ModelSpec = { name, idField: 'id', updatedAtField: 'updatedAt', single: {}, batch: {} };
  const idOf = (body: unknown) => (body as Record<string, unknown> | null)?.[spec.idField];
  const confirm = (body: unknown, change: ConnectorChange) => ({
    changeId: change.changeId,
    externalId: change.type === 'CREATE' ? idOf(body) : change.localId,
    externalUpdatedAt: (body as Record<string, unknown> | null)?.[spec.updatedAtField],
  });
  const defaults: Record<ConnectorChangeType, WriteSpec<ConnectorChange>> = {
    CREATE: { request: (c) => ({ method: 'POST', path, body: c.data }), extract: confirm },
    UPDATE: {
      request: (c) => ({ method: 'PATCH', path: `${path}/${encodeURIComponent(c.localId)}`, body: c.changes }),
      extract: confirm,
    },
    DELETE: {
      request: (c) => ({ method: 'DELETE', path: `${path}/${encodeURIComponent(c.localId)}` }),
      extract: (_body, c) => ({ changeId: c.changeId, externalId: c.localId }),
    },
  };
  const single = (type: ConnectorChangeType, given?: Partial<WriteSpec<ConnectorChange>>) => {
    spec.single[type] = { ...defaults[type], ...given };
    return b;
  };
  const batch = (type: ConnectorChangeType, given: WriteSpec<ConnectorChange[]>) => {
    if (typeof given?.request !== 'function' || typeof given.extract !== 'function') {
      throw failure('invalid_argument', `batch ${type.toLowerCase()} for ${name} needs request and extract functions`);
    }
    spec.batch[type] = given;
    return b;
  };
  const b: ModelConnectorBuilder = {
    withList(given) {
      spec.list = {
        request: ({ mode, since }) => ({
          path,
          query: mode === 'INCREMENTAL' && since !== undefined ? { [`${spec.updatedAtField}_gte`]: since } : {},
        }),
        extract: (body) => body,
        ...given,
      };
      return b;
    },
    withCreate: (given) => single('CREATE', given),
    withUpdate: (given) => single('UPDATE', given),
    withDelete: (given) => single('DELETE', given),
    withBatchCreate: (given) => batch('CREATE', given),
    withBatchUpdate: (given) => batch('UPDATE', given),
    withBatchDelete: (given) => batch('DELETE', given),
    withIdField(field) {
      spec.idField = field;
      return b;
    },
    withUpdatedAtField(field) {
      spec.updatedAtField = field;
      return b;
    },
  };
  build(b);
  return spec;
}

/** The write mode a sync uses: its option, then the builder, then the global switch. */
function resolveAsyncWrites(option: boolean | undefined, builder: boolean | undefined): boolean {
  if (option !== undefined) return option;
  if (builder !== undefined) return builder;
  const global = (globalThis as { FERROSYNC_ASYNC_WRITES?: unknown }).FERROSYNC_ASYNC_WRITES;
  return !(global === 'false' || global === '0' || global === false);
}

/** Turns the engine's pending changes into the model's changes (one per document). */
function toConnectorChanges(changes: PendingChange[], model: string): ConnectorChange[] {
  return changes.map((c) => {
    const fields = ({ _id, _deleted, ...rest }: Document) => rest;
    const type: ConnectorChangeType = c.type === 'insert' ? 'CREATE' : c.type === 'update' ? 'UPDATE' : 'DELETE';
    const data = c.value ? fields(c.value) : c.original ? fields(c.original) : {};
    return { changeId: c.id, type, model, localId: c.key, data, changes: c.changes };
  });
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

function connector(
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
