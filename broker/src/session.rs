//! `GET /v1/session`, `POST /v1/session/disconnect`, and the revocations that disconnect
//! leaves behind when the provider cannot be reached.

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use connect_medicare_protocol::{
    DisconnectKind, ErrorShape, Timestamp,
    contract::{
        Connection, ConnectionStatus, DisconnectRequest, DisconnectResponse, ErrorCode, ProviderId,
        ProviderRevocation, RevocationStatus, SessionResponse,
    },
};
use secrecy::ExposeSecret;

use crate::{
    app::AppState,
    cookies::{self, SessionCookie},
    crypto::{Aad, TokenKind},
    error::{ApiError, ApiJson, Result},
    ids::SessionHash,
    refresh::not_connected,
    store::{ConnectionRecord, PendingRevocation, SessionRecord},
    upstream::UpstreamError,
};

/// Attempts after which a revocation is given up (and logged): about a day of backoff.
const MAX_REVOKE_ATTEMPTS: u32 = 12;

/// What the browser's session cookie amounts to.
pub(crate) enum Presented {
    /// No session cookie.
    Absent,
    /// A cookie known to be invalid: malformed, or unknown (or expired) to a store that
    /// answered. Its answer expires it.
    Invalid,
    /// A live session (now touched: its idle timeout starts again).
    Valid(SessionRecord),
}

