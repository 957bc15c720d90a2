//! One behavioural suite for every [`Store`]: `store_suite!` runs the same tests against each
//! implementation (and, for stores that persist, the reopen tests too; for the SQL stores, a
//! corrupt row written in SQL): memory, SQLite in memory and in a file, and PostgreSQL on a
//! private server started by [`test_postgres`](super::test_postgres) (those tests fail, never
//! skip, without one).

use std::sync::Arc;

use async_trait::async_trait;
use connect_medicare_protocol::{
    PatientId, PkceChallenge, RedirectUri, Scopes, Timestamp,
    contract::{ConnectionStatus, ProviderId},
};
use tokio::sync::Barrier;

use super::*;
use crate::{
    crypto::{Ciphertext, TokenKind},
    error::Error,
    ids::{FlowCookie, FlowCookieHash, FlowKey, ProofHash, SessionHash, SessionId},
};

/// Opens a store, and reopens it on the same data when it persists.
#[async_trait]
trait Harness: Send {
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;
    /// Drops the store and opens a new one on the same data.
    async fn reopen(&mut self);
    /// Runs `statement` on the store's database with `$1` bound to `value`: a row no store
    /// would write.
    async fn execute_raw(&self, statement: &str, value: &str);
}

/// A store that does not persist and holds typed records: the memory store, alone or cached.
struct MemoryHarness(Arc<dyn Store>);

#[async_trait]
impl Harness for MemoryHarness {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }

    async fn reopen(&mut self) {
        unreachable!("the memory store does not persist");
    }

    async fn execute_raw(&self, _: &str, _: &str) {
        unreachable!("the memory store holds typed records, never a row that could be corrupt");
    }
}

async fn memory() -> MemoryHarness {
    MemoryHarness(Arc::new(MemoryStore::new()))
}

/// The memory store behind a [`CachedStore`]: the suite holds of a store that keeps proxied
/// reads' lookups as of any other (its writes wait out a 20 ms window).
async fn cached() -> MemoryHarness {
    let inner = Arc::new(MemoryStore::new());
    MemoryHarness(Arc::new(CachedStore::new(
        inner,
        Some(std::time::Duration::from_millis(20)),
        Arc::default(),
    )))
}

struct SqliteHarness {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

impl SqliteHarness {
    fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("broker.db")
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Arc::new(SqliteStore::open(&Self::path(&self.dir)).await.unwrap());
    }

    async fn execute_raw(&self, statement: &str, value: &str) {
        self.store.execute_raw(statement, value).await;
    }
}

async fn sqlite_file() -> SqliteHarness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&SqliteHarness::path(&dir)).await.unwrap());
    SqliteHarness { dir, store }
}

struct SqliteMemoryHarness(Arc<SqliteStore>);

#[async_trait]
impl Harness for SqliteMemoryHarness {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }

    async fn reopen(&mut self) {
        unreachable!("an in-memory database does not persist");
    }

    async fn execute_raw(&self, statement: &str, value: &str) {
        self.0.execute_raw(statement, value).await;
    }
}

async fn sqlite_memory() -> SqliteMemoryHarness {
    SqliteMemoryHarness(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
}

struct PostgresHarness {
    db: test_postgres::TestDatabase,
    store: Arc<PgStore>,
}

impl PostgresHarness {
    fn url(&self) -> crate::config::PostgresUrl {
        crate::config::PostgresUrl::parse(&self.db.url_string()).unwrap()
    }
}

#[async_trait]
impl Harness for PostgresHarness {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Arc::new(PgStore::connect(&self.url()).await.unwrap());
    }

    async fn execute_raw(&self, statement: &str, value: &str) {
        self.store.execute_raw(statement, value).await;
    }
}

/// A fresh database on this process's private PostgreSQL server: the test fails (never
/// skips) when the server cannot start.
async fn postgres() -> PostgresHarness {
    let db = test_postgres::TestDatabase::create().await;
    let url = crate::config::PostgresUrl::parse(&db.url_string()).unwrap();
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    PostgresHarness { db, store }
}

// ---- fixtures ----

const T0: i64 = 1_750_000_000;

pub(super) fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + offset)
}

pub(super) fn medicare() -> ProviderId {
    ProviderId::new("medicare").unwrap()
}

fn epic() -> ProviderId {
    ProviderId::new("epic").unwrap()
}

pub(super) fn session(n: u8) -> SessionHash {
    SessionId::from_random_bytes([n; 32]).hash()
}

pub(super) fn proof(n: u8) -> ProofHash {
    ProofHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
}

fn cookie(n: u8) -> FlowCookieHash {
    FlowCookie::from_random_bytes([n; 32]).hash()
}

fn flow_key(n: u8) -> FlowKey {
    FlowKey::from_state(&connect_medicare_protocol::State::from_random_bytes(
        [n; 32],
    ))
}

fn flow(n: u8, cookie_n: u8, ttl: i64) -> FlowRecord {
    FlowRecord {
        key: flow_key(n),
        provider: medicare(),
        code_challenge: PkceChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
            .unwrap(),
        redirect_uri: RedirectUri::parse("http://localhost:8080/callback").unwrap(),
        cookie_hash: cookie(cookie_n),
        created_at: at(0),
        expires_at: at(ttl),
        status: FlowStatus::Pending,
        session_hash: None,
    }
}

