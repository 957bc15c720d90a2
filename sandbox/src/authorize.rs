//! `/v2/o/authorize/` (and the SMART face's `/smart/auth/authorize`), the mock Medicare
//! sign-in, and the consent page.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use connect_medicare_protocol::{Scope, Scopes};

use crate::{
    clock::{add_months, format_rfc3339},
    config::GrantKind,
    errors::{self, found},
    form::{Pairs, first, pairs},
    login,
    pages::{self, ConsentPage},
    state::{Approval, AuthParams, CodeRecord, Grant, Profile, Shared},
};

/// The sandbox's own sign-in cookie (on the sandbox's host, never the app's).
const APPROVAL_TTL: i64 = 600;
/// Authorization codes live ten minutes.
const CODE_TTL: i64 = 600;
/// Scopes dropped when the beneficiary does not share personal information.
const DEMOGRAPHIC_SCOPES: [&str; 5] = [
    "profile",
    "patient/Patient.read",
    "patient/Patient.rs",
    "patient/Patient.r",
    "patient/Patient.s",
];

fn duplicate(pairs: &Pairs) -> Option<&str> {
    pairs.iter().enumerate().find_map(|(i, (k, _))| {
        pairs[..i]
            .iter()
            .any(|(seen, _)| seen == k)
            .then_some(k.as_str())
    })
}

fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

/// The redirect back to the app with `params`; the SMART face adds its `iss` (RFC 9207), as its
/// discovery document promises, unless `smart_callback_iss` is off.
fn redirect_back(
    shared: &Shared,
    profile: Profile,
    redirect_uri: &str,
    params: &[(&str, &str)],
) -> Response {
    let issuer = format!("{}/smart", shared.origin());
    let mut params = params.to_vec();
    if profile == Profile::Smart && shared.config.smart_callback_iss {
        params.push(("iss", &issuer));
    }
    found(&with_params(redirect_uri, &params))
}

/// `GET /v2/o/authorize/`.
pub(crate) async fn bb2_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.unwrap_or_default().as_bytes());
    authorize(&shared, Profile::BlueButton, &headers, params, false)
}

/// Form `POST /v2/o/authorize/`.
pub(crate) async fn bb2_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = pairs(query.unwrap_or_default().as_bytes());
    params.extend(pairs(&body));
    authorize(&shared, Profile::BlueButton, &headers, params, true)
}

/// `GET /smart/auth/authorize`.
pub(crate) async fn smart_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.unwrap_or_default().as_bytes());
    authorize(&shared, Profile::Smart, &headers, params, false)
}

/// Form `POST /smart/auth/authorize`.
pub(crate) async fn smart_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(&shared, Profile::Smart, &headers, pairs(&body), true)
}

