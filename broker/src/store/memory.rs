//! An in-memory [`Store`] for unit tests: the same behaviour as the SQLite store, nothing
//! persisted.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use connect_medicare_protocol::{
    Timestamp,
    contract::{ConnectionStatus, ProviderId},
};

use super::{
    BeginOutcome, ConnectionRecord, ConnectionStore, Disconnected, FlowRecord, FlowStatus,
    FlowStore, LeaseHolder, NewRevocation, PendingRevocation, RevocationStore, RevokePolicy,
    Rotation, SessionRecord, SessionStore, TokenUpdate, classify, token_to_revoke,
};
use crate::{
    error::{Error, Record, Result},
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash},
};

/// A [`Store`] in memory, behind one lock (never held across an `.await`). For tests only:
/// everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flows: BTreeMap<FlowKey, FlowRecord>,
    sessions: BTreeMap<SessionHash, SessionRecord>,
    /// Session ids by the hash of their cookie: the session's key and until when the id is
    /// valid (`None`: the current id).
    cookies: BTreeMap<SessionHash, (SessionHash, Option<Timestamp>)>,
    connections: BTreeMap<(SessionHash, ProviderId), ConnectionRecord>,
    /// Refresh leases, by connection: removed with it ([`Inner::remove_connection`]).
    leases: BTreeMap<(SessionHash, ProviderId), (LeaseHolder, Timestamp)>,
    revocations: BTreeMap<i64, PendingRevocation>,
    next_revocation_id: i64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written record: every method
        // validates before it mutates, so the data stays usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn enqueue(&mut self, revocation: &NewRevocation, now: Timestamp) -> PendingRevocation {
        self.next_revocation_id += 1;
        let pending = PendingRevocation {
            id: self.next_revocation_id,
            session_hash: revocation.session_hash,
            provider: revocation.provider.clone(),
            token_kind: revocation.token_kind,
            token_ct: revocation.token_ct.clone(),
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        };
        self.revocations.insert(pending.id, pending.clone());
        pending
    }

    /// Removes a connection and its refresh lease.
    fn remove_connection(&mut self, key: &(SessionHash, ProviderId)) -> Option<ConnectionRecord> {
        self.leases.remove(key);
        self.connections.remove(key)
    }

    /// Removes a session with its ids (not its connections).
    fn remove_session(&mut self, session: &SessionHash) -> bool {
        self.cookies.retain(|_, (s, _)| s != session);
        self.sessions.remove(session).is_some()
    }

    fn remove_connections(&mut self, session: &SessionHash) -> Vec<ConnectionRecord> {
        let keys: Vec<_> = self
            .connections
            .keys()
            .filter(|(s, _)| s == session)
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|k| self.remove_connection(k))
            .collect()
    }
}

#[async_trait]
impl FlowStore for MemoryStore {
    async fn insert_flow(
        &self,
        flow: &FlowRecord,
        max_pending: usize,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        let live = inner.flows.values().filter(|f| !f.is_expired(now)).count();
        if live >= max_pending {
            return Err(Error::TooManyFlows);
        }
        if inner.flows.contains_key(&flow.key) {
            return Err(Error::AlreadyExists(Record::Flow));
        }
        inner.flows.insert(flow.key, flow.clone());
        Ok(())
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        Ok(self.lock().flows.get(key).cloned())
    }

    async fn begin_completion(
        &self,
        key: &FlowKey,
        cookie: &FlowCookieHash,
        now: Timestamp,
    ) -> Result<BeginOutcome> {
        let mut inner = self.lock();
        let Some(flow) = inner.flows.get_mut(key) else {
            return Ok(BeginOutcome::NotFound);
        };
        let outcome = classify(flow, cookie, now)?;
        if let BeginOutcome::Started(started) = &outcome {
            flow.status = FlowStatus::InProgress;
            return Ok(BeginOutcome::Started(FlowRecord {
                status: FlowStatus::InProgress,
                ..started.clone()
            }));
        }
        Ok(outcome)
    }

