//! The [`Store`] for several replicas: one PostgreSQL database shared by every broker
//! process, through `sqlx` with runtime-checked queries (no database is needed to compile).
//!
//! Migrations in `broker/migrations/postgres/` are embedded at compile time and applied when
//! the store connects (sqlx holds an advisory lock meanwhile, so replicas starting together
//! migrate once). Every check-then-write is a single statement — an `UPDATE … WHERE …` that
//! PostgreSQL re-checks on the latest row version once a concurrent writer commits, under
//! READ COMMITTED — or a transaction; the flow cap counts and inserts under a
//! transaction-scoped advisory lock. The refresh lease is two columns of the connection's row.

use std::{str::FromStr as _, time::Duration};

use async_trait::async_trait;
use connect_medicare_protocol::{Timestamp, contract::ProviderId};
use sqlx::{
    Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use super::{
    BeginOutcome, ConnectionRecord, Disconnected, FlowRecord, LeaseHolder, NewRevocation,
    PendingRevocation, RevokePolicy, SessionRecord, Store, TokenUpdate, classify,
    rows::{
        self as decode, CONNECTION_COLUMNS, FLOW_COLUMNS, REVOCATION_COLUMNS,
        is_foreign_key_violation, is_unique_violation, seconds, status_str,
    },
    token_to_revoke,
};
use crate::{
    config::PostgresUrl,
    error::{Error, Result},
    ids::{FlowCookieHash, FlowKey, SessionHash},
};

/// Connections each broker process keeps to the database.
const MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a free connection from the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The advisory lock under which [`Store::insert_flow`] counts and inserts (any constant
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

async fn insert_revocation<'e, E>(
    executor: E,
    revocation: &NewRevocation,
    now: Timestamp,
) -> Result<PendingRevocation>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let row = sqlx::query(&format!(
        "INSERT INTO revocations (session_hash, provider, token_kind, token_ct, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5) \
         RETURNING {REVOCATION_COLUMNS}"
    ))
    .bind(revocation.session_hash.to_hex())
    .bind(revocation.provider.as_str())
    .bind(revocation.token_kind.as_str())
    .bind(revocation.token_ct.as_bytes())
    .bind(seconds(now))
    .fetch_one(executor)
    .await?;
    decode::revocation(&row)
}

