//! Where the broker keeps its state: pending flows, sessions, each session's connections
//! (with their tokens, encrypted) and the queue of pending revocations.
//!
//! [`Store`] is the one seam; [`SqliteStore`] is the embedded default, [`PgStore`] the store
//! for several replicas, and [`MemoryStore`] serves unit tests. All three pass the same
//! behavioural suite. Rules every implementation keeps:
//!
//! - Keys are hashes: a flow is found by [`FlowKey`] (SHA-256 of its `state`), a session by
//!   [`SessionHash`] (SHA-256 of its cookie). The store never sees a raw state, cookie or
//!   plaintext token — tokens arrive as [`Ciphertext`].
//! - Time is passed in by the caller (from its [`Clock`](crate::Clock)); the store never
//!   reads a clock.
//! - Every check-then-write is atomic: two concurrent completions of one flow cannot both
//!   redeem its code, and a token update carries the generation it read
//!   ([`ConnectionStore::update_tokens`]), so a late writer after a disconnect or a competing
//!   refresh changes nothing.
//! - At most one refresh per connection runs across every process sharing the store: a
//!   refresh first takes the connection's **refresh lease**
//!   ([`ConnectionStore::try_acquire_refresh_lease`]), which expires by itself if its holder
//!   dies.
//!
//! The SQL stores apply their versioned migrations (`broker/migrations/{sqlite,postgres}/`,
//! embedded at compile time) when they open; both are tested from an empty database and from
//! the previous schema version.

mod cached;
mod memory;
mod postgres;
mod rows;
mod sql;
mod sqlite;
#[cfg(test)]
mod suite;
#[cfg(test)]
pub(crate) mod test_postgres;

use std::{fmt, sync::Arc};

use async_trait::async_trait;
pub(crate) use cached::{CachedStore, DEFAULT_WINDOW as DEFAULT_CONNECTION_CACHE};
use connect_medicare_protocol::{
    PatientId, PkceChallenge, RedirectUri, Scopes, Timestamp,
    contract::{ConnectionStatus, ProviderId},
};
pub use memory::MemoryStore;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::{
    config::DatabaseConfig,
    crypto::{Ciphertext, TokenKind},
    error::Result,
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash, random_bytes},
};

/// Who holds a connection's refresh lease ([`ConnectionStore::try_acquire_refresh_lease`]):
/// 128 random bits per refresh attempt, so a holder can only ever release its own lease.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseHolder([u8; 16]);

impl LeaseHolder {
    /// A fresh holder id from the operating system's random number generator.
    ///
    /// # Errors
    ///
    /// [`Error::Random`](crate::Error::Random) when the generator fails.
    pub fn random() -> Result<Self> {
        Ok(Self(random_bytes()?))
    }

    /// A holder id from given bytes (tests).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// 32 lowercase hex digits, as stored.
    pub fn to_hex(&self) -> String {
        crate::ids::to_hex(&self.0)
    }
}

impl fmt::Debug for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not a secret: it only names a refresh attempt.
        write!(f, "LeaseHolder({})", self.to_hex())
    }
}

/// Where a flow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStatus {
    /// Registered; waiting for the callback.
    Pending,
    /// One completion has begun redeeming the code.
    InProgress,
    /// Completed: it produced [`FlowRecord::session_hash`].
    Completed,
    /// The redemption failed; the flow cannot be used again.
    Failed,
}