fn ct(tag: &str) -> Ciphertext {
    // The store treats ciphertexts as opaque bytes; any bytes do (NUL included).
    Ciphertext::from_bytes([&[1u8, 0, 255][..], tag.as_bytes()].concat())
}

pub(super) fn connection(session_hash: SessionHash, provider: ProviderId) -> ConnectionRecord {
    ConnectionRecord {
        session_hash,
        provider,
        patient: Some(PatientId::new("-20140000008325").unwrap()),
        scopes: Scopes::parse("openid patient/Patient.rs patient/ExplanationOfBenefit.rs").unwrap(),
        demographics_shared: true,
        grant_expires_at: Some(at(400 * 86_400)),
        access_token_ct: ct("access-1"),
        refresh_token_ct: Some(ct("refresh-1")),
        access_expires_at: Some(at(3_600)),
        generation: 0,
        status: ConnectionStatus::Connected,
        updated_at: at(0),
    }
}

pub(super) fn update(tag: &str) -> TokenUpdate {
    TokenUpdate {
        access_token_ct: ct(&format!("access-{tag}")),
        refresh_token_ct: Some(ct(&format!("refresh-{tag}"))),
        access_expires_at: Some(at(7_200)),
        scopes: Scopes::parse("openid patient/ExplanationOfBenefit.rs").unwrap(),
    }
}

pub(super) fn revoke_refresh(_: &ConnectionRecord) -> Option<TokenKind> {
    Some(TokenKind::RefreshToken)
}

fn revoke_nothing(_: &ConnectionRecord) -> Option<TokenKind> {
    None
}

// ---- flows ----

async fn flow_round_trip(h: impl Harness) {
    let store = h.store();
    let record = flow(1, 1, 600);
    store.insert_flow(&record, 10, at(0)).await.unwrap();
    assert_eq!(store.get_flow(&record.key).await.unwrap(), Some(record));
    assert_eq!(store.get_flow(&flow_key(2)).await.unwrap(), None);
}

async fn duplicate_flow_is_refused(h: impl Harness) {
    let store = h.store();
    store
        .insert_flow(&flow(1, 1, 600), 10, at(0))
        .await
        .unwrap();
    let err = store
        .insert_flow(&flow(1, 2, 600), 10, at(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists(crate::error::Record::Flow)),
        "{err}"
    );
}

async fn flow_cap_counts_only_unexpired(h: impl Harness) {
    let store = h.store();
    store.insert_flow(&flow(1, 1, 100), 2, at(0)).await.unwrap();
    store.insert_flow(&flow(2, 2, 200), 2, at(0)).await.unwrap();
    let err = store
        .insert_flow(&flow(3, 3, 600), 2, at(50))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyFlows), "{err}");
    // Flow 1 expires at +100: without any purge, there is room again.
    store
        .insert_flow(&flow(3, 3, 600), 2, at(100))
        .await
        .unwrap();
    let err = store
        .insert_flow(&flow(4, 4, 600), 2, at(150))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyFlows), "{err}");
    // Completed flows count while unexpired too.
    assert!(matches!(
        store
            .begin_completion(&flow_key(2), &cookie(2), at(150))
            .await
            .unwrap(),
        BeginOutcome::Started(_)
    ));
    assert!(
        store
            .complete_flow(&flow_key(2), &session(1))
            .await
            .unwrap()
    );
    let err = store
        .insert_flow(&flow(4, 4, 600), 2, at(150))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyFlows), "{err}");
    store
        .insert_flow(&flow(4, 4, 600), 2, at(200))
        .await
        .unwrap();
}

