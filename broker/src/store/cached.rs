//! [`CachedStore`]: a store that keeps, for a short while, what a proxied read looks up — a
//! session with its connection to one provider — so that a session reading often asks the
//! store once per window instead of once per read (`connection_cache_ms`: 250 by default, 0
//! for none).
//!
//! The invariant it keeps, across every replica sharing the store: **once a disconnect, a
//! token rotation or any other change to a connection has answered, no lookup begun after that
//! relays the token it replaced**, on any replica. (A read that had already looked its token up
//! still sends it, as it did without a cache.) A replica cannot hear of another's writes, so the
//! writes wait instead:
//!
//! - an entry is used only until the window has passed since its lookup *began* (the store's
//!   answer can be no older than that), by the monotonic clock;
//! - every write that can change or remove what a lookup returns answers only once the wait has
//!   passed since it was committed (or failed: a commit whose acknowledgement was lost counts):
//!   by then every replica's entry from before the write has run out, whichever replica holds
//!   it. The wait is the window, but never less than [`DEFAULT_WINDOW`]: replicas whose windows
//!   are all at most the default are safe together, `0` (keep nothing) included — which is how
//!   to roll the cache out over replicas of a version without it. Windows above the default
//!   must be the same on every replica.
//!
//! This replica's own entries for a session are not served once it has written to that
//! session (`changed`), so its next lookup reads the write — and a touch, which only extends a
//! session and waits for nothing, is not repeated by every read of the window.
//!
//! What is kept: only a session *with* its connection. A session without one (or no session at
//! all) is looked up afresh every time, so a sign-in is seen at once and a flood of made-up
//! cookies fills nothing. A kept entry answers only while the session has not expired by the
//! caller's clock and the caller's clock is within the window of the lookup (plus a second:
//! it counts whole seconds). A session's rotation waits only when it ends its old cookie ids' grace within
//! the wait; a longer grace leaves them usable for longer anyway.
//!
//! The cost is on the writes: a disconnect, a refresh, a reconnect, a session's deletion and a
//! rotation without a grace each answer the wait later. Housekeeping deletes of expired
//! sessions and flows do not wait (an expired session is refused from the cache by its own
//! expiry).

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

/// The default window (`connection_cache_ms`), and the least any write waits, whatever the
/// window: so that replicas keeping nothing or keeping for the default are safe together.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_millis(250);

/// How many (cookie, provider) lookups one replica keeps at most: sessions that read within one
/// window of each other. An entry holds two ciphertexts (a SMART server's JWTs are a few KB).
const CAPACITY: usize = 10_000;

/// A session with its connection to one provider, and until when it may be used.
#[derive(Clone)]
struct Entry {
    /// When the lookup began, by the monotonic clock.
    looked_up: Instant,
    /// When the lookup began, plus the window.
    usable_until: Instant,
    /// The caller's time of the lookup: the entry answers only callers whose time is within
    /// the window of it too, so a clock the caller moves (tests do) moves past it as well.
    looked_up_at: Timestamp,
    found: Arc<(SessionRecord, ConnectionRecord)>,
}

/// A [`Store`] that keeps proxied reads' lookups for a window (see the module's documentation
/// for the invariant and what it costs), and counts them (`cm_broker_connection_cache_total`,
/// and the misses' latency in `cm_broker_store_seconds`). The broker's store is always one:
/// without a window it keeps and counts nothing, and its writes still wait [`DEFAULT_WINDOW`]
/// for the replicas that keep.
pub(crate) struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Option<Duration>,
    entries: Cache<(SessionHash, ProviderId), Entry>,
    /// When this replica last wrote to a session (monotonic): an entry whose lookup began
    /// earlier is not served. Losing a record early costs at most a repeated touch: a write
    /// that changes a connection waits until every older entry has run out anyway.
    changed: Cache<SessionHash, Instant>,
    metrics: Arc<Metrics>,
}