#[async_trait]
impl Store for PgStore {
    async fn insert_flow(
        &self,
        flow: &FlowRecord,
        max_pending: usize,
        now: Timestamp,
    ) -> Result<()> {
        // Under READ COMMITTED two concurrent inserts could both count below the cap: count
        // and insert while holding a transaction-scoped advisory lock.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FLOW_CAP_LOCK)
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query(&format!(
            "INSERT INTO flows ({FLOW_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE (SELECT COUNT(*) FROM flows WHERE expires_at > $10) < $11"
        ))
        .bind(flow.key.to_hex())
        .bind(flow.provider.as_str())
        .bind(flow.code_challenge.as_str())
        .bind(flow.redirect_uri.as_str())
        .bind(flow.cookie_hash.to_hex())
        .bind(seconds(flow.created_at))
        .bind(seconds(flow.expires_at))
        .bind(flow.status.as_str())
        .bind(flow.session_hash.map(|s| s.to_hex()))
        .bind(seconds(now))
        .bind(i64::try_from(max_pending).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => {
                tx.commit().await?;
                Ok(())
            }
            // Dropping the transaction rolls it back and releases the lock.
            Ok(_) => Err(Error::TooManyFlows),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists("flow")),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        sqlx::query(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE key = $1"))
            .bind(key.to_hex())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(decode::flow)
            .transpose()
    }

    async fn begin_completion(
        &self,
        key: &FlowKey,
        cookie: &FlowCookieHash,
        now: Timestamp,
    ) -> Result<BeginOutcome> {
        // The winning path is one statement: a concurrent UPDATE waits for the row lock and
        // then sees `in_progress`.
        let started = sqlx::query(&format!(
            "UPDATE flows SET status = 'in_progress' \
             WHERE key = $1 AND cookie_hash = $2 AND status = 'pending' AND expires_at > $3 \
             RETURNING {FLOW_COLUMNS}"
        ))
        .bind(key.to_hex())
        .bind(cookie.to_hex())
        .bind(seconds(now))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = started {
            return Ok(BeginOutcome::Started(decode::flow(&row)?));
        }
        Ok(match self.get_flow(key).await? {
            None => BeginOutcome::NotFound,
            Some(flow) => match classify(&flow, cookie, now)? {
                // Pending again only if it appeared after the UPDATE: let the caller retry.
                BeginOutcome::Started(_) => BeginOutcome::InProgress,
                outcome => outcome,
            },
        })
    }

    async fn complete_flow(&self, key: &FlowKey, session: &SessionHash) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE flows SET status = 'completed', session_hash = $2 \
             WHERE key = $1 AND status = 'in_progress'",
        )
        .bind(key.to_hex())
        .bind(session.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_flow(&self, key: &FlowKey) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE flows SET status = 'failed' WHERE key = $1 AND status = 'in_progress'",
        )
        .bind(key.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_flows(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM flows WHERE expires_at <= $1")
            .bind(seconds(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO sessions (hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $2, $3)",
        )
        .bind(session.to_hex())
        .bind(seconds(now))
        .bind(seconds(expires_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists("session")),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>> {
        sqlx::query(
            "SELECT hash, created_at, last_seen_at, expires_at FROM sessions \
             WHERE hash = $1 AND expires_at > $2",
        )
        .bind(session.to_hex())
        .bind(seconds(now))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode::session)
        .transpose()
    }

    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, expires_at = $3 \
             WHERE hash = $1 AND expires_at > $2",
        )
        .bind(session.to_hex())
        .bind(seconds(now))
        .bind(seconds(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_session(&self, session: &SessionHash) -> Result<bool> {
        // Connections go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(session.to_hex())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(seconds(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn upsert_connection(&self, c: &ConnectionRecord) -> Result<i64> {
        let result = sqlx::query(&format!(
            "INSERT INTO connections ({CONNECTION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11) \
             ON CONFLICT (session_hash, provider) DO UPDATE SET \
               patient = excluded.patient, scopes = excluded.scopes, \
               demographics_shared = excluded.demographics_shared, \
               grant_expires_at = excluded.grant_expires_at, \
               access_token_ct = excluded.access_token_ct, \
               refresh_token_ct = excluded.refresh_token_ct, \
               access_expires_at = excluded.access_expires_at, \
               generation = connections.generation + 1, \
               status = excluded.status, updated_at = excluded.updated_at \
             RETURNING generation"
        ))
        .bind(c.session_hash.to_hex())
        .bind(c.provider.as_str())
        .bind(c.patient.as_ref().map(|p| p.as_str().to_owned()))
        .bind(c.scopes.to_string())
        .bind(c.demographics_shared)
        .bind(c.grant_expires_at.map(seconds))
        .bind(c.access_token_ct.as_bytes())
        .bind(c.refresh_token_ct.as_ref().map(|ct| ct.as_bytes().to_vec()))
        .bind(c.access_expires_at.map(seconds))
        .bind(status_str(c.status))
        .bind(seconds(c.updated_at))
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(row.try_get::<i64, _>("generation")?),
            Err(e) if is_foreign_key_violation(&e) => Err(Error::SessionNotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<Option<ConnectionRecord>> {
        sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE session_hash = $1 AND provider = $2"
        ))
        .bind(session.to_hex())
        .bind(provider.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode::connection)
        .transpose()
    }

    async fn list_connections(&self, session: &SessionHash) -> Result<Vec<ConnectionRecord>> {
        sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE session_hash = $1 ORDER BY provider"
        ))
        .bind(session.to_hex())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode::connection)
        .collect()
    }

    async fn delete_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<bool> {
        let done = sqlx::query("DELETE FROM connections WHERE session_hash = $1 AND provider = $2")
            .bind(session.to_hex())
            .bind(provider.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_tokens(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        update: &TokenUpdate,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET access_token_ct = $4, refresh_token_ct = $5, \
               access_expires_at = $6, scopes = $7, generation = generation + 1, \
               updated_at = $8 \
             WHERE session_hash = $1 AND provider = $2 AND generation = $3",
        )
        .bind(session.to_hex())
        .bind(provider.as_str())
        .bind(expected_generation)
        .bind(update.access_token_ct.as_bytes())
        .bind(
            update
                .refresh_token_ct
                .as_ref()
                .map(|ct| ct.as_bytes().to_vec()),
        )
        .bind(update.access_expires_at.map(seconds))
        .bind(update.scopes.to_string())
        .bind(seconds(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_reconnect_required(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET status = 'reconnect_required', \
               generation = generation + 1, updated_at = $4 \
             WHERE session_hash = $1 AND provider = $2 AND generation = $3",
        )
        .bind(session.to_hex())
        .bind(provider.as_str())
        .bind(expected_generation)
        .bind(seconds(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>> {
        // The DELETE locks the rows it removes: a concurrent token update waits, then finds
        // nothing to update.
        let mut tx = self.pool.begin().await?;
        let rows = match provider {
            Some(provider) => {
                sqlx::query(&format!(
                    "DELETE FROM connections WHERE session_hash = $1 AND provider = $2 \
                     RETURNING {CONNECTION_COLUMNS}"
                ))
                .bind(session.to_hex())
                .bind(provider.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "DELETE FROM connections WHERE session_hash = $1 \
                     RETURNING {CONNECTION_COLUMNS}"
                ))
                .bind(session.to_hex())
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let mut removed = rows
            .iter()
            .map(decode::connection)
            .collect::<Result<Vec<_>>>()?;
        removed.sort_by(|a, b| a.provider.cmp(&b.provider));
        let mut out = Vec::with_capacity(removed.len());
        for connection in removed {
            let revocation = match revoke(&connection) {
                Some(kind) => {
                    let (token_kind, token_ct) = token_to_revoke(&connection, kind);
                    let new = NewRevocation {
                        session_hash: connection.session_hash,
                        provider: connection.provider.clone(),
                        token_kind,
                        token_ct: token_ct.clone(),
                    };
                    Some(insert_revocation(&mut *tx, &new, now).await?)
                }
                None => None,
            };
            out.push(Disconnected {
                connection,
                revocation,
            });
        }
        if provider.is_none() {
            sqlx::query("DELETE FROM sessions WHERE hash = $1")
                .bind(session.to_hex())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn try_acquire_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        // One statement: a concurrent acquirer waits for this row's lock, then re-checks the
        // condition against the committed lease and finds it held.
        let done = sqlx::query(
            "UPDATE connections SET refresh_lease_holder = $3, refresh_lease_until = $5 \
             WHERE session_hash = $1 AND provider = $2 \
               AND (refresh_lease_holder IS NULL OR refresh_lease_until <= $4)",
        )
        .bind(session.to_hex())
        .bind(provider.as_str())
        .bind(holder.to_hex())
        .bind(seconds(now))
        .bind(seconds(until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET refresh_lease_holder = NULL, refresh_lease_until = NULL \
             WHERE session_hash = $1 AND provider = $2 AND refresh_lease_holder = $3",
        )
        .bind(session.to_hex())
        .bind(provider.as_str())
        .bind(holder.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enqueue_revocation(&self, revocation: &NewRevocation, now: Timestamp) -> Result<i64> {
        Ok(insert_revocation(&self.pool, revocation, now).await?.id)
    }

    async fn due_revocations(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>> {
        sqlx::query(&format!(
            "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(seconds(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode::revocation)
        .collect()
    }

    async fn finish_revocation(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM revocations WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn reschedule_revocation(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE revocations SET next_attempt_at = $2, attempts = $3 WHERE id = $1")
                .bind(id)
                .bind(seconds(next_attempt_at))
                .bind(i64::from(attempts))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

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
        assert_eq!(versions, [1, 2]);
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
            suite::write_with_schema_v1(&old).await;
            old.close().await;
        }
        let store = PgStore::connect(&db.url()).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2]);
        suite::read_after_upgrade(&store).await;
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_not_trusted() {
        let db = TestDatabase::create().await;
        let store = PgStore::connect(&db.url()).await.unwrap();
        sqlx::query(
            "INSERT INTO flows (key, provider, code_challenge, redirect_uri, cookie_hash, \
             created_at, expires_at, status) VALUES ($1, 'medicare', 'not-a-challenge', \
             'http://localhost/cb', $1, 0, 10, 'pending')",
        )
        .bind("a".repeat(64))
        .execute(&store.pool)
        .await
        .unwrap();
        let key = FlowKey::from_hex(&"a".repeat(64)).unwrap();
        let err = store.get_flow(&key).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    what: "flows.code_challenge"
                }
            ),
            "{err}"
        );
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
