//! The [`Store`] of both SQL databases, written once: [`sql_store!`] implements it for
//! [`SqliteStore`](super::SqliteStore) and [`PgStore`](super::PgStore) from the same
//! statements. They are the same text in both dialects — parameters `$N` (which sqlx's SQLite
//! driver binds by their number too), `RETURNING`, `ON CONFLICT … DO UPDATE`,
//! `INSERT … SELECT … WHERE` — so a fix to one store is a fix to both.
//!
//! In SQLite `$N` is a named parameter that sqlx binds by the number in its name (sqlx-sqlite's
//! `SqliteArguments::bind`), so the rules for writing a statement here are: number the
//! parameters from `$1` without gaps, bind every one (sqlx leaves the rest NULL), repeat a
//! number to use a value twice, and never follow `$N` directly with `(` or `::`, which SQLite
//! would read as part of the name.
//!
//! What differs is how a writing transaction begins, which each store says in two methods the
//! macro calls:
//! - `begin_write`: a transaction that will write. SQLite: `BEGIN IMMEDIATE`, taking the write
//!   lock up front so the transaction never has to upgrade a read lock (which SQLite answers
//!   with `SQLITE_BUSY` instead of waiting). PostgreSQL: `BEGIN` (READ COMMITTED).
//! - `begin_flow_cap`: a transaction under which [`FlowStore::insert_flow`] counts the pending
//!   flows and inserts one, so two inserts cannot both count below the cap. SQLite: its write
//!   lock does that; PostgreSQL: a transaction-scoped advisory lock.
//!
//! Every other check-then-write is one statement (`UPDATE … WHERE … RETURNING`), which SQLite's
//! write lock serialises and PostgreSQL re-checks on the latest row version once a concurrent
//! writer commits.

