//! One batch's round trips: the reads it needs under its tenants' head locks, then its writes,
//! each kind of row in one statement over columns, and the commit.

use super::int;
use crate::storage::group::{ClientKey, ClientRow, Reads, Snapshot, Writes};
use crate::storage::{Row, StorageError, SyncLog};
use deadpool_postgres::ClientWrapper;
use ferrosync_core::server::ServerDoc;
use ferrosync_core::Version;
use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;

/// Begins the transaction, locks the head rows of the batch's tenants, and reads what the batch
/// needs: one round trip, the statements pipelined (the server runs them in order, so the reads
/// run once the locks are held).
pub(super) async fn read(client: &ClientWrapper, reads: &Reads) -> Result<Snapshot, StorageError> {
    let mut snapshot = Snapshot::default();
    let (client_tenants, client_ids): (Vec<&str>, Vec<&str>) = reads
        .clients
        .iter()
        .map(|(t, c)| (t.as_str(), c.as_str()))
        .unzip();
    let mut doc_keys: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
    for (t, c, id) in &reads.documents {
        doc_keys.0.push(t);
        doc_keys.1.push(c);
        doc_keys.2.push(id);
    }
    let mut spans: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
    for span in &reads.outcomes {
        spans.0.push(&span.tenant);
        spans.1.push(&span.client_id);
        spans.2.push(int(span.first));
        spans.3.push(int(span.last));
    }
    let (create, lock, clients, documents, outcomes) = tokio::try_join!(
        // Head rows are created at 0 when missing (only those: inserting over a row that
        // another transaction updates would wait for it as a lock does)...
        client.prepare_cached(
            "INSERT INTO tenants (tenant, head) SELECT t, 0 FROM unnest($1::text[]) AS u(t)
             WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE tenant = u.t)
             ORDER BY t ON CONFLICT (tenant) DO NOTHING",
        ),
        // ...then locked in tenant order until the commit: writers of a tenant, on any node,
        // take turns from here on.
        client.prepare_cached(
            "SELECT tenant, head FROM tenants WHERE tenant = ANY($1) ORDER BY tenant FOR UPDATE",
        ),
        client.prepare_cached(
            "SELECT c.tenant, c.client_id, c.user_id, c.last_mutation_id, c.collections
             FROM clients c JOIN unnest($1::text[], $2::text[]) AS k(tenant, client_id)
               ON c.tenant = k.tenant AND c.client_id = k.client_id",
        ),
        client.prepare_cached(
            "SELECT d.tenant, d.collection, d.id, d.version, d.writer, d.deleted, d.hlc, d.fields
             FROM documents d JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant, collection, id)
               ON d.tenant = k.tenant AND d.collection = k.collection AND d.id = k.id",
        ),
        client.prepare_cached(
            "SELECT o.tenant, o.client_id, o.mutation_id, o.outcome
             FROM outcomes o JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
               AS k(tenant, client_id, first, last)
               ON o.tenant = k.tenant AND o.client_id = k.client_id
              AND o.mutation_id BETWEEN k.first AND k.last",
        ),
    )?;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&reads.tenants];
    let client_params: [&(dyn ToSql + Sync); 2] = [&client_tenants, &client_ids];
    let doc_params: [&(dyn ToSql + Sync); 3] = [&doc_keys.0, &doc_keys.1, &doc_keys.2];
    let span_params: [&(dyn ToSql + Sync); 4] = [&spans.0, &spans.1, &spans.2, &spans.3];
    let ((), _, heads, clients, documents, outcomes) = tokio::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(&create, &lock_params),
        client.query(&lock, &lock_params),
        client.query(&clients, &client_params),
        client.query(&documents, &doc_params),
        client.query(&outcomes, &span_params),
    )?;
    for row in heads {
        snapshot
            .heads
            .insert(row.get(0), row.get::<_, i64>(1) as Version);
    }
    for row in clients {
        let client = ClientRow {
            user: row.get(2),
            last_mutation_id: row.get::<_, i64>(3) as u64,
            collections: row.get(4),
        };
        snapshot.clients.insert((row.get(0), row.get(1)), client);
    }
    for row in documents {
        let (tenant, writer): (String, String) = (row.get(0), row.get(4));
        let stored = Row {
            collection: row.get(1),
            id: row.get(2),
            version: row.get::<_, i64>(3) as Version,
            deleted: row.get(5),
            hlc: row.get(6),
            fields: row.get(7),
        };
        let key = (tenant, stored.collection.clone(), stored.id.clone());
        snapshot.documents.insert(key, stored.server_doc(writer)?);
    }
    for row in outcomes {
        let key = (row.get(0), row.get(1), row.get::<_, i64>(2) as u64);
        let outcome: String = row.get(3);
        snapshot
            .outcomes
            .insert(key, serde_json::from_str(&outcome)?);
    }
    Ok(snapshot)
}