fn authorize(
    shared: &Shared,
    profile: Profile,
    headers: &HeaderMap,
    params: Pairs,
    post: bool,
) -> Response {
    let get = |name| first(&params, name).unwrap_or_default().to_owned();
    let auth = AuthParams {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        scope: first(&params, "scope").map(str::to_owned),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        aud: get("aud"),
    };
    if let Some(name) = duplicate(&params) {
        return errors::html(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!("invalid_request : Duplicate {name} parameter."),
        );
    }
    let Some(app) = shared.app(&auth.client_id) else {
        return errors::html(
            StatusCode::BAD_REQUEST,
            "Application inactive",
            "invalid_client : Application does not exist",
        );
    };
    let checks = match profile {
        Profile::BlueButton => bb2_checks(&params, &auth, post),
        Profile::Smart => smart_checks(
            shared,
            app.redirect_uris.contains(&auth.redirect_uri),
            &auth,
        ),
    };
    if let Err(response) = checks {
        return response;
    }
    let Some(user) = login::signed_in(shared, headers) else {
        return login::login_redirect(profile.login_path(), profile.authorize_path(), &params);
    };
    // After sign-in: the redirect URI, then the scopes.
    if !app.redirect_uris.contains(&auth.redirect_uri) {
        return errors::html(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "invalid_request : Mismatching redirect URI.",
        );
    }
    if auth.response_type != "code" {
        return redirect_back(
            shared,
            profile,
            &auth.redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("state", &auth.state),
            ],
        );
    }
    let scopes = match requested_scopes(profile, app.scopes.as_deref(), auth.scope.as_deref()) {
        Ok(scopes) => scopes,
        Err(()) if profile == Profile::BlueButton => {
            return errors::bb2_message(StatusCode::BAD_REQUEST, "Invalid scopes.");
        }
        Err(()) => {
            return redirect_back(
                shared,
                profile,
                &auth.redirect_uri,
                &[("error", "invalid_scope"), ("state", &auth.state)],
            );
        }
    };
    let now = shared.clock.now();
    let seed = shared.config.seed;
    let uuid = {
        let mut inner = shared.lock();
        inner.approvals.retain(|_, a| a.expires_at > now);
        let uuid = inner.mint_uuid(seed);
        inner.approvals.insert(
            uuid.clone(),
            Approval {
                profile,
                user,
                params: auth.clone(),
                scopes: scopes.clone(),
                expires_at: now + APPROVAL_TTL,
            },
        );
        uuid
    };
    let scope_list: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let username = &shared.data.users()[user].username;
    let expiry_text = match app.grant_kind {
        GrantKind::ThirteenMonth => format!(
            "Access lasts 13 months, until {}.",
            format_rfc3339(add_months(now, 13), ' ')
        ),
        GrantKind::OneTime => "Access lasts one hour.".to_owned(),
        GrantKind::Research => "Access lasts until you revoke it.".to_owned(),
    };
    let page = pages::consent_page(&ConsentPage {
        app_name: &app.name,
        action: &profile.consent_path(&uuid),
        fields: &auth.fields(),
        scopes: &scope_list,
        ask_demographics: app.require_demographics && scopes.iter().any(is_demographic),
        expiry_text: &expiry_text,
        username,
    });
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Blue Button's checks before sign-in, in its order: the illegal `client_secret`, the POST
/// `state`, the required parameters and the 16-character `state`, then `S256`.
#[allow(clippy::result_large_err)]
fn bb2_checks(params: &Pairs, auth: &AuthParams, post: bool) -> Result<(), Response> {
    if params.iter().any(|(k, _)| k == "client_secret") {
        return Err((
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, errors::DJANGO_HTML)],
            "Illegal query parameter [client_secret] detected",
        )
            .into_response());
    }
    if post && auth.state.is_empty() {
        return Err(errors::bb2_message(
            StatusCode::UNAUTHORIZED,
            "State required in POST body.",
        ));
    }
    let mut missing = Vec::new();
    if auth.code_challenge.is_empty() {
        missing.push("code_challenge");
    }
    if auth.code_challenge_method.is_empty() {
        missing.push("code_challenge_method");
    }
    if auth.state.is_empty() {
        missing.push("state");
    } else if auth.state.chars().count() < 16 {
        return Err(errors::bb2_message(
            StatusCode::BAD_REQUEST,
            "State parameter should have a minimum of 16 characters",
        ));
    }
    if !missing.is_empty() {
        return Err(errors::bb2_message(
            StatusCode::BAD_REQUEST,
            &format!("Missing Required Parameter(s): {}", missing.join(", ")),
        ));
    }
    if auth.code_challenge_method != "S256" {
        return Err(errors::bb2_oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    Ok(())
}

/// A plain SMART server: an unusable client or redirect URI gets an error page (RFC 6749
/// §4.1.2.1 forbids redirecting to it); everything else is redirected back as an error.
#[allow(clippy::result_large_err)]
fn smart_checks(shared: &Shared, redirect_ok: bool, auth: &AuthParams) -> Result<(), Response> {
    if !redirect_ok {
        return Err(errors::html(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "invalid_request : Mismatching redirect URI.",
        ));
    }
    let fail = |description: &str| {
        Err(redirect_back(
            shared,
            Profile::Smart,
            &auth.redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", description),
                ("state", &auth.state),
            ],
        ))
    };
    if auth.state.is_empty() {
        return fail("state is required");
    }
    if auth.code_challenge.is_empty() || auth.code_challenge_method != "S256" {
        return fail("PKCE with code_challenge_method=S256 is required");
    }
    let fhir_base = format!("{}{}", shared.origin(), Profile::Smart.fhir_path());
    if auth.aud != fhir_base && auth.aud != fhir_base.trim_end_matches('/') {
        return fail("aud must be this server's FHIR base URL");
    }
    Ok(())
}

/// The scopes asked for, or every scope the app has when `scope` is absent. An empty list or
/// a scope the app does not have is an error.
fn requested_scopes(
    profile: Profile,
    app_scopes: Option<&[String]>,
    requested: Option<&str>,
) -> Result<Scopes, ()> {
    let available: Scopes = match app_scopes {
        Some(list) => list.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
        None => profile
            .scopes_supported()
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect(),
    };
    let Some(requested) = requested else {
        return Ok(available);
    };
    let scopes = Scopes::parse(requested).map_err(|_| ())?;
    scopes.check_supported(&available).map_err(|_| ())?;
    Ok(scopes)
}

