//! The broker's two cookies. Both are `__Host-`, `Secure`, `HttpOnly`, `Path=/`, without
//! `Domain`; the session cookie is `SameSite=Strict`, the flow cookie `SameSite=Lax` (it must
//! survive the top-level navigation back from the authorization server). There is no switch
//! to make them less strict: Chromium treats `http://localhost` as a secure context, and
//! Rust tests send the `Cookie` header themselves.

use std::convert::Infallible;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, header, request::Parts},
};
use connect_medicare_protocol::contract::{FLOW_COOKIE, SESSION_COOKIE};
use cookie::{Cookie, SameSite, time::Duration};

use crate::ids::{FlowCookie, SessionId};

/// `Set-Cookie` for a new session.
pub(crate) fn session(id: &SessionId, max_age: i64) -> HeaderValue {
    set(
        SESSION_COOKIE,
        id.expose_secret(),
        SameSite::Strict,
        max_age,
    )
}

/// `Set-Cookie` for a new flow.
pub(crate) fn flow(cookie: &FlowCookie, max_age: i64) -> HeaderValue {
    set(FLOW_COOKIE, cookie.expose_secret(), SameSite::Lax, max_age)
}

/// `Set-Cookie` that deletes the session cookie.
pub(crate) fn clear_session() -> HeaderValue {
    set(SESSION_COOKIE, "", SameSite::Strict, 0)
}

/// `Set-Cookie` that deletes the flow cookie.
pub(crate) fn clear_flow() -> HeaderValue {
    set(FLOW_COOKIE, "", SameSite::Lax, 0)
}

fn set(name: &'static str, value: &str, same_site: SameSite, max_age: i64) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(same_site)
        .max_age(Duration::seconds(max_age))
        .build();
    // Cookie values are base64url, names are constants: always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request's `Cookie` headers (each read as RFC 6265's
/// `cookie-string` by the `cookie` crate). A cookie sent twice (a shadowing attempt from a
/// sibling subdomain cannot set `__Host-`, but be strict anyway) counts as absent.
fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for cookie in Cookie::split_parse(value).filter_map(Result::ok) {
            if cookie.name() == name {
                if found.is_some() {
                    return None;
                }
                found = cookie.value_raw();
            }
        }
    }
    found
}

/// The session cookie the browser sent, read from the request's headers (an extractor that
/// never rejects: what the cookie amounts to is for the store to say, see
/// `session::CurrentSession`).
pub(crate) enum SessionCookie {
    /// None (or the name twice: counted as none).
    Absent,
    /// One that cannot be a session id of this broker: tampered or truncated.
    Malformed,
    /// A well-formed id (which the store may or may not know).
    Id(SessionId),
}

impl SessionCookie {
    /// The session cookie among `headers`.
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        match get(headers, SESSION_COOKIE) {
            None => Self::Absent,
            Some(value) => SessionId::parse(value).map_or(Self::Malformed, Self::Id),
        }
    }

    /// The session id, if the cookie is well formed.
    pub(crate) fn id(self) -> Option<SessionId> {
        match self {
            Self::Id(id) => Some(id),
            Self::Absent | Self::Malformed => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::read(&parts.headers))
    }
}

/// The flow cookie the browser sent, if well formed.
pub(crate) fn flow_cookie(headers: &HeaderMap) -> Option<FlowCookie> {
    get(headers, FLOW_COOKIE).and_then(FlowCookie::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_every_attribute() {
        let id = SessionId::from_random_bytes([7; 32]);
        let value = session(&id, 100);
        let text = value.to_str().unwrap();
        assert!(text.starts_with("__Host-cm-session="));
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=100",
        ] {
            assert!(text.contains(attribute), "{text}");
        }
        assert!(!text.contains("Domain"));
        let flow_text = flow(&FlowCookie::from_random_bytes([8; 32]), 600);
        assert!(flow_text.to_str().unwrap().contains("SameSite=Lax"));
        assert!(clear_session().to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn reads_cookies_and_refuses_duplicates() {
        let id = SessionId::from_random_bytes([7; 32]);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; __Host-cm-session={}", id.expose_secret()))
                .unwrap(),
        );
        assert_eq!(
            SessionCookie::read(&headers).id().unwrap().hash(),
            id.hash()
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("__Host-cm-session={}", id.expose_secret())).unwrap(),
        );
        assert!(SessionCookie::read(&headers).id().is_none());
        let mut bad = HeaderMap::new();
        bad.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-cm-session=short"),
        );
        assert!(SessionCookie::read(&bad).id().is_none());
    }
}
