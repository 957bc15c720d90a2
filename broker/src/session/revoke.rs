//! Revoking at the provider what a disconnect ended: tried at once by the disconnect, retried
//! by housekeeping (any replica) until the provider answers, with backoff. A background job:
//! its failures are the store's and the key ring's ([`Error`]), logged, never an HTTP answer.

use connect_medicare_protocol::{ErrorShape, Timestamp, contract::RevocationStatus};
use secrecy::ExposeSecret;

use crate::{
    crypto::{Aad, TokenKind},
    error::Error,
    state::AppState,
    store::PendingRevocation,
    upstream::UpstreamError,
};

/// Attempts after which a revocation is given up (and logged): about a day of backoff.
const MAX_REVOKE_ATTEMPTS: u32 = 12;

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
pub(super) async fn attempt(
    state: &AppState,
    revocation: &PendingRevocation,
) -> Result<RevocationStatus, Error> {
    let store = state.store();
    let now = state.now();
    let until = Timestamp::from_unix_seconds(now.unix_seconds() + REVOCATION_CLAIM_SECONDS);
    if !store.claim_revocation(revocation.id, now, until).await? {
        return Ok(RevocationStatus::Pending);
    }
    let Ok(provider) = state.provider(&revocation.provider) else {
        // The provider left the configuration: nothing can be revoked any more.
        store.finish_revocation(revocation.id).await?;
        return Ok(RevocationStatus::NotSupported);
    };
    let (_, Some(endpoint)) = provider.resolved.provider().disconnect() else {
        store.finish_revocation(revocation.id).await?;
        return Ok(RevocationStatus::NotSupported);
    };
    let aad = Aad::new(
        &revocation.session_hash,
        &revocation.provider,
        revocation.token_kind,
    );
    let token = state.keys().decrypt(&revocation.token_ct, &aad)?;
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
            store.finish_revocation(revocation.id).await?;
            Ok(RevocationStatus::Revoked)
        }
        Err(e) if refused_for_good(&e) => {
            tracing::error!(provider = %revocation.provider, error = %brief(&e), "the provider refused a revocation");
            store.finish_revocation(revocation.id).await?;
            Ok(RevocationStatus::Failed)
        }
        Err(e) => {
            let attempts = revocation.attempts + 1;
            if attempts >= MAX_REVOKE_ATTEMPTS {
                tracing::error!(provider = %revocation.provider, error = %brief(&e), "giving up a revocation");
                store.finish_revocation(revocation.id).await?;
                return Ok(RevocationStatus::Failed);
            }
            let delay = 30_i64 << attempts.min(11);
            let next = Timestamp::from_unix_seconds(state.now().unix_seconds() + delay);
            tracing::warn!(provider = %revocation.provider, error = %brief(&e), attempts, "revocation failed; will retry");
            store
                .reschedule_revocation(revocation.id, next, attempts)
                .await?;
            Ok(RevocationStatus::Pending)
        }
    }
}

/// Retries every due revocation once. Housekeeping calls it periodically; so may tests.
/// Returns how many succeeded.
pub async fn drain_revocations(state: &AppState) -> Result<usize, Error> {
    let due = state.store().due_revocations(state.now(), 100).await?;
    let mut done = 0;
    for revocation in &due {
        if attempt(state, revocation).await? == RevocationStatus::Revoked {
            done += 1;
        }
    }
    Ok(done)
}
