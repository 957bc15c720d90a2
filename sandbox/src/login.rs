//! Signing in, as each face does it.
//!
//! **Blue Button** does not sign beneficiaries in itself: Medicare.gov does, on another origin.
//! An authorize request from a browser that is not signed in is sent through this chain
//! (as `apps/dot_ext/views/authorization.py` and `apps/mymedicare_cb/views.py` do it):
//!
//! 1. `302` to `/mymedicare/login?next=<the authorize path and its parameters>` (a form POST's
//!    body fields are carried into `next` as a query);
//! 2. `/mymedicare/login` remembers `next` under a `relay` value and answers `302` to the
//!    Medicare login **on its own origin**: `{login}/sso/authorize?client_id=bb2api&relay=…&
//!    redirect_uri={bb2}/mymedicare/sls-callback`;
//! 3. the login page posts the credentials to itself and answers `302` to that `redirect_uri`
//!    with a one-time `req_token` and the `relay`;
//! 4. `/mymedicare/sls-callback` redeems the `req_token`, signs the browser in to Blue Button
//!    (a cookie on Blue Button's origin) and answers `302` to `next`, the consent page.
//!
//! A browser applies the page's `form-action` CSP to every hop of a form POST's redirects, so
//! an app posting its authorize request must allow the login's origin too; the emulator's
//! login has its own listener so that the tests see what Chromium does with that.
//!
//! **The SMART face** signs in on its own origin (`/smart/auth/login`), as SMART's reference
//! launcher does.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    errors::{self, found},
    form::{Pairs, first, pairs},
    pages,
    state::{Profile, Shared, Ticket},
};

/// The cookie that says a browser is signed in to the sandbox (either face).
const LOGIN_COOKIE: &str = "bb2_sandbox_session";
/// How long a `relay` (between steps 2 and 4) and a `req_token` (3 to 4) stay usable.
const HOP_TTL: i64 = 600;
/// The client id Blue Button presents to the Medicare login.
const MEDICARE_LOGIN_CLIENT: &str = "bb2api";
/// Where the Medicare login sends the browser back to, on Blue Button's origin.
const SLS_CALLBACK: &str = "/mymedicare/sls-callback";

/// The user a browser is signed in as, from its sandbox cookie.
pub(crate) fn signed_in(shared: &Shared, headers: &HeaderMap) -> Option<usize> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == LOGIN_COOKIE).then_some(value)
    })?;
    shared.lock().logins.get(value).copied()
}

/// Where an authorize request goes when nobody is signed in: `login_path?next=<path?query>`.
pub(crate) fn login_redirect(login_path: &str, authorize_path: &str, params: &Pairs) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let next = format!("{authorize_path}?{}", query.finish());
    let mut login = form_urlencoded::Serializer::new(String::new());
    login.append_pair("next", &next);
    found(&format!("{login_path}?{}", login.finish()))
}

/// Where a sign-in returns to: the face's authorize path with `next`'s query only, as Blue
/// Button's callback rebuilds it (`apps/mymedicare_cb/views.py`), so no `next` can send the
/// browser anywhere else.
fn back_to_authorize(profile: Profile, next: &str) -> String {
    let query = next.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    format!("{}?{query}", profile.authorize_path())
}

/// Checks the synthetic credentials (in constant time per user).
fn check_credentials(shared: &Shared, form: &Pairs) -> Option<usize> {
    let username = first(form, "username").unwrap_or_default();
    let password = first(form, "password").unwrap_or_default();
    shared
        .data
        .user_by_name(username)
        .filter(|u| {
            subtle::ConstantTimeEq::ct_eq(u.password.as_bytes(), password.as_bytes()).into()
        })
        .map(|u| u.index)
}