/// Writes what a batch decided, each kind of row in one statement, tells the other nodes
/// (delivered when the transaction commits), and commits: one round trip, pipelined. A failing
/// statement fails the transaction, which the `COMMIT` then rolls back.
pub(super) async fn write(
    client: &ClientWrapper,
    w: &Writes,
    channel: &str,
    node: &str,
) -> Result<(), StorageError> {
    let new_documents = DocColumns::new(&w.new_documents)?;
    let changed_documents = DocColumns::new(&w.changed_documents)?;
    let mut outcomes: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<&str>) = Default::default();
    for o in &w.outcomes {
        outcomes.0.push(&o.tenant);
        outcomes.1.push(&o.client_id);
        outcomes.2.push(int(o.id));
        outcomes.3.push(&o.outcome);
    }
    let column =
        |f: fn(&(ClientKey, ClientRow)) -> &str| -> Vec<&str> { w.clients.iter().map(f).collect() };
    let (client_tenants, client_ids, client_users, client_collections) = (
        column(|((t, _), _)| t),
        column(|((_, c), _)| c),
        column(|(_, r)| &r.user),
        column(|(_, r)| &r.collections),
    );
    let client_last: Vec<i64> = w
        .clients
        .iter()
        .map(|(_, r)| int(r.last_mutation_id))
        .collect();
    let heads: (Vec<&str>, Vec<i64>) = w.heads.iter().map(|(t, h)| (t.as_str(), int(*h))).unzip();
    let notes: Vec<String> = w
        .heads
        .iter()
        .map(|(tenant, head)| format!("{node} {head} {tenant}"))
        .collect();
    let mut prunes: (Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    for ((tenant, client_id), below) in &w.prune_outcomes {
        prunes.0.push(tenant);
        prunes.1.push(client_id);
        prunes.2.push(int(*below));
    }
    let logs = LogColumns::new(&w.logs)?;
    let log_prunes: Vec<(&str, i64, i64)> = w
        .prune_logs
        .iter()
        .map(|p| (p.tenant.as_str(), int(p.before), int(p.keep)))
        .collect();

    let mut statements: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
    // The batch holds its tenants' head locks, so new documents are plain inserts (cheaper
    // than an upsert's speculative insertion) and stored ones plain updates.
    if !w.new_documents.is_empty() {
        statements.push((
            "INSERT INTO documents (tenant, collection, id, version, writer, deleted, hlc, fields)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
               $6::bool[], $7::text[], $8::text[])",
            new_documents.params(),
        ));
    }
    if !w.changed_documents.is_empty() {
        statements.push((
            "UPDATE documents d SET version = u.version, writer = u.writer, deleted = u.deleted,
               hlc = u.hlc, fields = u.fields
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bool[],
               $7::text[], $8::text[]) AS u(tenant, collection, id, version, writer, deleted, hlc, fields)
             WHERE d.tenant = u.tenant AND d.collection = u.collection AND d.id = u.id",
            changed_documents.params(),
        ));
    }
    if !w.outcomes.is_empty() {
        statements.push((
            "INSERT INTO outcomes (tenant, client_id, mutation_id, outcome)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
             ON CONFLICT (tenant, client_id, mutation_id) DO UPDATE SET outcome = excluded.outcome",
            vec![&outcomes.0, &outcomes.1, &outcomes.2, &outcomes.3],
        ));
    }
    if !w.clients.is_empty() {
        statements.push((
            "INSERT INTO clients (tenant, client_id, user_id, last_mutation_id, collections)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
             ON CONFLICT (tenant, client_id) DO UPDATE SET user_id = excluded.user_id,
               last_mutation_id = excluded.last_mutation_id, collections = excluded.collections",
            vec![
                &client_tenants,
                &client_ids,
                &client_users,
                &client_last,
                &client_collections,
            ],
        ));
    }
    if !w.heads.is_empty() {
        statements.push((
            "UPDATE tenants t SET head = u.head FROM unnest($1::text[], $2::bigint[]) AS u(tenant, head)
             WHERE t.tenant = u.tenant",
            vec![&heads.0, &heads.1],
        ));
        statements.push((
            "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS u(n)",
            vec![&channel, &notes],
        ));
    }
    if !w.prune_outcomes.is_empty() {
        statements.push((
            "DELETE FROM outcomes o USING unnest($1::text[], $2::text[], $3::bigint[])
               AS p(tenant, client_id, below)
             WHERE o.tenant = p.tenant AND o.client_id = p.client_id AND o.mutation_id < p.below",
            vec![&prunes.0, &prunes.1, &prunes.2],
        ));
    }
    if !w.logs.is_empty() {
        statements.push((
            "INSERT INTO sync_logs (tenant, sync_type, status, user_id, client_id, started_at,
               completed_at, synced_count, error_count, collections, results, error)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],
               $12::text[])",
            logs.params(),
        ));
    }
    for (tenant, before, keep) in &log_prunes {
        statements.push((
            "DELETE FROM sync_logs WHERE tenant = $1 AND (completed_at < $2 OR id <= (
               SELECT id FROM sync_logs WHERE tenant = $1 ORDER BY id DESC LIMIT 1 OFFSET $3))",
            vec![tenant, before, keep],
        ));
    }
    let prepared =
        try_join_all(statements.iter().map(|(sql, _)| client.prepare_cached(sql))).await?;
    let writes = try_join_all(
        prepared
            .iter()
            .zip(&statements)
            .map(|(statement, (_, params))| client.execute(statement, params)),
    );
    tokio::try_join!(writes, client.batch_execute("COMMIT"))?;
    Ok(())
}

