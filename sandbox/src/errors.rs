//! The sandbox's error answers, with the statuses and bodies Blue Button sends, verbatim
//! (the message constants of the CMS server's settings; the real server's answers are in
//! `fixtures/bb2-observed/`), and the bodiless redirect Django writes.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// "User access has timed out. …" — the grant's 13 months (or one hour) are over.
pub(crate) const ACCESS_TIMED_OUT: &str = "User access has timed out. To refresh Medicare data, \
     end user must re-authenticate and consent to share their data.";
/// "User access cannot be found. …" — the grant was revoked or deleted.
pub(crate) const ACCESS_NOT_FOUND: &str = "User access cannot be found. To refresh Medicare data, \
     end user must re-authenticate and consent to share their data.";
/// A one-time app tried to refresh.
pub(crate) const ONE_TIME_REFRESH: &str = "Your application is not allowed to refresh tokens. \
     To refresh Medicare data, end user must re-authenticate and consent to share their data. \
     If your application needs to refresh tokens, contact us at BlueButtonAPI@cms.hhs.gov.";
/// DRF's answer to a missing or unusable bearer token.
pub(crate) const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
/// DRF's answer to a missing scope (or withheld demographics).
pub(crate) const NO_PERMISSION: &str = "You do not have permission to perform this action.";
/// Blue Button's answer when its backend fails (`apps/fhir/bluebutton/exceptions.py`).
pub(crate) const UPSTREAM_ERROR: &str = "An error occurred contacting the upstream server";

/// A JSON answer with `status`. Blue Button sends no `Cache-Control` on its own answers.
pub(crate) fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// An answer of django-oauth-toolkit's own (the token endpoint's tokens and OAuth errors): with
/// `Cache-Control: no-store` and `Pragma: no-cache`, which Blue Button's wrapped errors
/// (`status_code` in the body) do not carry.
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `{"status_code":N,"message":…}` — Blue Button's plain shape.
pub(crate) fn bb2_message(status: StatusCode, message: &str) -> Response {
    json(
        status,
        json!({"status_code": status.as_u16(), "message": message}),
    )
}

/// `{"status_code":N,"error":…,"error_description":…}` — Blue Button's OAuth-wrapped shape.
pub(crate) fn bb2_oauth(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"status_code": status.as_u16(), "error": error, "error_description": description}),
    )
}

/// `{"error":…}` — RFC 6749 §5.2, as django-oauth-toolkit answers it (not cached).
pub(crate) fn oauth(status: StatusCode, error: &str) -> Response {
    no_store(json(status, json!({"error": error})))
}

/// `{"error":…,"error_description":…}` — RFC 6749 §5.2 with a description (not cached).
pub(crate) fn oauth_described(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(json(
        status,
        json!({"error": error, "error_description": description}),
    ))
}

/// `{"detail":…}` — the FHIR views' (Django REST framework) shape.
pub(crate) fn detail(status: StatusCode, detail: &str) -> Response {
    json(status, json!({"detail": detail}))
}

/// Why a FHIR view refused the caller's bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    /// No bearer token at all.
    Missing,
    /// Unknown, revoked, replaced, or of a deleted grant.
    Invalid,
    /// Known, but past its hour.
    Expired,
}

/// 401 `{"detail":"Authentication credentials were not provided."}` with Blue Button's bearer
/// challenge: bare (`Bearer realm="api"`) without a token, else naming the problem — "The
/// access token is invalid." or "The access token has expired.".
pub(crate) fn invalid_token(problem: TokenProblem) -> Response {
    let mut response = detail(StatusCode::UNAUTHORIZED, NOT_AUTHENTICATED);
    let challenge = match problem {
        TokenProblem::Missing => "Bearer realm=\"api\"",
        TokenProblem::Invalid => {
            "Bearer realm=\"api\",error=\"invalid_token\",error_description=\"The access token is invalid.\""
        }
        TokenProblem::Expired => {
            "Bearer realm=\"api\",error=\"invalid_token\",error_description=\"The access token has expired.\""
        }
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// 401 with a `detail` and the bare bearer challenge: the grant behind a valid token ended.
pub(crate) fn grant_ended(detail_text: &str) -> Response {
    let mut response = detail(StatusCode::UNAUTHORIZED, detail_text);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"api\""),
    );
    response
}

/// A bare HTML page, as Django renders its error templates.
pub(crate) fn html(status: StatusCode, title: &str, message: &str) -> Response {
    let body = crate::pages::error_page(title, message);
    (status, axum::response::Html(body)).into_response()
}

/// `text/html; charset=utf-8`: what Django writes on answers without a body of their own
/// (redirects, the revocation views' empty 200s).
pub(crate) const DJANGO_HTML: &str = "text/html; charset=utf-8";

/// `302 Found` to `location`, bodiless, as Django writes its redirects.
pub(crate) fn found(location: &str) -> Response {
    let mut response = (StatusCode::FOUND, [(header::CONTENT_TYPE, DJANGO_HTML)]).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