fn is_demographic(scope: &Scope) -> bool {
    DEMOGRAPHIC_SCOPES.contains(&scope.as_str())
        || (scope.resource_type() == Some("Patient") && scope.compartment() == Some("patient"))
}

/// A code shaped like the signed ones SMART's reference server issues (a JWT of some 800
/// characters), for the SMART face: clients must not assume codes are short.
fn signed_code(inner: &mut crate::state::Inner, seed: u64) -> String {
    let header = inner.mint(seed, "code-header", 36);
    let body: String = (0..17).map(|_| inner.mint(seed, "code-body", 43)).collect();
    let signature = inner.mint(seed, "code-signature", 43);
    format!("eyJ{header}.{body}.{signature}")
}

/// `POST /v2/o/authorize/<uuid>/` and `/smart/auth/consent/<uuid>`: Allow or Deny.
pub(crate) async fn consent(
    State(shared): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let uuid = uuid.trim_end_matches('/').to_owned();
    let now = shared.clock.now();
    let approval = shared.lock().approvals.remove(&uuid);
    let Some(approval) = approval.filter(|a| a.expires_at > now) else {
        return errors::bb2_message(StatusCode::NOT_FOUND, "Not found.");
    };
    let posted_state = first(&form, "state").unwrap_or_default();
    if approval.profile == Profile::BlueButton && posted_state.is_empty() {
        return errors::bb2_message(StatusCode::UNAUTHORIZED, "State required in POST body.");
    }
    let auth = &approval.params;
    if first(&form, "allow") != Some("True") {
        return redirect_back(
            &shared,
            approval.profile,
            &auth.redirect_uri,
            &[("error", "access_denied"), ("state", &auth.state)],
        );
    }
    let Some(app) = shared.app(&auth.client_id) else {
        return errors::html(
            StatusCode::BAD_REQUEST,
            "Application inactive",
            "invalid_client : Application does not exist",
        );
    };
    let share =
        app.require_demographics && first(&form, "share_demographic_scopes") == Some("True");
    let mut scopes = approval.scopes.clone();
    if !share {
        scopes.retain(|s| !is_demographic(s));
    }
    if scopes.is_empty() {
        return redirect_back(
            &shared,
            approval.profile,
            &auth.redirect_uri,
            &[("error", "access_denied"), ("state", &auth.state)],
        );
    }
    let expires_at = match app.grant_kind {
        GrantKind::ThirteenMonth => Some(add_months(now, 13)),
        GrantKind::OneTime => Some(now + 3600),
        GrantKind::Research => None,
    };
    let code = {
        let mut inner = shared.lock();
        let key = (auth.client_id.clone(), approval.user, approval.profile);
        // Consenting again replaces the grant (and resets its 13 months).
        inner.grants.insert(key, Grant { expires_at });
        let code = match approval.profile {
            Profile::BlueButton => inner.mint(shared.config.seed, "code", 30),
            Profile::Smart => signed_code(&mut inner, shared.config.seed),
        };
        inner.codes.insert(
            code.clone(),
            CodeRecord {
                profile: approval.profile,
                client_id: auth.client_id.clone(),
                user: approval.user,
                redirect_uri: auth.redirect_uri.clone(),
                challenge: auth.code_challenge.clone(),
                scopes,
                expires_at: now + CODE_TTL,
                used: false,
            },
        );
        code
    };
    redirect_back(
        &shared,
        approval.profile,
        &auth.redirect_uri,
        &[("code", &code), ("state", &auth.state)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scope_means_every_app_scope() {
        let all = requested_scopes(Profile::BlueButton, None, None).unwrap();
        assert_eq!(all.len(), 9);
        assert!(requested_scopes(Profile::BlueButton, None, Some("")).is_err());
        assert!(requested_scopes(Profile::BlueButton, None, Some("offline_access")).is_err());
        let narrow =
            requested_scopes(Profile::BlueButton, None, Some("patient/Coverage.r")).unwrap();
        assert_eq!(narrow.to_string(), "patient/Coverage.r");
        assert!(requested_scopes(Profile::Smart, None, Some("openid offline_access")).is_ok());
    }

    #[test]
    fn redirect_params_are_appended() {
        assert_eq!(
            with_params(
                "http://localhost/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "http://localhost/cb?x=1&code=a+b&state=s"
        );
    }
}