/// A redirect back to the authorize request in `next` that signs the browser in as `user`.
fn sign_in(shared: &Shared, user: usize, profile: Profile, next: &str) -> Response {
    let session = {
        let mut inner = shared.lock();
        let session = inner.mint(shared.config.seed, "login", 32);
        inner.logins.insert(session.clone(), user);
        session
    };
    let mut response = found(&back_to_authorize(profile, next));
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

const REFUSED: &str = "Invalid username or password.";

/// Step 2, `GET /mymedicare/login?next=…` on Blue Button's origin.
pub(crate) async fn bb2_login(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> Response {
    let params = pairs(q.unwrap_or_default().as_bytes());
    let next = first(&params, "next").unwrap_or_default().to_owned();
    let now = shared.clock.now();
    let relay = {
        let mut inner = shared.lock();
        inner.relays.retain(|_, (_, at)| *at > now);
        let relay = inner.mint(shared.config.seed, "relay", 26);
        inner.relays.insert(relay.clone(), (next, now + HOP_TTL));
        relay
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", MEDICARE_LOGIN_CLIENT);
    query.append_pair("relay", &relay);
    query.append_pair(
        "redirect_uri",
        &format!("{}{SLS_CALLBACK}", shared.origin()),
    );
    found(&format!(
        "{}/sso/authorize?{}",
        shared.login_origin(),
        query.finish()
    ))
}

/// Step 4, `GET /mymedicare/sls-callback?req_token=…&relay=…` on Blue Button's origin.
pub(crate) async fn sls_callback(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> Response {
    let params = pairs(q.unwrap_or_default().as_bytes());
    let refuse = |message: &str| errors::json(StatusCode::BAD_REQUEST, json!({"error": message}));
    let Some(relay) = first(&params, "relay").filter(|r| !r.is_empty()) else {
        return refuse("The state parameter is required");
    };
    let now = shared.clock.now();
    let (next, user) = {
        let mut inner = shared.lock();
        if inner.relays.get(relay).is_none_or(|(_, at)| *at <= now) {
            return refuse("The requested state was not found");
        }
        // The request token must be live and issued for this very relay; both are used up
        // together, only once both check out.
        let ticket = first(&params, "req_token").unwrap_or_default();
        let user = inner
            .tickets
            .get(ticket)
            .filter(|t| t.relay == relay && t.expires_at > now)
            .map(|t| t.user);
        let Some(user) = user else {
            return refuse(
                "The Medicare login's request token is unknown, used or not this relay's",
            );
        };
        inner.tickets.remove(ticket);
        let next = inner.relays.remove(relay).map(|(next, _)| next);
        (next.unwrap_or_default(), user)
    };
    sign_in(&shared, user, Profile::BlueButton, &next)
}

/// The Medicare login's own listener: `/sso/authorize`, the page (GET) and its form (POST).
pub(crate) fn medicare_login_routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sso/authorize", get(login_form).post(login_submit))
        .with_state(shared)
}

/// The Medicare login answers only its registered client, sending it back only to Blue
/// Button's callback: the request's `relay` and that callback, or `None`.
fn login_request(shared: &Shared, params: &Pairs) -> Option<(String, String)> {
    let callback = format!("{}{SLS_CALLBACK}", shared.origin());
    let relay = first(params, "relay").unwrap_or_default();
    let client_ok = first(params, "client_id") == Some(MEDICARE_LOGIN_CLIENT);
    let back_ok = first(params, "redirect_uri") == Some(callback.as_str());
    (client_ok && back_ok && !relay.is_empty()).then(|| (relay.to_owned(), callback))
}

/// The Medicare login's answer to any other request.
fn unknown_login_request() -> Response {
    errors::html(
        StatusCode::BAD_REQUEST,
        "Bad request",
        "Unknown client, redirect_uri or relay.",
    )
}

fn login_form_page(relay: &str, callback: &str, error: Option<&str>) -> Response {
    Html(pages::login_page(
        "/sso/authorize",
        &[
            ("client_id", MEDICARE_LOGIN_CLIENT),
            ("relay", relay),
            ("redirect_uri", callback),
        ],
        error,
    ))
    .into_response()
}

/// `GET {login}/sso/authorize`: the sign-in page.
async fn login_form(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let params = pairs(q.unwrap_or_default().as_bytes());
    match login_request(&shared, &params) {
        Some((relay, callback)) => login_form_page(&relay, &callback, None),
        None => unknown_login_request(),
    }
}

/// `POST {login}/sso/authorize`: the credentials; back to Blue Button with a `req_token`.
async fn login_submit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = pairs(&body);
    let Some((relay, callback)) = login_request(&shared, &form) else {
        return unknown_login_request();
    };
    let Some(user) = check_credentials(&shared, &form) else {
        return login_form_page(&relay, &callback, Some(REFUSED));
    };
    let now = shared.clock.now();
    let ticket = {
        let mut inner = shared.lock();
        inner.tickets.retain(|_, t| t.expires_at > now);
        let ticket = inner.mint(shared.config.seed, "req_token", 32);
        let issued = Ticket {
            user,
            relay: relay.clone(),
            expires_at: now + HOP_TTL,
        };
        inner.tickets.insert(ticket.clone(), issued);
        ticket
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("req_token", &ticket);
    query.append_pair("relay", &relay);
    found(&format!("{callback}?{}", query.finish()))
}

/// `GET /smart/auth/login?next=…`: the SMART face's own sign-in page.
pub(crate) async fn smart_login_form(RawQuery(q): RawQuery) -> Response {
    let params = pairs(q.unwrap_or_default().as_bytes());
    let next = first(&params, "next").unwrap_or("/");
    Html(pages::login_page(
        "/smart/auth/login",
        &[("next", next)],
        None,
    ))
    .into_response()
}

/// `POST /smart/auth/login`: the credentials; back to `next` (a local path only).
pub(crate) async fn smart_login_submit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = pairs(&body);
    let next = first(&form, "next").unwrap_or("/");
    match check_credentials(&shared, &form) {
        Some(user) => sign_in(&shared, user, Profile::Smart, next),
        None => Html(pages::login_page(
            "/smart/auth/login",
            &[("next", next)],
            Some(REFUSED),
        ))
        .into_response(),
    }
}
