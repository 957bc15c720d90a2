//! The redirect back from the authorization server (RFC 6749 §4.1.2 and §4.1.2.1).

use crate::prelude::*;

use core::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    codec::form_pairs,
    error::{Error, Result, msg},
    oauth_error::OAuthError,
    state::State,
    url::{cut, encode_pairs},
};

/// The parameters a callback may carry, removed from the address bar once read.
const CALLBACK_PARAMS: [&str; 7] = [
    "code",
    "state",
    "error",
    "error_description",
    "error_uri",
    "iss",
    "session_state",
];

/// An authorization code (RFC 6749 §4.1.2). Single use, redeemed by the broker only; not
/// `Clone`, `Debug` redacted.
pub struct AuthorizationCode(SecretString);

impl AuthorizationCode {
    /// The longest code accepted. RFC 6749 sets no limit; servers that issue signed codes
    /// (SMART's reference server: 807–865 characters) need far more than short opaque ones.
    /// 4096 leaves room for those and stays well inside the broker's 16 KB request body.
    pub const MAX_LEN: usize = 4096;

    /// Validates a code: 1–[`Self::MAX_LEN`] characters of RFC 6749's `VSCHAR` (%x20–7E, the
    /// space included).
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.is_empty() {
            return Err(Error::MissingParameter("code"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(Error::InvalidCode(msg!("longer than 4096 characters")));
        }
        if !raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(Error::InvalidCode(msg!(
                "characters outside RFC 6749's VSCHAR (%x20-7E)"
            )));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The code, for the one request that redeems it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationCode([redacted])")
    }
}

impl Serialize for AuthorizationCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for AuthorizationCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = SecretString::from(String::deserialize(deserializer)?);
        Self::parse(raw.expose_secret()).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug)]
enum Outcome {
    Code(AuthorizationCode),
    Error(OAuthError),
}

/// A parsed callback: the `state` it names, and either a code or an OAuth error.
///
/// Reading a callback is two steps, so `state` is always checked first: [`Callback::parse`]
/// finds the `state` (the caller looks up its flow with it), then [`Callback::verify`]
/// compares it in constant time with the flow's own, and only then reveals the error or the
/// code.
#[derive(Debug)]
pub struct Callback {
    state: State,
    outcome: Outcome,
    iss: Option<String>,
}

impl Callback {
    /// Reads a redirect URL. `Ok(None)` when the URL is not a callback at all (it has none of
    /// `code`, `state`, `error`). Refuses a callback parameter given twice (the app's own may
    /// repeat), a callback without `state`, a malformed `state`, and one with both `code` and
    /// `error`.
    pub fn parse(url: &str) -> Result<Option<Callback>> {
        let (without_fragment, _) = cut(url, b'#');
        let pairs = form_pairs(cut(without_fragment, b'?').1.unwrap_or_default());
        // The callback's own parameters appear once; the app's may repeat (`?tag=a&tag=b`).
        for (i, (name, _)) in pairs.iter().enumerate() {
            let earlier = pairs.get(..i).unwrap_or_default();
            if CALLBACK_PARAMS.contains(&name.as_str())
                && earlier.iter().any(|(seen, _)| seen == name)
            {
                return Err(Error::DuplicateParameter(name.clone()));
            }
        }
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (code, state, error) = (get("code"), get("state"), get("error"));
        if code.is_none() && state.is_none() && error.is_none() {
            return Ok(None);
        }
        let state = State::parse(state.ok_or(Error::MissingParameter("state"))?)?;
        let outcome = match (code, error) {
            (Some(_), Some(_)) => return Err(Error::ParameterMismatch(msg!("code and error"))),
            (None, Some(error)) => Outcome::Error(OAuthError::from_callback(
                error,
                get("error_description"),
                get("error_uri"),
            )),
            (Some(code), None) => Outcome::Code(AuthorizationCode::parse(code)?),
            (None, None) => return Err(Error::MissingParameter("code")),
        };
        let iss = get("iss").map(str::to_owned);
        Ok(Some(Callback {
            state,
            outcome,
            iss,
        }))
    }

    /// The callback's `iss` (RFC 9207), as sent: the broker checks it against the provider
    /// ([`crate::Provider::check_callback_issuer`]).
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// The `state` the callback names: the key to look up the flow it belongs to. Not yet
    /// trusted — pass the flow's own state to [`Callback::verify`].
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Checks `state` against the flow's (constant time) **before** looking at `error`, then
    /// returns the code, or the server's error as [`Error::Authorization`] (`access_denied`
    /// when the user declined).
    pub fn verify(self, expected: &State) -> Result<AuthorizationCode> {
        if !self.state.matches(expected) {
            return Err(Error::StateMismatch);
        }
        match self.outcome {
            Outcome::Code(code) => Ok(code),
            Outcome::Error(error) => Err(Error::Authorization(Box::new(error))),
        }
    }
}