    async fn complete_flow(&self, key: &FlowKey, session: &SessionHash) -> Result<bool> {
        let mut inner = self.lock();
        Ok(match inner.flows.get_mut(key) {
            Some(flow) if flow.status == FlowStatus::InProgress => {
                flow.status = FlowStatus::Completed;
                flow.session_hash = Some(*session);
                true
            }
            _ => false,
        })
    }

    async fn fail_flow(&self, key: &FlowKey) -> Result<bool> {
        let mut inner = self.lock();
        Ok(match inner.flows.get_mut(key) {
            Some(flow) if flow.status == FlowStatus::InProgress => {
                flow.status = FlowStatus::Failed;
                true
            }
            _ => false,
        })
    }

    async fn delete_expired_flows(&self, now: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        let before = inner.flows.len();
        inner.flows.retain(|_, f| !f.is_expired(now));
        Ok(u64::try_from(before - inner.flows.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &SessionHash,
        proof: Option<&ProofHash>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        if inner.sessions.contains_key(session) || inner.cookies.contains_key(session) {
            return Err(Error::AlreadyExists(Record::Session));
        }
        inner.sessions.insert(
            *session,
            SessionRecord {
                session_hash: *session,
                proof_hash: proof.copied(),
                created_at: now,
                last_seen_at: now,
                expires_at,
            },
        );
        inner.cookies.insert(*session, (*session, None));
        Ok(())
    }

    async fn get_session(
        &self,
        cookie: &SessionHash,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>> {
        let inner = self.lock();
        Ok(match inner.cookies.get(cookie) {
            Some((session, until)) if until.is_none_or(|until| now < until) => inner
                .sessions
                .get(session)
                .filter(|s| now < s.expires_at)
                .cloned(),
            _ => None,
        })
    }

    async fn get_session_connection(
        &self,
        cookie: &SessionHash,
        provider: &ProviderId,
        now: Timestamp,
    ) -> Result<Option<(SessionRecord, Option<ConnectionRecord>)>> {
        let Some(session) = self.get_session(cookie, now).await? else {
            return Ok(None);
        };
        let connection = self.get_connection(&session.session_hash, provider).await?;
        Ok(Some((session, connection)))
    }

    async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool> {
        let mut inner = self.lock();
        if inner.cookies.contains_key(&rotation.new_cookie) {
            return Err(Error::AlreadyExists(Record::SessionId));
        }
        match inner.sessions.get_mut(&rotation.session) {
            Some(record)
                if now < record.expires_at
                    && record.proof_hash == Some(rotation.expected_proof) =>
            {
                record.proof_hash = Some(rotation.new_proof);
            }
            _ => return Ok(false),
        }
        for (session, until) in inner.cookies.values_mut() {
            if *session == rotation.session && until.is_none_or(|u| u > rotation.old_ids_until) {
                *until = Some(rotation.old_ids_until);
            }
        }
        inner
            .cookies
            .insert(rotation.new_cookie, (rotation.session, None));
        Ok(true)
    }

    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let mut inner = self.lock();
        Ok(match inner.sessions.get_mut(session) {
            Some(record) if now < record.expires_at => {
                record.last_seen_at = now;
                record.expires_at = expires_at;
                true
            }
            _ => false,
        })
    }

    async fn delete_session(&self, session: &SessionHash) -> Result<bool> {
        let mut inner = self.lock();
        inner.remove_connections(session);
        Ok(inner.remove_session(session))
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        let expired: Vec<SessionHash> = inner
            .sessions
            .values()
            .filter(|s| now >= s.expires_at)
            .map(|s| s.session_hash)
            .collect();
        for session in &expired {
            inner.remove_connections(session);
            inner.remove_session(session);
        }
        inner
            .cookies
            .retain(|_, (_, until)| until.is_none_or(|until| now < until));
        Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn upsert_connection(&self, connection: &ConnectionRecord) -> Result<i64> {
        let mut inner = self.lock();
        if !inner.sessions.contains_key(&connection.session_hash) {
            return Err(Error::SessionNotFound);
        }
        let key = (connection.session_hash, connection.provider.clone());
        let generation = inner
            .connections
            .get(&key)
            .map_or(1, |old| old.generation + 1);
        let mut record = connection.clone();
        record.generation = generation;
        inner.connections.insert(key, record);
        Ok(generation)
    }

    async fn get_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<Option<ConnectionRecord>> {
        Ok(self
            .lock()
            .connections
            .get(&(*session, provider.clone()))
            .cloned())
    }

    async fn list_connections(&self, session: &SessionHash) -> Result<Vec<ConnectionRecord>> {
        Ok(self
            .lock()
            .connections
            .iter()
            .filter(|((s, _), _)| s == session)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn delete_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<bool> {
        Ok(self
            .lock()
            .remove_connection(&(*session, provider.clone()))
            .is_some())
    }

    async fn update_tokens(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        update: &TokenUpdate,
        now: Timestamp,
    ) -> Result<bool> {
        let mut inner = self.lock();
        Ok(
            match inner.connections.get_mut(&(*session, provider.clone())) {
                Some(c) if c.generation == expected_generation => {
                    c.access_token_ct = update.access_token_ct.clone();
                    c.refresh_token_ct = update.refresh_token_ct.clone();
                    c.access_expires_at = update.access_expires_at;
                    c.scopes = update.scopes.clone();
                    c.generation += 1;
                    c.updated_at = now;
                    true
                }
                _ => false,
            },
        )
    }

    async fn mark_reconnect_required(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let mut inner = self.lock();
        Ok(
            match inner.connections.get_mut(&(*session, provider.clone())) {
                Some(c) if c.generation == expected_generation => {
                    c.status = ConnectionStatus::ReconnectRequired;
                    c.generation += 1;
                    c.updated_at = now;
                    true
                }
                _ => false,
            },
        )
    }

    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>> {
        let mut inner = self.lock();
        let removed = match provider {
            Some(provider) => inner
                .remove_connection(&(*session, provider.clone()))
                .into_iter()
                .collect(),
            None => {
                let removed = inner.remove_connections(session);
                inner.remove_session(session);
                removed
            }
        };
        Ok(removed
            .into_iter()
            .map(|connection| {
                let revocation = revoke(&connection).map(|kind| {
                    let (token_kind, token_ct) = token_to_revoke(&connection, kind);
                    let new = NewRevocation {
                        session_hash: connection.session_hash,
                        provider: connection.provider.clone(),
                        token_kind,
                        token_ct: token_ct.clone(),
                    };
                    inner.enqueue(&new, now)
                });
                Disconnected {
                    connection,
                    revocation,
                }
            })
            .collect())
    }

    async fn try_acquire_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let key = (*session, provider.clone());
        if !inner.connections.contains_key(&key) {
            return Ok(false);
        }
        if inner.leases.get(&key).is_some_and(|(_, end)| now < *end) {
            return Ok(false);
        }
        inner.leases.insert(key, (*holder, until));
        Ok(true)
    }

    async fn release_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let key = (*session, provider.clone());
        if inner.leases.get(&key).is_some_and(|(h, _)| h == holder) {
            inner.leases.remove(&key);
            return Ok(true);
        }
        Ok(false)
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn enqueue_revocation(&self, revocation: &NewRevocation, now: Timestamp) -> Result<i64> {
        Ok(self.lock().enqueue(revocation, now).id)
    }

    async fn due_revocations(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>> {
        let inner = self.lock();
        let mut due: Vec<_> = inner
            .revocations
            .values()
            .filter(|r| r.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.id));
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_revocation(&self, id: i64, now: Timestamp, until: Timestamp) -> Result<bool> {
        let mut inner = self.lock();
        Ok(match inner.revocations.get_mut(&id) {
            Some(r) if r.next_attempt_at <= now => {
                r.next_attempt_at = until;
                true
            }
            _ => false,
        })
    }

    async fn finish_revocation(&self, id: i64) -> Result<bool> {
        Ok(self.lock().revocations.remove(&id).is_some())
    }

    async fn reschedule_revocation(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<bool> {
        let mut inner = self.lock();
        Ok(match inner.revocations.get_mut(&id) {
            Some(r) => {
                r.next_attempt_at = next_attempt_at;
                r.attempts = attempts;
                true
            }
            None => false,
        })
    }
}
