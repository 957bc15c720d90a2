//! [`CachedStore`]: a store that keeps, for a short while, what a proxied read looks up — a
//! session with its connection to one provider — so that a session reading often asks the
//! store once per window instead of once per read (`connection_cache_ms`: 250 by default, 0
//! for none).
//!
//! The invariant it keeps, across every replica sharing the store: **once a disconnect, a
//! token rotation or any other change to a connection has answered, no replica relays the
//! token it replaced.** A replica cannot hear of another's writes, so the writes wait instead:
//!
//! - an entry is used only until `ttl` after its lookup *began* (the store's answer can be no
//!   older than that), by the monotonic clock;
//! - every write that can change or remove what a lookup returns drops this replica's entries
//!   for the session, then returns only once `ttl` has passed since the write was committed:
//!   by then every replica's entry from before the write has run out, whichever replica holds
//!   it — provided every replica is configured with the same window (or a shorter one).
//!
//! What is kept: only a session *with* its connection. A session without one (or no session at
//! all) is looked up afresh every time, so a sign-in is seen at once and a flood of made-up
//! cookies fills nothing. A kept entry answers only while the session has not expired and
//! within the window by the caller's clock as well. The one thing a kept entry can be late
//! for is the end of a retired cookie id's grace (after a rotation, the old id keeps working
//! for a short grace): it can be honoured up to the window past it.
//!
//! The cost is on the writes: a disconnect, a refresh, a sign-in that rotates a session and a
//! reconnect each take `ttl` longer to answer. Housekeeping deletes of expired sessions and
//! flows do not wait (an expired session is refused from the cache by its own expiry).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use connect_medicare_protocol::{Timestamp, contract::ProviderId};
use quick_cache::sync::Cache;
use tokio::time::Instant;

use super::{
    BeginOutcome, ConnectionRecord, ConnectionStore, Disconnected, FlowRecord, FlowStore,
    LeaseHolder, NewRevocation, PendingRevocation, RevocationStore, RevokePolicy, Rotation,
    SessionRecord, SessionStore, Store, TokenUpdate,
};
use crate::{
    error::Result,
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash},
    metrics::{CacheLookup, Metrics},
};

/// How many (cookie, provider) lookups one replica keeps at most.
const CAPACITY: usize = 100_000;

/// A session with its connection to one provider, and until when it may be used.
#[derive(Clone)]
struct Entry {
    /// When the lookup began, plus the window, by the monotonic clock.
    usable_until: Instant,
    /// The caller's time of the lookup: the entry answers only callers whose time is within
    /// the window of it too, so a clock the caller moves (tests do) moves past it as well.
    looked_up_at: Timestamp,
    found: Arc<(SessionRecord, ConnectionRecord)>,
}

/// A [`Store`] that keeps proxied reads' lookups for a window (see the module's documentation
/// for the invariant and what it costs), and counts them (`cm_broker_connection_cache_total`,
/// and the misses' latency in `cm_broker_store_seconds`). The broker's store is always one:
/// without a window it keeps nothing, counts every lookup a miss and makes no write wait.
pub(crate) struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Option<Duration>,
    entries: Cache<(SessionHash, ProviderId), Entry>,
    metrics: Arc<Metrics>,
}

impl CachedStore {
    /// `inner`, its proxied reads' lookups kept for `ttl` (`None`: not kept).
    pub(crate) fn new(inner: Arc<dyn Store>, ttl: Option<Duration>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            ttl,
            entries: Cache::new(if ttl.is_some() { CAPACITY } else { 1 }),
            metrics,
        }
    }

    /// After a write to `session`: drops this replica's entries for it, then waits until
    /// every replica's entry from before the write has run out.
    async fn written(&self, session: &SessionHash) {
        let Some(ttl) = self.ttl else {
            return;
        };
        let committed = Instant::now();
        self.entries
            .retain(|_, entry| entry.found.0.session_hash != *session);
        tokio::time::sleep_until(committed + ttl).await;
    }

    /// The kept lookup for `key`, if it may still answer at `began` (monotonic) and `now`.
    fn kept(
        &self,
        key: &(SessionHash, ProviderId),
        ttl: Duration,
        began: Instant,
        now: Timestamp,
    ) -> Option<(SessionRecord, Option<ConnectionRecord>)> {
        let entry = self.entries.get(key)?;
        let window = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let in_window = began < entry.usable_until
            && now.unix_seconds() <= entry.looked_up_at.unix_seconds().saturating_add(window);
        if !in_window || entry.found.0.expires_at <= now {
            self.entries.remove(key);
            return None;
        }
        let (session, connection) = &*entry.found;
        Some((session.clone(), Some(connection.clone())))
    }
}

#[async_trait]
impl SessionStore for CachedStore {
    async fn create_session(
        &self,
        session: &SessionHash,
        proof: Option<&ProofHash>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.inner
            .create_session(session, proof, now, expires_at)
            .await
    }

