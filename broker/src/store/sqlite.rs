//! The embedded default [`Store`]: one SQLite file in WAL mode, through `sqlx` with
//! runtime-checked queries (no database is needed to compile).
//!
//! Migrations in `broker/migrations/sqlite/` are embedded at compile time and applied when
//! the store opens. Every check-then-write is a single statement (`UPDATE … WHERE … RETURNING`,
//! `INSERT … SELECT … WHERE`) or a `BEGIN IMMEDIATE` transaction, so concurrent writers —
//! tasks of this process or other processes on the same file — serialise on SQLite's write
//! lock, waiting up to the busy timeout.

use std::{path::Path, str::FromStr as _, time::Duration};

use async_trait::async_trait;
use connect_medicare_protocol::{
    PatientId, PkceChallenge, RedirectUri, Scopes, Timestamp,
    contract::{ConnectionStatus, ProviderId},
};
use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};

use super::{
    BeginOutcome, ConnectionRecord, Disconnected, FlowRecord, FlowStatus, NewRevocation,
    PendingRevocation, RevokePolicy, SessionRecord, Store, TokenUpdate, classify, token_to_revoke,
};
use crate::{
    crypto::{Ciphertext, TokenKind},
    error::{Error, Result},
    ids::{FlowCookieHash, FlowKey, SessionHash},
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
    pub async fn open(path: &Path) -> Result<Self> {
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
        Self::migrated(pool).await
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

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

fn seconds(t: Timestamp) -> i64 {
    t.unix_seconds()
}

fn status_str(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::ReconnectRequired => "reconnect_required",
    }
}

/// Reading rows back: every value is re-validated; a value that no longer parses is
/// [`Error::Corrupt`].
mod decode {
    use super::*;

    fn corrupt(what: &'static str) -> Error {
        Error::Corrupt { what }
    }

    pub(super) fn text(row: &SqliteRow, column: &'static str) -> Result<String> {
        Ok(row.try_get::<String, _>(column)?)
    }

    pub(super) fn time(row: &SqliteRow, column: &'static str) -> Result<Timestamp> {
        Ok(Timestamp::from_unix_seconds(row.try_get::<i64, _>(column)?))
    }

    pub(super) fn opt_time(row: &SqliteRow, column: &'static str) -> Result<Option<Timestamp>> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix_seconds))
    }

    pub(super) fn session_hash(row: &SqliteRow, column: &'static str) -> Result<SessionHash> {
        SessionHash::from_hex(&text(row, column)?).ok_or(corrupt(column))
    }

    pub(super) fn provider(row: &SqliteRow) -> Result<ProviderId> {
        ProviderId::new(&text(row, "provider")?).map_err(|_| corrupt("provider"))
    }

    pub(super) fn ciphertext(row: &SqliteRow, column: &'static str) -> Result<Ciphertext> {
        Ok(Ciphertext::from_bytes(row.try_get::<Vec<u8>, _>(column)?))
    }

    pub(super) fn flow(row: &SqliteRow) -> Result<FlowRecord> {
        Ok(FlowRecord {
            key: FlowKey::from_hex(&text(row, "key")?).ok_or(corrupt("flows.key"))?,
            provider: provider(row)?,
            code_challenge: PkceChallenge::parse(&text(row, "code_challenge")?)
                .map_err(|_| corrupt("flows.code_challenge"))?,
            redirect_uri: RedirectUri::parse(&text(row, "redirect_uri")?)
                .map_err(|_| corrupt("flows.redirect_uri"))?,
            cookie_hash: FlowCookieHash::from_hex(&text(row, "cookie_hash")?)
                .ok_or(corrupt("flows.cookie_hash"))?,
            created_at: time(row, "created_at")?,
            expires_at: time(row, "expires_at")?,
            status: FlowStatus::parse(&text(row, "status")?).ok_or(corrupt("flows.status"))?,
            session_hash: row
                .try_get::<Option<String>, _>("session_hash")?
                .map(|hex| SessionHash::from_hex(&hex).ok_or(corrupt("flows.session_hash")))
                .transpose()?,
        })
    }

    pub(super) fn session(row: &SqliteRow) -> Result<SessionRecord> {
        Ok(SessionRecord {
            session_hash: session_hash(row, "hash")?,
            created_at: time(row, "created_at")?,
            last_seen_at: time(row, "last_seen_at")?,
            expires_at: time(row, "expires_at")?,
        })
    }

    pub(super) fn connection(row: &SqliteRow) -> Result<ConnectionRecord> {
        let scopes = text(row, "scopes")?;
        let scopes = if scopes.is_empty() {
            Scopes::new()
        } else {
            Scopes::parse(&scopes).map_err(|_| corrupt("connections.scopes"))?
        };
        Ok(ConnectionRecord {
            session_hash: session_hash(row, "session_hash")?,
            provider: provider(row)?,
            patient: row
                .try_get::<Option<String>, _>("patient")?
                .map(|p| PatientId::new(&p).map_err(|_| corrupt("connections.patient")))
                .transpose()?,
            scopes,
            demographics_shared: row.try_get::<bool, _>("demographics_shared")?,
            grant_expires_at: opt_time(row, "grant_expires_at")?,
            access_token_ct: ciphertext(row, "access_token_ct")?,
            refresh_token_ct: row
                .try_get::<Option<Vec<u8>>, _>("refresh_token_ct")?
                .map(Ciphertext::from_bytes),
            access_expires_at: opt_time(row, "access_expires_at")?,
            generation: row.try_get::<i64, _>("generation")?,
            status: match text(row, "status")?.as_str() {
                "connected" => ConnectionStatus::Connected,
                "reconnect_required" => ConnectionStatus::ReconnectRequired,
                _ => return Err(corrupt("connections.status")),
            },
            updated_at: time(row, "updated_at")?,
        })
    }

    pub(super) fn revocation(row: &SqliteRow) -> Result<PendingRevocation> {
        Ok(PendingRevocation {
            id: row.try_get::<i64, _>("id")?,
            session_hash: session_hash(row, "session_hash")?,
            provider: provider(row)?,
            token_kind: TokenKind::parse(&text(row, "token_kind")?)
                .ok_or(corrupt("revocations.token_kind"))?,
            token_ct: ciphertext(row, "token_ct")?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?)
                .map_err(|_| corrupt("revocations.attempts"))?,
            next_attempt_at: time(row, "next_attempt_at")?,
            created_at: time(row, "created_at")?,
        })
    }
}