impl FlowStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "in_progress" => Some(Self::InProgress),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A registered flow (`POST /v1/flows`), keyed by the hash of its `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// SHA-256 of the flow's `state`.
    pub key: FlowKey,
    /// The provider being connected.
    pub provider: ProviderId,
    /// The S256 challenge registered by the browser.
    pub code_challenge: PkceChallenge,
    /// The redirect URI the authorize request used (sent again when redeeming the code).
    pub redirect_uri: RedirectUri,
    /// SHA-256 of the flow cookie's value: only that browser may complete the flow.
    pub cookie_hash: FlowCookieHash,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it stops being usable (and may be purged).
    pub expires_at: Timestamp,
    /// Where it is in its life.
    pub status: FlowStatus,
    /// The session it produced, once [`FlowStatus::Completed`].
    pub session_hash: Option<SessionHash>,
}

impl FlowRecord {
    /// Whether the flow has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// What [`FlowStore::begin_completion`] found, decided atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginOutcome {
    /// This caller won: the flow was pending and is now [`FlowStatus::InProgress`]. Redeem the
    /// code, then [`FlowStore::complete_flow`] (or [`FlowStore::fail_flow`]).
    Started(FlowRecord),
    /// The same browser completed this flow already: answer with that session, without
    /// redeeming anything (React StrictMode, a double click).
    AlreadyCompleted {
        /// The session the first completion produced.
        session_hash: SessionHash,
    },
    /// The same browser's other completion is redeeming the code right now.
    InProgress,
    /// The flow was used: it failed, or another browser (without this flow cookie) tries to
    /// reuse a state that is completed or in progress. Answer `state_used`.
    Used,
    /// No flow has this state, or it is pending but bound to another browser's flow cookie.
    /// Answer `flow_not_found`.
    NotFound,
    /// The flow exists for this browser but its TTL has passed. Answer `flow_not_found`.
    Expired,
}

/// A browser session. Its key is the hash of the first id it was given; the ids that reach it
/// ([`SessionStore::get_session`]) change at every sign-in ([`SessionStore::rotate_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's key: SHA-256 of its first cookie value. Tokens' associated data names it.
    pub session_hash: SessionHash,
    /// SHA-256 of the proof the browser must show to carry this session into a sign-in.
    pub proof_hash: Option<ProofHash>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last used ([`SessionStore::touch_session`]).
    pub last_seen_at: Timestamp,
    /// When it ends unless touched again.
    pub expires_at: Timestamp,
}

/// What [`SessionStore::rotate_session`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The session's key.
    pub session: SessionHash,
    /// The proof hash the caller checked; the rotation happens only if it is still current.
    pub expected_proof: ProofHash,
    /// The hash of the new id.
    pub new_cookie: SessionHash,
    /// The hash of the new proof.
    pub new_proof: ProofHash,
    /// Until when the ids the session had before keep working (a grace for requests already
    /// in flight from the browser's other tabs).
    pub old_ids_until: Timestamp,
}

/// One provider's connection within a session. Tokens are ciphertexts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The session it belongs to.
    pub session_hash: SessionHash,
    /// The provider.
    pub provider: ProviderId,
    /// The beneficiary's FHIR patient id, when the token response named one.
    pub patient: Option<PatientId>,
    /// The scopes granted.
    pub scopes: Scopes,
    /// Whether the user shared demographics.
    pub demographics_shared: bool,
    /// When the data-access grant ends (`None`: never, or not said).
    pub grant_expires_at: Option<Timestamp>,
    /// The sealed access token.
    pub access_token_ct: Ciphertext,
    /// The sealed refresh token, if the provider issued one.
    pub refresh_token_ct: Option<Ciphertext>,
    /// When the access token expires, if the provider said.
    pub access_expires_at: Option<Timestamp>,
    /// Bumped by every write; [`ConnectionStore::update_tokens`] compares it.
    pub generation: i64,
    /// Connected, or the user must connect again.
    pub status: ConnectionStatus,
    /// When it was last written.
    pub updated_at: Timestamp,
}

/// New tokens after a refresh, for [`ConnectionStore::update_tokens`]. Every field replaces the
/// stored one (pass the current refresh token again when the provider did not rotate it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    /// The new sealed access token.
    pub access_token_ct: Ciphertext,
    /// The sealed refresh token to keep.
    pub refresh_token_ct: Option<Ciphertext>,
    /// When the new access token expires.
    pub access_expires_at: Option<Timestamp>,
    /// The scopes now granted.
    pub scopes: Scopes,
}

