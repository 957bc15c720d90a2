//! The token endpoint, revocation (RFC 7009 and Blue Button's grant-deleting `/v2/o/revoke/`),
//! introspection, and the sandbox helper that deletes a beneficiary's grant.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use connect_medicare_protocol::{PkceChallenge, PkceVerifier, Scopes};
use serde_json::{Value, json};

use crate::{
    clock::format_rfc3339,
    config::{AppConfig, ExpirationFormat, GrantKind},
    errors::{self, ACCESS_NOT_FOUND, ACCESS_TIMED_OUT, ONE_TIME_REFRESH, UPSTREAM_ERROR},
    state::{AccessRecord, Inner, Profile, RefreshRecord, Shared},
};

/// Access tokens live one hour (`SECONDS_IN_ONE_HOUR`).
const ACCESS_TTL: i64 = 3600;

type Pairs = Vec<(String, String)>;

fn form(body: &[u8]) -> Pairs {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(form: &'a Pairs, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Client authentication by HTTP Basic (RFC 6749 §2.3.1, credentials form-urlencoded before
/// base64) or by `client_id` + `client_secret` in the body.
fn authenticate<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    form: &Pairs,
) -> Option<&'a AppConfig> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                if shared.config.basic_auth_unencoded {
                    return Some(s.to_owned());
                }
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (
            field(form, "client_id")?.to_owned(),
            field(form, "client_secret")?.to_owned(),
        ),
    };
    let app = shared.app(&client_id)?;
    let ok: bool =
        subtle::ConstantTimeEq::ct_eq(app.client_secret.as_bytes(), secret.as_bytes()).into();
    ok.then_some(app)
}

/// django-oauth-toolkit's refusal of the client's credentials, with its bearer challenge.
fn invalid_client() -> Response {
    let mut response = errors::oauth(StatusCode::UNAUTHORIZED, "invalid_client");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_client\""),
    );
    response
}

/// Whether the request names a client at all (Basic credentials, or `client_id` in the body).
fn names_a_client(headers: &HeaderMap, form: &Pairs) -> bool {
    headers.contains_key(header::AUTHORIZATION) || field(form, "client_id").is_some()
}

fn invalid_grant() -> Response {
    errors::oauth(StatusCode::BAD_REQUEST, "invalid_grant")
}

/// `POST /v2/o/token/` (and `/v2/o/token`).
pub(crate) async fn bb2_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, Profile::BlueButton, &headers, &form(&body))
}

/// `POST /smart/auth/token`.
pub(crate) async fn smart_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, Profile::Smart, &headers, &form(&body))
}

fn token(shared: &Shared, profile: Profile, headers: &HeaderMap, form: &Pairs) -> Response {
    let grant_type = field(form, "grant_type");
    let Some(app) = authenticate(shared, headers, form) else {
        // Blue Button looks the application up itself before a code exchange: with no client
        // named at all, that lookup answers in its own shape.
        if profile == Profile::BlueButton
            && grant_type == Some("authorization_code")
            && !names_a_client(headers, form)
        {
            return errors::bb2_oauth(StatusCode::UNAUTHORIZED, "invalid_client", "App id failed");
        }
        return invalid_client();
    };
    match grant_type {
        Some("authorization_code") => redeem_code(shared, profile, app, form),
        Some("refresh_token") => refresh(shared, profile, app, form),
        // django-oauth-toolkit runs the password grant, which finds no such user.
        Some("password") if profile == Profile::BlueButton => errors::oauth_described(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid credentials given.",
        ),
        Some(_) => errors::oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        None => errors::oauth(StatusCode::BAD_REQUEST, "invalid_request"),
    }
}

