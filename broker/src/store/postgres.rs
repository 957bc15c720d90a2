//! The [`Store`] for several replicas: one PostgreSQL database shared by every broker
//! process, through `sqlx` with runtime-checked queries (no database is needed to compile).
//!
//! Migrations in `broker/migrations/postgres/` are embedded at compile time and applied when
//! the store connects (sqlx holds an advisory lock meanwhile, so replicas starting together
//! migrate once). Every check-then-write is a single statement — an `UPDATE … WHERE …` that
//! PostgreSQL re-checks on the latest row version once a concurrent writer commits, under
//! READ COMMITTED — or a transaction; the flow cap counts and inserts under a
//! transaction-scoped advisory lock. The refresh lease is two columns of the connection's row.
//! The statements are shared with the SQLite store (`sql.rs`); this module connects and says
//! how a writing transaction begins.

use std::{str::FromStr as _, time::Duration};

use async_trait::async_trait;
use connect_medicare_protocol::{Timestamp, contract::ProviderId};
use sqlx::{
    Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
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
    config::PostgresUrl,
    error::{Error, Record, Result},
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash},
};

/// Connections each broker process keeps to the database.
const MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a free connection from the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The advisory lock under which [`FlowStore::insert_flow`] counts and inserts (any constant
/// unique to this table's use: advisory locks are per database).
const FLOW_CAP_LOCK: i64 = 0x636d_5f66_6c6f_7773; // "cm_flows"

/// A [`Store`] in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database `url` names and applies the migrations it lacks.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when it cannot connect (the message never holds the password),
    /// [`Error::Migrate`] when the schema cannot be brought up to date.
    pub async fn connect(url: &PostgresUrl) -> Result<Self> {
        let mut options = PgConnectOptions::from_str(url.expose_secret())?;
        if options.get_application_name().is_none() {
            options = options.application_name("connect-medicare-broker");
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl PgStore {
    /// A transaction that will write (READ COMMITTED).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The flow cap's transaction: under READ COMMITTED two concurrent inserts could both
    /// count below the cap, so it holds a transaction-scoped advisory lock.
    async fn begin_flow_cap(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FLOW_CAP_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

sql_store!(PgStore, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_postgres::{PASSWORD, TestDatabase};

    trait Url {
        fn url(&self) -> PostgresUrl;
    }

    impl Url for TestDatabase {
        fn url(&self) -> PostgresUrl {
            PostgresUrl::parse(&self.url_string()).unwrap()
        }
    }

    #[tokio::test]
    async fn migrations_are_recorded_and_reapplying_is_a_no_op() {
        let db = TestDatabase::create().await;
        let store = PgStore::connect(&db.url()).await.unwrap();
        store.close().await;
        let store = PgStore::connect(&db.url()).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[tokio::test]
    async fn upgrading_from_schema_v1_keeps_every_row() {
        use crate::store::suite;
        let db = TestDatabase::create().await;
        {
            // The database as a version-1 broker left it.
            let (_old, v1) = suite::migrator_up_to("migrations/postgres", 1).await;
            let pool = PgPool::connect(&db.url_string()).await.unwrap();
            v1.run(&pool).await.unwrap();
            let old = PgStore { pool };
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
        let store = PgStore::connect(&db.url()).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        suite::read_after_upgrade(&store).await;
    }

    #[tokio::test]
    async fn a_wrong_password_is_an_error_without_the_password() {
        let db = TestDatabase::create().await;
        let wrong = db
            .url_string()
            .replacen(PASSWORD, "canary-wrong-password", 1);
        let url = PostgresUrl::parse(&wrong).unwrap();
        let err = PgStore::connect(&url).await.unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("canary-wrong-password"), "{err}");
    }
}
