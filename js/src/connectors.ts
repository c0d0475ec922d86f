// REST connectors: sync an engine collection with an existing REST API. The connector is the
// engine's custom backend: the engine hands it each durable transaction (`persist`), and
// `connector.sync()` writes what is queued to the API (batched and in parallel, or one request
// at a time), confirms each change, then lists the API's records into the collection.
import { NonRetriableError } from './errors.js';
import type {
  CustomSync,
  Document,
  DocumentFields,
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
    throw new TypeError(`createRestConnector needs an http(s) baseUrl, got ${options?.baseUrl}`);
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
      const response = await fetch(url, {
        method: request.method ?? 'GET',
        headers: {
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
          ...headers,
          ...request.headers,
        },
        body: hasBody ? JSON.stringify(request.body) : undefined,
      });
      const text = await response.text();
      if (!response.ok) {
        const error = new Error(
          `${request.method ?? 'GET'} ${request.path} answered ${response.status}: ${text.slice(0, 200)}`,
        );
        // Client errors will not go away by retrying; server errors and throttling might.
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          throw new NonRetriableError(error.message);
        }
        throw error;
      }
      return text ? JSON.parse(text) : null;
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
  /** The API's id for the record. */
  externalId: string;
  /** The API's update time of the record, if it has one (used by incremental syncs). */
  externalUpdatedAt?: string | number;
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
  /** Changes the API confirmed. */
  confirmed: number;
  /** Changes it did not take (also in {@link SyncConnector.failures}). */
  failed: ChangeFailure[];
  /** Records listed from the API. */
  pulled: number;
  /** Whether writes were asynchronous. */
  asyncWrites: boolean;
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
  /** Every change the API did not take, oldest first. */
  failures(): ChangeFailure[];
  /** The latest progress lines (at most 200). */
  log(): string[];
}

/** A transaction handed over by the engine, waiting to be written. */
interface Queued {
  changes: ConnectorChange[];
  externalIds: Record<string, string>;
  errors: string[];
  remaining: number;
  resolve: (result: PersistResult) => void;
  reject: (error: Error) => void;
}