fn redeem_code(shared: &Shared, profile: Profile, app: &AppConfig, form: &Pairs) -> Response {
    let now = shared.clock.now();
    let Some(code) = field(form, "code") else {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut inner = shared.lock();
    let Some(record) = inner.codes.get(code).cloned() else {
        return invalid_grant();
    };
    if record.used
        || record.expires_at <= now
        || record.client_id != app.client_id
        || record.profile != profile
    {
        return invalid_grant();
    }
    if field(form, "redirect_uri") != Some(record.redirect_uri.as_str()) {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Some(verifier) = field(form, "code_verifier") else {
        return errors::oauth_described(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Code verifier required.",
        );
    };
    // 43–128 characters of [A-Za-z0-9-._~], then S256.
    let verified = PkceVerifier::parse(verifier)
        .ok()
        .zip(PkceChallenge::parse(&record.challenge).ok())
        .is_some_and(|(v, c)| c.is_satisfied_by(&v));
    if !verified {
        return invalid_grant();
    }
    if let Some(r) = inner.codes.get_mut(code) {
        r.used = true;
    }
    let key = (app.client_id.clone(), record.user, profile);
    let Some(grant) = inner.grants.get(&key).cloned() else {
        return invalid_grant();
    };
    if profile == Profile::BlueButton {
        // Blue Button keeps one token pair per beneficiary and app: a new consent (another
        // browser, another device) deletes the pair before it; that pair's refresh token is
        // then "not found".
        inner.forget_tokens_of(&key);
    }
    issue(
        shared,
        &mut inner,
        profile,
        app,
        record.user,
        record.scopes,
        grant.expires_at,
    )
}

fn refresh(shared: &Shared, profile: Profile, app: &AppConfig, form: &Pairs) -> Response {
    let now = shared.clock.now();
    if profile == Profile::BlueButton && app.grant_kind == GrantKind::OneTime {
        return errors::bb2_oauth(StatusCode::FORBIDDEN, "invalid_client", ONE_TIME_REFRESH);
    }
    let Some(token) = field(form, "refresh_token") else {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut inner = shared.lock();
    let Some(record) = inner.refresh.get(token).cloned() else {
        return match profile {
            Profile::BlueButton => errors::bb2_oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Refresh token not found.",
            ),
            Profile::Smart => invalid_grant(),
        };
    };
    if record.client_id != app.client_id || record.profile != profile {
        return invalid_grant();
    }
    // Blue Button checks the data-access grant before the token itself.
    let key = (app.client_id.clone(), record.user, profile);
    let grant = inner.grants.get(&key).cloned();
    match (profile, grant) {
        (Profile::BlueButton, None) => {
            return errors::bb2_oauth(StatusCode::FORBIDDEN, "invalid_grant", ACCESS_NOT_FOUND);
        }
        (Profile::BlueButton, Some(g)) if g.expires_at.is_some_and(|at| at <= now) => {
            return errors::bb2_oauth(StatusCode::UNAUTHORIZED, "invalid_grant", ACCESS_TIMED_OUT);
        }
        (Profile::Smart, None) => return invalid_grant(),
        _ => {}
    }
    if record.spent {
        return invalid_grant();
    }
    let scopes = match field(form, "scope") {
        None => record.scopes.clone(),
        Some(raw) => match Scopes::parse(raw) {
            Ok(asked) if asked.iter().all(|s| record.scopes.covers(s)) => asked,
            _ => return errors::oauth(StatusCode::BAD_REQUEST, "invalid_scope"),
        },
    };
    // Rotation: the refresh token is spent and its access token dies, at once.
    inner.revoke_pair_of_refresh(token);
    let expires_at = inner.grants.get(&key).and_then(|g| g.expires_at);
    let response = issue(
        shared,
        &mut inner,
        profile,
        app,
        record.user,
        scopes,
        expires_at,
    );
    // Blue Button re-reads the beneficiary from its backend *after* issuing the new tokens
    // (`TokenView.post`); when that fails the client gets a 502 and the tokens it never saw
    // have replaced the ones it holds.
    if profile == Profile::BlueButton && shared.faults.upstream_fails() {
        return errors::bb2_message(
            StatusCode::BAD_GATEWAY,
            "Failed to retrieve data from data source.",
        );
    }
    response
}

/// Mints an access token (and a refresh token where the profile gives one) and writes the
/// token response.
fn issue(
    shared: &Shared,
    inner: &mut Inner,
    profile: Profile,
    app: &AppConfig,
    user: usize,
    scopes: Scopes,
    grant_expires_at: Option<i64>,
) -> Response {
    let now = shared.clock.now();
    let seed = shared.config.seed;
    let access = inner.mint(seed, "access", 30);
    let gives_refresh = match profile {
        Profile::BlueButton => app.grant_kind != GrantKind::OneTime,
        Profile::Smart => scopes
            .iter()
            .any(|s| s.as_str() == "offline_access" || s.as_str() == "online_access"),
    };
    let refresh = gives_refresh.then(|| inner.mint(seed, "refresh", 30));
    inner.access.insert(
        access.clone(),
        AccessRecord {
            profile,
            client_id: app.client_id.clone(),
            user,
            scopes: scopes.clone(),
            expires_at: now + ACCESS_TTL,
            refresh: refresh.clone(),
        },
    );
    if let Some(refresh) = &refresh {
        inner.refresh.insert(
            refresh.clone(),
            RefreshRecord {
                spent: false,
                profile,
                client_id: app.client_id.clone(),
                user,
                scopes: scopes.clone(),
                access: access.clone(),
            },
        );
    }
    let patient = shared.data.users()[user].patient_id.clone();
    let mut body = json!({
        "access_token": access,
        "expires_in": ACCESS_TTL,
        "token_type": "Bearer",
        "scope": scopes.to_string(),
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = Value::String(refresh);
    }
    // Blue Button always names the beneficiary; a SMART server gives the patient context only
    // to a grant that asked for it (`launch/patient`), as SMART's reference server does.
    let context =
        profile == Profile::BlueButton || scopes.iter().any(|s| s.as_str() == "launch/patient");
    if context {
        body["patient"] = Value::String(patient);
    }
    if profile == Profile::Smart {
        // As SMART's reference server answers: the launch context's display hints, and an
        // OpenID Connect id_token when `openid` was granted (RS256-shaped; the broker does not
        // read it).
        body["need_patient_banner"] = Value::Bool(true);
        body["smart_style_url"] =
            Value::String(format!("{}/smart/smart-style.json", shared.origin()));
        if scopes.iter().any(|s| s.as_str() == "openid") {
            body["id_token"] = Value::String(id_token(shared, inner, app, user, now));
        }
    }
    if profile == Profile::BlueButton {
        let written = |at| match app.expiration_format {
            ExpirationFormat::T => format_rfc3339(at, 'T'),
            ExpirationFormat::Space => format_rfc3339(at, ' '),
            ExpirationFormat::NoZone => format_rfc3339(at, 'T').trim_end_matches('Z').to_owned(),
        };
        body["access_grant_expiration"] =
            Value::String(grant_expires_at.map(written).unwrap_or_default());
    }
    errors::no_store(errors::json(StatusCode::OK, body))
}

/// An id_token shaped as the SMART reference server's: a compact JWS (an RS256 header, the
/// claims, a signature part) whose claims name the issuer, the user and the app. Nothing checks
/// its signature: the broker does not read id_tokens.
fn id_token(shared: &Shared, inner: &mut Inner, app: &AppConfig, user: usize, now: i64) -> String {
    let b64 = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let user = &shared.data.users()[user];
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "sandbox"});
    let claims = json!({
        "iss": format!("{}/smart/fhir", shared.origin()),
        "sub": user.patient_id,
        "aud": app.client_id,
        "exp": now + ACCESS_TTL,
        "iat": now,
        "fhirUser": format!("Patient/{}", user.patient_id),
    });
    let signature = inner.mint(shared.config.seed, "id_token", 342);
    format!("{}.{}.{signature}", b64(&header), b64(&claims))
}

/// Finds who owns `token` (an access or a refresh token): `(client_id, user, profile)`.
fn owner(inner: &Inner, token: &str) -> Option<(String, usize, Profile)> {
    if let Some(a) = inner.access.get(token) {
        return Some((a.client_id.clone(), a.user, a.profile));
    }
    inner
        .refresh
        .get(token)
        .map(|r| (r.client_id.clone(), r.user, r.profile))
}

/// The `revoke_status` fault's answer, when it is on.
fn revocation_fault(shared: &Shared) -> Option<Response> {
    let status = StatusCode::from_u16(shared.faults.revoke_status()?).ok()?;
    Some(if status.is_server_error() {
        errors::bb2_message(status, UPSTREAM_ERROR)
    } else {
        errors::oauth(status, "invalid_request")
    })
}

/// `POST /v2/o/revoke_token/` and `/smart/auth/revoke` (RFC 7009): either token kills both;
/// an unknown token is a 200.
pub(crate) async fn revoke_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    let Some(app) = authenticate(&shared, &headers, &form) else {
        return invalid_client();
    };
    if let Some(refused) = revocation_fault(&shared) {
        return refused;
    }
    let Some(token) = field(&form, "token") else {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut inner = shared.lock();
    match owner(&inner, token) {
        Some((client, _, _)) if client != app.client_id => errors::json(
            StatusCode::FORBIDDEN,
            json!({"status_code": 403, "description": "Application did not have access to the provided token."}),
        ),
        Some(_) => {
            inner.revoke_pair_of_access(token);
            inner.revoke_pair_of_refresh(token);
            revoked()
        }
        None => revoked(),
    }
}

/// `POST /v2/o/revoke/`. Blue Button looks the token up among **access** tokens only: given
/// one, it deletes the data-access grant with every token under it; given a refresh token it
/// revokes that token pair and keeps the grant (so the app keeps its access in CMS's
/// records). 200 with an empty HTML body either way.
pub(crate) async fn revoke_grant(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    let Some(app) = authenticate(&shared, &headers, &form) else {
        return invalid_client();
    };
    if let Some(refused) = revocation_fault(&shared) {
        return refused;
    }
    if let Some(token) = field(&form, "token") {
        let mut inner = shared.lock();
        let owned = owner(&inner, token).filter(|(client, _, _)| *client == app.client_id);
        match owned {
            Some(key) if inner.access.contains_key(token) => inner.delete_grant(&key),
            Some(_) => inner.revoke_pair_of_refresh(token),
            None => {}
        }
    }
    revoked()
}

/// The revocation views' answer: 200, empty, as Django writes it.
fn revoked() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, errors::DJANGO_HTML)],
    )
        .into_response()
}