/// Documents of a batch as columns.
#[derive(Default)]
struct DocColumns<'a> {
    /// Tenant, collection, id and writer.
    text: [Vec<&'a str>; 4],
    versions: Vec<i64>,
    deleted: Vec<bool>,
    hlcs: Vec<String>,
    fields: Vec<String>,
}

impl<'a> DocColumns<'a> {
    fn new(documents: &'a [(String, ServerDoc)]) -> Result<Self, StorageError> {
        let mut c = Self::default();
        for (tenant, d) in documents {
            for (column, value) in
                c.text
                    .iter_mut()
                    .zip([tenant.as_str(), &d.collection, d.doc.id(), &d.writer])
            {
                column.push(value);
            }
            c.versions.push(int(d.doc.version()));
            c.deleted.push(d.doc.deleted());
            c.hlcs.push(serde_json::to_string(&d.doc.hlc())?);
            c.fields.push(serde_json::to_string(&d.doc.fields())?);
        }
        Ok(c)
    }

    /// In the order of the columns of `documents`.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let [tenants, collections, ids, writers] = &self.text;
        vec![
            tenants,
            collections,
            ids,
            &self.versions,
            writers,
            &self.deleted,
            &self.hlcs,
            &self.fields,
        ]
    }
}

/// The sync-log rows of a batch as columns.
#[derive(Default)]
struct LogColumns<'a> {
    text: [Vec<&'a str>; 5],
    times: [Vec<i64>; 4],
    collections: Vec<String>,
    results: Vec<String>,
    errors: Vec<Option<&'a str>>,
}

impl<'a> LogColumns<'a> {
    fn new(logs: &'a [(String, SyncLog)]) -> Result<Self, StorageError> {
        let mut c = Self::default();
        for (tenant, e) in logs {
            for (column, value) in c.text.iter_mut().zip([
                tenant.as_str(),
                &e.sync_type,
                &e.status,
                &e.user_id,
                &e.client_id,
            ]) {
                column.push(value);
            }
            for (column, value) in c.times.iter_mut().zip([
                e.started_at,
                e.completed_at,
                e.synced_count,
                e.error_count,
            ]) {
                column.push(int(value));
            }
            c.collections.push(serde_json::to_string(&e.collections)?);
            c.results.push(e.results.to_string());
            c.errors.push(e.error.as_deref());
        }
        Ok(c)
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        params.extend(self.text.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.extend(self.times.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.push(&self.collections);
        params.push(&self.results);
        params.push(&self.errors);
        params
    }
}
