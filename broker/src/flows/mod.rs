//! `POST /v1/flows` and `POST /v1/flows/complete`: registering an authorization flow, and
//! finishing it with the callback's code.

pub(crate) mod replays;

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::post,
};
use connect_medicare_protocol::{
    AuthorizeRequest, PkceChallenge, Timestamp,
    contract::{
        AuthorizeMethod, CompleteFlowRequest, CompleteFlowResponse, CreateFlowRequest,
        CreateFlowResponse, ErrorCode, SessionProof, routes,
    },
};
use secrecy::SecretString;

use crate::{
    cookies::{self, SessionCookie},
    crypto::{Aad, TokenKind},
    error::{ApiError, ApiJson},
    http::under_v1,
    ids::{FlowCookie, FlowKey, ProofHash, SessionHash, SessionId},
    session::{self, connections, session_response},
    state::AppState,
    store::{BeginOutcome, ConnectionRecord, FlowRecord, FlowStatus, Rotation},
    upstream::UpstreamError,
};

/// How long a replayed completion waits for the first one to finish.
const REPLAY_WAIT: Duration = Duration::from_secs(20);

/// The flow routes, under `/v1`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(under_v1(routes::FLOWS), post(create))
        .route(under_v1(routes::FLOWS_COMPLETE), post(complete))
}

/// `POST /v1/flows`: `{provider, state, code_challenge, redirect_uri, method?}` → the
/// authorize request, built from configuration, and an HttpOnly flow cookie.
async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateFlowRequest>,
) -> Result<Response, ApiError> {
    let provider = state.provider(&request.provider)?;
    let resolved = &provider.resolved;
    if &request.redirect_uri != resolved.redirect_uri() {
        return Err(ApiError::new(
            ErrorCode::RedirectUriMismatch,
            "redirect_uri must equal the configured redirect URI exactly",
        ));
    }
    let post = request.method == AuthorizeMethod::Post;
    if post && !resolved.authorize_post() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "this provider does not accept POST authorize requests",
        ));
    }
    let authorize = AuthorizeRequest::new(
        resolved.provider(),
        resolved.client_id().clone(),
        resolved.redirect_uri().clone(),
        resolved.scopes().clone(),
        &request.state,
        &request.code_challenge,
    )
    .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    let redirect = authorize.to_redirect(post);
    // The same validation the SDK runs before navigating.
    let info = resolved.info();
    redirect
        .validate(&info.expectations(&request.state, &request.code_challenge))
        .map_err(ApiError::internal)?;

    let now = state.now();
    let ttl = state.config().flow_ttl_seconds();
    let cookie = FlowCookie::generate().map_err(ApiError::from)?;
    let record = FlowRecord {
        key: FlowKey::from_state(&request.state),
        provider: request.provider.clone(),
        code_challenge: request.code_challenge.clone(),
        redirect_uri: request.redirect_uri.clone(),
        cookie_hash: cookie.hash(),
        created_at: now,
        expires_at: Timestamp::from_unix_seconds(now.unix_seconds() + ttl),
        status: FlowStatus::Pending,
        session_hash: None,
    };
    state
        .store()
        .insert_flow(&record, state.config().max_pending_flows(), now)
        .await
        .map_err(ApiError::from)?;
    let mut response = ApiJson(CreateFlowResponse {
        authorize: redirect,
        expires_in: u64::try_from(ttl).unwrap_or(0),
    })
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, cookies::flow(&cookie, ttl));
    Ok(response)
}

/// `POST /v1/flows/complete`: `{state, code, code_verifier}` → the session.
///
/// The flow record and its cookie are checked first, then S256(verifier) against the
/// registered challenge — all before any token call. A replay of the same flow with the same
/// cookie answers the session the first completion made; any other reuse is `state_used` or
/// `flow_not_found`.
async fn complete(
    State(state): State<AppState>,
    session: SessionCookie,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CompleteFlowRequest>,
) -> Result<Response, ApiError> {
    let flow_not_found = || {
        ApiError::new(
            ErrorCode::FlowNotFound,
            "no sign-in is pending for this state in this browser",
        )
    };
    let cookie = cookies::flow_cookie(&headers).ok_or_else(flow_not_found)?;
    let key = FlowKey::from_state(&request.state);
    let now = state.now();
    let outcome = state
        .store()
        .begin_completion(&key, &cookie.hash(), now)
        .await
        .map_err(ApiError::from)?;
    let flow = match outcome {
        BeginOutcome::Started(flow) => flow,
        BeginOutcome::AlreadyCompleted { session_hash } => {
            return replayed(&state, &session_hash).await;
        }
        BeginOutcome::InProgress => {
            let session_hash = wait_for(&state, &key).await?;
            return replayed(&state, &session_hash).await;
        }
        BeginOutcome::Used => {
            return Err(ApiError::new(
                ErrorCode::StateUsed,
                "this sign-in was already used",
            ));
        }
        BeginOutcome::NotFound | BeginOutcome::Expired => return Err(flow_not_found()),
    };
    let done = state.completions().start(key);
    let result = redeem(&state, session, &flow, &request).await;
    match &result {
        Ok((session_hash, _, _)) => {
            if let Err(e) = state.store().complete_flow(&key, session_hash).await {
                tracing::error!(error = %e, "recording the completed flow failed");
            }
            let _ = done.send(Some(*session_hash));
        }
        Err(_) => {
            if let Err(e) = state.store().fail_flow(&key).await {
                tracing::error!(error = %e, "recording the failed flow failed");
            }
        }
    }
    state.completions().finish(&key);
    let (session_hash, session_id, proof) = result?;
    let connections = connections(&state, &session_hash).await?;
    let mut response = ApiJson(CompleteFlowResponse {
        connections,
        session_proof: Some(proof),
    })
    .into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookies::session(&session_id, state.config().session_ttl_seconds()),
    );
    headers.append(header::SET_COOKIE, cookies::clear_flow());
    Ok(response)
}