/// `url` without the callback's parameters (`code`, `state`, `error`, ...), for
/// `history.replaceState`: the code must not stay in the address bar, the history or a
/// `Referer`. Other parameters and the fragment are kept.
pub fn strip_callback_params(url: &str) -> String {
    let (before_fragment, fragment) = cut(url, b'#');
    let (base, query) = cut(before_fragment, b'?');
    let mut kept = form_pairs(query.unwrap_or_default());
    kept.retain(|(k, _)| !CALLBACK_PARAMS.contains(&k.as_str()));
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&encode_pairs(
            kept.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth_error::OAuthErrorCode;

    fn state() -> State {
        State::from_random_bytes([8; 32])
    }

    #[test]
    fn not_a_callback() {
        assert!(
            Callback::parse("https://app.example.com/")
                .unwrap()
                .is_none()
        );
        assert!(
            Callback::parse("https://app.example.com/?page=2#x")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn code_after_matching_state() {
        let s = state();
        let url = format!(
            "https://app.example.com/callback?code=abc123&state={}",
            s.as_str()
        );
        let cb = Callback::parse(&url).unwrap().unwrap();
        assert!(cb.state().matches(&s));
        assert_eq!(cb.verify(&s).unwrap().expose_secret(), "abc123");
    }

    #[test]
    fn state_is_checked_before_error() {
        let s = state();
        let other = State::from_random_bytes([9; 32]);
        let url = format!(
            "https://app.example.com/callback?error=access_denied&state={}",
            other.as_str()
        );
        let cb = Callback::parse(&url).unwrap().unwrap();
        assert_eq!(cb.verify(&s).unwrap_err(), Error::StateMismatch);
    }

    #[test]
    fn access_denied_is_typed() {
        let s = state();
        let url = format!(
            "https://app.example.com/callback?error=access_denied&error_description=The+user+said+no&state={}",
            s.as_str()
        );
        let err = Callback::parse(&url)
            .unwrap()
            .unwrap()
            .verify(&s)
            .unwrap_err();
        assert_eq!(err.code(), "access_denied");
        match err {
            Error::Authorization(e) => {
                assert_eq!(e.code(), &OAuthErrorCode::AccessDenied);
                assert_eq!(e.description(), Some("The user said no"));
            }
            other => panic!("expected an authorization error, got {other:?}"),
        }
    }

    #[test]
    fn other_rfc6749_errors_are_typed() {
        let s = state();
        for (raw, code) in [
            ("invalid_request", OAuthErrorCode::InvalidRequest),
            ("unauthorized_client", OAuthErrorCode::UnauthorizedClient),
            (
                "unsupported_response_type",
                OAuthErrorCode::UnsupportedResponseType,
            ),
            ("invalid_scope", OAuthErrorCode::InvalidScope),
            ("server_error", OAuthErrorCode::ServerError),
            (
                "temporarily_unavailable",
                OAuthErrorCode::TemporarilyUnavailable,
            ),
        ] {
            let url = format!("https://a.example/cb?error={raw}&state={}", s.as_str());
            match Callback::parse(&url).unwrap().unwrap().verify(&s) {
                Err(Error::Authorization(e)) => assert_eq!(e.code(), &code),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn hostile_callbacks_are_refused() {
        let s = state();
        let dup_state = format!(
            "https://a.example/cb?code=x&state={0}&state={0}",
            s.as_str()
        );
        assert_eq!(
            Callback::parse(&dup_state).unwrap_err(),
            Error::DuplicateParameter("state".into())
        );
        let dup_code = format!("https://a.example/cb?code=x&code=y&state={}", s.as_str());
        assert_eq!(
            Callback::parse(&dup_code).unwrap_err(),
            Error::DuplicateParameter("code".into())
        );
        assert_eq!(
            Callback::parse("https://a.example/cb?code=x").unwrap_err(),
            Error::MissingParameter("state")
        );
        assert_eq!(
            Callback::parse("https://a.example/cb?code=x&state=short").unwrap_err(),
            Error::InvalidState
        );
        let both = format!(
            "https://a.example/cb?code=x&error=access_denied&state={}",
            s.as_str()
        );
        assert!(Callback::parse(&both).is_err());
        // The app's own parameters may repeat, on a callback or on any other page.
        let tags = format!(
            "https://a.example/cb?tag=a&code=x&tag=b&state={}",
            s.as_str()
        );
        assert!(Callback::parse(&tags).unwrap().is_some());
        assert!(
            Callback::parse("https://a.example/search?tag=a&tag=b")
                .unwrap()
                .is_none()
        );
        let dup_iss = format!(
            "https://a.example/cb?code=x&iss=a&iss=b&state={}",
            s.as_str()
        );
        assert!(Callback::parse(&dup_iss).is_err());
        let no_code = format!("https://a.example/cb?state={}", s.as_str());
        assert_eq!(
            Callback::parse(&no_code).unwrap_err(),
            Error::MissingParameter("code")
        );
        let empty_code = format!("https://a.example/cb?code=&state={}", s.as_str());
        assert!(Callback::parse(&empty_code).is_err());
    }

    #[test]
    fn code_debug_is_redacted() {
        let code = AuthorizationCode::parse("canary-code-value").unwrap();
        assert!(!format!("{code:?}").contains("canary"));
    }

    #[test]
    fn stripping_keeps_other_parameters() {
        assert_eq!(
            strip_callback_params("https://a.example/cb?code=x&state=y&tab=claims#top"),
            "https://a.example/cb?tab=claims#top"
        );
        assert_eq!(
            strip_callback_params("https://a.example/cb?error=access_denied&state=y"),
            "https://a.example/cb"
        );
    }
}
