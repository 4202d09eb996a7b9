//! The PostgreSQL schema and its migrations. `plughost_schema` records each migration applied; they run in one
//! transaction under an advisory lock, so replicas starting together migrate once. Never edit a migration that
//! shipped: add a new one.

use deadpool_postgres::Pool;

use super::error::{PgError, PgResult};
use crate::ledger::GENESIS;

/// Any constant key: the advisory lock that serializes migrations across replicas.
const MIGRATION_LOCK: i64 = 0x706c_7567_686f_7374;

const MIGRATIONS: &[&str] = &[
    // 1: the shared ledger (one chain: `ledger_head` is its head, row-locked by every append), contract
    // reservations, plugin state.
    "CREATE TABLE ledger_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  BIGINT NOT NULL,
        hash TEXT NOT NULL
     );
     INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, '$GENESIS');
     CREATE TABLE ledger_entries (
        seq          BIGINT PRIMARY KEY,
        time_ms      BIGINT NOT NULL,
        kind         TEXT NOT NULL,
        plugin       TEXT NOT NULL,
        version      TEXT NOT NULL,
        digest       TEXT NOT NULL,
        tool         TEXT NOT NULL,
        transport    TEXT NOT NULL,
        session      TEXT,
        principal    TEXT,
        duration_us  BIGINT NOT NULL,
        fuel_used    BIGINT NOT NULL,
        peak_memory  BIGINT NOT NULL,
        outcome      TEXT NOT NULL,
        args_digest  TEXT,
        cost         BIGINT NOT NULL,
        event        TEXT,
        data         TEXT,
        prev_hash    TEXT NOT NULL,
        hash         TEXT NOT NULL
     );
     CREATE INDEX ledger_entries_plugin_time ON ledger_entries (plugin, time_ms);
     CREATE TABLE contract_calls (
        id      BIGSERIAL PRIMARY KEY,
        plugin  TEXT NOT NULL,
        tool    TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        cost    BIGINT NOT NULL
     );
     CREATE INDEX contract_calls_plugin_time ON contract_calls (plugin, time_ms);
     CREATE TABLE state_kv (
        plugin TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  BYTEA NOT NULL,
        PRIMARY KEY (plugin, key)
     );
     CREATE TABLE state_usage (plugin TEXT PRIMARY KEY, bytes BIGINT NOT NULL);",
    // 2: the registry index (see index.rs): the generation row every change locks (so index writes are serialized
    // cluster-wide), components by digest, versions, plugins, config and secrets (bytes: secrets are sealed), and
    // the audit trail chained as on SQLite.
    "CREATE TABLE index_meta (id INTEGER PRIMARY KEY CHECK (id = 1), generation BIGINT NOT NULL);
     INSERT INTO index_meta (id, generation) VALUES (1, 0);
     CREATE TABLE index_blobs (digest TEXT PRIMARY KEY, bytes BYTEA NOT NULL);
     CREATE TABLE index_versions (
        seq             BIGSERIAL PRIMARY KEY,
        plugin_id       TEXT NOT NULL,
        version         TEXT NOT NULL,
        digest          TEXT NOT NULL,
        size            BIGINT NOT NULL,
        key_fingerprint TEXT,
        key_name        TEXT,
        signature       TEXT,
        declared        TEXT NOT NULL,
        grants          TEXT NOT NULL,
        manifest        TEXT NOT NULL,
        installed_at    BIGINT NOT NULL,
        previous_seq    BIGINT,
        source          TEXT,
        manifest_digest TEXT
     );
     CREATE INDEX index_versions_by_plugin ON index_versions (plugin_id, seq);
     CREATE TABLE index_plugins (
        id              TEXT PRIMARY KEY,
        current_seq     BIGINT NOT NULL,
        enabled         BOOLEAN NOT NULL,
        disabled_reason TEXT,
        limits          TEXT NOT NULL,
        installed_at    BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
     );
     CREATE TABLE index_config (
        plugin_id TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     BYTEA NOT NULL,
        secret    BOOLEAN NOT NULL,
        PRIMARY KEY (plugin_id, key)
     );
     CREATE TABLE index_history (
        seq       BIGINT PRIMARY KEY,
        at        BIGINT NOT NULL,
        plugin_id TEXT,
        action    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        hash      BYTEA NOT NULL
     );",
    // 3: per-minute totals of the contract reservations, written in the admission's transaction: a check sums its
    // window's minutes and reads only the minute the window starts in call by call (contracts.rs).
    "CREATE TABLE contract_minutes (
        plugin  TEXT NOT NULL,
        tool    TEXT NOT NULL,
        minute  BIGINT NOT NULL,
        calls   BIGINT NOT NULL,
        cost    BIGINT NOT NULL,
        PRIMARY KEY (plugin, minute, tool)
     );
     INSERT INTO contract_minutes (plugin, tool, minute, calls, cost)
        SELECT plugin, tool, floor(time_ms / 60000.0)::BIGINT, count(*), sum(cost)::BIGINT
        FROM contract_calls GROUP BY 1, 2, 3;",
    // 4: scoped client tokens (tokens.rs), kept by their blake3 hash only, as on SQLite: every replica checks a
    // presented token against this table, so one created or revoked through any CLI holds cluster-wide at once.
    "CREATE TABLE index_tokens (
        name       TEXT PRIMARY KEY,
        hash       BYTEA NOT NULL UNIQUE,
        plugins    TEXT,
        tools      TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
     );",
    // 5: per-principal contracts across replicas: each reservation and each per-minute total carries who made
    // the calls ('' for no authenticated principal, as a key column cannot be NULL), so a principal's contract
    // counts only its own calls. Rows from before count as ''.
    "ALTER TABLE contract_calls ADD COLUMN principal TEXT NOT NULL DEFAULT '';
     ALTER TABLE contract_minutes ADD COLUMN principal TEXT NOT NULL DEFAULT '';
     ALTER TABLE contract_minutes DROP CONSTRAINT contract_minutes_pkey;
     ALTER TABLE contract_minutes ADD PRIMARY KEY (plugin, minute, tool, principal);",
    // 6: archive cuts of the shared ledger (archive.rs): the last entry moved to an archive file, signed; the live
    // chain continues from the newest.
    "CREATE TABLE ledger_cuts (
        seq        BIGINT PRIMARY KEY,
        hash       TEXT NOT NULL,
        time_ms    BIGINT NOT NULL,
        key_name   TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature  TEXT NOT NULL
     );",
];

/// The schema version this build writes.
pub const PG_SCHEMA_VERSION: usize = MIGRATIONS.len();

pub(super) async fn migrate(pool: &Pool) -> PgResult<()> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // The lock comes first: `CREATE TABLE IF NOT EXISTS` is not atomic, and two replicas creating the table at once
    // collide on its row type (42710) or its name (42P07/23505).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS plughost_schema (
            version    INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let have: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM plughost_schema", &[])
        .await?
        .get(0);
    let have = have as usize;
    if have > MIGRATIONS.len() {
        return Err(PgError::Setup(format!(
            "the store has schema version {have}, newer than this plughost knows ({}); upgrade plughost",
            MIGRATIONS.len()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
        tx.batch_execute(&m.replace("$GENESIS", GENESIS)).await?;
        tx.execute(
            "INSERT INTO plughost_schema (version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