/// A token to revoke upstream, for [`RevocationStore::enqueue_revocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    /// The session the token was sealed for (part of its associated data).
    pub session_hash: SessionHash,
    /// The provider to revoke it at.
    pub provider: ProviderId,
    /// Which token it is (also the associated data's field).
    pub token_kind: TokenKind,
    /// The sealed token.
    pub token_ct: Ciphertext,
}

/// A queued revocation: it survives restarts until [`RevocationStore::finish_revocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRevocation {
    /// Its id in the queue.
    pub id: i64,
    /// The session the token was sealed for (part of its associated data).
    pub session_hash: SessionHash,
    /// The provider to revoke it at.
    pub provider: ProviderId,
    /// Which token it is.
    pub token_kind: TokenKind,
    /// The sealed token.
    pub token_ct: Ciphertext,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is next due.
    pub next_attempt_at: Timestamp,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// A connection removed by [`ConnectionStore::disconnect`], and the revocation queued for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// The connection as it was when deleted (its latest tokens).
    pub connection: ConnectionRecord,
    /// The revocation queued in the same transaction, when one was asked for.
    pub revocation: Option<PendingRevocation>,
}

/// Decides, for each connection [`ConnectionStore::disconnect`] removes, which token to revoke
/// upstream (`None`: the provider offers no revocation). When it answers
/// [`TokenKind::RefreshToken`] and the connection has none, the access token is queued.
pub type RevokePolicy<'a> = &'a (dyn Fn(&ConnectionRecord) -> Option<TokenKind> + Sync);

/// The broker's storage, by role: [`FlowStore`], [`SessionStore`], [`ConnectionStore`] (the
/// tokens and their refresh leases) and [`RevocationStore`]. Every store implements all four,
/// and one suite (`suite.rs`) runs over every store. Object safe: the broker holds an
/// `Arc<dyn Store>`; a caller imports the roles it uses.
pub trait Store: FlowStore + SessionStore + ConnectionStore + RevocationStore + 'static {}

impl<T: FlowStore + SessionStore + ConnectionStore + RevocationStore + 'static> Store for T {}

/// Authorization flows: registered by `POST /v1/flows`, completed once.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Registers a flow, unless `max_pending` flows that have not expired at `now` (whatever
    /// their status) already exist. Count and insert are one atomic step.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyFlows`](crate::Error::TooManyFlows) at the cap;
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when a flow with this key exists.
    async fn insert_flow(
        &self,
        flow: &FlowRecord,
        max_pending: usize,
        now: Timestamp,
    ) -> Result<()>;

    /// The flow with this key, whatever its status or expiry.
    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>>;

    /// Atomically decides what a completion request for this flow, carrying this flow cookie,
    /// may do (see [`BeginOutcome`]); when it may redeem the code, marks the flow
    /// [`FlowStatus::InProgress`] so no concurrent request can.
    ///
    /// Checked in order: no flow → `NotFound`; another cookie → `NotFound` while pending,
    /// else `Used`; expired → `Expired`; then by status: pending → `Started`, in progress →
    /// `InProgress`, completed → `AlreadyCompleted`, failed → `Used`.
    async fn begin_completion(
        &self,
        key: &FlowKey,
        cookie: &FlowCookieHash,
        now: Timestamp,
    ) -> Result<BeginOutcome>;

    /// Marks an in-progress flow completed with the session it produced. `false` when the
    /// flow is gone or was not in progress.
    async fn complete_flow(&self, key: &FlowKey, session: &SessionHash) -> Result<bool>;

    /// Marks an in-progress flow failed: it can never be completed. `false` when the flow is
    /// gone or was not in progress.
    async fn fail_flow(&self, key: &FlowKey) -> Result<bool>;

    /// Deletes flows expired at `now`; returns how many.
    async fn delete_expired_flows(&self, now: Timestamp) -> Result<u64>;
}