async fn begin_completion_has_one_winner(h: impl Harness) {
    const TASKS: usize = 50;
    let store = h.store();
    store
        .insert_flow(&flow(1, 1, 600), 10, at(0))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .begin_completion(&flow_key(1), &cookie(1), at(10))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut started = 0;
    let mut in_progress = 0;
    for task in tasks {
        match task.await.unwrap() {
            BeginOutcome::Started(record) => {
                started += 1;
                assert_eq!(record.status, FlowStatus::InProgress);
                assert_eq!(record.key, flow_key(1));
            }
            BeginOutcome::InProgress => in_progress += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((started, in_progress), (1, TASKS - 1));
}

async fn completion_outcomes(h: impl Harness) {
    let store = h.store();
    let key = flow_key(1);
    let (mine, theirs) = (cookie(1), cookie(2));
    store
        .insert_flow(&flow(1, 1, 600), 10, at(0))
        .await
        .unwrap();

    // Unknown state; pending flow with another browser's cookie: not found.
    let unknown = store.begin_completion(&flow_key(9), &mine, at(1)).await;
    assert_eq!(unknown.unwrap(), BeginOutcome::NotFound);
    let other = store.begin_completion(&key, &theirs, at(1)).await;
    assert_eq!(other.unwrap(), BeginOutcome::NotFound);
    assert_eq!(
        store.get_flow(&key).await.unwrap().unwrap().status,
        FlowStatus::Pending,
        "a wrong cookie changes nothing"
    );

    // Completing requires an in-progress flow.
    assert!(!store.complete_flow(&key, &session(1)).await.unwrap());
    assert!(matches!(
        store.begin_completion(&key, &mine, at(2)).await.unwrap(),
        BeginOutcome::Started(_)
    ));
    assert_eq!(
        store.begin_completion(&key, &mine, at(2)).await.unwrap(),
        BeginOutcome::InProgress
    );
    assert_eq!(
        store.begin_completion(&key, &theirs, at(2)).await.unwrap(),
        BeginOutcome::Used
    );
    assert!(store.complete_flow(&key, &session(1)).await.unwrap());
    assert!(!store.complete_flow(&key, &session(2)).await.unwrap());
    assert!(!store.fail_flow(&key).await.unwrap());

    // Replay with the same cookie: the same session, never a second start.
    for _ in 0..3 {
        assert_eq!(
            store.begin_completion(&key, &mine, at(3)).await.unwrap(),
            BeginOutcome::AlreadyCompleted {
                session_hash: session(1)
            }
        );
    }
    let stored = store.get_flow(&key).await.unwrap().unwrap();
    assert_eq!(stored.status, FlowStatus::Completed);
    assert_eq!(stored.session_hash, Some(session(1)));
    // Another browser: used.
    assert_eq!(
        store.begin_completion(&key, &theirs, at(3)).await.unwrap(),
        BeginOutcome::Used
    );
    // After the TTL even the same browser is refused.
    assert_eq!(
        store.begin_completion(&key, &mine, at(600)).await.unwrap(),
        BeginOutcome::Expired
    );

    // A failed flow is used for good.
    store
        .insert_flow(&flow(2, 1, 600), 10, at(0))
        .await
        .unwrap();
    assert!(matches!(
        store
            .begin_completion(&flow_key(2), &mine, at(1))
            .await
            .unwrap(),
        BeginOutcome::Started(_)
    ));
    assert!(store.fail_flow(&flow_key(2)).await.unwrap());
    assert_eq!(
        store
            .begin_completion(&flow_key(2), &mine, at(2))
            .await
            .unwrap(),
        BeginOutcome::Used
    );

    // A pending flow past its TTL.
    store.insert_flow(&flow(3, 1, 60), 10, at(0)).await.unwrap();
    assert_eq!(
        store
            .begin_completion(&flow_key(3), &mine, at(60))
            .await
            .unwrap(),
        BeginOutcome::Expired
    );
}

async fn expired_flows_are_purged(h: impl Harness) {
    let store = h.store();
    store
        .insert_flow(&flow(1, 1, 100), 10, at(0))
        .await
        .unwrap();
    store
        .insert_flow(&flow(2, 2, 200), 10, at(0))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_flows(at(99)).await.unwrap(), 0);
    assert_eq!(store.delete_expired_flows(at(100)).await.unwrap(), 1);
    assert_eq!(store.get_flow(&flow_key(1)).await.unwrap(), None);
    assert!(store.get_flow(&flow_key(2)).await.unwrap().is_some());
    assert_eq!(
        store
            .begin_completion(&flow_key(1), &cookie(1), at(100))
            .await
            .unwrap(),
        BeginOutcome::NotFound
    );
}

// ---- sessions and connections ----

async fn session_ids_rotate(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, Some(&proof(1)), at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    let first = store.get_session(&s, at(1)).await.unwrap().unwrap();
    assert_eq!(first.proof_hash, Some(proof(1)));

    // A rotation that expects another proof changes nothing.
    let stale = Rotation {
        session: s,
        expected_proof: proof(9),
        new_cookie: session(2),
        new_proof: proof(2),
        old_ids_until: at(60),
    };
    assert!(!store.rotate_session(&stale, at(1)).await.unwrap());
    assert_eq!(store.get_session(&session(2), at(1)).await.unwrap(), None);
    assert_eq!(
        store
            .get_session(&s, at(1_000 - 1))
            .await
            .unwrap()
            .unwrap()
            .proof_hash,
        Some(proof(1))
    );

    let rotation = Rotation {
        expected_proof: proof(1),
        ..stale
    };
    assert!(store.rotate_session(&rotation, at(1)).await.unwrap());
    // The new id reaches the same session — its key, its proof, its connections — and the
    // old one does until its grace ends.
    let by_new = store
        .get_session(&session(2), at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_new.session_hash, by_new.proof_hash),
        (s, Some(proof(2)))
    );
    assert_eq!(store.list_connections(&s).await.unwrap().len(), 1);
    assert_eq!(
        store
            .get_session(&s, at(59))
            .await
            .unwrap()
            .unwrap()
            .session_hash,
        s
    );
    assert_eq!(
        store.get_session(&s, at(60)).await.unwrap(),
        None,
        "grace over"
    );
    assert!(
        store
            .get_session(&session(2), at(60))
            .await
            .unwrap()
            .is_some()
    );
    // The same rotation again: its proof is no longer the current one.
    let again = Rotation {
        new_cookie: session(3),
        ..rotation.clone()
    };
    assert!(!store.rotate_session(&again, at(3)).await.unwrap());
    assert_eq!(store.get_session(&session(3), at(3)).await.unwrap(), None);

    // Purging removes ids whose grace ended, not the session.
    assert_eq!(store.delete_expired_sessions(at(61)).await.unwrap(), 0);
    assert_eq!(store.get_session(&s, at(30)).await.unwrap(), None, "purged");
    assert!(
        store
            .get_session(&session(2), at(62))
            .await
            .unwrap()
            .is_some()
    );
    // Ending the session ends every id it has.
    assert!(store.delete_session(&s).await.unwrap());
    assert_eq!(store.get_session(&session(2), at(62)).await.unwrap(), None);
}