/** Starts configuring a connector for the engine collection `collection`. */
export function createSyncConnector(rest: RestConnector, collection: string): SyncConnectorBuilder {
  if (!rest || typeof rest.request !== 'function') {
    throw new TypeError('createSyncConnector needs a connector from createRestConnector');
  }
  if (typeof collection !== 'string' || collection === '') {
    throw new TypeError('createSyncConnector needs the name of the collection to sync');
  }
  let model: ModelSpec | undefined;
  let asyncWrites: boolean | undefined;
  let concurrency = 8;
  let batchSize = 100;
  const listeners: LogListener[] = [];
  const positive = (what: string, n: number) => {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`${what} must be a whole number >= 1, got ${n}`);
    return n;
  };
  const builder: SyncConnectorBuilder = {
    withModelConnector(name, build) {
      if (model) throw new Error(`a sync connector holds one model; ${model.name} is already declared`);
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
    onLog(listener) {
      listeners.push(listener);
      return builder;
    },
    build() {
      if (!model) throw new Error('declare the model with withModelConnector() before build()');
      return connector(rest, collection, model, { asyncWrites, concurrency, batchSize, listeners });
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
      throw new TypeError(`batch ${type.toLowerCase()} for ${name} needs request and extract functions`);
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

/** Runs `tasks` with at most `limit` under way at once. */
async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function connector(
  rest: RestConnector,
  collection: string,
  model: ModelSpec,
  settings: { asyncWrites: boolean | undefined; concurrency: number; batchSize: number; listeners: LogListener[] },
): SyncConnector {
  let queue: Queued[] = [];
  let onUpdate: ((data: Document[], options?: { complete?: boolean }) => void) | undefined;
  let since: string | number | undefined;
  const failures: ChangeFailure[] = [];
  const lines: string[] = [];
  const byChange = new Map<string, Queued>();
  let running: Promise<SyncReport> | undefined;

  const log = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    for (const listener of settings.listeners) listener(line);
  };
  const newer = (at: unknown) => {
    if ((typeof at === 'string' || typeof at === 'number') && (since === undefined || at > since)) since = at;
  };

  /** Settles one change of a queued transaction. */
  const settle = (change: ConnectorChange, outcome: { externalId: string } | { error: string }, asyncWrites: boolean) => {
    const owner = byChange.get(change.changeId);
    if (!owner) return;
    byChange.delete(change.changeId);
    if ('error' in outcome) {
      owner.errors.push(outcome.error);
      failures.push({ changeId: change.changeId, type: change.type, model: model.name, error: outcome.error });
    } else if (change.type === 'CREATE') {
      owner.externalIds[change.changeId] = outcome.externalId;
    }
    if (--owner.remaining > 0) return;
    if (owner.errors.length === 0) {
      owner.resolve({ externalIds: owner.externalIds });
    } else {
      const message = owner.errors.join('; ');
      // In asynchronous mode failures are reported, not retried.
      owner.reject(asyncWrites ? new NonRetriableError(message) : new Error(message));
    }
  };

  /** Reads a write's answer into per-change outcomes. */
  const confirmAll = (changes: ConnectorChange[], confirmations: unknown, asyncWrites: boolean) => {
    const list = Array.isArray(confirmations) ? confirmations : [confirmations];
    const found = new Map<string, WriteConfirmation>();
    for (const item of list as Partial<WriteConfirmation>[]) {
      if (item && typeof item.changeId === 'string') found.set(item.changeId, item as WriteConfirmation);
    }
    let confirmed = 0;
    for (const change of changes) {
      const c = found.get(change.changeId);
      const id = c?.externalId;
      if (id === undefined || id === null || id === '') {
        const error = `Could not extract externalId for change ${change.changeId}`;
        log(error);
        settle(change, { error }, asyncWrites);
        continue;
      }
      newer(c?.externalUpdatedAt);
      settle(change, { externalId: String(id) }, asyncWrites);
      confirmed++;
    }
    if (confirmed > 0) log(`Confirmed ${confirmed} changes`);
    return confirmed;
  };

  /** Writes what is queued now; resolves when every request answered. */
  const flush = async (asyncWrites: boolean): Promise<number> => {
    const taken = queue;
    queue = [];
    const byType: Record<ConnectorChangeType, ConnectorChange[]> = { CREATE: [], UPDATE: [], DELETE: [] };
    for (const q of taken) for (const c of q.changes) byType[c.type].push(c);
    let confirmed = 0;
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
      if (batch) {
        for (const group of chunks(changes, settings.batchSize)) {
          tasks.push(async () => {
            try {
              const body = await rest.request(batch.request(group));
              confirmed += confirmAll(group, batch.extract!(body, group), asyncWrites);
            } catch (error) {
              fail(group, error);
            }
          });
        }
      } else if (single) {
        for (const change of changes) {
          tasks.push(async () => {
            try {
              const body = await rest.request(single.request(change));
              confirmed += confirmAll([change], single.extract ? single.extract(body, change) : { changeId: change.changeId, externalId: change.localId }, asyncWrites);
            } catch (error) {
              fail([change], error);
            }
          });
        }
      } else {
        fail(changes, new NonRetriableError(`model ${model.name} has no ${type.toLowerCase()} operation`));
      }
    }
    await runLimited(tasks, asyncWrites ? settings.concurrency : 1);
    return confirmed;
  };

  const list = async (mode: SyncMode): Promise<number> => {
    if (!model.list) return 0;
    const body = await rest.request(model.list.request({ mode, since: mode === 'FULL' ? undefined : since }));
    const records = model.list.extract ? model.list.extract(body, { mode, since }) : body;
    if (!Array.isArray(records)) throw new Error(`the list of ${model.name} is not an array`);
    const docs = records.map((record: Record<string, unknown>) => {
      const { [model.idField]: id, ...fields } = record;
      if (id === undefined || id === null) throw new Error(`a ${model.name} record has no ${model.idField}`);
      newer(record[model.updatedAtField]);
      return { ...fields, _id: String(id) } as Document;
    });
    onUpdate?.(docs, { complete: mode === 'FULL' });
    log(`Pulled ${docs.length} ${model.name} records (${mode})`);
    return docs.length;
  };

  const run = async (mode: SyncMode, options: SyncOptions): Promise<SyncReport> => {
    if (mode !== 'FULL' && mode !== 'INCREMENTAL') {
      throw new TypeError(`sync mode must be 'FULL' or 'INCREMENTAL', got ${String(mode)}`);
    }
    const asyncWrites = resolveAsyncWrites(options.useAsyncWrites, settings.asyncWrites);
    const failedBefore = failures.length;
    let confirmed = 0;
    // Confirmed creates release queued writes to the same documents (with their new ids),
    // which the engine hands over on its next turn: keep flushing until nothing is queued.
    do {
      confirmed += await flush(asyncWrites);
      await new Promise((resolve) => setTimeout(resolve, 0));
    } while (queue.length > 0);
    const pulled = await list(mode);
    return { confirmed, failed: failures.slice(failedBefore), pulled, asyncWrites };
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
        persist({ changes }) {
          return new Promise<PersistResult>((resolve, reject) => {
            const mine = toConnectorChanges(
              changes.filter((c) => c.collection === collection),
              model.name,
            );
            if (mine.length === 0) return resolve({});
            const queued: Queued = { changes: mine, externalIds: {}, errors: [], remaining: mine.length, resolve, reject };
            for (const c of mine) byChange.set(c.changeId, queued);
            queue.push(queued);
          });
        },
      },
    },
    sync(mode = 'FULL', options = {}) {
      // One sync at a time: a second call waits for the first, then runs.
      const next = (running ?? Promise.resolve()).catch(() => undefined).then(() => run(mode, options));
      running = next;
      return next;
    },
    failures: () => [...failures],
    log: () => [...lines],
  };
}