/// Sessions, and the ids (cookies) that reach them.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session keyed by `session` (the hash of its first id), reached by that id.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when one has this hash.
    async fn create_session(
        &self,
        session: &SessionHash,
        proof: Option<&ProofHash>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;

    /// The session the cookie id with this hash reaches, if that id is still valid and the
    /// session has not expired at `now`.
    async fn get_session(
        &self,
        cookie: &SessionHash,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>>;

    /// The session the cookie id with this hash reaches (as [`SessionStore::get_session`])
    /// with its connection to `provider`, if it has one: what every proxied read needs, in one
    /// lookup (one statement in the SQL stores).
    async fn get_session_connection(
        &self,
        cookie: &SessionHash,
        provider: &ProviderId,
        now: Timestamp,
    ) -> Result<Option<(SessionRecord, Option<ConnectionRecord>)>>;

    /// Gives a session a new id, in one transaction, if its proof is still `expected_proof`
    /// (so of two concurrent rotations one wins): the new id is added, the proof replaced, and
    /// every id it had before stays valid until `old_ids_until` at most. `false` when the
    /// session is gone, expired, or was rotated meanwhile.
    async fn rotate_session(&self, rotation: &Rotation, now: Timestamp) -> Result<bool>;

    /// Records a use: `last_seen_at = now`, `expires_at` as given. `false` when the session
    /// does not exist or has expired at `now` (an expired session is never revived).
    async fn touch_session(
        &self,
        session: &SessionHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool>;

    /// Deletes the session and its connections (no revocation is queued: see
    /// [`ConnectionStore::disconnect`]). `false` when there was none.
    async fn delete_session(&self, session: &SessionHash) -> Result<bool>;

    /// Deletes sessions expired at `now`, with their connections and ids, and ids whose
    /// grace ended; returns how many sessions. Queued revocations are kept.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}

/// A session's connections to providers: their encrypted tokens, written by compare-and-set on
/// a generation; the refresh lease that keeps one refresh in flight per connection across
/// replicas; and disconnect, which queues the revocations.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Writes a connection, replacing the session's connection to the same provider. The
    /// record's `generation` is ignored: the stored one becomes the previous one plus 1 (1
    /// for a new connection), so an in-flight refresh of the replaced tokens fails its
    /// compare-and-set. Returns the new generation.
    ///
    /// # Errors
    ///
    /// [`Error::SessionNotFound`](crate::Error::SessionNotFound) when the session does not
    /// exist (for example, it was just disconnected).
    async fn upsert_connection(&self, connection: &ConnectionRecord) -> Result<i64>;

    /// The session's connection to `provider`.
    async fn get_connection(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
    ) -> Result<Option<ConnectionRecord>>;

    /// The session's connections, ordered by provider id.
    async fn list_connections(&self, session: &SessionHash) -> Result<Vec<ConnectionRecord>>;

    /// Deletes the session's connection to `provider` without queueing a revocation. `false`
    /// when there was none.
    async fn delete_connection(&self, session: &SessionHash, provider: &ProviderId)
    -> Result<bool>;

    /// Compare-and-set: stores `update` and bumps the generation to
    /// `expected_generation + 1` only when the connection exists and its generation is still
    /// `expected_generation`. `false` otherwise (another refresh won, the connection was
    /// replaced, or it was deleted — a late writer never resurrects it).
    async fn update_tokens(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        update: &TokenUpdate,
        now: Timestamp,
    ) -> Result<bool>;

    /// Compare-and-set like [`ConnectionStore::update_tokens`]: marks the connection
    /// [`ConnectionStatus::ReconnectRequired`] (after `invalid_grant`) and bumps the
    /// generation.
    async fn mark_reconnect_required(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        expected_generation: i64,
        now: Timestamp,
    ) -> Result<bool>;

    /// Disconnect, in one transaction: deletes the session's connection to `provider` (or
    /// every connection, and the session itself, when `provider` is `None`) and queues, for
    /// each removed connection, the revocation `revoke` asks for, due at `now`. Returns what
    /// was removed (nothing when there was nothing: disconnect is idempotent).
    async fn disconnect(
        &self,
        session: &SessionHash,
        provider: Option<&ProviderId>,
        revoke: RevokePolicy<'_>,
        now: Timestamp,
    ) -> Result<Vec<Disconnected>>;

    /// Takes the refresh lease of the session's connection to `provider` for `holder` until
    /// `until`, unless another holder's lease is still live at `now` (a lease whose `until`
    /// is at or before `now` has expired: its holder died or overran). One atomic step:
    /// among concurrent callers — tasks or processes sharing the store — at most one wins.
    /// `false` when another holder has it, or there is no such connection.
    ///
    /// The lease lives with the connection: deleting or disconnecting the connection drops
    /// it. It never blocks writes: [`ConnectionStore::update_tokens`]'s compare-and-set still
    /// decides who writes, and a disconnect during a refresh still wins.
    async fn try_acquire_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;

    /// Gives the lease back, if `holder` still holds it (whether or not it has expired).
    /// `false` when it did not (never acquired, taken over after expiry, or the connection is
    /// gone).
    async fn release_refresh_lease(
        &self,
        session: &SessionHash,
        provider: &ProviderId,
        holder: &LeaseHolder,
    ) -> Result<bool>;
}

/// The queue of upstream revocations a disconnect leaves, retried until the provider answers.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Queues a revocation, due at `now`. Returns its id.
    async fn enqueue_revocation(&self, revocation: &NewRevocation, now: Timestamp) -> Result<i64>;

    /// Up to `limit` revocations due at `now`, oldest due first.
    async fn due_revocations(&self, now: Timestamp, limit: usize)
    -> Result<Vec<PendingRevocation>>;

    /// Claims a due revocation before sending it: if it is due at `now`, it is not due again
    /// until `until`, so no other request, task or replica sends it meanwhile (a claim left by
    /// a process that died runs out by itself). `true` for the one caller that got it.
    async fn claim_revocation(&self, id: i64, now: Timestamp, until: Timestamp) -> Result<bool>;

    /// Removes a revocation from the queue (done, or given up). `false` when it was not there.
    async fn finish_revocation(&self, id: i64) -> Result<bool>;

    /// Sets when a revocation is next due and how many attempts failed. `false` when it was
    /// not there.
    async fn reschedule_revocation(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<bool>;
}

impl fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Store")
    }
}

