//! OAuth errors as authorization servers and Blue Button 2.0 actually send them.
//!
//! Blue Button answers in several shapes (`fixtures/bb2-observed/`): RFC 6749
//! `{"error":...}`, its own `{"status_code":N,"error":...,"error_description":...}` and
//! `{"status_code":N,"message":...}`, Django REST Framework's `{"detail":...}` on the FHIR
//! views, FHIR `OperationOutcome`s from the data backend, and sometimes an HTML page.
//! [`OAuthError::from_response`] reads all of them into one type and never fails.
//!
//! Classify on the `error` code, not the HTTP status: an expired grant is `401 invalid_grant`,
//! a revoked one `403 invalid_grant`, a spent refresh token `400 invalid_grant`.

use crate::prelude::*;

use core::fmt;

/// The most bytes of a response body (and of a description) kept for diagnosis.
const MAX_KEPT: usize = 1024;

/// An OAuth `error` code: RFC 6749 §4.1.2.1 and §5.2, plus RFC 6750's `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or grant is invalid, spent, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `access_denied`: the user (or the server) declined.
    AccessDenied,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `invalid_token` (RFC 6750 §3.1): the access token is expired, revoked or malformed.
    InvalidToken,
    /// Any other non-empty `error` string, kept as sent.
    Other(String),
    /// The body had no `error` field (or an empty one).
    Unspecified,
}

impl OAuthErrorCode {
    /// Reads an `error` value. Codes are case-sensitive, as in RFC 6749; an empty string is
    /// [`OAuthErrorCode::Unspecified`].
    pub fn parse(raw: &str) -> Self {
        match raw {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "invalid_token" => Self::InvalidToken,
            "" => Self::Unspecified,
            other => Self::Other(truncate(other, MAX_KEPT).to_owned()),
        }
    }

    /// A stable machine code: the RFC name, `"other"` for [`OAuthErrorCode::Other`] and
    /// `"unspecified"` for [`OAuthErrorCode::Unspecified`]. See [`OAuthErrorCode::raw`] for
    /// the string the server sent.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::Other(_) => "other",
            Self::Unspecified => "unspecified",
        }
    }

    /// The code as the server sent it (for [`OAuthErrorCode::Other`], its original string).
    pub fn raw(&self) -> &str {
        match self {
            Self::Other(raw) => raw,
            known => known.as_str(),
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    /// The code as the server sent it ([`OAuthErrorCode::raw`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw())
    }
}

/// Which body shape an [`OAuthError`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorShape {
    /// RFC 6749 §5.2: `{"error":..., "error_description"?:..., "error_uri"?:...}`, or the
    /// query parameters of an error redirect.
    Rfc6749,
    /// Blue Button's wrapped OAuth error: `{"status_code":N,"error":...,"error_description":...}`.
    BlueButtonOAuth,
    /// Blue Button's plain error: `{"status_code":N,"message":...}`.
    BlueButtonMessage,
    /// Django REST Framework, on Blue Button's FHIR views: `{"detail":...}`.
    FhirDetail,
    /// A FHIR `OperationOutcome`; the description is `issue[0].diagnostics`.
    OperationOutcome,
    /// An HTML page; the description is its `<title>` or first `<h1>`.
    Html,
    /// Anything else: not JSON, or JSON of no known shape.
    Unknown,
}

/// An OAuth (or OAuth-adjacent) error from an authorization server or a FHIR API.
///
/// Built from an error redirect ([`OAuthError::from_callback`]) or an HTTP error response
/// (`OAuthError::from_response`, with the `json` feature). The raw body is kept, truncated
/// to 1024 bytes, for diagnosis.
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthError {
    status: Option<u16>,
    code: OAuthErrorCode,
    description: Option<String>,
    uri: Option<String>,
    shape: ErrorShape,
    body: String,
}

impl OAuthError {
    /// The error carried by an authorization redirect (`error`, `error_description`,
    /// `error_uri` query parameters, RFC 6749 §4.1.2.1). It has no status and no body.
    pub fn from_callback(error: &str, description: Option<&str>, uri: Option<&str>) -> Self {
        Self {
            status: None,
            code: OAuthErrorCode::parse(error),
            description: non_empty(description),
            uri: non_empty(uri),
            shape: ErrorShape::Rfc6749,
            body: String::new(),
        }
    }

