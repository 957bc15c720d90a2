//! The browser's session: `GET /v1/session`, `POST /v1/session/disconnect`, the
//! [`CurrentSession`] extractor and the one-lookup session-and-connection read the FHIR proxy
//! uses; the revocations a disconnect leaves behind are `revoke.rs`'s.

mod revoke;

use axum::{
    Router,
    extract::{FromRequestParts, State},
    http::{header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use connect_medicare_protocol::{
    DisconnectKind, Timestamp,
    contract::{
        Connection, ConnectionStatus, DisconnectRequest, DisconnectResponse, ErrorCode, ProviderId,
        ProviderRevocation, RevocationStatus, SessionResponse, routes,
    },
};

pub use self::revoke::drain_revocations;
use crate::{
    cookies::{self, SessionCookie},
    crypto::TokenKind,
    error::{ApiError, ApiJson, Result},
    http::under_v1,
    ids::SessionHash,
    refresh::not_connected,
    state::AppState,
    store::{ConnectionRecord, SessionRecord},
};

/// The session routes, under `/v1`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(under_v1(routes::SESSION), get(get_session))
        .route(under_v1(routes::DISCONNECT), post(disconnect))
}

/// The browser's session, as its session cookie presents it: looked up in the store before
/// the handler runs (and touched: its idle timeout starts again). A store that fails rejects
/// the request; it never makes a cookie `Invalid` — a cookie is only cleared when the store
/// said it does not know it.
pub(crate) enum CurrentSession {
    /// No session cookie.
    Absent,
    /// A cookie known to be invalid: malformed, or unknown (or expired) to a store that
    /// answered. Its answer expires it.
    Invalid,
    /// A live session.
    Valid(SessionRecord),
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = match SessionCookie::read(&parts.headers) {
            SessionCookie::Absent => return Ok(Self::Absent),
            SessionCookie::Malformed => return Ok(Self::Invalid),
            SessionCookie::Id(id) => id,
        };
        let now = state.now();
        let Some(record) = timed(state, state.store().get_session(&id.hash(), now)).await? else {
            return Ok(Self::Invalid);
        };
        slide(state, &record, now).await?;
        Ok(Self::Valid(record))
    }
}

/// The session a proxied read needs and its connection to `provider` if it has one, in one
/// store lookup: `not_connected` without a session (and, for a cookie known to be invalid, a
/// `Set-Cookie` that expires it).
pub(crate) async fn connection_to(
    state: &AppState,
    cookie: SessionCookie,
    provider: &ProviderId,
) -> Result<(SessionHash, Option<ConnectionRecord>), ApiError> {
    let id = match cookie {
        SessionCookie::Absent => return Err(not_connected()),
        SessionCookie::Malformed => return Err(invalid_cookie()),
        SessionCookie::Id(id) => id,
    };
    let (now, hash) = (state.now(), id.hash());
    // Timed by the store itself, which may answer from the connection cache.
    let lookup = state.store().get_session_connection(&hash, provider, now);
    let Some((record, connection)) = lookup.await.map_err(ApiError::from)? else {
        return Err(invalid_cookie());
    };
    slide(state, &record, now).await?;
    Ok((record.session_hash, connection))
}

/// A session lookup, its latency recorded (`cm_broker_store_seconds`).
async fn timed<T>(
    state: &AppState,
    lookup: impl Future<Output = Result<T>>,
) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    let found = lookup.await.map_err(ApiError::from)?;
    state.metrics().store(started.elapsed());
    Ok(found)
}

/// Moves a session's sliding expiry, at most once per `touch_every`: a read is not a store
/// write.
async fn slide(state: &AppState, record: &SessionRecord, now: Timestamp) -> Result<(), ApiError> {
    let ttl = state.config().session_ttl_seconds();
    if now.unix_seconds() - record.last_seen_at.unix_seconds() >= touch_every(ttl) {
        let expires = Timestamp::from_unix_seconds(now.unix_seconds() + ttl);
        state
            .store()
            .touch_session(&record.session_hash, now, expires)
            .await
            .map_err(ApiError::from)?;
    }
    Ok(())
}

/// The longest a session's `last_seen_at` (and so its sliding expiry) lags behind its use: a
/// write per request would make every proxied read a store write (a WAL commit on SQLite).
pub(crate) const TOUCH_EVERY_SECONDS: i64 = 300;

/// How often a session with a lifetime of `ttl` seconds is touched: every
/// [`TOUCH_EVERY_SECONDS`], or a quarter of a shorter lifetime.
fn touch_every(ttl: i64) -> i64 {
    (ttl / 4).clamp(1, TOUCH_EVERY_SECONDS)
}

