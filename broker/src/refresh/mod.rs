//! Usable access tokens: decrypting the stored one, refreshing proactively before it expires
//! and once after an upstream 401 — with **one refresh in flight per connection across every
//! broker process** sharing the store, because Blue Button's refresh tokens are single use
//! and each refresh kills the previous access token.
//!
//! Two layers make the single flight:
//!
//! 1. In this process, a per-connection async mutex: concurrent requests queue behind one
//!    refresh and then use its tokens.
//! 2. Across processes, the store's **refresh lease** on the connection
//!    ([`try_acquire_refresh_lease`](crate::ConnectionStore::try_acquire_refresh_lease)).
//!    The request that holds the mutex takes the lease before calling the provider; if another
//!    replica holds it, it polls the store (briefly, with a bounded total wait) until that
//!    replica's new tokens appear or the lease is free. A lease lasts the longest an upstream
//!    refresh can take plus a margin, so a replica that dies mid-refresh blocks others only
//!    until it expires.
//!
//! Underneath, the store's compare-and-set on the connection's generation still decides who
//! writes: a writer whose generation moved (a disconnect, a reconnect) loses, and a
//! disconnected connection is never written back. The new refresh token is stored before the
//! new access token is used. The refresh itself — upstream call, durable write, lease release —
//! runs in its own task, so a browser that gives up mid-refresh cannot lose a rotated token.

pub(crate) mod locks;

use std::time::Duration;

