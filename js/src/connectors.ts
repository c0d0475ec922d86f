// REST connectors: sync an engine collection with an existing REST API. The connector is the
// engine's custom backend: the engine hands it each durable transaction (`persist`), and
// `connector.sync()` writes what is queued to the API (batched and in parallel, or one request
// at a time), confirms each change, then lists the API's records into the collection. Writes
// the API accepts without confirming (`202`, no id) are confirmed later by a poll
// (`withConfirmation`), through the engine's `awaitSync`, which keeps them durably meanwhile.
// This module is the public surface; `connector-model.ts` turns a model's declaration into its
// requests, and `connector-runs.ts` is the connector at work.
import { connector } from './connector-runs.js';
import { buildModel, type ModelSpec } from './connector-model.js';
import { NonRetriableError } from './errors.js';
import { failure } from './failure.js';
import type {
  CustomSync,
  DocumentFields,
  JsonValue,
  MutationFn,
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

/** How one request of a model is made from its input, and what its answer means. */
export interface WriteSpec<In> {
  /** The request for `input`. */
  request: (input: In) => RestRequest;
  /**
   * What the answer's parsed body yields: for a list, the array of records; for a write, its
   * {@link WriteConfirmation} (for a batch, an array of them, one per change).
   */
  extract?: (body: unknown, input: In) => unknown;
}

/** What a list request is made from. */
export interface ListContext {
  /** The sync's mode. */
  mode: SyncMode;
  /** The newest `externalUpdatedAt` seen (for `INCREMENTAL`), if any. */
  since: string | number | undefined;
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