    /// Reads an HTTP error response. Never fails: a body of no known shape gives
    /// [`ErrorShape::Unknown`] (or [`ErrorShape::Html`]) with [`OAuthErrorCode::Unspecified`].
    ///
    /// `status` is the HTTP status; pass `0` when it is unknown, and the body's `status_code`
    /// (Blue Button's shapes) is used instead. `content_type` is the `Content-Type` header, if
    /// any: `text/html` marks a page that is not JSON as [`ErrorShape::Html`].
    ///
    /// A JSON body that holds an `access_token` or `refresh_token` is not kept.
    #[cfg(feature = "json")]
    pub fn from_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let mut error = Self {
            status: (status != 0).then_some(status),
            code: OAuthErrorCode::Unspecified,
            description: None,
            uri: None,
            shape: ErrorShape::Unknown,
            body: truncate(&text, MAX_KEPT).to_owned(),
        };
        let trimmed = text.trim_start();
        if trimmed.starts_with('{')
            && let Ok(serde_json::Value::Object(object)) = serde_json::from_str(trimmed)
        {
            error.read_json(&object);
            return error;
        }
        let is_html_type = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/html"))
        });
        if trimmed.starts_with('<') || is_html_type {
            error.shape = ErrorShape::Html;
            error.description = html_heading(&text);
        }
        error
    }

    /// Fills code, description, uri and shape from a JSON object body.
    #[cfg(feature = "json")]
    fn read_json(&mut self, object: &serde_json::Map<String, serde_json::Value>) {
        use serde_json::Value;

        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let body_status = object
            .get("status_code")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        if self.status.is_none() {
            self.status = body_status;
        }
        if object.contains_key("access_token") || object.contains_key("refresh_token") {
            self.body = String::from("[not kept: the body holds a token]");
        }

        if let Some(code) = text("error") {
            self.shape = if object.contains_key("status_code") {
                ErrorShape::BlueButtonOAuth
            } else {
                ErrorShape::Rfc6749
            };
            self.code = OAuthErrorCode::parse(code);
            self.description = non_empty(text("error_description").or_else(|| text("message")));
            self.uri = non_empty(text("error_uri"));
        } else if let Some(message) = text("message") {
            self.shape = ErrorShape::BlueButtonMessage;
            self.description = non_empty(Some(message));
        } else if let Some(detail) = text("detail") {
            self.shape = ErrorShape::FhirDetail;
            self.description = non_empty(Some(detail));
        } else if text("resourceType") == Some("OperationOutcome") {
            self.shape = ErrorShape::OperationOutcome;
            let issue = object
                .get("issue")
                .and_then(Value::as_array)
                .and_then(|issues| issues.first());
            let diagnostics = issue
                .and_then(|i| i.get("diagnostics"))
                .and_then(Value::as_str);
            let details = issue
                .and_then(|i| i.pointer("/details/text"))
                .and_then(Value::as_str);
            self.description = non_empty(diagnostics.or(details));
        }
    }

    /// The HTTP status, or Blue Button's `status_code` from the body when the HTTP status is
    /// unknown; `None` for an error redirect.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The `error` code.
    pub fn code(&self) -> &OAuthErrorCode {
        &self.code
    }

    /// The human explanation: `error_description`, `message`, `detail`, an OperationOutcome's
    /// `diagnostics`, or an HTML page's title. At most 1024 bytes.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `error_uri`, if any.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// Which body shape this was read from.
    pub fn shape(&self) -> ErrorShape {
        self.shape
    }

    /// The raw response body, truncated to at most 1024 bytes (on a character boundary); empty
    /// for an error redirect.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// `invalid_grant`: the grant behind this connection is gone — a spent or unknown code or
    /// refresh token (400), an expired grant (401), a revoked or deleted grant (403). The user
    /// must connect again.
    pub fn is_invalid_grant(&self) -> bool {
        self.code == OAuthErrorCode::InvalidGrant
    }

    /// `invalid_client`: the client's credentials (or its right to this grant type) were
    /// refused. A configuration problem, not the user's.
    pub fn is_invalid_client(&self) -> bool {
        self.code == OAuthErrorCode::InvalidClient
    }

    /// `access_denied`: the user declined consent.
    pub fn is_access_denied(&self) -> bool {
        self.code == OAuthErrorCode::AccessDenied
    }

    /// HTTP 429: rate limited (honour `Retry-After`).
    pub fn is_throttled(&self) -> bool {
        self.status == Some(429)
    }
}