async fn concurrent_rotations_have_one_winner(h: impl Harness) {
    const TASKS: u8 = 20;
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, Some(&proof(1)), at(0), at(1_000))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(usize::from(TASKS)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let rotation = Rotation {
                    session: s,
                    expected_proof: proof(1),
                    new_cookie: session(100 + n),
                    new_proof: proof(100 + n),
                    old_ids_until: at(60),
                };
                store.rotate_session(&rotation, at(1)).await.unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    for (n, task) in (0..TASKS).zip(tasks) {
        if task.await.unwrap() {
            won.push(n);
        }
    }
    assert_eq!(won.len(), 1, "exactly one rotation wins");
    let winner = won[0];
    for n in 0..TASKS {
        let found = store.get_session(&session(100 + n), at(2)).await.unwrap();
        assert_eq!(found.is_some(), n == winner, "only the winner's id exists");
    }
}

async fn session_life(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(100))
        .await
        .unwrap();
    let err = store
        .create_session(&s, None, at(0), at(100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists(crate::error::Record::Session)),
        "{err}"
    );
    let record = store.get_session(&s, at(50)).await.unwrap().unwrap();
    assert_eq!(
        record,
        SessionRecord {
            session_hash: s,
            proof_hash: None,
            created_at: at(0),
            last_seen_at: at(0),
            expires_at: at(100)
        }
    );
    assert_eq!(
        store.get_session(&s, at(100)).await.unwrap(),
        None,
        "expired"
    );
    assert!(store.touch_session(&s, at(90), at(200)).await.unwrap());
    let record = store.get_session(&s, at(150)).await.unwrap().unwrap();
    assert_eq!((record.last_seen_at, record.expires_at), (at(90), at(200)));
    assert!(
        !store
            .touch_session(&session(2), at(90), at(200))
            .await
            .unwrap()
    );
    assert_eq!(store.get_session(&session(2), at(0)).await.unwrap(), None);
    assert!(
        !store.touch_session(&s, at(200), at(300)).await.unwrap(),
        "an expired session is not revived"
    );
    assert_eq!(store.get_session(&s, at(250)).await.unwrap(), None);

    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    assert!(store.delete_session(&s).await.unwrap());
    assert!(!store.delete_session(&s).await.unwrap());
    assert_eq!(store.get_session(&s, at(150)).await.unwrap(), None);
    assert_eq!(store.list_connections(&s).await.unwrap(), []);
}

async fn connections_round_trip(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    let mut expected = connection(s, medicare());
    assert_eq!(store.upsert_connection(&expected).await.unwrap(), 1);
    expected.generation = 1;
    assert_eq!(
        store.get_connection(&s, &medicare()).await.unwrap(),
        Some(expected.clone())
    );

    // A second provider, with the optional fields empty.
    let mut bare = connection(s, epic());
    bare.patient = None;
    bare.grant_expires_at = None;
    bare.refresh_token_ct = None;
    bare.access_expires_at = None;
    bare.demographics_shared = false;
    bare.scopes = Scopes::new();
    store.upsert_connection(&bare).await.unwrap();
    bare.generation = 1;
    assert_eq!(
        store.list_connections(&s).await.unwrap(),
        [bare.clone(), expected.clone()],
        "ordered by provider id"
    );

    // Reconnecting replaces the connection and moves its generation on.
    let mut again = connection(s, medicare());
    again.access_token_ct = ct("access-2");
    assert_eq!(store.upsert_connection(&again).await.unwrap(), 2);
    let stored = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.generation, stored.access_token_ct),
        (2, ct("access-2"))
    );

    // Other sessions see nothing.
    assert_eq!(store.list_connections(&session(2)).await.unwrap(), []);
    assert_eq!(
        store
            .get_connection(&session(2), &medicare())
            .await
            .unwrap(),
        None
    );

    assert!(store.delete_connection(&s, &epic()).await.unwrap());
    assert!(!store.delete_connection(&s, &epic()).await.unwrap());
    assert_eq!(store.list_connections(&s).await.unwrap().len(), 1);
}