use connect_medicare_protocol::{
    OAuthError, ProviderKind, Timestamp,
    contract::{ErrorCode, ProviderId},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::{
    crypto::{Aad, TokenKind},
    error::ApiError,
    ids::SessionHash,
    state::{AppState, ServedProvider},
    store::{ConnectionRecord, LeaseHolder, TokenUpdate},
    upstream::UpstreamError,
};

/// Added to the longest upstream refresh to make a lease: time for the durable write.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// The first pause while another replica holds the lease; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(25);
/// The longest pause between two looks at the store while another replica refreshes.
const MAX_POLL: Duration = Duration::from_millis(250);

/// An access token ready to use, and the connection it came from.
pub(crate) struct Live {
    pub(crate) access: SecretString,
    pub(crate) connection: ConnectionRecord,
}

pub(crate) fn not_connected() -> ApiError {
    ApiError::new(ErrorCode::NotConnected, "not connected to this provider")
}

pub(crate) fn reconnect_required() -> ApiError {
    ApiError::new(
        ErrorCode::ReconnectRequired,
        "the connection ended (the grant expired or was revoked): connect again",
    )
}

/// What a refused refresh means, decided by what the provider said rather than its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshRefusal {
    /// The connection is over; the user must connect again, for this reason.
    Ended(&'static str),
    /// The provider refused this broker's client credentials: the operator's configuration,
    /// not the user's connection, which is kept.
    ClientRefused,
    /// Rate limited: try again later; the connection is kept.
    Throttled,
    /// Anything else (5xx, an unknown error): try again; the connection is kept.
    Failed,
}

impl RefreshRefusal {
    fn of(e: &OAuthError, blue_button: bool) -> Self {
        let status = e.status();
        let described = |text: &str| e.description() == Some(text);
        if e.is_invalid_grant() {
            // Expired (401), revoked or deleted (403), spent (400): the grant is gone.
            Self::Ended("the connection ended (the grant expired or was revoked): connect again")
        } else if e.is_invalid_client() && status == Some(403) {
            // Blue Button's one-time grants cannot be refreshed.
            Self::Ended("this provider's grant lasts one hour and cannot be renewed: connect again")
        } else if e.code().as_str() == "invalid_request" && described("Refresh token not found.") {
            // Blue Button keeps one token pair per beneficiary and app: a sign-in elsewhere
            // (another browser, another device) replaced this one.
            Self::Ended(
                "the provider replaced this connection's tokens (the same beneficiary connected \
                 this app again elsewhere): connect again",
            )
        } else if blue_button
            && status == Some(502)
            && described("Failed to retrieve data from data source.")
        {
            // Blue Button rotates the tokens before it reads the beneficiary back; when that
            // read fails, the tokens it sent nobody have replaced the ones held here.
            Self::Ended(
                "the provider failed while renewing this connection, after it had already \
                 replaced its tokens: connect again",
            )
        } else if e.is_invalid_client() {
            Self::ClientRefused
        } else if e.is_throttled() {
            Self::Throttled
        } else {
            Self::Failed
        }
    }

    fn into_error(self) -> ApiError {
        match self {
            Self::Ended(reason) => ApiError::new(ErrorCode::ReconnectRequired, reason),
            // Logged for the operator, with the likely cause, by `Credentials::log_refusal`.
            Self::ClientRefused => ApiError::new(
                ErrorCode::UpstreamError,
                "the provider refused this app's credentials; the app's operator has been \
                 alerted. Try again later",
            ),
            Self::Throttled => ApiError::new(
                ErrorCode::RateLimited,
                "the provider is throttling requests; retry later",
            ),
            Self::Failed => ApiError::new(
                ErrorCode::UpstreamUnavailable,
                "the provider could not refresh the connection; try again",
            ),
        }
    }
}

fn expires_soon(connection: &ConnectionRecord, now: Timestamp, skew: i64) -> bool {
    connection
        .access_expires_at
        .is_some_and(|at| now.unix_seconds() + skew >= at.unix_seconds())
}

fn grant_over(connection: &ConnectionRecord, now: Timestamp) -> bool {
    connection.grant_expires_at.is_some_and(|at| now >= at)
}

fn decrypt_access(
    state: &AppState,
    connection: &ConnectionRecord,
) -> Result<SecretString, ApiError> {
    let aad = Aad::new(
        &connection.session_hash,
        &connection.provider,
        TokenKind::AccessToken,
    );
    state
        .keys()
        .decrypt(&connection.access_token_ct, &aad)
        .map_err(ApiError::internal)
}

/// The access token of `session`'s connection to `provider` (just read from the store),
/// refreshed first when it expires within the configured skew.
pub(crate) async fn live(
    state: &AppState,
    session: &SessionHash,
    provider: &ServedProvider,
    connection: ConnectionRecord,
) -> Result<Live, ApiError> {
    usable(state, &connection).await?;
    // Refreshing early (the skew) needs something to refresh with; without a refresh token the
    // access token is served until it actually expires, then the user reconnects.
    let skew = if connection.refresh_token_ct.is_some() {
        state.config().refresh_skew_seconds()
    } else {
        0
    };
    if expires_soon(&connection, state.now(), skew) {
        return refresh(state, session, provider, connection.generation).await;
    }
    Ok(Live {
        access: decrypt_access(state, &connection)?,
        connection,
    })
}

async fn usable(state: &AppState, connection: &ConnectionRecord) -> Result<(), ApiError> {
    use connect_medicare_protocol::contract::ConnectionStatus;
    if connection.status == ConnectionStatus::ReconnectRequired {
        return Err(reconnect_required());
    }
    if grant_over(connection, state.now()) {
        // The grant's end date passed: no refresh can help. Record it and ask the user to
        // connect again.
        mark_ended(state, connection).await;
        return Err(reconnect_required());
    }
    Ok(())
}

/// Refreshes the connection — unless someone else, in this process or another, already did
/// since generation `seen` — and returns the new access token. At most one refresh per
/// connection runs at a time across every process sharing the store; the refresh request
/// itself is never retried.
pub(crate) async fn refresh(
    state: &AppState,
    session: &SessionHash,
    provider: &ServedProvider,
    seen: i64,
) -> Result<Live, ApiError> {
    let id = provider.resolved.id();
    let lock = state.locks().get((*session, id.as_str().to_owned()));
    let _guard = lock.lock().await;
    let (upstream_bound, lease) = lease_times(state);
    // Long enough for a dead holder's lease to expire and be taken over.
    let give_up = Instant::now() + lease + Duration::from_secs(2);
    let holder = LeaseHolder::random().map_err(ApiError::internal)?;
    let mut pause = FIRST_POLL;
    let mut waited = false;
    loop {
        let connection = current(state, session, id).await?;
        if let Some(live) = refreshed_since(state, connection, seen)? {
            // Another request or replica refreshed while this one waited: use its token.
            tracing::debug!(
                provider = %id,
                generation = live.connection.generation,
                "using a concurrent refresh"
            );
            return Ok(live);
        }
        let now = state.now();
        let until = Timestamp::from_unix_seconds(
            now.unix_seconds()
                .saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX)),
        );
        if state
            .store()
            .try_acquire_refresh_lease(session, id, &holder, now, until)
            .await
            .map_err(ApiError::from)?
        {
            break;
        }
        if !waited {
            tracing::debug!(provider = %id, "another broker holds the refresh lease; waiting");
            waited = true;
        }
        if Instant::now() >= give_up {
            tracing::warn!(provider = %id, "another broker is still refreshing this connection");
            return Err(ApiError::new(
                ErrorCode::UpstreamUnavailable,
                "the connection is being refreshed; try again",
            )
            .with_retry_after(1));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
    // Holding the lease. The refresh runs to completion (and gives the lease back) even if
    // this request is cancelled: a rotated refresh token must reach the store.
    let task = tokio::spawn({
        let (state, session, id) = (state.clone(), *session, id.clone());
        async move {
            let result = refresh_holding_lease(&state, &session, &id, seen, upstream_bound).await;
            match state
                .store()
                .release_refresh_lease(&session, &id, &holder)
                .await
            {
                Ok(true) => {}
                // Gone with its connection (a disconnect), or taken over after expiring.
                Ok(false) => tracing::debug!(provider = %id, "refresh lease was no longer held"),
                Err(e) => tracing::warn!(
                    provider = %id,
                    error = %e,
                    "releasing the refresh lease failed; it will expire"
                ),
            }
            result
        }
    });
    task.await.map_err(ApiError::internal)?
}

/// The longest an upstream refresh may take, and the lease that covers it plus the write.
fn lease_times(state: &AppState) -> (Duration, Duration) {
    let timeouts = state.config().upstream_timeouts();
    let upstream = timeouts.connect() + timeouts.request();
    (upstream, upstream + LEASE_MARGIN)
}

/// The connection as stored now, if it can still be used.
async fn current(
    state: &AppState,
    session: &SessionHash,
    id: &ProviderId,
) -> Result<ConnectionRecord, ApiError> {
    let connection = state
        .store()
        .get_connection(session, id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(not_connected)?;
    usable(state, &connection).await?;
    Ok(connection)
}

/// The connection's token, when it was refreshed (or replaced) since generation `seen` and is
/// not about to expire.
fn refreshed_since(
    state: &AppState,
    connection: ConnectionRecord,
    seen: i64,
) -> Result<Option<Live>, ApiError> {
    if connection.generation == seen
        || expires_soon(
            &connection,
            state.now(),
            state.config().refresh_skew_seconds(),
        )
    {
        return Ok(None);
    }
    Ok(Some(Live {
        access: decrypt_access(state, &connection)?,
        connection,
    }))
}

/// The refresh proper, by the holder of the connection's lease.
async fn refresh_holding_lease(
    state: &AppState,
    session: &SessionHash,
    id: &ProviderId,
    seen: i64,
    upstream_bound: Duration,
) -> Result<Live, ApiError> {
    let provider = state.provider(id)?;
    // Read again under the lease: another replica may have finished just before we took it.
    let connection = current(state, session, id).await?;
    if let Some(live) = refreshed_since(state, connection.clone(), seen)? {
        return Ok(live);
    }
    let now = state.now();
    let Some(refresh_ct) = &connection.refresh_token_ct else {
        mark_ended(state, &connection).await;
        return Err(reconnect_required());
    };
    let refresh_token = state
        .keys()
        .decrypt(refresh_ct, &Aad::new(session, id, TokenKind::RefreshToken))
        .map_err(ApiError::internal)?;
    let profile = provider.resolved.provider();
    tracing::debug!(provider = %id, generation = connection.generation, "refreshing upstream");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose_secret()),
    ];
    let credentials = provider.credentials();
    let call = state.upstream().token(
        profile.token_endpoint(),
        &credentials,
        &form,
        &connection.scopes,
    );
    // Bounded in total, so the call ends before the lease does.
    let result = match tokio::time::timeout(upstream_bound, call).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::Unavailable("the refresh timed out".into())),
    };
    state.metrics().refresh(result.is_ok());
    let tokens = match result {
        Ok(tokens) => tokens,
        Err(UpstreamError::OAuth(e)) => {
            let blue_button = profile.kind() == ProviderKind::BlueButton;
            let outcome = RefreshRefusal::of(&e, blue_button);
            if matches!(outcome, RefreshRefusal::ClientRefused) {
                // The operator's credentials: every user's refreshes fail.
                credentials.log_refusal("refresh", id.as_str(), &e);
            } else {
                tracing::warn!(
                    provider = %id,
                    error = %e.code(),
                    status = ?e.status(),
                    ?outcome,
                    "refresh refused"
                );
            }
            if let RefreshRefusal::Ended(reason) = outcome {
                mark_ended(state, &connection).await;
                return Err(ApiError::new(ErrorCode::ReconnectRequired, reason));
            }
            return Err(outcome.into_error());
        }
        Err(UpstreamError::Unavailable(why)) => {
            tracing::warn!(provider = %id, why, "refresh failed");
            return Err(ApiError::new(
                ErrorCode::UpstreamUnavailable,
                "the provider could not be reached; try again",
            ));
        }
    };
    let scopes = tokens.scope().clone();
    let access_expires_at = tokens.expires_at(now);
    let (access, new_refresh) = tokens.into_tokens();
    let access = SecretString::from(access.expose_secret());
    let access_token_ct = state
        .keys()
        .encrypt(&access, &Aad::new(session, id, TokenKind::AccessToken))
        .map_err(ApiError::internal)?;
    let refresh_token_ct = match new_refresh {
        Some(token) => Some(
            state
                .keys()
                .encrypt(
                    &SecretString::from(token.expose_secret()),
                    &Aad::new(session, id, TokenKind::RefreshToken),
                )
                .map_err(ApiError::internal)?,
        ),
        // No new refresh token: the old one stays valid (RFC 6749 §6).
        None => Some(refresh_ct.clone()),
    };
    let update = TokenUpdate {
        access_token_ct,
        refresh_token_ct,
        access_expires_at,
        scopes,
    };
    // Durable before use: the new refresh token is stored before the access token serves.
    let written = state
        .store()
        .update_tokens(session, id, connection.generation, &update, now)
        .await
        .map_err(ApiError::from)?;
    if !written {
        // Disconnected (or reconnected) meanwhile: never resurrect it.
        return Err(not_connected());
    }
    let connection = ConnectionRecord {
        access_token_ct: update.access_token_ct,
        refresh_token_ct: update.refresh_token_ct,
        access_expires_at: update.access_expires_at,
        scopes: update.scopes,
        generation: connection.generation + 1,
        updated_at: now,
        ..connection
    };
    Ok(Live { access, connection })
}

