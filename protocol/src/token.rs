//! Token endpoint responses (RFC 6749 §5.1), read the way Blue Button 2.0 sends them.
//!
//! Blue Button's answer carries `access_token`, `expires_in` (3600, but its docs show floats
//! such as `16768.523842`), `token_type`, the granted `scope`, a `refresh_token`, the
//! `patient` id and `access_grant_expiration` (RFC 3339 with `T` or a space, or `""` for
//! research apps). It never sends an `id_token`; one from another server is ignored.

use crate::prelude::*;

use core::fmt;

use secrecy::{ExposeSecret, SecretString};

#[cfg(feature = "json")]
use crate::error::{Error, Result};
use crate::{
    ids::PatientId,
    scope::Scopes,
    timestamp::{GrantExpiration, Timestamp},
};

/// An OAuth access token. Not `Clone`; `Debug` prints `AccessToken([redacted])`.
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps an access token.
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The token, for the `Authorization: Bearer` header and nowhere else.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// An OAuth refresh token. Blue Button's are single use: each refresh spends it and returns a
/// new one. Not `Clone`; `Debug` prints `RefreshToken([redacted])`.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// Wraps a refresh token.
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The token, for the refresh and revocation requests and nowhere else.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// The `token_type` of a token response (RFC 6749 §7.1), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// `Bearer` (RFC 6750), in any letter case.
    Bearer,
    /// Any other type, as sent.
    Other(String),
}

impl TokenType {
    /// Reads a `token_type`: `bearer` in any case is [`TokenType::Bearer`].
    pub fn parse(raw: &str) -> Self {
        if raw.eq_ignore_ascii_case("bearer") {
            Self::Bearer
        } else {
            Self::Other(raw.to_owned())
        }
    }

    /// `Bearer`, or the other type as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bearer => "Bearer",
            Self::Other(raw) => raw,
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful token endpoint response (authorization code or refresh grant).
///
/// `Debug` is safe to log: both tokens print as `[redacted]`.
#[derive(Debug)]
pub struct TokenResponse {
    access_token: AccessToken,
    token_type: TokenType,
    expires_in: Option<u64>,
    scope: Scopes,
    refresh_token: Option<RefreshToken>,
    patient: Option<PatientId>,
    access_grant_expiration: Option<GrantExpiration>,
    grant_expiration_unreadable: bool,
}

impl TokenResponse {
    /// Parses a 2xx token endpoint body. `requested` is the scope the request asked for: it is
    /// the granted scope when the response has no `scope` (RFC 6749 §5.1).
    ///
    /// Rules:
    /// - `access_token`: required, a non-empty string.
    /// - `token_type`: required, and `Bearer` in any letter case (RFC 6749 §7.1: a token of a
    ///   type the client does not understand must not be used; DPoP is refused by name).
    /// - `expires_in`: optional; an integer, a float (rounded down) or a numeric string;
    ///   negative or non-finite values are refused.
    /// - `refresh_token`, `patient`: optional; `""` counts as absent.
    /// - `access_grant_expiration`: optional ([`GrantExpiration::parse`]; `""` is `Never`). A
    ///   value in no form the parser reads (no time zone, a date alone, 30 February, a number)
    ///   does not fail the response: the code is spent by now, and the grant's end is not
    ///   needed to use the tokens. It reads as unknown ([`Self::grant_expiration_unreadable`]).
    /// - Unknown fields (`id_token` among them) are ignored.
    ///
    /// Errors: [`Error::InvalidJson`] for a body that is not JSON; [`Error::InvalidTokenResponse`]
    /// for a JSON body that breaks the rules above, including one with an `error` field (read
    /// those with `OAuthError::from_response`); [`Error::InvalidScope`] or
    /// from the `scope` parser.
    /// No error message contains the body or a token.
    #[cfg(feature = "json")]
    pub fn from_json(body: &[u8], requested: &Scopes) -> Result<Self> {
        use serde_json::Value;

        let invalid = |reason| Error::InvalidTokenResponse { reason };
        let value: Value = serde_json::from_slice(body).map_err(json_error)?;
        let Value::Object(object) = value else {
            return Err(invalid("not a JSON object"));
        };
        let field = |key: &str| object.get(key).filter(|v| !v.is_null());
        // An optional string field, with "" meaning absent.
        let optional_text = |key: &str, reason| match field(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(reason)),
        };

        if field("error").is_some() {
            return Err(invalid("body is an OAuth error"));
        }