/// `POST /v2/o/introspect/` and `/smart/auth/introspect` (RFC 7662).
pub(crate) async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    let Some(app) = authenticate(&shared, &headers, &form) else {
        return invalid_client();
    };
    let now = shared.clock.now();
    let inner = shared.lock();
    let active = field(&form, "token")
        .and_then(|t| inner.access.get(t))
        .filter(|a| a.expires_at > now && a.client_id == app.client_id)
        .filter(|a| {
            inner
                .grants
                .get(&(a.client_id.clone(), a.user, a.profile))
                .is_some_and(|g| g.expires_at.is_none_or(|at| at > now))
        });
    let body = match active {
        // Blue Button's introspection names the user, not the patient.
        Some(a) => json!({
            "active": true,
            "scope": a.scopes.to_string(),
            "exp": a.expires_at,
            "client_id": a.client_id,
            "username": shared.data.users()[a.user].username,
        }),
        None => json!({"active": false}),
    };
    errors::json(StatusCode::OK, body)
}

/// `POST /v2/o/expire_authenticated_user/<patient>/`: the sandbox helper that deletes the
/// calling app's grant for a beneficiary. The app shows itself with its client credentials or
/// with one of its access tokens (`Bearer`); without either the answer is an empty 403. Done,
/// it answers `success` as an HTML page, as Blue Button's view does.
pub(crate) async fn expire_user(
    State(shared): State<Arc<Shared>>,
    Path(patient): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    let bearer_app = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| {
            let client = shared.lock().access.get(token)?.client_id.clone();
            shared.app(&client)
        });
    let Some(app) = bearer_app.or_else(|| authenticate(&shared, &headers, &form)) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let Some(user) = shared.data.user_by_patient(patient.trim_end_matches('/')) else {
        return errors::detail(StatusCode::NOT_FOUND, "Not found.");
    };
    let key = (app.client_id.clone(), user.index, Profile::BlueButton);
    let mut inner = shared.lock();
    let existed = inner.grants.contains_key(&key);
    inner.delete_grant(&key);
    if existed {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "success",
        )
            .into_response()
    } else {
        errors::detail(StatusCode::NOT_FOUND, "Not found.")
    }
}