/// Implements the store's four role traits ([`Store`](super::Store)) for `$store`, a store over
/// a `$db` (`sqlx::Sqlite` or `sqlx::Postgres`) pool in its `pool` field, with the
/// `begin_write` and `begin_flow_cap` methods the module docs describe. The names the body uses are those in scope where it is
/// expanded (the two store modules import the same ones).
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        #[cfg(test)]
        impl $store {
            /// Runs `statement` with `$1` bound to `value`: how the store suite writes a row no
            /// store would (`suite.rs`).
            pub(super) async fn execute_raw(&self, statement: &str, value: &str) {
                sqlx::query(statement)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .unwrap();
            }
        }

        impl $store {
            /// Queues `revocation` (in the caller's transaction, or on the pool).
            async fn insert_revocation<'e, E>(
                executor: E,
                revocation: &NewRevocation,
                now: Timestamp,
            ) -> Result<PendingRevocation>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query(&format!(
                    "INSERT INTO revocations (session_hash, provider, token_kind, token_ct, \
                     attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5) \
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
        }

        #[async_trait]
        impl FlowStore for $store {
            async fn insert_flow(
                &self,
                flow: &FlowRecord,
                max_pending: usize,
                now: Timestamp,
            ) -> Result<()> {
                let mut tx = self.begin_flow_cap().await?;
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
                    // Dropping the transaction rolls it back (and releases PostgreSQL's lock).
                    Ok(_) => Err(Error::TooManyFlows),
                    Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists(Record::Flow)),
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
                // The winning path is one statement: only one UPDATE can see `pending` (SQLite's
                // write lock serialises them; in PostgreSQL a concurrent UPDATE waits for the row
                // lock, then sees `in_progress`).
                let started = sqlx::query(&format!(
                    "UPDATE flows SET status = 'in_progress' \
                     WHERE key = $1 AND cookie_hash = $2 AND status = 'pending' \
                       AND expires_at > $3 \
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

        }

        #[async_trait]
        impl SessionStore for $store {
            async fn create_session(
                &self,
                session: &SessionHash,
                proof: Option<&ProofHash>,
                now: Timestamp,
                expires_at: Timestamp,
            ) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let result = sqlx::query(
                    "INSERT INTO sessions (hash, created_at, last_seen_at, expires_at, \
                     proof_hash) VALUES ($1, $2, $2, $3, $4)",
                )
                .bind(session.to_hex())
                .bind(seconds(now))
                .bind(seconds(expires_at))
                .bind(proof.map(ProofHash::to_hex))
                .execute(&mut *tx)
                .await;
                match result {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::AlreadyExists(Record::Session));
                    }
                    Err(e) => return Err(e.into()),
                }
                sqlx::query(
                    "INSERT INTO session_cookies (cookie_hash, session_hash, valid_until) \
                     VALUES ($1, $1, NULL)",
                )
                .bind(session.to_hex())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_session(
                &self,
                cookie: &SessionHash,
                now: Timestamp,
            ) -> Result<Option<SessionRecord>> {
                sqlx::query(
                    "SELECT s.hash, s.created_at, s.last_seen_at, s.expires_at, s.proof_hash \
                     FROM session_cookies c JOIN sessions s ON s.hash = c.session_hash \
                     WHERE c.cookie_hash = $1 AND s.expires_at > $2 \
                     AND (c.valid_until IS NULL OR c.valid_until > $2)",
                )
                .bind(cookie.to_hex())
                .bind(seconds(now))
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(decode::session)
                .transpose()
            }

            async fn get_session_connection(
                &self,
                cookie: &SessionHash,
                provider: &ProviderId,
                now: Timestamp,
            ) -> Result<Option<(SessionRecord, Option<ConnectionRecord>)>> {
                let row = sqlx::query(&SESSION_CONNECTION)
                    .bind(cookie.to_hex())
                    .bind(seconds(now))
                    .bind(provider.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let connection = match decode::Columns::opt_text(&row, "provider")? {
                    Some(_) => Some(decode::connection(&row)?),
                    None => None,
                };
                Ok(Some((decode::session(&row)?, connection)))
            }

            async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                // The compare-and-set that makes one of two concurrent rotations win: the
                // proof was compared in constant time by the caller; this equality only
                // checks it is still the current one.
                let rotated = sqlx::query(
                    "UPDATE sessions SET proof_hash = $3 \
                     WHERE hash = $1 AND proof_hash = $2 AND expires_at > $4",
                )
                .bind(rotation.session.to_hex())
                .bind(rotation.expected_proof.to_hex())
                .bind(rotation.new_proof.to_hex())
                .bind(seconds(now))
                .execute(&mut *tx)
                .await?;
                if rotated.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE session_cookies SET valid_until = $2 \
                     WHERE session_hash = $1 AND (valid_until IS NULL OR valid_until > $2)",
                )
                .bind(rotation.session.to_hex())
                .bind(seconds(rotation.old_ids_until))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO session_cookies (cookie_hash, session_hash, valid_until) \
                     VALUES ($1, $2, NULL)",
                )
                .bind(rotation.new_cookie.to_hex())
                .bind(rotation.session.to_hex())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
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
                // Their connections and ids go with them (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(seconds(now))
                    .execute(&self.pool)
                    .await?;
                sqlx::query("DELETE FROM session_cookies WHERE valid_until <= $1")
                    .bind(seconds(now))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

        }

        #[async_trait]
        impl ConnectionStore for $store {
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

            async fn list_connections(
                &self,
                session: &SessionHash,
            ) -> Result<Vec<ConnectionRecord>> {
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
                let done = sqlx::query(
                    "DELETE FROM connections WHERE session_hash = $1 AND provider = $2",
                )
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
                // A concurrent token update waits — for the rows the DELETE locks (PostgreSQL),
                // or for the write lock BEGIN IMMEDIATE took (SQLite) — then finds nothing to
                // update.
                let mut tx = self.begin_write().await?;
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
                            Some(Self::insert_revocation(&mut *tx, &new, now).await?)
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
                // One statement: SQLite's write lock serialises it against every other writer; in
                // PostgreSQL a concurrent acquirer waits for this row's lock, then re-checks the
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
                    "UPDATE connections \
                     SET refresh_lease_holder = NULL, refresh_lease_until = NULL \
                     WHERE session_hash = $1 AND provider = $2 AND refresh_lease_holder = $3",
                )
                .bind(session.to_hex())
                .bind(provider.as_str())
                .bind(holder.to_hex())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

        }

        #[async_trait]
        impl RevocationStore for $store {
            async fn enqueue_revocation(
                &self,
                revocation: &NewRevocation,
                now: Timestamp,
            ) -> Result<i64> {
                Ok(Self::insert_revocation(&self.pool, revocation, now).await?.id)
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

            async fn claim_revocation(
                &self,
                id: i64,
                now: Timestamp,
                until: Timestamp,
            ) -> Result<bool> {
                // One statement: PostgreSQL re-checks `next_attempt_at` on the row a
                // concurrent claim committed, SQLite's write lock serialises the two.
                let done = sqlx::query(
                    "UPDATE revocations SET next_attempt_at = $3 \
                     WHERE id = $1 AND next_attempt_at <= $2",
                )
                .bind(id)
                .bind(seconds(now))
                .bind(seconds(until))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
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
                let done = sqlx::query(
                    "UPDATE revocations SET next_attempt_at = $2, attempts = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(seconds(next_attempt_at))
                .bind(i64::from(attempts))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(super) use sql_store;