/// The answer to a replayed completion: the session the first one made.
async fn replayed(state: &AppState, session_hash: &SessionHash) -> Result<Response, ApiError> {
    session_response(state, session_hash).await
}

/// Waits for the in-flight completion of `key` (in this process, or — polling the store — in
/// another replica).
async fn wait_for(state: &AppState, key: &FlowKey) -> Result<SessionHash, ApiError> {
    let failed = || ApiError::new(ErrorCode::StateUsed, "this sign-in did not complete");
    if let Some(mut rx) = state.completions().waiter(key) {
        let finished = tokio::time::timeout(REPLAY_WAIT, rx.wait_for(Option::is_some)).await;
        return match finished {
            Ok(Ok(value)) => value.ok_or_else(failed),
            _ => Err(failed()),
        };
    }
    let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
    while tokio::time::Instant::now() < deadline {
        match state.store().get_flow(key).await.map_err(ApiError::from)? {
            Some(FlowRecord {
                status: FlowStatus::Completed,
                session_hash: Some(session_hash),
                ..
            }) => return Ok(session_hash),
            Some(FlowRecord {
                status: FlowStatus::InProgress,
                ..
            }) => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return Err(failed()),
        }
    }
    Err(failed())
}

/// Checks the verifier, redeems the code, stores the encrypted tokens. Returns the session,
/// its new id for the cookie and its new proof ([`join_session`]).
async fn redeem(
    state: &AppState,
    session: SessionCookie,
    flow: &FlowRecord,
    request: &CompleteFlowRequest,
) -> Result<(SessionHash, SessionId, SessionProof), ApiError> {
    let challenge: &PkceChallenge = &flow.code_challenge;
    if !challenge.is_satisfied_by(&request.code_verifier) {
        return Err(ApiError::new(
            ErrorCode::PkceMismatch,
            "the code verifier does not match the registered challenge",
        ));
    }
    let provider = state.provider(&flow.provider)?;
    let resolved = &provider.resolved;
    // RFC 9207: a response from another server (a mix-up) is refused before its code is sent
    // anywhere.
    if resolved
        .provider()
        .check_callback_issuer(request.iss.as_deref())
        .is_err()
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the callback's iss is missing or is not this provider's issuer (RFC 9207): connect \
             again",
        ));
    }
    let tokens = state
        .upstream()
        .token(
            resolved.provider().token_endpoint(),
            &provider.credentials(),
            &[
                ("grant_type", "authorization_code"),
                ("code", request.code.expose_secret()),
                ("redirect_uri", flow.redirect_uri.as_str()),
                ("code_verifier", request.code_verifier.expose_secret()),
            ],
            resolved.scopes(),
        )
        .await
        .map_err(|e| match e {
            UpstreamError::OAuth(e) if e.is_invalid_grant() => ApiError::new(
                ErrorCode::StateUsed,
                "the provider refused the authorization code (used or expired): connect again",
            ),
            UpstreamError::OAuth(e) => {
                provider
                    .credentials()
                    .log_refusal("code redemption", resolved.id().as_str(), &e);
                if e.is_invalid_client() {
                    ApiError::new(
                        ErrorCode::UpstreamError,
                        "the provider refused this app's credentials; the app's operator has \
                         been alerted",
                    )
                } else {
                    ApiError::new(ErrorCode::UpstreamError, "the provider refused the sign-in")
                }
            }
            UpstreamError::Unavailable(why) => {
                tracing::warn!(why, "code redemption failed");
                ApiError::new(
                    ErrorCode::UpstreamUnavailable,
                    "the provider could not be reached",
                )
            }
        })?;

    let now = state.now();
    let (session_hash, session_id, proof) =
        join_session(state, session, request.session_proof.as_ref()).await?;
    let id = resolved.id();
    let scopes = tokens.scope().clone();
    let demographics_shared =
        scopes.allows_read("Patient") || scopes.iter().any(|s| s.as_str() == "profile");
    if tokens.grant_expiration_unreadable() {
        tracing::warn!(
            provider = %resolved.id(),
            "the token response's access_grant_expiration is in no known form: the grant's end \
             is unknown for this connection"
        );
    }
    let grant_expires_at = tokens.access_grant_expiration().and_then(|g| g.at());
    let access_expires_at = tokens.expires_at(now);
    let patient = tokens.patient().cloned();
    let (access, refresh) = tokens.into_tokens();
    let access_token_ct = state
        .keys()
        .encrypt(
            &SecretString::from(access.expose_secret()),
            &Aad::new(&session_hash, id, TokenKind::AccessToken),
        )
        .map_err(ApiError::internal)?;
    let refresh_token_ct = match refresh {
        Some(token) => Some(
            state
                .keys()
                .encrypt(
                    &SecretString::from(token.expose_secret()),
                    &Aad::new(&session_hash, id, TokenKind::RefreshToken),
                )
                .map_err(ApiError::internal)?,
        ),
        None => None,
    };
    state
        .store()
        .upsert_connection(&ConnectionRecord {
            session_hash,
            provider: id.clone(),
            patient,
            scopes,
            demographics_shared,
            grant_expires_at,
            access_token_ct,
            refresh_token_ct,
            access_expires_at,
            generation: 0,
            status: connect_medicare_protocol::contract::ConnectionStatus::Connected,
            updated_at: now,
        })
        .await
        .map_err(ApiError::from)?;
    Ok((session_hash, session_id, proof))
}