        let access_token = match field("access_token") {
            None => return Err(invalid("access_token is missing")),
            Some(Value::String(s)) if !s.is_empty() => {
                AccessToken::new(SecretString::from(s.as_str()))
            }
            Some(_) => return Err(invalid("access_token is not a non-empty string")),
        };
        let token_type = match field("token_type") {
            None => return Err(invalid("token_type is missing")),
            Some(Value::String(s)) if !s.is_empty() => TokenType::parse(s),
            Some(_) => return Err(invalid("token_type is not a non-empty string")),
        };
        // RFC 6749 §7.1: a client must not use a token whose type it does not understand; sent
        // as a bearer token, a proof-of-possession token would fail or leak.
        match &token_type {
            TokenType::Bearer => {}
            TokenType::Other(kind) if kind.eq_ignore_ascii_case("dpop") => {
                return Err(invalid(
                    "token_type DPoP: sender-constrained (DPoP) tokens are not supported",
                ));
            }
            TokenType::Other(_) => {
                return Err(invalid("token_type is not Bearer, the only type supported"));
            }
        }
        let expires_in = field("expires_in").map(expires_in).transpose()?;
        let scope = match field("scope") {
            None => requested.clone(),
            // An empty `scope` grants nothing: the code is already spent, so keep the
            // response and let the caller see that no read is covered.
            Some(Value::String(s)) if s.trim().is_empty() => Scopes::new(),
            Some(Value::String(s)) => Scopes::parse(s)?,
            Some(_) => return Err(invalid("scope is not a string")),
        };
        let refresh_token = optional_text("refresh_token", "refresh_token is not a string")?
            .map(|s| RefreshToken::new(SecretString::from(s)));
        let patient = optional_text("patient", "patient is not a FHIR id")?
            .map(|s| PatientId::new(s).map_err(|_| invalid("patient is not a FHIR id")))
            .transpose()?;
        let (access_grant_expiration, grant_expiration_unreadable) =
            match field("access_grant_expiration") {
                None | Some(Value::Null) => (None, false),
                Some(Value::String(s)) => match GrantExpiration::parse(s) {
                    Ok(expiration) => (Some(expiration), false),
                    Err(_) => (None, true),
                },
                Some(_) => (None, true),
            };

        Ok(Self {
            access_token,
            token_type,
            expires_in,
            scope,
            refresh_token,
            patient,
            access_grant_expiration,
            grant_expiration_unreadable,
        })
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The token type (Blue Button: `Bearer`).
    pub fn token_type(&self) -> &TokenType {
        &self.token_type
    }

    /// Seconds the access token lives, counted from when the response was received.
    pub fn expires_in(&self) -> Option<u64> {
        self.expires_in
    }

    /// The granted scope: the response's `scope`, or the requested scope when it had none.
    pub fn scope(&self) -> &Scopes {
        &self.scope
    }

    /// The refresh token, if one was issued (Blue Button: none for one-time grants).
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// The FHIR id of the patient the token is for (Blue Button's `patient`).
    pub fn patient(&self) -> Option<&PatientId> {
        self.patient.as_ref()
    }

    /// When the Data Access Grant ends (Blue Button's `access_grant_expiration`); `None` when
    /// the response did not say.
    pub fn access_grant_expiration(&self) -> Option<GrantExpiration> {
        self.access_grant_expiration
    }

    /// Whether the response had an `access_grant_expiration` this parser could not read (its
    /// end is then unknown: [`Self::access_grant_expiration`] is `None`). Worth a log line.
    pub fn grant_expiration_unreadable(&self) -> bool {
        self.grant_expiration_unreadable
    }

    /// When the access token expires, for a response received at `now`; `None` when the
    /// response had no `expires_in` (or on overflow).
    pub fn expires_at(&self, now: Timestamp) -> Option<Timestamp> {
        let seconds = i64::try_from(self.expires_in?).ok()?;
        now.checked_add_seconds(seconds)
    }