/// Looks the browser's session cookie up. A store that fails is an error, never `Invalid`:
/// a cookie is only cleared when the store said it does not know it.
pub(crate) async fn presented(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Presented, ApiError> {
    let id = match cookies::session_cookie(headers) {
        SessionCookie::Absent => return Ok(Presented::Absent),
        SessionCookie::Malformed => return Ok(Presented::Invalid),
        SessionCookie::Id(id) => id,
    };
    let now = state.now();
    let Some(record) = timed(state, state.store().get_session(&id.hash(), now)).await? else {
        return Ok(Presented::Invalid);
    };
    slide(state, &record, now).await?;
    Ok(Presented::Valid(record))
}

/// The session a proxied read needs and its connection to `provider` if it has one, in one
/// store lookup: `not_connected` without a session (and, for a cookie known to be invalid, a
/// `Set-Cookie` that expires it).
pub(crate) async fn current_connection(
    state: &AppState,
    headers: &HeaderMap,
    provider: &ProviderId,
) -> Result<(SessionHash, Option<ConnectionRecord>), ApiError> {
    let id = match cookies::session_cookie(headers) {
        SessionCookie::Absent => return Err(not_connected()),
        SessionCookie::Malformed => return Err(invalid_cookie()),
        SessionCookie::Id(id) => id,
    };
    let (now, hash) = (state.now(), id.hash());
    let lookup = state.store().get_session_connection(&hash, provider, now);
    let Some((record, connection)) = timed(state, lookup).await? else {
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
    .clearing_session_cookie()
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
pub(crate) async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let presented = presented(&state, &headers).await?;
    if let Presented::Valid(record) = presented {
        return session_response(&state, &record.session_hash).await;
    }
    let mut response = ApiJson(SessionResponse::default()).into_response();
    if let Presented::Invalid = presented {
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
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> Result<Response, ApiError> {
    if let Some(provider) = &request.provider {
        state.provider(provider)?;
    }
    let presented = presented(&state, &headers).await?;
    let revocations = match &presented {
        Presented::Valid(record) => {
            remove(&state, &record.session_hash, request.provider.as_ref()).await?
        }
        Presented::Absent | Presented::Invalid => Vec::new(),
    };
    let disconnected = revocations.iter().map(|r| r.provider.clone()).collect();
    let answer = DisconnectResponse {
        disconnected,
        revocations,
    };
    let mut response = ApiJson(answer).into_response();
    if request.provider.is_none() || matches!(presented, Presented::Invalid) {
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
            Some(revocation) => attempt(state, &revocation).await.unwrap_or_else(|e| {
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

/// How long a claimed revocation is kept from everyone else while it is sent: far more than an
/// upstream call may take.
const REVOCATION_CLAIM_SECONDS: i64 = 120;

/// Tries one queued revocation, once it is claimed (a disconnect's immediate try and the
/// housekeeping of any replica never both send it). What the provider answers decides:
/// accepted → `Revoked`; refused for good (its OAuth 400, other than `invalid_client`) →
/// `Failed`, dropped and logged; anything else → `Pending`, rescheduled with exponential
/// backoff (given up, and logged, after [`MAX_REVOKE_ATTEMPTS`], about a day and a half).
/// `Pending` also when someone else holds it; `NotSupported` when the provider has no
/// revocation endpoint (any more).
async fn attempt(
    state: &AppState,
    revocation: &PendingRevocation,
) -> Result<RevocationStatus, ApiError> {
    let store = state.store();
    let now = state.now();
    let until = Timestamp::from_unix_seconds(now.unix_seconds() + REVOCATION_CLAIM_SECONDS);
    if !store
        .claim_revocation(revocation.id, now, until)
        .await
        .map_err(ApiError::from)?
    {
        return Ok(RevocationStatus::Pending);
    }
    let Ok(provider) = state.provider(&revocation.provider) else {
        // The provider left the configuration: nothing can be revoked any more.
        store
            .finish_revocation(revocation.id)
            .await
            .map_err(ApiError::from)?;
        return Ok(RevocationStatus::NotSupported);
    };
    let (_, Some(endpoint)) = provider.resolved.provider().disconnect() else {
        store
            .finish_revocation(revocation.id)
            .await
            .map_err(ApiError::from)?;
        return Ok(RevocationStatus::NotSupported);
    };
    let aad = Aad::new(
        &revocation.session_hash,
        &revocation.provider,
        revocation.token_kind,
    );
    let token = state
        .keys()
        .decrypt(&revocation.token_ct, &aad)
        .map_err(ApiError::internal)?;
    let hint = match revocation.token_kind {
        TokenKind::AccessToken => "access_token",
        TokenKind::RefreshToken => "refresh_token",
    };
    let result = state
        .upstream()
        .revoke(
            endpoint,
            &provider.credentials(),
            token.expose_secret(),
            hint,
        )
        .await;
    // Only the revocation endpoint's own OAuth refusal (RFC 7009 §2.2.1: a 400 with an OAuth
    // error body) is final; any other 4xx may be a proxy, a maintenance page or a transient
    // answer (408, 425), and `invalid_client` is the operator's credentials, which can be
    // mended: those stay pending.
    let refused_for_good = |e: &UpstreamError| match e {
        UpstreamError::OAuth(error) => {
            error.status() == Some(400)
                && matches!(
                    error.shape(),
                    ErrorShape::Rfc6749 | ErrorShape::BlueButtonOAuth
                )
                && !error.is_invalid_client()
        }
        UpstreamError::Unavailable(_) => false,
    };
    // The provider's description goes to the log only through `log_refusal`, which blanks the
    // secret should the server echo it; the other lines name the error by its code.
    if let Err(UpstreamError::OAuth(error)) = &result {
        provider
            .credentials()
            .log_refusal("revocation", revocation.provider.as_str(), error);
    }
    let brief = |e: &UpstreamError| match e {
        UpstreamError::OAuth(error) => format!("{} (HTTP {:?})", error.code(), error.status()),
        UpstreamError::Unavailable(why) => why.clone(),
    };
    match result {
        Ok(()) => {
            store
                .finish_revocation(revocation.id)
                .await
                .map_err(ApiError::from)?;
            Ok(RevocationStatus::Revoked)
        }
        Err(e) if refused_for_good(&e) => {
            tracing::error!(provider = %revocation.provider, error = %brief(&e), "the provider refused a revocation");
            store
                .finish_revocation(revocation.id)
                .await
                .map_err(ApiError::from)?;
            Ok(RevocationStatus::Failed)
        }
        Err(e) => {
            let attempts = revocation.attempts + 1;
            if attempts >= MAX_REVOKE_ATTEMPTS {
                tracing::error!(provider = %revocation.provider, error = %brief(&e), "giving up a revocation");
                store
                    .finish_revocation(revocation.id)
                    .await
                    .map_err(ApiError::from)?;
                return Ok(RevocationStatus::Failed);
            }
            let delay = 30_i64 << attempts.min(11);
            let next = Timestamp::from_unix_seconds(state.now().unix_seconds() + delay);
            tracing::warn!(provider = %revocation.provider, error = %brief(&e), attempts, "revocation failed; will retry");
            store
                .reschedule_revocation(revocation.id, next, attempts)
                .await
                .map_err(ApiError::from)?;
            Ok(RevocationStatus::Pending)
        }
    }
}

/// Retries every due revocation once. Housekeeping calls it periodically; so may tests.
/// Returns how many succeeded.
pub async fn drain_revocations(state: &AppState) -> Result<usize, ApiError> {
    let due = state
        .store()
        .due_revocations(state.now(), 100)
        .await
        .map_err(ApiError::from)?;
    let mut done = 0;
    for revocation in &due {
        if attempt(state, revocation).await? == RevocationStatus::Revoked {
            done += 1;
        }
    }
    Ok(done)
}