impl CachedStore {
    /// `inner`, its proxied reads' lookups kept for `ttl` (`None`: not kept).
    pub(crate) fn new(inner: Arc<dyn Store>, ttl: Option<Duration>, metrics: Arc<Metrics>) -> Self {
        let capacity = if ttl.is_some() { CAPACITY } else { 1 };
        Self {
            inner,
            ttl,
            entries: Cache::new(capacity),
            changed: Cache::new(capacity),
            metrics,
        }
    }

    /// The wait of a write that changes a connection (see the module's documentation).
    fn wait(&self) -> Duration {
        self.ttl.unwrap_or_default().max(DEFAULT_WINDOW)
    }

    /// After a write to `session` (committed, or failed): this replica's entries for it are
    /// no longer served, and the write answers once every replica's entry from before it has
    /// run out.
    async fn written(&self, session: &SessionHash) {
        let committed = Instant::now();
        self.touched(session, committed);
        tokio::time::sleep_until(committed + self.wait()).await;
    }

    /// After a write that may have changed nothing: waits as [`Self::written`] unless it
    /// answered that it changed nothing (a failed write may still have committed).
    async fn written_unless_unchanged(
        &self,
        session: &SessionHash,
        changed: Result<bool>,
    ) -> Result<bool> {
        if !matches!(changed, Ok(false)) {
            self.written(session).await;
        }
        changed
    }

    /// Marks `session` written at `at` by this replica.
    fn touched(&self, session: &SessionHash, at: Instant) {
        if self.ttl.is_some() {
            self.changed.insert(*session, at);
        }
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
        let window = i64::try_from(ttl.as_secs().saturating_add(1)).unwrap_or(i64::MAX);
        let in_window = began < entry.usable_until
            && now.unix_seconds() <= entry.looked_up_at.unix_seconds().saturating_add(window);
        let session = &entry.found.0;
        let rewritten = self
            .changed
            .get(&session.session_hash)
            .is_some_and(|at| at >= entry.looked_up);
        if !in_window || rewritten || session.expires_at <= now {
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
                looked_up: began,
                usable_until: began + ttl,
                looked_up_at: now,
                found: Arc::new((session.clone(), connection.clone())),
            };
            self.entries.insert(key, entry);
        }
        Ok(found)
    }

    async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool> {
        let rotated = self.inner.rotate_session(rotation, now).await;
        // The old ids' grace ending within the wait is the one thing a kept entry could be
        // late for; a longer grace leaves them usable for longer anyway.
        let grace = rotation.old_ids_until.unix_seconds() - now.unix_seconds();
        let short =
            u64::try_from(grace).map_or(true, |grace| Duration::from_secs(grace) < self.wait());
        if short && !matches!(rotated, Ok(false)) {
            self.written(&rotation.session).await;
        }
        rotated
    }

    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        // Only moves the expiry later: nothing to wait for. This replica's entries for the
        // session are no longer served, so its next lookup sees the new `last_seen_at` (and
        // does not touch again).
        let touched = self.inner.touch_session(session, now, expires_at).await;
        self.touched(session, Instant::now());
        touched
    }

    async fn delete_session(&self, session: &SessionHash) -> Result<bool> {
        let deleted = self.inner.delete_session(session).await;
        self.written_unless_unchanged(session, deleted).await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.delete_expired_sessions(now).await
    }
}

