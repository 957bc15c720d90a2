//! Usable access tokens: decrypting the stored one, refreshing proactively before it expires
//! and once after an upstream 401 — with **one refresh in flight per connection** in this
//! process, because Blue Button's refresh tokens are single use and each refresh kills the
//! previous access token.
//!
//! Across replicas the store's compare-and-set on the connection's generation decides: a
//! writer whose generation moved (another refresh, a disconnect) loses, and a disconnected
//! connection is never written back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use connect_medicare_protocol::{Timestamp, contract::ErrorCode};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    app::{AppState, ServedProvider},
    crypto::{Aad, TokenKind},
    error::ApiError,
    ids::SessionHash,
    store::{ConnectionRecord, TokenUpdate},
    upstream::UpstreamError,
};

type Key = (SessionHash, String);

/// Per-connection refresh locks of this process.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    map: Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    fn get(&self, key: Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        // Forget locks nobody holds any more, so the map stays as small as the traffic.
        map.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&lock));
        lock
    }
}

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

/// The access token for `session`'s connection to `provider`, refreshed first when it
/// expires within the configured skew.
pub(crate) async fn live(
    state: &AppState,
    session: &SessionHash,
    provider: &ServedProvider,
) -> Result<Live, ApiError> {
    let connection = state
        .store()
        .get_connection(session, provider.resolved.id())
        .await
        .map_err(ApiError::from)?
        .ok_or_else(not_connected)?;
    usable(state, &connection).await?;
    if expires_soon(
        &connection,
        state.now(),
        state.config().refresh_skew_seconds(),
    ) {
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
        // The grant's end date passed: no refresh can help. Record it (compare-and-set: a
        // concurrent change wins) and ask the user to connect again.
        let _ = state
            .store()
            .mark_reconnect_required(
                &connection.session_hash,
                &connection.provider,
                connection.generation,
                state.now(),
            )
            .await;
        return Err(reconnect_required());
    }
    Ok(())
}

/// Refreshes the connection — unless someone else already did since generation `seen` —
/// and returns the new access token. At most one refresh per connection runs at a time in
/// this process; the refresh request itself is never retried.
pub(crate) async fn refresh(
    state: &AppState,
    session: &SessionHash,
    provider: &ServedProvider,
    seen: i64,
) -> Result<Live, ApiError> {
    let id = provider.resolved.id();
    let lock = state.locks().get((*session, id.as_str().to_owned()));
    let _guard = lock.lock().await;
    let connection = state
        .store()
        .get_connection(session, id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(not_connected)?;
    usable(state, &connection).await?;
    let now = state.now();
    if connection.generation != seen
        && !expires_soon(&connection, now, state.config().refresh_skew_seconds())
    {
        // Another request refreshed while this one waited: use its token.
        return Ok(Live {
            access: decrypt_access(state, &connection)?,
            connection,
        });
    }
    let Some(refresh_ct) = &connection.refresh_token_ct else {
        mark_ended(state, &connection).await;
        return Err(reconnect_required());
    };
    let refresh_token = state
        .keys()
        .decrypt(refresh_ct, &Aad::new(session, id, TokenKind::RefreshToken))
        .map_err(ApiError::internal)?;
    let profile = provider.resolved.provider();
    let result = state
        .upstream()
        .token(
            profile.token_endpoint(),
            provider.resolved.client_id(),
            provider.config().client_secret(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ],
            &connection.scopes,
        )
        .await;
    let tokens = match result {
        Ok(tokens) => tokens,
        // `invalid_grant` whatever the status (expired 401, revoked 403, reused 400), and a
        // one-time app's 403 `invalid_client`: the connection is over.
        Err(UpstreamError::OAuth(e))
            if e.is_invalid_grant() || (e.is_invalid_client() && e.status() == Some(403)) =>
        {
            tracing::info!(provider = %id, status = ?e.status(), "refresh refused: reconnect required");
            mark_ended(state, &connection).await;
            return Err(reconnect_required());
        }
        Err(UpstreamError::OAuth(e)) => {
            tracing::warn!(provider = %id, error = %e.code(), status = ?e.status(), "refresh failed");
            return Err(ApiError::new(
                ErrorCode::UpstreamUnavailable,
                "the provider could not refresh the connection; try again",
            ));
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
        // Disconnected (or changed by another replica) meanwhile: never resurrect it.
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