impl fmt::Display for OAuthError {
    /// `code (HTTP status): description`, leaving out the parts that are absent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.raw())?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl core::error::Error for OAuthError {}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    loop {
        // `get` is `None` inside a character; at 0 it is always `Some`.
        if let Some(kept) = s.get(..end) {
            return kept;
        }
        end -= 1;
    }
}

/// An owned, truncated copy of a non-empty string.
fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.chars().all(char::is_whitespace))
        .map(|s| truncate(s, MAX_KEPT).to_owned())
}

/// The text of an HTML page's `<title>`, else of its first `<h1>`, tags stripped, a few
/// entities decoded and whitespace collapsed.
#[cfg(feature = "json")]
fn html_heading(html: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so indexes found in `lower` are valid in `html`.
    let lower = html.to_ascii_lowercase();
    let element = |name: &str| -> Option<String> {
        let open = format!("<{name}");
        let mut from = 0;
        let start = loop {
            let at = from + lower[from..].find(&open)?;
            let after = at + open.len();
            match lower.as_bytes().get(after) {
                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/') => break after,
                _ => from = after,
            }
        };
        let content = start + lower[start..].find('>')? + 1;
        let end = content + lower[content..].find(&format!("</{name}"))?;
        let text = strip_tags(&html[content..end]);
        (!text.is_empty()).then(|| truncate(&text, MAX_KEPT).to_owned())
    };
    element("title").or_else(|| element("h1"))
}

