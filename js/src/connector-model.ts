// A model connector's declaration: the requests that list, create, update and delete its records
// (the defaults of a JSON REST API, or the application's own), and the engine's pending changes
// as the model's changes.
import { failure } from './failure.js';
import type { Document, PendingChange } from './ferrosync.js';
import type { ConnectorChange, ConnectorChangeType, ListContext, ModelConnectorBuilder, WriteSpec } from './connectors.js';

/** A model as declared: its fields and the request of each operation. */
export interface ModelSpec {
  name: string;
  idField: string;
  updatedAtField: string;
  list?: WriteSpec<ListContext>;
  single: Partial<Record<ConnectorChangeType, WriteSpec<ConnectorChange>>>;
  batch: Partial<Record<ConnectorChangeType, WriteSpec<ConnectorChange[]>>>;
}

/** Declares the model `name` with `build`, over the defaults. */
export function buildModel(name: string, build: (b: ModelConnectorBuilder) => ModelConnectorBuilder): ModelSpec {
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

/** Turns the engine's pending changes into the model's changes (one per document). */
export function toConnectorChanges(changes: PendingChange[], model: string): ConnectorChange[] {
  return changes.map((c) => {
    const fields = ({ _id, _deleted, ...rest }: Document) => rest;
    const type: ConnectorChangeType = c.type === 'insert' ? 'CREATE' : c.type === 'update' ? 'UPDATE' : 'DELETE';
    const data = c.value ? fields(c.value) : c.original ? fields(c.original) : {};
    return { changeId: c.id, type, model, localId: c.key, data, changes: c.changes };
  });
}