async fn session_and_connection_in_one_lookup(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, Some(&proof(1)), at(0), at(1_000))
        .await
        .unwrap();
    let mut stored = connection(s, medicare());
    stored.generation = store.upsert_connection(&stored).await.unwrap();
    // Reached by a rotated cookie id too: the connection is the session's, not the id's.
    let rotation = Rotation {
        session: s,
        expected_proof: proof(1),
        new_cookie: session(2),
        new_proof: proof(2),
        old_ids_until: at(60),
    };
    assert!(store.rotate_session(&rotation, at(1)).await.unwrap());
    for cookie in [s, session(2)] {
        let record = store.get_session(&cookie, at(30)).await.unwrap().unwrap();
        assert_eq!(
            store
                .get_session_connection(&cookie, &medicare(), at(30))
                .await
                .unwrap(),
            Some((record.clone(), Some(stored.clone())))
        );
        // A provider the session has no connection to: the session alone.
        assert_eq!(
            store
                .get_session_connection(&cookie, &epic(), at(30))
                .await
                .unwrap(),
            Some((record, None))
        );
    }
    // The old id after its grace, an unknown id, and an expired session reach nothing.
    for (cookie, now) in [(s, at(61)), (session(3), at(30)), (session(2), at(1_000))] {
        assert_eq!(
            store
                .get_session_connection(&cookie, &medicare(), now)
                .await
                .unwrap(),
            None
        );
    }
}

async fn connection_needs_a_session(h: impl Harness) {
    let store = h.store();
    let err = store
        .upsert_connection(&connection(session(1), medicare()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionNotFound), "{err}");
}

async fn token_updates_compare_and_set(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    let generation = store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();

    assert!(
        store
            .update_tokens(&s, &medicare(), generation, &update("2"), at(10))
            .await
            .unwrap()
    );
    let stored = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation, generation + 1);
    assert_eq!(stored.access_token_ct, ct("access-2"));
    assert_eq!(stored.refresh_token_ct, Some(ct("refresh-2")));
    assert_eq!(stored.access_expires_at, Some(at(7_200)));
    assert_eq!(stored.scopes, update("2").scopes);
    assert_eq!(stored.updated_at, at(10));
    assert_eq!(stored.patient, connection(s, medicare()).patient, "kept");

    // A second refresh that read the old generation loses, and changes nothing.
    assert!(
        !store
            .update_tokens(&s, &medicare(), generation, &update("3"), at(11))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_connection(&s, &medicare())
            .await
            .unwrap()
            .unwrap(),
        stored
    );

    // invalid_grant: reconnect required, also compare-and-set.
    assert!(
        !store
            .mark_reconnect_required(&s, &medicare(), generation, at(12))
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_reconnect_required(&s, &medicare(), generation + 1, at(12))
            .await
            .unwrap()
    );
    let stored = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ConnectionStatus::ReconnectRequired);
    assert_eq!(stored.generation, generation + 2);

    // After a disconnect, a late writer holding the current generation cannot resurrect it.
    store.delete_connection(&s, &medicare()).await.unwrap();
    assert!(
        !store
            .update_tokens(&s, &medicare(), generation + 2, &update("4"), at(13))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_reconnect_required(&s, &medicare(), generation + 2, at(13))
            .await
            .unwrap()
    );
    assert_eq!(store.get_connection(&s, &medicare()).await.unwrap(), None);
}

async fn concurrent_refreshes_have_one_winner(h: impl Harness) {
    const TASKS: usize = 50;
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    let generation = store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .update_tokens(&s, &medicare(), generation, &update(&i.to_string()), at(5))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
    let stored = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation, generation + 1);
}

async fn disconnect_queues_revocations_atomically(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    let mut no_refresh = connection(s, epic());
    no_refresh.refresh_token_ct = None;
    store.upsert_connection(&no_refresh).await.unwrap();

    // One provider: its connection goes, its latest refresh token is queued, due now.
    let generation = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap()
        .generation;
    store
        .update_tokens(&s, &medicare(), generation, &update("latest"), at(5))
        .await
        .unwrap();
    let removed = store
        .disconnect(&s, Some(&medicare()), &revoke_refresh, at(10))
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].connection.provider, medicare());
    let queued = removed[0].revocation.clone().unwrap();
    assert_eq!(queued.token_kind, TokenKind::RefreshToken);
    assert_eq!(queued.token_ct, ct("refresh-latest"));
    assert_eq!(queued.session_hash, s);
    assert_eq!((queued.attempts, queued.next_attempt_at), (0, at(10)));
    assert_eq!(store.due_revocations(at(10), 10).await.unwrap(), [queued]);
    assert!(
        store.get_session(&s, at(10)).await.unwrap().is_some(),
        "session kept"
    );
    assert_eq!(store.get_connection(&s, &medicare()).await.unwrap(), None);

    // Idempotent.
    let again = store
        .disconnect(&s, Some(&medicare()), &revoke_refresh, at(11))
        .await
        .unwrap();
    assert_eq!(again, []);

    // Everything: the session goes too; without a refresh token the access token is queued.
    let removed = store
        .disconnect(&s, None, &revoke_refresh, at(12))
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    let queued_epic = removed[0].revocation.clone().unwrap();
    assert_eq!(
        (queued_epic.provider.clone(), queued_epic.token_kind),
        (epic(), TokenKind::AccessToken)
    );
    assert_eq!(store.get_session(&s, at(12)).await.unwrap(), None);
    assert_eq!(store.list_connections(&s).await.unwrap(), []);
    assert_eq!(
        store
            .disconnect(&s, None, &revoke_refresh, at(13))
            .await
            .unwrap(),
        []
    );

    // A provider without revocation: nothing queued.
    let s2 = session(2);
    store
        .create_session(&s2, None, at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s2, medicare()))
        .await
        .unwrap();
    let removed = store
        .disconnect(&s2, None, &revoke_nothing, at(14))
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].revocation, None);
    assert_eq!(store.due_revocations(at(100), 10).await.unwrap().len(), 2);
}