    async fn get_session(
        &self,
        cookie: &SessionHash,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>> {
        self.inner.get_session(cookie, now).await
    }

    async fn get_session_connection(
        &self,
        cookie: &SessionHash,
        provider: &ProviderId,
        now: Timestamp,
    ) -> Result<Option<(SessionRecord, Option<ConnectionRecord>)>> {
        let key = (*cookie, provider.clone());
        let began = Instant::now();
        if let Some(ttl) = self.ttl {
            if let Some(found) = self.kept(&key, ttl, began, now) {
                self.metrics.connection_cache(CacheLookup::Hit);
                return Ok(Some(found));
            }
            self.metrics.connection_cache(CacheLookup::Miss);
        }
        let found = self
            .inner
            .get_session_connection(cookie, provider, now)
            .await?;
        self.metrics.store(began.elapsed());
        if let (Some(ttl), Some((session, Some(connection)))) = (self.ttl, &found) {
            let entry = Entry {
                usable_until: began + ttl,
                looked_up_at: now,
                found: Arc::new((session.clone(), connection.clone())),
            };
            self.entries.insert(key, entry);
        }
        Ok(found)
    }

    async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool> {
        let rotated = self.inner.rotate_session(rotation, now).await?;
        self.written(&rotation.session).await;
        Ok(rotated)
    }

    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        // Only moves the expiry later: nothing to wait for. This replica's entries are
        // dropped so that its next lookup sees the new `last_seen_at` (and does not touch
        // again).
        let touched = self.inner.touch_session(session, now, expires_at).await?;
        if self.ttl.is_some() {
            self.entries
                .retain(|_, entry| entry.found.0.session_hash != *session);
        }
        Ok(touched)
    }

    async fn delete_session(&self, session: &SessionHash) -> Result<bool> {
        let deleted = self.inner.delete_session(session).await?;
        self.written(session).await;
        Ok(deleted)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.delete_expired_sessions(now).await
    }
}

#[async_trait]
impl ConnectionStore for CachedStore {
    async fn upsert_connection(&self, connection: &ConnectionRecord) -> Result<i64> {
        let generation = self.inner.upsert_connection(connection).await?;
        // A new connection was never kept; a replaced one was, with the tokens it replaced.
        if generation > 1 {
            self.written(&connection.session_hash).await;
        }
        Ok(generation)
    }

    async fn get_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<Option<ConnectionRecord>> {
        self.inner.get_connection(session, provider).await
    }

    async fn list_connections(&self, session: &SessionHash) -> Result<Vec<ConnectionRecord>> {
        self.inner.list_connections(session).await
    }

    async fn delete_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<bool> {
        let deleted = self.inner.delete_connection(session, provider).await?;
        self.written(session).await;
        Ok(deleted)
    }

    async fn update_tokens(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        update: &TokenUpdate,
        now: Timestamp,
    ) -> Result<bool> {
        let updated = self
            .inner
            .update_tokens(session, provider, expected_generation, update, now)
            .await?;
        if updated {
            self.written(session).await;
        }
        Ok(updated)
    }

    async fn mark_reconnect_required(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let marked = self
            .inner
            .mark_reconnect_required(session, provider, expected_generation, now)
            .await?;
        if marked {
            self.written(session).await;
        }
        Ok(marked)
    }

    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>> {
        let removed = self
            .inner
            .disconnect(session, provider, revoke, now)
            .await?;
        self.written(session).await;
        Ok(removed)
    }

    async fn try_acquire_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        self.inner
            .try_acquire_refresh_lease(session, provider, holder, now, until)
            .await
    }

    async fn release_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
    ) -> Result<bool> {
        self.inner
            .release_refresh_lease(session, provider, holder)
            .await
    }
}

#[async_trait]
impl FlowStore for CachedStore {
    async fn insert_flow(
        &self,
        flow: &FlowRecord,
        max_pending: usize,
        now: Timestamp,
    ) -> Result<()> {
        self.inner.insert_flow(flow, max_pending, now).await
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        self.inner.get_flow(key).await
    }

    async fn begin_completion(
        &self,
        key: &FlowKey,
        cookie: &FlowCookieHash,
        now: Timestamp,
    ) -> Result<BeginOutcome> {
        self.inner.begin_completion(key, cookie, now).await
    }

    async fn complete_flow(&self, key: &FlowKey, session: &SessionHash) -> Result<bool> {
        self.inner.complete_flow(key, session).await
    }

    async fn fail_flow(&self, key: &FlowKey) -> Result<bool> {
        self.inner.fail_flow(key).await
    }

    async fn delete_expired_flows(&self, now: Timestamp) -> Result<u64> {
        self.inner.delete_expired_flows(now).await
    }
}

#[async_trait]
impl RevocationStore for CachedStore {
    async fn enqueue_revocation(&self, revocation: &NewRevocation, now: Timestamp) -> Result<i64> {
        self.inner.enqueue_revocation(revocation, now).await
    }