    /// Moves the tokens out, without copying the secrets. Read the other fields first.
    pub fn into_tokens(self) -> (AccessToken, Option<RefreshToken>) {
        (self.access_token, self.refresh_token)
    }
}

/// `expires_in` as whole seconds: an integer, a float (rounded down) or a numeric string.
#[cfg(feature = "json")]
fn expires_in(value: &serde_json::Value) -> Result<u64> {
    use serde_json::Value;

    let invalid = |reason| Error::InvalidTokenResponse { reason };
    let from_float = |f: f64| {
        // 2^64 is exactly representable; every finite value below it floors into a u64.
        if !f.is_finite() || f < 0.0 {
            Err(invalid("expires_in is negative or not a number"))
        } else if f >= 18_446_744_073_709_551_616.0 {
            Err(invalid("expires_in is too large"))
        } else {
            // Truncation is the intent: whole seconds, rounded down.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(f.floor() as u64)
        }
    };
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(seconds), _) => Ok(seconds),
            (None, Some(f)) => from_float(f),
            (None, None) => Err(invalid("expires_in is not a number")),
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<u64>() {
                Ok(seconds) => Ok(seconds),
                Err(_) => {
                    let numeric = !s.is_empty()
                        && s.bytes().all(|b| {
                            b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')
                        });
                    match s.parse::<f64>() {
                        Ok(f) if numeric => from_float(f),
                        _ => Err(invalid("expires_in is not a number")),
                    }
                }
            }
        }
        _ => Err(invalid("expires_in is not a number")),
    }
}