/// Opens the store `config` names, applying migrations.
pub async fn open_store(config: &DatabaseConfig) -> Result<Arc<dyn Store>> {
    Ok(match config {
        DatabaseConfig::SqliteFile(path) => Arc::new(SqliteStore::open(path).await?),
        DatabaseConfig::SqliteMemory => Arc::new(SqliteStore::open_in_memory().await?),
        DatabaseConfig::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// The first steps of [`FlowStore::begin_completion`], shared by the implementations: what a
/// completion may do with `flow`. `Started` here means "may start"; the caller flips the status.
fn classify(flow: &FlowRecord, cookie: &FlowCookieHash, now: Timestamp) -> Result<BeginOutcome> {
    if &flow.cookie_hash != cookie {
        return Ok(match flow.status {
            FlowStatus::Pending => BeginOutcome::NotFound,
            _ => BeginOutcome::Used,
        });
    }
    if flow.is_expired(now) {
        return Ok(BeginOutcome::Expired);
    }
    Ok(match flow.status {
        FlowStatus::Pending => BeginOutcome::Started(flow.clone()),
        FlowStatus::InProgress => BeginOutcome::InProgress,
        FlowStatus::Completed => match flow.session_hash {
            Some(session_hash) => BeginOutcome::AlreadyCompleted { session_hash },
            None => {
                return Err(crate::Error::Corrupt {
                    what: "flows.session_hash",
                });
            }
        },
        FlowStatus::Failed => BeginOutcome::Used,
    })
}

/// The token [`ConnectionStore::disconnect`] queues for `connection` when `revoke` asks for `kind`.
fn token_to_revoke(connection: &ConnectionRecord, kind: TokenKind) -> (TokenKind, &Ciphertext) {
    match (kind, &connection.refresh_token_ct) {
        (TokenKind::RefreshToken, Some(refresh)) => (TokenKind::RefreshToken, refresh),
        _ => (TokenKind::AccessToken, &connection.access_token_ct),
    }
}