async fn concurrent_revocation_claims_have_one_winner(h: impl Harness) {
    const TASKS: usize = 20;
    let store = h.store();
    let revocation = NewRevocation {
        session_hash: session(1),
        provider: medicare(),
        token_kind: TokenKind::AccessToken,
        token_ct: ct("access"),
    };
    let id = store.enqueue_revocation(&revocation, at(0)).await.unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim_revocation(id, at(1), at(121)).await.unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one sender");
    // Claimed: not due for anyone until the claim runs out, then claimable again.
    assert!(store.due_revocations(at(120), 10).await.unwrap().is_empty());
    assert!(!store.claim_revocation(id, at(120), at(240)).await.unwrap());
    assert!(store.claim_revocation(id, at(121), at(241)).await.unwrap());
    // An unknown revocation cannot be claimed.
    assert!(
        !store
            .claim_revocation(id + 1, at(500), at(600))
            .await
            .unwrap()
    );
}

async fn revocation_queue(h: impl Harness) {
    let store = h.store();
    let new = |n: u8| NewRevocation {
        session_hash: session(n),
        provider: medicare(),
        token_kind: TokenKind::RefreshToken,
        token_ct: ct(&format!("refresh-{n}")),
    };
    let first = store.enqueue_revocation(&new(1), at(0)).await.unwrap();
    let second = store.enqueue_revocation(&new(2), at(5)).await.unwrap();
    let third = store.enqueue_revocation(&new(3), at(5)).await.unwrap();
    assert!(first < second && second < third);

    let ids = |list: Vec<PendingRevocation>| list.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.due_revocations(at(0), 10).await.unwrap()),
        [first]
    );
    assert_eq!(
        ids(store.due_revocations(at(5), 10).await.unwrap()),
        [first, second, third]
    );
    assert_eq!(
        ids(store.due_revocations(at(5), 2).await.unwrap()),
        [first, second]
    );

    // A failed attempt: due again later, attempts counted.
    assert!(store.reschedule_revocation(first, at(60), 1).await.unwrap());
    assert_eq!(
        ids(store.due_revocations(at(59), 10).await.unwrap()),
        [second, third]
    );
    let due = store.due_revocations(at(60), 10).await.unwrap();
    assert_eq!(ids(due.clone()), [second, third, first]);
    let rescheduled = due.into_iter().find(|r| r.id == first).unwrap();
    assert_eq!(rescheduled.attempts, 1);
    assert_eq!(rescheduled.created_at, at(0));
    assert_eq!(rescheduled.token_ct, ct("refresh-1"));
    assert_eq!(rescheduled.session_hash, session(1));

    assert!(store.finish_revocation(second).await.unwrap());
    assert!(!store.finish_revocation(second).await.unwrap());
    assert!(!store.reschedule_revocation(second, at(1), 1).await.unwrap());
    assert_eq!(
        ids(store.due_revocations(at(100), 10).await.unwrap()),
        [third, first]
    );
}

async fn expired_sessions_are_purged(h: impl Harness) {
    let store = h.store();
    store
        .create_session(&session(1), None, at(0), at(100))
        .await
        .unwrap();
    store
        .create_session(&session(2), None, at(0), at(200))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(session(1), medicare()))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(session(2), medicare()))
        .await
        .unwrap();
    store
        .enqueue_revocation(
            &NewRevocation {
                session_hash: session(1),
                provider: medicare(),
                token_kind: TokenKind::RefreshToken,
                token_ct: ct("r"),
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(store.delete_expired_sessions(at(99)).await.unwrap(), 0);
    assert_eq!(store.delete_expired_sessions(at(100)).await.unwrap(), 1);
    assert_eq!(store.list_connections(&session(1)).await.unwrap(), []);
    assert_eq!(store.list_connections(&session(2)).await.unwrap().len(), 1);
    assert!(
        store
            .get_session(&session(2), at(100))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.due_revocations(at(100), 10).await.unwrap().len(),
        1,
        "queued revocations outlive their session"
    );
    // A connection cannot be written into a purged session.
    let err = store
        .upsert_connection(&connection(session(1), medicare()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionNotFound), "{err}");
}

// ---- refresh leases ----

fn holder(n: u8) -> LeaseHolder {
    LeaseHolder::from_bytes([n; 16])
}

async fn refresh_lease_excludes_others_until_released_or_expired(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    let (a, b) = (holder(1), holder(2));
    assert!(
        !store
            .try_acquire_refresh_lease(&s, &medicare(), &a, at(0), at(30))
            .await
            .unwrap(),
        "no connection, no lease"
    );
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, epic()))
        .await
        .unwrap();

    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &a, at(0), at(30))
            .await
            .unwrap()
    );
    for (who, when) in [(&b, 1), (&b, 29), (&a, 29)] {
        assert!(
            !store
                .try_acquire_refresh_lease(&s, &medicare(), who, at(when), at(when + 30))
                .await
                .unwrap(),
            "held until it expires, even against its own holder"
        );
    }
    // Leases are per connection.
    assert!(
        store
            .try_acquire_refresh_lease(&s, &epic(), &b, at(1), at(31))
            .await
            .unwrap()
    );
    // Only the holder releases it; then anyone may take it.
    assert!(
        !store
            .release_refresh_lease(&s, &medicare(), &b)
            .await
            .unwrap()
    );
    assert!(
        store
            .release_refresh_lease(&s, &medicare(), &a)
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_refresh_lease(&s, &medicare(), &a)
            .await
            .unwrap(),
        "released once"
    );
    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &b, at(2), at(32))
            .await
            .unwrap()
    );
    // A holder that died: its lease expires and another takes over; the late holder can no
    // longer release the new one.
    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &a, at(32), at(62))
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_refresh_lease(&s, &medicare(), &b)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_refresh_lease(&s, &medicare(), &b, at(40), at(70))
            .await
            .unwrap()
    );

    // A lease never blocks token writes: compare-and-set still decides.
    let generation = store
        .get_connection(&s, &medicare())
        .await
        .unwrap()
        .unwrap()
        .generation;
    assert!(
        store
            .update_tokens(&s, &medicare(), generation, &update("2"), at(41))
            .await
            .unwrap()
    );
}