/// How long the ids a session had before a sign-in keep working after it: requests another
/// tab sent before the new cookie arrived still find their session.
const ROTATION_GRACE_SECONDS: i64 = 60;

/// The session a completed sign-in joins, under a new id (session fixation: the id a browser
/// arrives with may have been planted by someone who knows it).
///
/// The browser's current session is kept — its connections carry over, a second provider
/// joins the first — only when the browser shows that session's proof, which a planter
/// cannot have: it lives in the app origin's storage, never in a cookie. Then the session gets
/// the new id and proof in one transaction, and its old ids work on for
/// [`ROTATION_GRACE_SECONDS`]. Otherwise the sign-in starts a new session, and a session the
/// cookie reached without its proof is ended like a disconnect (tokens deleted, revocations
/// queued): nobody could prove they own it any more. See `docs/architecture.md`, "Sessions
/// and session rotation".
async fn join_session(
    state: &AppState,
    cookie: SessionCookie,
    shown: Option<&SessionProof>,
) -> Result<(SessionHash, SessionId, SessionProof), ApiError> {
    let now = state.now();
    let new_id = SessionId::generate().map_err(ApiError::from)?;
    let new_proof = ProofHash::new_proof().map_err(ApiError::from)?;
    let current = match cookie.id() {
        Some(id) => state
            .store()
            .get_session(&id.hash(), now)
            .await
            .map_err(ApiError::from)?,
        None => None,
    };
    if let Some(record) = current {
        let proven = match (record.proof_hash, shown) {
            (Some(hash), Some(shown)) => hash.matches(shown).then_some(hash),
            _ => None,
        };
        if let Some(expected_proof) = proven {
            let rotation = Rotation {
                session: record.session_hash,
                expected_proof,
                new_cookie: new_id.hash(),
                new_proof: ProofHash::of(&new_proof),
                old_ids_until: Timestamp::from_unix_seconds(
                    now.unix_seconds() + ROTATION_GRACE_SECONDS,
                ),
            };
            if state
                .store()
                .rotate_session(&rotation, now)
                .await
                .map_err(ApiError::from)?
            {
                return Ok((record.session_hash, new_id, new_proof));
            }
            // Another sign-in rotated it first: this one gets a session of its own.
        } else {
            let ended = session::remove(state, &record.session_hash, None).await?;
            tracing::info!(
                connections = ended.len(),
                "a sign-in arrived with a session cookie but without its proof: that session \
                 was ended and a new one started"
            );
        }
    }
    let expires =
        Timestamp::from_unix_seconds(now.unix_seconds() + state.config().session_ttl_seconds());
    let hash = new_id.hash();
    state
        .store()
        .create_session(&hash, Some(&ProofHash::of(&new_proof)), now, expires)
        .await
        .map_err(ApiError::from)?;
    Ok((hash, new_id, new_proof))
}
