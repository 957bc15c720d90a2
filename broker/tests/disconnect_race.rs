//! A disconnect that lands while a refresh is in flight wins: the refresh's late write of the
//! new tokens changes nothing, the connection stays gone, and the request that refreshed
//! answers `not_connected` rather than serving with tokens of a connection the user ended.
//!
//! The interleaving is forced, not hoped for: the store is wrapped so the refresh's write
//! waits at a gate until the test has disconnected.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use connect_medicare_broker::{
    AppState, BeginOutcome, ConnectionRecord, ConnectionStore, Disconnected, FlowCookieHash,
    FlowKey, FlowRecord, FlowStore, LeaseHolder, ManualClock, NewRevocation, PendingRevocation,
    ProofHash, Result, RevocationStore, RevokePolicy, Rotation, SessionHash, SessionRecord,
    SessionStore, SqliteStore, TokenUpdate, serve,
};
use connect_medicare_protocol::{
    Timestamp,
    contract::{ErrorCode, ProviderId, SessionResponse},
};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

/// A store whose `update_tokens` announces itself and then waits for the gate to open.
struct GatedStore {
    inner: Arc<SqliteStore>,
    reached: Notify,
    gate: Semaphore,
}

#[async_trait]
impl FlowStore for GatedStore {
    async fn insert_flow(&self, flow: &FlowRecord, max: usize, now: Timestamp) -> Result<()> {
        self.inner.insert_flow(flow, max, now).await
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
impl SessionStore for GatedStore {
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
    async fn get_session_connection(
        &self,
        cookie: &SessionHash,
        provider: &ProviderId,
        now: Timestamp,
    ) -> Result<Option<(SessionRecord, Option<ConnectionRecord>)>> {
        self.inner
            .get_session_connection(cookie, provider, now)
            .await
    }

    async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool> {
        self.inner.rotate_session(rotation, now).await
    }
    async fn get_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>> {
        self.inner.get_session(session, now).await
    }
    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        self.inner.touch_session(session, now, expires_at).await
    }
    async fn delete_session(&self, session: &SessionHash) -> Result<bool> {
        self.inner.delete_session(session).await
    }
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.delete_expired_sessions(now).await
    }
}

#[async_trait]
impl ConnectionStore for GatedStore {
    async fn update_tokens(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        update: &TokenUpdate,
        now: Timestamp,
    ) -> Result<bool> {
        self.reached.notify_one();
        let _open = self.gate.acquire().await.unwrap();
        self.inner
            .update_tokens(session, provider, expected_generation, update, now)
            .await
    }

    // Everything else goes straight through.

    async fn upsert_connection(&self, connection: &ConnectionRecord) -> Result<i64> {
        self.inner.upsert_connection(connection).await
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
        self.inner.delete_connection(session, provider).await
    }
    async fn mark_reconnect_required(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        now: Timestamp,
    ) -> Result<bool> {
        self.inner
            .mark_reconnect_required(session, provider, expected_generation, now)
            .await
    }
    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>> {
        self.inner.disconnect(session, provider, revoke, now).await
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
impl RevocationStore for GatedStore {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_during_a_refresh_is_never_undone() {
    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let store = Arc::new(GatedStore {
        inner: Arc::new(SqliteStore::open(&setup.database()).await.unwrap()),
        reached: Notify::new(),
        // Closed until the test adds a permit; the sign-in writes no token update.
        gate: Semaphore::new(0),
    });
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(now())));
    let state = AppState::new(Arc::new(setup.config()), store.clone(), clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));

    let mut browser = Client {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        cookies: Default::default(),
        proof: None,
    };
    connect(&mut browser, &sandbox, 18).await;
    let session = session_key(store.as_ref(), &browser).await;
    let medicare = ProviderId::new("medicare").unwrap();

    // The access token expires: the next read refreshes first, and stops at the write.
    clock.advance(3601);
    sandbox.clock().advance(3601);
    let read = tokio::spawn({
        let mut browser = browser.clone();
        async move { browser.get("/v1/fhir/medicare/Coverage").await }
    });
    store.reached.notified().await;

    // The user disconnects meanwhile.
    let reply = browser
        .post("/v1/session/disconnect", json!({"provider": "medicare"}))
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        store
            .inner
            .get_connection(&session, &medicare)
            .await
            .unwrap()
            .is_none()
    );

    // The refresh's write comes too late: nothing comes back.
    store.gate.add_permits(1);
    let read = read.await.unwrap();
    assert_eq!(read.code(), ErrorCode::NotConnected);
    assert!(
        store
            .inner
            .get_connection(&session, &medicare)
            .await
            .unwrap()
            .is_none(),
        "the disconnected connection was written back"
    );
    let now: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert!(now.connections.is_empty());
    assert_eq!(
        browser.get("/v1/fhir/medicare/Coverage").await.code(),
        ErrorCode::NotConnected
    );
}