/// A `serde_json` parse failure as [`Error::InvalidJson`], without any of the input.
#[cfg(feature = "json")]
fn json_error(e: serde_json::Error) -> Error {
    use serde_json::error::Category;

    // Syntax and EOF messages are fixed texts plus a position; other categories could, in
    // principle, quote the input, so they get a generic text.
    let message = match e.classify() {
        Category::Syntax | Category::Eof => e.to_string(),
        Category::Data | Category::Io => format!(
            "unreadable document at line {} column {}",
            e.line(),
            e.column()
        ),
    };
    Error::InvalidJson(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-a8f3e1";

    #[test]
    fn only_bearer_tokens_are_used() {
        let requested = Scopes::parse("openid").unwrap();
        let body = |kind: &str| {
            format!(r#"{{"access_token":"{CANARY}","token_type":"{kind}","expires_in":3600}}"#)
        };
        for bearer in ["Bearer", "bearer", "BEARER"] {
            let token = TokenResponse::from_json(body(bearer).as_bytes(), &requested).unwrap();
            assert_eq!(token.token_type(), &TokenType::Bearer);
        }
        for other in ["mac", "N_A", "DPoP", "dpop"] {
            let error = TokenResponse::from_json(body(other).as_bytes(), &requested).unwrap_err();
            assert_eq!(error.code(), "invalid_token_response", "{other}");
            let text = error.to_string();
            assert!(!text.contains(CANARY), "{text}");
            if other.eq_ignore_ascii_case("dpop") {
                assert!(
                    text.contains("DPoP") && text.contains("not supported"),
                    "{text}"
                );
            } else {
                assert!(text.contains("not Bearer"), "{text}");
            }
        }
    }

    #[test]
    fn tokens_are_redacted() {
        let access = AccessToken::new(SecretString::from(CANARY));
        let refresh = RefreshToken::new(SecretString::from(CANARY));
        assert_eq!(format!("{access:?}"), "AccessToken([redacted])");
        assert_eq!(format!("{refresh:?}"), "RefreshToken([redacted])");
        assert_eq!(
            format!("{:#?}", Some(&refresh)),
            "Some(\n    RefreshToken([redacted]),\n)"
        );
        assert_eq!(access.expose_secret(), CANARY);
        assert_eq!(refresh.expose_secret(), CANARY);
    }

    #[test]
    fn token_type_is_case_insensitive() {
        for raw in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(TokenType::parse(raw), TokenType::Bearer);
        }
        assert_eq!(TokenType::Bearer.as_str(), "Bearer");
        let dpop = TokenType::parse("DPoP");
        assert_eq!(dpop, TokenType::Other("DPoP".into()));
        assert_eq!(dpop.to_string(), "DPoP");
    }

    #[cfg(feature = "json")]
    mod json {
        use super::*;
        use crate::error::Error;

        fn requested() -> Scopes {
            Scopes::parse("openid patient/Patient.rs patient/Coverage.rs").unwrap()
        }

        fn parse(body: &str) -> Result<TokenResponse> {
            TokenResponse::from_json(body.as_bytes(), &requested())
        }

        fn reason(body: &str) -> &'static str {
            match parse(body).unwrap_err() {
                Error::InvalidTokenResponse { reason } => reason,
                other => panic!("unexpected error {other:?}"),
            }
        }

        const BB2: &str = r#"{
            "access_token": "CANARY-a8f3e1-access",
            "expires_in": 3600,
            "token_type": "Bearer",
            "scope": "patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs profile",
            "refresh_token": "CANARY-a8f3e1-refresh",
            "patient": "-20140000008325",
            "access_grant_expiration": "2027-12-22T10:11:42Z"
        }"#;

        #[test]
        fn blue_button_response() {
            let r = parse(BB2).unwrap();
            assert_eq!(r.access_token().expose_secret(), "CANARY-a8f3e1-access");
            assert_eq!(r.token_type(), &TokenType::Bearer);
            assert_eq!(r.expires_in(), Some(3600));
            assert_eq!(
                r.scope(),
                &Scopes::parse(
                    "patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs profile"
                )
                .unwrap()
            );
            assert_eq!(
                r.refresh_token().unwrap().expose_secret(),
                "CANARY-a8f3e1-refresh"
            );
            assert_eq!(r.patient().unwrap().as_str(), "-20140000008325");
            let at = Timestamp::parse_rfc3339("2027-12-22T10:11:42Z").unwrap();
            assert_eq!(r.access_grant_expiration(), Some(GrantExpiration::At(at)));
            let now = Timestamp::from_unix_seconds(1_800_000_000);
            assert_eq!(
                r.expires_at(now),
                Some(Timestamp::from_unix_seconds(1_800_003_600))
            );

            // Debug of the whole response never shows a token.
            let debug = format!("{r:?}");
            assert!(!debug.contains(CANARY), "{debug}");
            assert!(debug.contains("AccessToken([redacted])"));
            assert!(debug.contains("RefreshToken([redacted])"));
            let pretty = format!("{r:#?}");
            assert!(!pretty.contains(CANARY));

            let (access, refresh) = r.into_tokens();
            assert_eq!(access.expose_secret(), "CANARY-a8f3e1-access");
            assert_eq!(refresh.unwrap().expose_secret(), "CANARY-a8f3e1-refresh");
        }

        #[test]
        fn documented_variants() {
            // The docs' float `expires_in` and space-separated expiration.
            let r = parse(
                r#"{"access_token":"a","token_type":"Bearer","expires_in":16768.523842,
                    "refresh_token":"r","access_grant_expiration":"2025-09-05 19:17:53Z"}"#,
            )
            .unwrap();
            assert_eq!(r.expires_in(), Some(16768));
            assert_eq!(
                r.access_grant_expiration(),
                Some(GrantExpiration::At(
                    Timestamp::parse_rfc3339("2025-09-05T19:17:53Z").unwrap()
                ))
            );

            // Research apps: "" never expires.
            let r = parse(
                r#"{"access_token":"a","token_type":"Bearer","expires_in":36000,
                    "access_grant_expiration":""}"#,
            )
            .unwrap();
            assert_eq!(r.expires_in(), Some(36000));
            assert_eq!(r.access_grant_expiration(), Some(GrantExpiration::Never));
            assert!(r.refresh_token().is_none());
            assert!(r.patient().is_none());
        }

        #[test]
        fn an_unreadable_grant_expiration_does_not_cost_the_sign_in() {
            // Blue Button's known forms read...
            for (raw, readable) in [
                (r#""2027-12-22T10:11:42Z""#, true),
                (r#""2025-09-05 19:17:53Z""#, true),
                (r#""""#, true),
                (r#"null"#, true),
                // ...anything else is unknown, never a failed sign-in.
                (r#""2027-12-22T10:11:42""#, false),
                (r#""2027-12-22""#, false),
                (r#""2027-02-30T00:00:00Z""#, false),
                (r#""2016-12-31T23:59:60Z""#, false),
                (r#"1798000000"#, false),
                (r#"{"at":1}"#, false),
            ] {
                let r = parse(&format!(
                    r#"{{"access_token":"a","token_type":"Bearer","access_grant_expiration":{raw}}}"#
                ))
                .unwrap_or_else(|e| panic!("{raw}: {e}"));
                assert_eq!(r.grant_expiration_unreadable(), !readable, "{raw}");
                if !readable {
                    assert_eq!(r.access_grant_expiration(), None, "{raw}");
                }
            }
        }

        #[test]
        fn missing_and_lenient_fields() {
            // Missing scope means "what was requested"; lowercase bearer; id_token ignored.
            let r = parse(
                r#"{"access_token":"a","token_type":"bearer","id_token":"x.y.z","refresh_token":"",
                    "patient":"","unknown":{"nested":[1]}}"#,
            )
            .unwrap();
            assert_eq!(r.scope(), &requested());
            assert_eq!(r.token_type(), &TokenType::Bearer);
            assert!(r.refresh_token().is_none());
            assert!(r.patient().is_none());
            assert_eq!(r.expires_in(), None);
            assert_eq!(r.expires_at(Timestamp::UNIX_EPOCH), None);
            assert_eq!(r.access_grant_expiration(), None);

            // null is absent too.
            let r = parse(
                r#"{"access_token":"a","token_type":"Bearer","scope":null,"expires_in":null,
                    "refresh_token":null,"access_grant_expiration":null,"error":null}"#,
            )
            .unwrap();
            assert_eq!(r.scope(), &requested());
            assert_eq!(r.access_grant_expiration(), None);

            // expires_in as a string, integer or float.
            for (raw, want) in [
                (r#""3600""#, 3600),
                (r#"" 3600 ""#, 3600),
                (r#""16768.523842""#, 16768),
                ("0", 0),
                ("0.9", 0),
                ("1e3", 1000),
            ] {
                let body =
                    format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{raw}}}"#);
                assert_eq!(parse(&body).unwrap().expires_in(), Some(want), "{raw}");
            }
        }

        #[test]
        fn expires_at_overflow() {
            let body = format!(
                r#"{{"access_token":"a","token_type":"Bearer","expires_in":{}}}"#,
                u64::MAX
            );
            let r = parse(&body).unwrap();
            assert_eq!(r.expires_in(), Some(u64::MAX));
            assert_eq!(r.expires_at(Timestamp::UNIX_EPOCH), None);
        }

        #[test]
        fn refusals() {
            assert_eq!(
                reason(r#"{"token_type":"Bearer","expires_in":3600}"#),
                "access_token is missing"
            );
            assert_eq!(
                reason(r#"{"access_token":"","token_type":"Bearer"}"#),
                "access_token is not a non-empty string"
            );
            assert_eq!(
                reason(r#"{"access_token":42,"token_type":"Bearer"}"#),
                "access_token is not a non-empty string"
            );
            assert_eq!(reason(r#"{"access_token":"a"}"#), "token_type is missing");
            assert_eq!(
                reason(r#"{"access_token":"a","token_type":""}"#),
                "token_type is not a non-empty string"
            );
            for bad in [
                "-1",
                "-0.5",
                r#""NaN""#,
                r#""inf""#,
                r#""-5""#,
                r#""soon""#,
                r#""""#,
                "true",
                "1e30",
            ] {
                let body =
                    format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{bad}}}"#);
                let err = parse(&body).unwrap_err();
                assert_eq!(err.code(), "invalid_token_response", "{bad}");
            }
            assert_eq!(
                reason(r#"{"access_token":"a","token_type":"Bearer","scope":["openid"]}"#),
                "scope is not a string"
            );
            assert_eq!(
                reason(r#"{"access_token":"a","token_type":"Bearer","refresh_token":7}"#),
                "refresh_token is not a string"
            );
            assert_eq!(
                reason(r#"{"access_token":"a","token_type":"Bearer","patient":"a/b"}"#),
                "patient is not a FHIR id"
            );

            assert_eq!(reason("[1]"), "not a JSON object");
            assert_eq!(reason(r#""CANARY-a8f3e1""#), "not a JSON object");
        }

        #[test]
        fn error_bodies_are_refused() {
            assert_eq!(
                reason(r#"{"error":"invalid_grant"}"#),
                "body is an OAuth error"
            );
            assert_eq!(
                reason(
                    r#"{"status_code":403,"error":"invalid_grant","error_description":"User access cannot be found. …"}"#
                ),
                "body is an OAuth error"
            );
            // Even with a token alongside.
            let err =
                parse(r#"{"access_token":"CANARY-a8f3e1","token_type":"Bearer","error":"x"}"#)
                    .unwrap_err();
            assert!(!err.to_string().contains(CANARY));
        }

        #[test]
        fn garbage_is_invalid_json_without_the_body() {
            for body in [
                r#"{"access_token":"CANARY-a8f3e1","token_type":"Bearer""#,
                r#"{"access_token":"CANARY-a8f3e1" "token_type":"Bearer"}"#,
                r#"{"access_token":"CANARY-a8f3e1\q"}"#,
                r#"CANARY-a8f3e1"#,
                r#"{"access_token":"CANARY-a8f3e1","token_type":"Bearer"} CANARY-a8f3e1"#,
                "",
                "<html>oops</html>",
            ] {
                let err = parse(body).unwrap_err();
                assert!(matches!(err, Error::InvalidJson(_)), "{err:?}");
                assert_eq!(err.code(), "invalid_json");
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(CANARY), "{shown}");
            }
            let err = TokenResponse::from_json(b"\xff\xfe", &requested()).unwrap_err();
            assert!(matches!(err, Error::InvalidJson(_)));
        }
    }
}