    async fn due_revocations(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<PendingRevocation>> {
        self.inner.due_revocations(now, limit).await
    }

    async fn claim_revocation(&self, id: i64, now: Timestamp, until: Timestamp) -> Result<bool> {
        self.inner.claim_revocation(id, now, until).await
    }

    async fn finish_revocation(&self, id: i64) -> Result<bool> {
        self.inner.finish_revocation(id).await
    }

    async fn reschedule_revocation(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<bool> {
        self.inner
            .reschedule_revocation(id, next_attempt_at, attempts)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{
        SqliteStore,
        suite::{at, connection, medicare, proof, revoke_refresh, session, update},
    };

    fn cache(store: Arc<dyn Store>, window: Duration) -> CachedStore {
        CachedStore::new(store, Some(window), Arc::new(Metrics::default()))
    }

    /// Two replicas on one SQLite file: each its own store (its own connections) behind its
    /// own cache, as two broker processes sharing the file are.
    async fn replicas(window: Duration) -> (tempfile::TempDir, [Arc<dyn Store>; 2], CachedStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let s = session(1);
        b.create_session(&s, Some(&proof(1)), at(0), at(1_000))
            .await
            .unwrap();
        b.upsert_connection(&connection(s, medicare()))
            .await
            .unwrap();
        let cached_b = cache(b.clone(), window);
        (dir, [a, b], cached_b)
    }

    async fn lookup(store: &dyn Store) -> Option<ConnectionRecord> {
        store
            .get_session_connection(&session(1), &medicare(), at(10))
            .await
            .unwrap()
            .and_then(|(_, connection)| connection)
    }

    #[tokio::test]
    async fn a_kept_lookup_answers_without_asking_the_store() {
        let (_dir, [a, b], _) = replicas(Duration::from_secs(60)).await;
        let metrics = Arc::new(Metrics::default());
        let cached_a = CachedStore::new(a, Some(Duration::from_secs(60)), metrics.clone());
        assert!(lookup(&cached_a).await.is_some());
        // Gone from the store behind the cache's back (no replica writes like this: each
        // write goes through its replica's cache and waits): the kept entry still answers,
        // so the second lookup did not reach the store.
        assert!(b.delete_session(&session(1)).await.unwrap());
        assert!(lookup(&cached_a).await.is_some());
        // Counted so: one miss, timed as a store call, and one hit, which is not.
        let text = metrics.render();
        assert!(
            text.contains("cm_broker_connection_cache_total{result=\"hit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cm_broker_connection_cache_total{result=\"miss\"} 1"),
            "{text}"
        );
        assert!(text.contains("cm_broker_store_seconds_count 1"), "{text}");
        // Not once the caller's clock is past the window, nor after the session's expiry.
        let later = cached_a
            .get_session_connection(&session(1), &medicare(), at(80))
            .await
            .unwrap();
        assert_eq!(later, None);
    }

    #[tokio::test]
    async fn a_session_without_its_connection_is_not_kept() {
        let (_dir, [a, b], _) = replicas(Duration::from_secs(60)).await;
        let cached_a = cache(a, Duration::from_secs(60));
        let s = session(2);
        b.create_session(&s, Some(&proof(2)), at(0), at(1_000))
            .await
            .unwrap();
        let provider = medicare();
        let lookup = || cached_a.get_session_connection(&s, &provider, at(10));
        assert!(matches!(lookup().await.unwrap(), Some((_, None))));
        // Signed in on the other replica: seen at once.
        b.upsert_connection(&connection(s, medicare()))
            .await
            .unwrap();
        assert!(matches!(lookup().await.unwrap(), Some((_, Some(_)))));
    }

    /// The invariant: once a disconnect or a token rotation has answered on one replica, the
    /// other relays nothing it kept from before — although it kept it moments ago.
    #[tokio::test]
    async fn a_write_answers_only_once_every_replica_dropped_what_it_kept() {
        let window = Duration::from_millis(300);
        let (_dir, [a, _], cached_b) = replicas(window).await;
        let cached_a = cache(a, window);

        let kept = lookup(&cached_a).await.unwrap();
        let started = Instant::now();
        let updated = cached_b
            .update_tokens(
                &session(1),
                &medicare(),
                kept.generation,
                &update("2"),
                at(5),
            )
            .await
            .unwrap();
        assert!(updated);
        assert!(
            started.elapsed() >= window,
            "the rotation waited out the window"
        );
        let seen = lookup(&cached_a).await.unwrap();
        assert_eq!(seen.access_token_ct, update("2").access_token_ct);
        assert_eq!(seen.generation, kept.generation + 1);

        let started = Instant::now();
        let removed = cached_b
            .disconnect(&session(1), None, &revoke_refresh, at(6))
            .await
            .unwrap();
        assert_eq!(removed.len(), 1);
        assert!(
            started.elapsed() >= window,
            "the disconnect waited out the window"
        );
        assert_eq!(lookup(&cached_a).await, None);
    }
}