const FLOW_COLUMNS: &str = "key, provider, code_challenge, redirect_uri, cookie_hash, \
                            created_at, expires_at, status, session_hash";
const CONNECTION_COLUMNS: &str = "session_hash, provider, patient, scopes, demographics_shared, \
     grant_expires_at, access_token_ct, refresh_token_ct, access_expires_at, generation, status, \
     updated_at";
const REVOCATION_COLUMNS: &str =
    "id, session_hash, provider, token_kind, token_ct, attempts, next_attempt_at, created_at";

async fn insert_revocation<'e, E>(
    executor: E,
    revocation: &NewRevocation,
    now: Timestamp,
) -> Result<PendingRevocation>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row = sqlx::query(&format!(
        "INSERT INTO revocations (session_hash, provider, token_kind, token_ct, attempts, \
         next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5) \
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
impl Store for SqliteStore {
    async fn insert_flow(
        &self,
        flow: &FlowRecord,
        max_pending: usize,
        now: Timestamp,
    ) -> Result<()> {
        let result = sqlx::query(&format!(
            "INSERT INTO flows ({FLOW_COLUMNS}) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 \
             WHERE (SELECT COUNT(*) FROM flows WHERE expires_at > ?10) < ?11"
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
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(Error::TooManyFlows),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists("flow")),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        sqlx::query(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE key = ?1"))
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
        // The winning path is one statement: only one UPDATE can see `pending`.
        let started = sqlx::query(&format!(
            "UPDATE flows SET status = 'in_progress' \
             WHERE key = ?1 AND cookie_hash = ?2 AND status = 'pending' AND expires_at > ?3 \
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
            "UPDATE flows SET status = 'completed', session_hash = ?2 \
             WHERE key = ?1 AND status = 'in_progress'",
        )
        .bind(key.to_hex())
        .bind(session.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_flow(&self, key: &FlowKey) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE flows SET status = 'failed' WHERE key = ?1 AND status = 'in_progress'",
        )
        .bind(key.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_flows(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM flows WHERE expires_at <= ?1")
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
             VALUES (?1, ?2, ?2, ?3)",
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
             WHERE hash = ?1 AND expires_at > ?2",
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
            "UPDATE sessions SET last_seen_at = ?2, expires_at = ?3 \
             WHERE hash = ?1 AND expires_at > ?2",
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
        let done = sqlx::query("DELETE FROM sessions WHERE hash = ?1")
            .bind(session.to_hex())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(seconds(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn upsert_connection(&self, c: &ConnectionRecord) -> Result<i64> {
        let result = sqlx::query(&format!(
            "INSERT INTO connections ({CONNECTION_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11) \
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
             WHERE session_hash = ?1 AND provider = ?2"
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
             WHERE session_hash = ?1 ORDER BY provider"
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
        let done = sqlx::query("DELETE FROM connections WHERE session_hash = ?1 AND provider = ?2")
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
            "UPDATE connections SET access_token_ct = ?4, refresh_token_ct = ?5, \
               access_expires_at = ?6, scopes = ?7, generation = generation + 1, \
               updated_at = ?8 \
             WHERE session_hash = ?1 AND provider = ?2 AND generation = ?3",
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
               generation = generation + 1, updated_at = ?4 \
             WHERE session_hash = ?1 AND provider = ?2 AND generation = ?3",
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
        // IMMEDIATE: take the write lock up front, so the transaction never has to upgrade a
        // read lock (which SQLite answers with SQLITE_BUSY instead of waiting).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = match provider {
            Some(provider) => {
                sqlx::query(&format!(
                    "DELETE FROM connections WHERE session_hash = ?1 AND provider = ?2 \
                     RETURNING {CONNECTION_COLUMNS}"
                ))
                .bind(session.to_hex())
                .bind(provider.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "DELETE FROM connections WHERE session_hash = ?1 \
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
            sqlx::query("DELETE FROM sessions WHERE hash = ?1")
                .bind(session.to_hex())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(out)
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
            "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, id LIMIT ?2"
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
        let done = sqlx::query("DELETE FROM revocations WHERE id = ?1")
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
            sqlx::query("UPDATE revocations SET next_attempt_at = ?2, attempts = ?3 WHERE id = ?1")
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
        assert_eq!(versions, [1]);
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_not_trusted() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        sqlx::query(
            "INSERT INTO flows (key, provider, code_challenge, redirect_uri, cookie_hash, \
             created_at, expires_at, status) VALUES (?1, 'medicare', 'not-a-challenge', \
             'http://localhost/cb', ?1, 0, 10, 'pending')",
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
}
