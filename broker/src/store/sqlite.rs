//! The embedded default [`Store`]: one SQLite file in WAL mode, through `sqlx` with
//! runtime-checked queries (no database is needed to compile).
//!
//! Migrations in `broker/migrations/sqlite/` are embedded at compile time and applied when
//! the store opens. Every check-then-write is a single statement (`UPDATE … WHERE … RETURNING`,
//! `INSERT … SELECT … WHERE`) or a `BEGIN IMMEDIATE` transaction, so concurrent writers —
//! tasks of this process or other processes on the same file — serialise on SQLite's write
//! lock, waiting up to the busy timeout. The statements are shared with the PostgreSQL store
//! (`sql.rs`); this module opens the file and says how a writing transaction begins.

use std::{path::Path, str::FromStr as _, time::Duration};

use async_trait::async_trait;
use connect_medicare_protocol::{Timestamp, contract::ProviderId};
use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use super::{
    BeginOutcome, ConnectionRecord, ConnectionStore, Disconnected, FlowRecord, FlowStore,
    LeaseHolder, NewRevocation, PendingRevocation, RevocationStore, RevokePolicy, Rotation,
    SessionRecord, SessionStore, TokenUpdate, classify,
    rows::{
        self as decode, CONNECTION_COLUMNS, FLOW_COLUMNS, REVOCATION_COLUMNS, SESSION_CONNECTION,
        is_foreign_key_violation, is_unique_violation, seconds, status_str,
    },
    sql::sql_store,
    token_to_revoke,
};
use crate::{
    error::{Error, Record, Result},
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash},
};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to a SQLite file (one writer at a time; readers in parallel under WAL).
const FILE_CONNECTIONS: u32 = 4;

/// A [`Store`] in a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the SQLite file at `path` in WAL mode, and applies the
    /// migrations it lacks.
    ///
    /// sqlx takes no lock to migrate SQLite, so processes opening the same file serialise on
    /// an advisory lock of a file beside it (`<file>.migrate-lock`, left in place): two
    /// brokers starting together on a new file migrate it once.
    pub async fn open(path: &Path) -> Result<Self> {
        let lock = migrate_lock(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_CONNECTIONS)
            .connect_with(options)
            .await?;
        let store = Self::migrated(pool).await;
        drop(lock);
        store
    }

    /// A private in-memory database (one connection, kept open), migrated. Gone when the
    /// store is dropped.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection (checkpointing the WAL). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the exclusive lock of `<path>.migrate-lock` (waiting for another process's
/// migration to finish); it is released when the file is closed.
async fn migrate_lock(path: &Path) -> Result<std::fs::File> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".migrate-lock");
    let lock_path = path.with_file_name(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|locked| locked);
    locked.map_err(|e| Error::Database(sqlx::Error::Io(e)))
}

impl SqliteStore {
    /// A transaction that will write: `BEGIN IMMEDIATE` takes the write lock up front, so the
    /// transaction never has to upgrade a read lock (which SQLite answers with `SQLITE_BUSY`
    /// instead of waiting).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The flow cap's transaction: the write lock already serialises counting and inserting.
    /// (Three round trips to the connection's worker where one autocommit statement would
    /// do, holding the write lock across them: a little more contention under a flood of
    /// flow starts, for one statement text shared with PostgreSQL.)
    async fn begin_flow_cap(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_write().await
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_is_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("broker.db"))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(busy, 5_000);
    }

    #[tokio::test]
    async fn migrations_are_recorded_and_reapplying_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_opening_a_new_file_together_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await })
            })
            .collect();
        for open in opens {
            let store = open.await.unwrap().unwrap();
            let versions: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
            assert_eq!(versions, [1, 2, 3]);
        }
    }

    #[tokio::test]
    async fn upgrading_from_schema_v1_keeps_every_row() {
        use crate::store::suite;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        {
            // The file as a version-1 broker left it.
            let (_old, v1) = suite::migrator_up_to("migrations/sqlite", 1).await;
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            v1.run(&pool).await.unwrap();
            let old = SqliteStore { pool };
            let (insert, hash, created, expires) = suite::v1_session();
            sqlx::query(insert)
                .bind(hash)
                .bind(created)
                .bind(expires)
                .execute(&old.pool)
                .await
                .unwrap();
            suite::write_sample_after_session(&old).await;
            old.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        suite::read_after_upgrade(&store).await;
    }
}