#[async_trait]
impl ConnectionStore for CachedStore {
    async fn upsert_connection(&self, connection: &ConnectionRecord) -> Result<i64> {
        let generation = self.inner.upsert_connection(connection).await;
        // A new connection was never kept; a replaced one was, with the tokens it replaced.
        if !matches!(generation, Ok(1)) {
            self.written(&connection.session_hash).await;
        }
        generation
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
        let deleted = self.inner.delete_connection(session, provider).await;
        self.written_unless_unchanged(session, deleted).await
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
            .await;
        self.written_unless_unchanged(session, updated).await
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
            .await;
        self.written_unless_unchanged(session, marked).await
    }

    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>> {
        let removed = self.inner.disconnect(session, provider, revoke, now).await;
        // Nothing removed (disconnect is idempotent): nothing to wait for.
        if !matches!(&removed, Ok(none) if none.is_empty()) {
            self.written(session).await;
        }
        removed
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
        Rotation, SqliteStore,
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

    /// Every write that changes or removes a kept connection waits, and afterwards the other
    /// replica sees it — each on a fresh pair of replicas.
    #[tokio::test]
    async fn every_write_that_changes_a_connection_waits_out_the_window() {
        let window = Duration::from_millis(300);
        for write in [
            "update_tokens",
            "mark_reconnect_required",
            "reconnect",
            "delete_connection",
            "delete_session",
            "disconnect one provider",
            "rotation without a grace",
        ] {
            let (_dir, [a, _], b) = replicas(window).await;
            let cached_a = cache(a, window);
            let kept = lookup(&cached_a).await.unwrap();
            let (s, provider) = (session(1), medicare());
            let started = Instant::now();
            let done = match write {
                "update_tokens" => b
                    .update_tokens(&s, &provider, kept.generation, &update("2"), at(5))
                    .await
                    .unwrap(),
                "mark_reconnect_required" => b
                    .mark_reconnect_required(&s, &provider, kept.generation, at(5))
                    .await
                    .unwrap(),
                "reconnect" => b.upsert_connection(&connection(s, provider)).await.unwrap() == 2,
                "delete_connection" => b.delete_connection(&s, &provider).await.unwrap(),
                "delete_session" => b.delete_session(&s).await.unwrap(),
                "disconnect one provider" => {
                    let removed = b.disconnect(&s, Some(&provider), &revoke_refresh, at(5));
                    removed.await.unwrap().len() == 1
                }
                _ => {
                    let rotation = Rotation {
                        session: s,
                        expected_proof: proof(1),
                        new_cookie: session(9),
                        new_proof: proof(9),
                        old_ids_until: at(10),
                    };
                    b.rotate_session(&rotation, at(10)).await.unwrap()
                }
            };
            assert!(done, "{write} changed nothing");
            assert!(
                started.elapsed() >= window,
                "{write} answered before the window"
            );
            assert_ne!(lookup(&cached_a).await, Some(kept), "{write} was not seen");
        }
    }

    /// A replica that keeps nothing still waits the default window before its writes answer,
    /// so it is safe beside replicas keeping for the default.
    #[tokio::test]
    async fn a_replica_keeping_nothing_still_waits_for_those_that_keep() {
        let (_dir, [a, b], _) = replicas(DEFAULT_WINDOW).await;
        let cached_a = cache(a, DEFAULT_WINDOW);
        let keeping_nothing = CachedStore::new(b, None, Arc::default());
        assert!(lookup(&cached_a).await.is_some());
        let started = Instant::now();
        let removed = keeping_nothing
            .disconnect(&session(1), None, &revoke_refresh, at(5))
            .await
            .unwrap();
        assert_eq!(removed.len(), 1);
        assert!(started.elapsed() >= DEFAULT_WINDOW);
        assert_eq!(lookup(&cached_a).await, None);
    }

    /// A replica's own touch is read by its next lookup, not hidden by what it kept (or every
    /// read of the window would touch again).
    #[tokio::test]
    async fn a_replicas_own_touch_is_seen_at_once() {
        let (_dir, [a, _], _) = replicas(Duration::from_secs(60)).await;
        let cached_a = cache(a, Duration::from_secs(60));
        let (s, provider) = (session(1), medicare());
        let seen = |now| cached_a.get_session_connection(&s, &provider, now);
        let (before, _) = seen(at(10)).await.unwrap().unwrap();
        assert!(
            cached_a
                .touch_session(&session(1), at(11), at(2_000))
                .await
                .unwrap()
        );
        let (after, _) = seen(at(11)).await.unwrap().unwrap();
        assert_eq!(before.last_seen_at, at(0));
        assert_eq!((after.last_seen_at, after.expires_at), (at(11), at(2_000)));
    }
}