fn invalid_cookie() -> ApiError {
    ApiError::new(
        ErrorCode::NotConnected,
        "the session cookie is not valid (ended, expired or unknown) and was cleared: connect again",
    )
    .with_set_cookie(cookies::clear_session())
}

fn connection(state: &AppState, record: ConnectionRecord) -> Connection {
    let over = record.grant_expires_at.is_some_and(|at| state.now() >= at);
    Connection {
        provider: record.provider,
        status: if over {
            ConnectionStatus::ReconnectRequired
        } else {
            record.status
        },
        patient: record.patient,
        scopes: record.scopes,
        demographics_shared: record.demographics_shared,
        grant_expires_at: record.grant_expires_at,
    }
}

/// The session's connections, as the API shows them.
pub(crate) async fn connections(
    state: &AppState,
    session: &SessionHash,
) -> Result<Vec<Connection>, ApiError> {
    Ok(state
        .store()
        .list_connections(session)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|record| connection(state, record))
        .collect())
}

/// The session as JSON: one entry per connection.
pub(crate) async fn session_response(
    state: &AppState,
    session: &SessionHash,
) -> Result<Response, ApiError> {
    let connections = connections(state, session).await?;
    Ok(ApiJson(SessionResponse { connections }).into_response())
}

/// `GET /v1/session`: the browser's connections — none without a session, and none for a
/// cookie known to be invalid, which the answer expires (the SDK reads "no connections"
/// either way; the cookie must not linger).
async fn get_session(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Response, ApiError> {
    if let CurrentSession::Valid(record) = session {
        return session_response(&state, &record.session_hash).await;
    }
    let mut response = ApiJson(SessionResponse::default()).into_response();
    if let CurrentSession::Invalid = session {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookies::clear_session());
    }
    Ok(response)
}

/// `POST /v1/session/disconnect` `{provider?}`: deletes the connection(s) and, for all, the
/// session; queues the upstream revocation in the same store transaction, then tries it at
/// once. Local deletion never waits for the provider; a revocation that fails stays queued
/// and is retried (it survives a restart). Idempotent.
async fn disconnect(
    State(state): State<AppState>,
    session: CurrentSession,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> Result<Response, ApiError> {
    if let Some(provider) = &request.provider {
        state.provider(provider)?;
    }
    let revocations = match &session {
        CurrentSession::Valid(record) => {
            remove(&state, &record.session_hash, request.provider.as_ref()).await?
        }
        CurrentSession::Absent | CurrentSession::Invalid => Vec::new(),
    };
    let disconnected = revocations.iter().map(|r| r.provider.clone()).collect();
    let answer = DisconnectResponse {
        disconnected,
        revocations,
    };
    let mut response = ApiJson(answer).into_response();
    if request.provider.is_none() || matches!(session, CurrentSession::Invalid) {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookies::clear_session());
    }
    Ok(response)
}

/// Disconnects `session`'s connection to `provider`, or every connection and the session
/// itself: deletes them and queues their upstream revocations in one store transaction, then
/// tries those at once (housekeeping retries what fails). Returns the providers disconnected,
/// each with what became of the app's access there.
pub(crate) async fn remove(
    state: &AppState,
    session: &SessionHash,
    provider: Option<&ProviderId>,
) -> Result<Vec<ProviderRevocation>, ApiError> {
    let policy = |record: &ConnectionRecord| {
        let provider = state.provider(&record.provider).ok()?;
        match provider.resolved.provider().disconnect() {
            (DisconnectKind::None, _) | (_, None) => None,
            // Blue Button's /v2/o/revoke/ looks the token up among access tokens only (its
            // RevokeView): given the refresh token it answers 200 and deletes no grant. The
            // access token is found whether or not it has expired (the view reads the token's
            // row, not its expiry), so a revocation retried later still deletes the grant.
            (DisconnectKind::RevokeAndDeleteGrant, _) => Some(TokenKind::AccessToken),
            // RFC 7009 servers get the refresh token, which takes the access token with it.
            _ => Some(TokenKind::RefreshToken),
        }
    };
    let removed = state
        .store()
        .disconnect(session, provider, &policy, state.now())
        .await
        .map_err(ApiError::from)?;
    let mut disconnected = Vec::new();
    for gone in removed {
        let status = match gone.revocation {
            // Tried at once; housekeeping retries what stays pending. The connection is gone
            // here whatever the provider answers, so a store failure only leaves it pending.
            Some(revocation) => revoke::attempt(state, &revocation).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "a disconnect's revocation could not be tried; it stays queued");
                RevocationStatus::Pending
            }),
            None => RevocationStatus::NotSupported,
        };
        disconnected.push(ProviderRevocation {
            provider: gone.connection.provider.clone(),
            status,
        });
    }
    Ok(disconnected)
}