/// Records `reconnect_required` (compare-and-set: a concurrent change wins).
async fn mark_ended(state: &AppState, connection: &ConnectionRecord) {
    if let Err(e) = state
        .store()
        .mark_reconnect_required(
            &connection.session_hash,
            &connection.provider,
            connection.generation,
            state.now(),
        )
        .await
    {
        tracing::warn!(error = %e, "recording reconnect_required failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refresh answer the real Blue Button server gave (`fixtures/bb2-observed/`).
    fn observed(file: &str, key: &str) -> OAuthError {
        let captures: serde_json::Value = serde_json::from_str(file).unwrap();
        let answer = &captures[key];
        let status = u16::try_from(answer["status"].as_u64().unwrap()).unwrap();
        let body = answer["body"].to_string();
        OAuthError::from_response(
            status,
            answer["headers"]["content-type"].as_str(),
            body.as_bytes(),
        )
    }

    #[test]
    fn refresh_answers_are_decided_by_what_they_mean() {
        let raw = include_str!("../../../fixtures/bb2-observed/raw-bb2.json");
        let extra = include_str!("../../../fixtures/bb2-observed/raw-bb2-extra.json");
        let ended =
            |e: &OAuthError| matches!(RefreshRefusal::of(e, true), RefreshRefusal::Ended(_));
        // The grant is gone: revoked, the sandbox helper, a spent token, an expired grant.
        for key in [
            "refresh_after_revoke",
            "refresh_after_expire",
            "refresh_reuse",
        ] {
            assert!(ended(&observed(raw, key)), "{key}");
        }
        // A second consent elsewhere: "Refresh token not found." ends it, with its own reason.
        let replaced = observed(extra, "first_refresh_after_second_consent");
        let RefreshRefusal::Ended(reason) = RefreshRefusal::of(&replaced, true) else {
            panic!("a replaced pair must end the connection");
        };
        assert!(
            reason.contains("connected this app again elsewhere"),
            "{reason}"
        );
        // The operator's credentials: every user's refresh would fail the same way; keep them.
        assert_eq!(
            RefreshRefusal::of(&observed(raw, "refresh_no_client_auth"), true),
            RefreshRefusal::ClientRefused
        );
        assert_eq!(
            RefreshRefusal::of(&observed(raw, "token_no_client_auth"), true),
            RefreshRefusal::ClientRefused
        );
        // Blue Button's failure after rotating: ended, with its own reason; another server's
        // 502 is a failure to retry.
        let body = br#"{"status_code":502,"message":"Failed to retrieve data from data source."}"#;
        let rotated = OAuthError::from_response(502, Some("application/json"), body);
        let RefreshRefusal::Ended(reason) = RefreshRefusal::of(&rotated, true) else {
            panic!("Blue Button's 502 after rotating must end the connection");
        };
        assert!(reason.contains("already replaced"), "{reason}");
        assert_eq!(RefreshRefusal::of(&rotated, false), RefreshRefusal::Failed);
        let throttled = OAuthError::from_response(429, Some("application/json"), b"{}");
        assert_eq!(
            RefreshRefusal::of(&throttled, true),
            RefreshRefusal::Throttled
        );
        let unknown = OAuthError::from_response(500, Some("text/html"), b"<h1>oops</h1>");
        assert_eq!(RefreshRefusal::of(&unknown, true), RefreshRefusal::Failed);
    }
}
