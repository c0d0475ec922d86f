//! The PostgreSQL schema: its migrations, applied at start under an advisory lock, and the
//! writer connection's planner settings.

use crate::storage::StorageError;

/// The schema, one migration per version; `ferrosync_migrations` lists those applied. They run
/// in one transaction under an advisory lock, so nodes starting together apply each once.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tenants (tenant TEXT PRIMARY KEY, head BIGINT NOT NULL);
    CREATE TABLE documents (
        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
        version BIGINT NOT NULL, writer TEXT NOT NULL, deleted BOOLEAN NOT NULL,
        hlc TEXT NOT NULL, fields TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    CREATE UNIQUE INDEX documents_by_version ON documents (tenant, version);
    CREATE TABLE clients (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        last_mutation_id BIGINT NOT NULL, collections TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id)
    );
    CREATE TABLE outcomes (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, mutation_id BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id, mutation_id)
    );
    CREATE TABLE sync_logs (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sync_type TEXT NOT NULL,
        status TEXT NOT NULL, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
        started_at BIGINT NOT NULL, completed_at BIGINT NOT NULL,
        synced_count BIGINT NOT NULL, error_count BIGINT NOT NULL,
        collections TEXT NOT NULL, results TEXT NOT NULL, error TEXT
    );
    CREATE INDEX sync_logs_by_tenant ON sync_logs (tenant, id);
",
    r#"
    -- 2: keys compare as bytes ("C"), not by the cluster's locale, whose comparisons took a
    -- share of every index lookup and insert of the writes and whose changes across C library
    -- upgrades would corrupt the indexes. The tables keep their rows; their indexes are rebuilt.
    ALTER TABLE tenants ALTER COLUMN tenant TYPE TEXT COLLATE "C";
    ALTER TABLE documents ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN id TYPE TEXT COLLATE "C";
    ALTER TABLE clients ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN client_id TYPE TEXT COLLATE "C";
    ALTER TABLE outcomes ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN client_id TYPE TEXT COLLATE "C";
    ALTER TABLE sync_logs ALTER COLUMN tenant TYPE TEXT COLLATE "C";
"#,
];

/// The newest PostgreSQL schema version.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The first key of the advisory lock migrations run under (the second is the schema's).
const MIGRATION_LOCK: i32 = 0x6665_7272; // "ferr"

/// Planner settings of the writer's session. Every statement it runs looks up or writes a
/// batch's rows by key (at most a few thousand) in tables that grow without bound, and each is
/// planned once per connection (a prepared statement's generic plan). Planned while the tables
/// are small, as on a new database, PostgreSQL would pick hash joins over sequential scans and
/// keep them, reading every row of `documents` and `outcomes` for each batch. These settings
/// leave it nested loops over the batch's keys into the primary keys, at any table size.
const WRITER_PLANNER: &str = "-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off";

/// The writer's connection settings: `config` with [`WRITER_PLANNER`] after its own options.
pub(super) fn writer_config(config: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut writer = config.clone();
    let options = match config.get_options() {
        Some(own) => format!("{own} {WRITER_PLANNER}"),
        None => WRITER_PLANNER.to_owned(),
    };
    writer.options(options);
    writer
}

/// Applies the migrations not applied yet, under the schema's advisory lock.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StorageError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ferrosync_migrations (
           version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM ferrosync_migrations",
            &[],
        )
        .await?
        .get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ferrosync_migrations (version) VALUES ($1)",
            &[&(index as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