/// Inner HTML to plain text: tags dropped, common entities decoded, whitespace collapsed.
#[cfg(feature = "json")]
fn strip_tags(inner: &str) -> String {
    let mut text = String::with_capacity(inner.len());
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn codes_round_trip() {
        for raw in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "unsupported_response_type",
            "server_error",
            "temporarily_unavailable",
            "invalid_token",
        ] {
            let code = OAuthErrorCode::parse(raw);
            assert!(!matches!(code, OAuthErrorCode::Other(_)), "{raw}");
            assert_eq!(code.as_str(), raw);
            assert_eq!(code.raw(), raw);
            assert_eq!(code.to_string(), raw);
        }
        let other = OAuthErrorCode::parse("interaction_required");
        assert_eq!(other, OAuthErrorCode::Other("interaction_required".into()));
        assert_eq!(other.as_str(), "other");
        assert_eq!(other.raw(), "interaction_required");
        // Codes are case-sensitive (RFC 6749 §5.2 defines them lowercase).
        assert!(matches!(
            OAuthErrorCode::parse("INVALID_GRANT"),
            OAuthErrorCode::Other(_)
        ));
        assert_eq!(OAuthErrorCode::parse(""), OAuthErrorCode::Unspecified);
        assert_eq!(OAuthErrorCode::Unspecified.as_str(), "unspecified");
        assert_eq!(OAuthErrorCode::Unspecified.raw(), "unspecified");
    }

    #[test]
    fn callback_errors() {
        // The consent screen's "deny": `redirect_uri?error=access_denied&state=…`.
        let e = OAuthError::from_callback("access_denied", None, None);
        assert!(e.is_access_denied());
        assert!(!e.is_invalid_grant());
        assert_eq!(e.status(), None);
        assert_eq!(e.shape(), ErrorShape::Rfc6749);
        assert_eq!(e.description(), None);
        assert_eq!(e.body(), "");
        assert_eq!(e.to_string(), "access_denied");

        let e = OAuthError::from_callback(
            "invalid_scope",
            Some("The requested scope is invalid."),
            Some("https://example.com/errors/scope"),
        );
        assert_eq!(e.code(), &OAuthErrorCode::InvalidScope);
        assert_eq!(e.description(), Some("The requested scope is invalid."));
        assert_eq!(e.uri(), Some("https://example.com/errors/scope"));
        assert_eq!(
            e.to_string(),
            "invalid_scope: The requested scope is invalid."
        );

        let e = OAuthError::from_callback("login_required", Some(""), Some(""));
        assert_eq!(e.code().raw(), "login_required");
        assert_eq!(e.description(), None);
        assert_eq!(e.uri(), None);
    }

    #[test]
    fn crate_error_code() {
        let e = Error::Authorization(Box::new(OAuthError::from_callback(
            "access_denied",
            None,
            None,
        )));
        assert_eq!(e.code(), "access_denied");
        let e = Error::Authorization(Box::new(OAuthError::from_callback("weird", None, None)));
        assert_eq!(e.code(), "other");
        assert_eq!(e.to_string(), "authorization failed: weird");
    }

    #[test]
    fn truncation_is_on_char_boundaries() {
        let s = "é".repeat(600); // 1200 bytes
        let cut = truncate(&s, MAX_KEPT);
        assert_eq!(cut.len(), 1024);
        let s = format!("a{}", "é".repeat(600));
        let cut = truncate(&s, MAX_KEPT);
        assert_eq!(cut.len(), 1023);
        assert!(s.starts_with(cut));
    }

    #[cfg(feature = "json")]
    mod responses {
        use super::*;

        struct Case {
            status: u16,
            body: &'static str,
            shape: ErrorShape,
            code: OAuthErrorCode,
            description: Option<&'static str>,
        }

        fn check(case: &Case) -> OAuthError {
            let e = OAuthError::from_response(
                case.status,
                Some("application/json"),
                case.body.as_bytes(),
            );
            assert_eq!(e.shape(), case.shape, "{}", case.body);
            assert_eq!(e.code(), &case.code, "{}", case.body);
            assert_eq!(e.status(), Some(case.status), "{}", case.body);
            assert_eq!(e.description(), case.description, "{}", case.body);
            assert_eq!(e.body(), case.body);
            e
        }

        fn case(
            status: u16,
            body: &'static str,
            shape: ErrorShape,
            code: OAuthErrorCode,
            description: Option<&'static str>,
        ) -> Case {
            Case {
                status,
                body,
                shape,
                code,
                description,
            }
        }

        use ErrorShape::*;
        use OAuthErrorCode::{InvalidClient, InvalidGrant, InvalidRequest, Unspecified};

        #[test]
        fn token_endpoint_table() {
            // Blue Button's token endpoint: code re-used, bad verifier, refresh re-used.
            let e = check(&case(
                400,
                r#"{"error":"invalid_grant"}"#,
                Rfc6749,
                InvalidGrant,
                None,
            ));
            assert!(e.is_invalid_grant());
            assert_eq!(e.to_string(), "invalid_grant (HTTP 400)");

            // No or bad client authentication.
            let e = check(&case(
                401,
                r#"{"error":"invalid_client"}"#,
                Rfc6749,
                InvalidClient,
                None,
            ));
            assert!(e.is_invalid_client());
            assert!(!e.is_invalid_grant());

            // Grant expired, at refresh: 401 — still invalid_grant.
            let e = check(&case(
                401,
                r#"{"status_code":401,"error":"invalid_grant","error_description":"User access has timed out. …"}"#,
                BlueButtonOAuth,
                InvalidGrant,
                Some("User access has timed out. …"),
            ));
            assert!(e.is_invalid_grant());

            // Grant missing or revoked (after /v2/o/revoke/), at refresh: 403 (§0.8).
            let e = check(&case(
                403,
                r#"{"status_code":403,"error":"invalid_grant","error_description":"User access cannot be found. …"}"#,
                BlueButtonOAuth,
                InvalidGrant,
                Some("User access cannot be found. …"),
            ));
            assert!(e.is_invalid_grant());
            assert_eq!(
                e.to_string(),
                "invalid_grant (HTTP 403): User access cannot be found. …"
            );

            // ONE_TIME app refreshing.
            let e = check(&case(
                403,
                r#"{"status_code":403,"error":"invalid_client","error_description":"Your application is not allowed to refresh tokens…"}"#,
                BlueButtonOAuth,
                InvalidClient,
                Some("Your application is not allowed to refresh tokens…"),
            ));
            assert!(e.is_invalid_client());

            // App inactive (JSON form).
            check(&case(
                403,
                r#"{"status_code":403,"message":"This application, X, is temporarily inactive…"}"#,
                BlueButtonMessage,
                Unspecified,
                Some("This application, X, is temporarily inactive…"),
            ));

            // Unknown refresh token.
            let e = check(&case(
                400,
                r#"{"status_code":400,"error":"invalid_request","error_description":"Refresh token not found."}"#,
                BlueButtonOAuth,
                InvalidRequest,
                Some("Refresh token not found."),
            ));
            assert!(!e.is_invalid_grant());

            // Upstream failure during refresh.
            let e = check(&case(
                502,
                r#"{"status_code":502,"message":"Failed to retrieve data from data source."}"#,
                BlueButtonMessage,
                Unspecified,
                Some("Failed to retrieve data from data source."),
            ));
            assert_eq!(
                e.to_string(),
                "unspecified (HTTP 502): Failed to retrieve data from data source."
            );
        }

        #[test]
        fn fhir_view_table() {
            // Expired grant on a FHIR call: 401, no `error` — refresh decides.
            let e = check(&case(
                401,
                r#"{"detail":"User access has timed out. …"}"#,
                FhirDetail,
                Unspecified,
                Some("User access has timed out. …"),
            ));
            assert!(!e.is_invalid_grant());

            // Scope missing, or demographics declined.
            check(&case(
                403,
                r#"{"detail":"You do not have permission to perform this action."}"#,
                FhirDetail,
                Unspecified,
                Some("You do not have permission to perform this action."),
            ));

            // Bad queries.
            for (body, description) in [
                (
                    r#"{"detail":"the type parameter value is not valid"}"#,
                    "the type parameter value is not valid",
                ),
                (
                    r#"{"detail":"value must be at most 50"}"#,
                    "value must be at most 50",
                ),
                (
                    r#"{"detail":"the service-date operator is not valid"}"#,
                    "the service-date operator is not valid",
                ),
                (
                    r#"{"detail":"the _lastUpdated operator is not valid"}"#,
                    "the _lastUpdated operator is not valid",
                ),
            ] {
                check(&case(400, body, FhirDetail, Unspecified, Some(description)));
            }

            // Throttled (§0.10).
            let e = check(&case(
                429,
                r#"{"detail":"Request was throttled. Expected available in 60 seconds."}"#,
                FhirDetail,
                Unspecified,
                Some("Request was throttled. Expected available in 60 seconds."),
            ));
            assert!(e.is_throttled());

            // Upstream 5xx: DRF writes the APIException's message as `detail`.
            let e = check(&case(
                502,
                r#"{"detail":"An error occurred contacting the upstream server"}"#,
                FhirDetail,
                Unspecified,
                Some("An error occurred contacting the upstream server"),
            ));
            assert!(!e.is_throttled());
            // …and the bare text as the table prints it.
            let e = OAuthError::from_response(
                502,
                Some("text/plain"),
                b"An error occurred contacting the upstream server",
            );
            assert_eq!(e.shape(), Unknown);
            assert_eq!(e.code(), &Unspecified);
            assert_eq!(e.status(), Some(502));
            assert_eq!(e.description(), None);
            assert_eq!(e.body(), "An error occurred contacting the upstream server");
        }

        #[test]
        fn authorize_time_bodies() {
            // §0.2: refused before login, shown to the user, never redirected.
            check(&case(
                400,
                r#"{"status_code":400,"message":"State parameter should have a minimum of 16 characters"}"#,
                BlueButtonMessage,
                Unspecified,
                Some("State parameter should have a minimum of 16 characters"),
            ));
            check(&case(
                400,
                r#"{"status_code":400,"message":"Missing Required Parameter(s): …"}"#,
                BlueButtonMessage,
                Unspecified,
                Some("Missing Required Parameter(s): …"),
            ));
            check(&case(
                400,
                r#"{"status_code":400,"error":"invalid_request","error_description":"code_challenge_method must be S256"}"#,
                BlueButtonOAuth,
                InvalidRequest,
                Some("code_challenge_method must be S256"),
            ));
            check(&case(
                401,
                r#"{"status_code":401,"message":"State required in POST body."}"#,
                BlueButtonMessage,
                Unspecified,
                Some("State required in POST body."),
            ));
            // §0.5: unlisted or empty scope, after login.
            check(&case(
                400,
                r#"{"status_code":400,"message":"Invalid scopes."}"#,
                BlueButtonMessage,
                Unspecified,
                Some("Invalid scopes."),
            ));
        }

        #[test]
        fn operation_outcome_sample() {
            let body = include_str!("../../fixtures/bb2-samples/resource_error_response.json");
            let e = OAuthError::from_response(500, Some("application/fhir+json"), body.as_bytes());
            assert_eq!(e.shape(), OperationOutcome);
            assert_eq!(e.code(), &Unspecified);
            assert_eq!(e.status(), Some(500));
            assert_eq!(
                e.description(),
                Some(
                    "Failed to call access method: java.lang.IllegalArgumentException: \
                     Unsupported ID pattern: part-d____--20140000008325"
                )
            );
            assert_eq!(e.body(), body);

            // `details.text` when there are no diagnostics.
            let e = OAuthError::from_response(
                404,
                None,
                br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","details":{"text":"Not found"}}]}"#,
            );
            assert_eq!(e.shape(), OperationOutcome);
            assert_eq!(e.description(), Some("Not found"));
        }

        #[test]
        fn html_pages() {
            let page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                        <title>\n  Application Inactive &amp; Blocked\n</title></head>\
                        <body><h1>This application, X, is temporarily inactive.</h1></body></html>";
            let e =
                OAuthError::from_response(401, Some("text/html; charset=utf-8"), page.as_bytes());
            assert_eq!(e.shape(), Html);
            assert_eq!(e.code(), &Unspecified);
            assert_eq!(e.status(), Some(401));
            assert_eq!(e.description(), Some("Application Inactive & Blocked"));
            assert_eq!(e.body(), page);

            // No title: the first <h1>, tags stripped; sniffed from `<` without a content type.
            let page = "  <html><body><H1 class=\"x\">Invalid <b>client_id</b></H1><h1>second</h1></body></html>";
            let e = OAuthError::from_response(400, None, page.as_bytes());
            assert_eq!(e.shape(), Html);
            assert_eq!(e.description(), Some("Invalid client_id"));

            // `<header>` is not `<h1>`; an empty title falls through.
            let page = "<html><title> </title><header>x</header><h1>Not Found</h1></html>";
            let e = OAuthError::from_response(404, None, page.as_bytes());
            assert_eq!(e.description(), Some("Not Found"));

            // Declared HTML with no heading at all.
            let e = OAuthError::from_response(500, Some("TEXT/HTML"), b"Server Error");
            assert_eq!(e.shape(), Html);
            assert_eq!(e.description(), None);
        }

        #[test]
        fn unknown_and_hostile_bodies() {
            for body in [
                &b""[..],
                b"null",
                b"[1,2]",
                b"{\"foo\":1}",
                b"{not json",
                b"\xff\xfe\x00garbage",
                b"{\"error\":42}",
            ] {
                let e = OAuthError::from_response(500, Some("application/json"), body);
                assert_eq!(e.shape(), Unknown, "{body:?}");
                assert_eq!(e.code(), &Unspecified);
                assert_eq!(e.description(), None);
            }

            // The body is kept, truncated on a char boundary.
            let long = format!(
                r#"{{"error":"server_error","error_description":"{}"}}"#,
                "é".repeat(2000)
            );
            let e = OAuthError::from_response(500, None, long.as_bytes());
            assert_eq!(e.code(), &OAuthErrorCode::ServerError);
            assert!(e.body().len() <= 1024 && long.starts_with(e.body()));
            assert!(e.description().unwrap().len() <= 1024);

            // Unknown HTTP status: the body's status_code stands in.
            let e = OAuthError::from_response(
                0,
                None,
                br#"{"status_code":403,"error":"invalid_grant"}"#,
            );
            assert_eq!(e.status(), Some(403));
            // The HTTP status wins when both exist.
            let e = OAuthError::from_response(
                401,
                None,
                br#"{"status_code":403,"error":"invalid_grant"}"#,
            );
            assert_eq!(e.status(), Some(401));

            // error_uri and an unknown code.
            let e = OAuthError::from_response(
                400,
                None,
                br#"{"error":"use_dpop_nonce","error_description":"d","error_uri":"https://e.example/x"}"#,
            );
            assert_eq!(e.code(), &OAuthErrorCode::Other("use_dpop_nonce".into()));
            assert_eq!(e.uri(), Some("https://e.example/x"));
            assert_eq!(e.to_string(), "use_dpop_nonce (HTTP 400): d");

            // A token body passed here by mistake is not kept.
            let e = OAuthError::from_response(
                200,
                None,
                br#"{"access_token":"CANARY-TOKEN","token_type":"Bearer"}"#,
            );
            assert!(!e.body().contains("CANARY"));
            assert!(!format!("{e:?}").contains("CANARY"));
        }
    }
}