async fn refresh_lease_goes_with_its_connection(h: impl Harness) {
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &holder(1), at(0), at(30))
            .await
            .unwrap()
    );
    // Disconnected mid-refresh, then connected again: the new connection is free at once,
    // and the old holder releases nothing.
    store
        .disconnect(&s, Some(&medicare()), &revoke_nothing, at(1))
        .await
        .unwrap();
    assert!(
        !store
            .try_acquire_refresh_lease(&s, &medicare(), &holder(2), at(1), at(31))
            .await
            .unwrap()
    );
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    assert!(
        !store
            .release_refresh_lease(&s, &medicare(), &holder(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &holder(2), at(2), at(32))
            .await
            .unwrap()
    );
    // Gone with its session too.
    store.delete_session(&s).await.unwrap();
    assert!(
        !store
            .release_refresh_lease(&s, &medicare(), &holder(2))
            .await
            .unwrap()
    );
}

async fn concurrent_lease_requests_have_one_winner(h: impl Harness) {
    const TASKS: u8 = 50;
    let store = h.store();
    let s = session(1);
    store
        .create_session(&s, None, at(0), at(1_000))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(usize::from(TASKS)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .try_acquire_refresh_lease(&s, &medicare(), &holder(i), at(5), at(35))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// A row that no longer parses (a code challenge that is not one) is reported as corrupt, never
/// trusted. For the SQL stores only: the memory store cannot hold such a row.
async fn corrupt_rows_are_reported_not_trusted(h: impl Harness) {
    h.execute_raw(
        "INSERT INTO flows (key, provider, code_challenge, redirect_uri, cookie_hash, \
         created_at, expires_at, status) VALUES ($1, 'medicare', 'not-a-challenge', \
         'http://localhost/cb', $1, 0, 10, 'pending')",
        &"a".repeat(64),
    )
    .await;
    let key = FlowKey::from_hex(&"a".repeat(64)).unwrap();
    let err = h.store().get_flow(&key).await.unwrap_err();
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

// ---- migrations (from the previous schema version) ----

/// A migrator holding only the migrations of `dir` up to `version`, as an older broker
/// shipped them (the temporary directory must outlive it).
pub(super) async fn migrator_up_to(
    dir: &str,
    version: i64,
) -> (tempfile::TempDir, sqlx::migrate::Migrator) {
    let old = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number <= version {
            std::fs::copy(entry.path(), old.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path().to_owned())
        .await
        .unwrap();
    assert_eq!(
        migrator.iter().map(|m| m.version).max(),
        Some(version),
        "the old migrations"
    );
    (old, migrator)
}

/// Writes one of each record a broker keeps (all of them a version-1 broker already kept):
/// what must read back after a restart or a schema upgrade ([`read_sample`]).
pub(super) async fn write_sample(store: &dyn Store) {
    store
        .create_session(&session(1), None, at(0), at(1_000))
        .await
        .unwrap();
    write_sample_after_session(store).await;
}

/// The session of the sample as a version-1 broker wrote it, for the upgrade tests (the
/// session ids' table and the proof came with version 3): the statement, the session's hash,
/// its creation and its expiry.
pub(super) fn v1_session() -> (&'static str, String, i64, i64) {
    (
        "INSERT INTO sessions (hash, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $2, $3)",
        session(1).to_hex(),
        at(0).unix_seconds(),
        at(1_000).unix_seconds(),
    )
}

/// The rest of the sample, once its session exists.
pub(super) async fn write_sample_after_session(store: &dyn Store) {
    let s = session(1);
    store
        .insert_flow(&flow(1, 1, 600), 10, at(0))
        .await
        .unwrap();
    store
        .upsert_connection(&connection(s, medicare()))
        .await
        .unwrap();
    store
        .enqueue_revocation(
            &NewRevocation {
                session_hash: session(2),
                provider: epic(),
                token_kind: TokenKind::AccessToken,
                token_ct: ct("pending"),
            },
            at(0),
        )
        .await
        .unwrap();
}

/// Reads back what [`write_sample`] wrote.
async fn read_sample(store: &dyn Store) {
    let s = session(1);
    assert_eq!(
        store.get_flow(&flow_key(1)).await.unwrap(),
        Some(flow(1, 1, 600))
    );
    assert!(store.get_session(&s, at(10)).await.unwrap().is_some());
    let mut expected = connection(s, medicare());
    expected.generation = 1;
    assert_eq!(
        store.get_connection(&s, &medicare()).await.unwrap(),
        Some(expected)
    );
    let due = store.due_revocations(at(10), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].token_ct, ct("pending"));
    assert_eq!(due[0].provider, epic());
}

/// After upgrading to the current schema: everything written under version 1 reads back,
/// and the connection gets a refresh lease and new tokens as a new one would.
pub(super) async fn read_after_upgrade(store: &dyn Store) {
    read_sample(store).await;
    let s = session(1);
    assert!(
        store
            .try_acquire_refresh_lease(&s, &medicare(), &holder(1), at(10), at(40))
            .await
            .unwrap(),
        "a migrated connection starts without a lease"
    );
    assert!(
        !store
            .try_acquire_refresh_lease(&s, &medicare(), &holder(2), at(11), at(41))
            .await
            .unwrap()
    );
    assert!(
        store
            .update_tokens(&s, &medicare(), 1, &update("2"), at(12))
            .await
            .unwrap()
    );
    assert!(
        store
            .release_refresh_lease(&s, &medicare(), &holder(1))
            .await
            .unwrap()
    );
}

// ---- persistence (stores that keep data across restarts) ----

async fn everything_survives_reopening(mut h: impl Harness) {
    write_sample(h.store().as_ref()).await;
    h.reopen().await;
    read_sample(h.store().as_ref()).await;
}

async fn revocations_queued_by_disconnect_survive_reopening(mut h: impl Harness) {
    let s = session(1);
    {
        let store = h.store();
        store
            .create_session(&s, None, at(0), at(1_000))
            .await
            .unwrap();
        store
            .upsert_connection(&connection(s, medicare()))
            .await
            .unwrap();
        let removed = store
            .disconnect(&s, None, &revoke_refresh, at(5))
            .await
            .unwrap();
        let id = removed[0].revocation.as_ref().unwrap().id;
        // The upstream call failed: try again in a minute.
        assert!(store.reschedule_revocation(id, at(65), 1).await.unwrap());
    }
    h.reopen().await;
    let store = h.store();
    assert_eq!(store.get_session(&s, at(10)).await.unwrap(), None);
    assert_eq!(store.due_revocations(at(64), 10).await.unwrap(), []);
    let due = store.due_revocations(at(65), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].token_kind, due[0].attempts, &due[0].token_ct),
        (TokenKind::RefreshToken, 1, &ct("refresh-1"))
    );
}

/// Runs the behavioural suite against one store (`$open` names an `async fn` giving its
/// [`Harness`]); `persistent` adds the reopen tests, `sql` those that write rows in SQL.
macro_rules! store_suite {
    ($name:ident, $open:ident $(, $more:ident)*) => {
        mod $name {
            store_suite!(@tests $open, [
                flow_round_trip,
                duplicate_flow_is_refused,
                flow_cap_counts_only_unexpired,
                begin_completion_has_one_winner,
                completion_outcomes,
                expired_flows_are_purged,
                session_life,
                session_ids_rotate,
                concurrent_rotations_have_one_winner,
                connections_round_trip,
                session_and_connection_in_one_lookup,
                connection_needs_a_session,
                token_updates_compare_and_set,
                concurrent_refreshes_have_one_winner,
                disconnect_queues_revocations_atomically,
                revocation_queue,
                concurrent_revocation_claims_have_one_winner,
                expired_sessions_are_purged,
                refresh_lease_excludes_others_until_released_or_expired,
                refresh_lease_goes_with_its_connection,
                concurrent_lease_requests_have_one_winner,
            ]);
            $( store_suite!(@$more $open); )*
        }
    };
    (@persistent $open:ident) => {
        store_suite!(@tests $open, [
            everything_survives_reopening,
            revocations_queued_by_disconnect_survive_reopening,
        ]);
    };
    (@sql $open:ident) => {
        store_suite!(@tests $open, [corrupt_rows_are_reported_not_trusted]);
    };
    (@tests $open:ident, [$($test:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::$test(super::$open().await).await;
            }
        )*
    };
}

store_suite!(memory_store, memory);
store_suite!(cached_memory_store, cached);
store_suite!(sqlite_memory_store, sqlite_memory, sql);
store_suite!(sqlite_file_store, sqlite_file, persistent, sql);
store_suite!(postgres_store, postgres, persistent, sql);
