//! The broker's HTTP API: routes, request and response bodies, the CSRF header, cookie names
//! and the one error shape with its stable codes. The SDK and the broker both use these types,
//! so the two halves cannot drift apart.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/config` | — | [`ConfigResponse`] |
//! | `POST /v1/flows` | [`CreateFlowRequest`] | [`CreateFlowResponse`] + flow cookie |
//! | `POST /v1/flows/complete` | [`CompleteFlowRequest`] | [`CompleteFlowResponse`] + a new session cookie |
//! | `GET /v1/session` | — | [`SessionResponse`] |
//! | `POST /v1/session/disconnect` | [`DisconnectRequest`] | [`DisconnectResponse`] |
//! | `GET /v1/fhir/{provider}/{type}[/{id}]` | — | the FHIR JSON (a search of a provider with opaque paging links with its links resealed) |
//! | `GET /v1/userinfo/{provider}` | — | the userinfo JSON |
//!
//! Every route requires the [`CSRF_HEADER`]; every failure is an [`ErrorBody`].

use crate::prelude::*;

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    authorize::{AuthorizeExpectations, AuthorizeRedirect},
    callback::AuthorizationCode,
    codec::base64url,
    error::{Error, Result},
    ids::{ClientId, FhirBase, PatientId, RedirectUri},
    newtype::string_newtype_serde,
    pkce::{PkceChallenge, PkceVerifier},
    provider::{EobType, ProviderKind},
    scope::Scopes,
    state::State,
    timestamp::Timestamp,
};

/// The request header every broker route requires. A custom header cannot be sent
/// cross-origin without a CORS preflight, which the broker grants only to configured origins.
pub const CSRF_HEADER: &str = "x-connect-medicare";
/// The value the SDK sends in [`CSRF_HEADER`].
pub const CSRF_VALUE: &str = "1";
/// The session cookie: `__Host-`, `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`.
pub const SESSION_COOKIE: &str = "__Host-cm-session";
/// The flow cookie: `__Host-`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`.
pub const FLOW_COOKIE: &str = "__Host-cm-flow";

/// Route paths, relative to the broker's base URL.
pub mod routes {
    /// `GET`: the providers this broker serves.
    pub const CONFIG: &str = "/v1/config";
    /// `POST`: register a flow and get the authorize request.
    pub const FLOWS: &str = "/v1/flows";
    /// `POST`: finish a flow with the callback's code.
    pub const FLOWS_COMPLETE: &str = "/v1/flows/complete";
    /// `GET`: the browser's connections.
    pub const SESSION: &str = "/v1/session";
    /// `POST`: disconnect one provider or all.
    pub const DISCONNECT: &str = "/v1/session/disconnect";
    /// `GET {FHIR}{provider}/{type}[/{id}]`: allow-listed FHIR reads.
    pub const FHIR: &str = "/v1/fhir/";
    /// `GET {USERINFO}{provider}`: the provider's userinfo.
    pub const USERINFO: &str = "/v1/userinfo/";
}

/// A provider's id in this broker's configuration (`medicare`, `epic-sandbox`, ...):
/// 1–32 characters of `[a-z0-9-]`, safe in a URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(String);

impl ProviderId {
    /// Validates a provider id.
    pub fn new(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::MissingParameter("provider"))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(ProviderId, ProviderId::new);

/// `GET /v1/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResponse {
    /// The providers this broker serves, in configuration order.
    pub providers: Vec<ProviderInfo>,
}

/// One provider as the browser sees it. No secret is here: the client secret never leaves
/// the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Its id in this broker.
    pub id: ProviderId,
    /// A display name ("Medicare").
    pub name: String,
    /// Blue Button or generic SMART.
    pub kind: ProviderKind,
    /// The registered client id.
    pub client_id: ClientId,
    /// The authorization endpoint, exactly as the authorize request must use it.
    pub authorization_endpoint: String,
    /// The FHIR base URL, which is also the exact `aud`.
    pub aud: FhirBase,
    /// The scopes this broker asks for.
    pub scopes: Scopes,
    /// The scopes the provider lists, when it lists any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Scopes>,
    /// The registered redirect URI, exactly.
    pub redirect_uri: RedirectUri,
    /// Whether the authorize request may be a form POST.
    pub authorize_post: bool,
    /// The largest `_count` the provider accepts, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_page_size: Option<u32>,
    /// The EOB claim types the provider filters by.
    #[serde(default)]
    pub eob_types: Vec<EobType>,
    /// Whether disconnect can end the app's access at the provider (it offers revocation).
    /// When it cannot, the broker only deletes its own tokens, and the user ends the access in
    /// their account with the provider: an app can say so before the user disconnects.
    #[serde(default)]
    pub revocation_supported: bool,
}

impl ProviderInfo {
    /// What an authorize request for this provider must say, given the caller's own `state`
    /// and challenge: the input of [`AuthorizeRedirect::validate`].
    pub fn expectations<'a>(
        &'a self,
        state: &'a State,
        challenge: &'a PkceChallenge,
    ) -> AuthorizeExpectations<'a> {
        AuthorizeExpectations {
            authorization_endpoint: &self.authorization_endpoint,
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            aud: &self.aud,
            scopes_supported: self.scopes_supported.as_ref(),
            state,
            challenge,
            allow_post: self.authorize_post,
        }
    }
}

/// How the browser is sent to the authorization server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizeMethod {
    /// A GET navigation.
    #[default]
    Get,
    /// An auto-submitted form POST (`authorize-post`).
    Post,
}

/// `POST /v1/flows`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFlowRequest {
    /// Which provider to connect.
    pub provider: ProviderId,
    /// The `state` the browser made (256 bits).
    pub state: State,
    /// The S256 challenge of the verifier the browser keeps.
    pub code_challenge: PkceChallenge,
    /// Must equal the provider's configured redirect URI exactly.
    pub redirect_uri: RedirectUri,
    /// GET (default) or POST.
    #[serde(default)]
    pub method: AuthorizeMethod,
}

/// The answer to `POST /v1/flows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateFlowResponse {
    /// Where to send the browser; validate it before navigating.
    pub authorize: AuthorizeRedirect,
    /// Seconds until the flow expires.
    pub expires_in: u64,
}

/// `POST /v1/flows/complete`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteFlowRequest {
    /// The callback's `state`.
    pub state: State,
    /// The callback's `code`.
    pub code: AuthorizationCode,
    /// The verifier whose challenge was registered with the flow.
    pub code_verifier: PkceVerifier,
    /// The callback's `iss` (RFC 9207), when it had one: the broker checks it against the
    /// provider's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The proof that this browser owns the session its cookie names, from the last
    /// [`CompleteFlowResponse`]: with it, the session's connections carry over into the new
    /// session id; without it (or with a wrong one) the sign-in starts a new session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_proof: Option<SessionProof>,
}

/// The answer to `POST /v1/flows/complete`: the session, and — when this completion made or
/// rotated it — the proof the browser keeps (in the app origin's storage, never a cookie) to
/// show at its next sign-in. A replayed completion carries no proof.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompleteFlowResponse {
    /// One entry per connected provider.
    pub connections: Vec<Connection>,
    /// The session's new proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_proof: Option<SessionProof>,
}

/// A session's proof of ownership: 256 random bits as 43 characters of unpadded base64url.
/// `Debug` redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionProof(String);

impl SessionProof {
    /// The proof made from 32 random bytes.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(base64url(&bytes))
    }

    /// Validates a proof received in a request: exactly 43 base64url characters.
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::MissingParameter("session_proof"))
        }
    }

    /// The proof's text, to hash or to send.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionProof([redacted])")
    }
}

impl Serialize for SessionProof {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionProof {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|_| {
            serde::de::Error::custom("session_proof must be 43 characters of base64url")
        })
    }
}

/// `GET /v1/session`, and the answer to a completed flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// One entry per connected provider.
    pub connections: Vec<Connection>,
}

/// The state of one provider's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Tokens are held and usable (refreshed as needed).
    Connected,
    /// The grant ended, was revoked, or the refresh token was refused: connect again.
    ReconnectRequired,
}

/// One provider's connection in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The provider.
    pub provider: ProviderId,
    /// Connected, or needs the user to connect again.
    pub status: ConnectionStatus,
    /// The beneficiary's FHIR patient id.
    pub patient: Option<PatientId>,
    /// The scopes granted.
    pub scopes: Scopes,
    /// Whether the user shared demographics (Blue Button drops `profile` and
    /// `patient/Patient.*` when they did not).
    pub demographics_shared: bool,
    /// When the data-access grant ends; `null` when it does not (research apps) or the
    /// provider does not say.
    pub grant_expires_at: Option<Timestamp>,
}

/// `POST /v1/session/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    /// One provider, or every connection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderId>,
}

/// The answer to a disconnect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DisconnectResponse {
    /// The providers whose connection was removed (empty when there was none: disconnect is
    /// idempotent).
    pub disconnected: Vec<ProviderId>,
    /// For each of them, what became of the app's access at the provider.
    #[serde(default)]
    pub revocations: Vec<ProviderRevocation>,
}

/// What became of the app's access at one provider when its connection was removed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRevocation {
    /// The provider.
    pub provider: ProviderId,
    /// What the provider was told, and what it answered.
    pub status: RevocationStatus,
}

/// The provider's side of a disconnect. The broker's own copy of the tokens is deleted in
/// every case, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevocationStatus {
    /// The provider accepted the revocation (for Blue Button, the request that deletes the
    /// beneficiary's data-access grant to the app).
    Revoked,
    /// The provider could not be reached, or failed, or is being told by another broker
    /// replica: the revocation is kept and retried with backoff (across restarts) for about a
    /// day and a half, then given up and logged.
    Pending,
    /// The provider refused the revocation for good; the user must end the app's access in
    /// their account with the provider.
    Failed,
    /// The provider offers apps no way to revoke; the user must end the app's access in their
    /// account with the provider.
    NotSupported,
}

/// Every broker failure, as JSON: `{ "code", "message", "retry_after"? }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable machine code.
    pub code: ErrorCode,
    /// A human message. Never contains a secret, a token or PHI.
    pub message: String,
    /// Seconds to wait before retrying (with `rate_limited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal; )*) => {
        /// The stable error codes of the broker API, plus the few the SDK raises itself
        /// (`broker_unreachable`, `invalid_config`, `not_in_browser`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears in JSON.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status the broker answers with.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed: bad JSON, a bad parameter, an unknown field.
    InvalidRequest = "invalid_request", 400;
    /// The CSRF header is missing or wrong.
    CsrfRequired = "csrf_required", 403;
    /// The request's `Origin` is not a configured origin.
    OriginNotAllowed = "origin_not_allowed", 403;
    /// No such provider in this broker's configuration.
    UnknownProvider = "unknown_provider", 404;
    /// The redirect URI differs from configuration.
    RedirectUriMismatch = "redirect_uri_mismatch", 400;
    /// Too many pending flows; try again shortly.
    TooManyFlows = "too_many_flows", 503;
    /// No pending flow for this state (never registered, expired, or from another browser).
    FlowNotFound = "flow_not_found", 400;
    /// This state was already used.
    StateUsed = "state_used", 400;
    /// The code verifier does not match the registered challenge.
    PkceMismatch = "pkce_mismatch", 400;
    /// The user declined consent.
    AccessDenied = "access_denied", 403;
    /// No session, or no connection to this provider.
    NotConnected = "not_connected", 401;
    /// The grant ended or was revoked: the user must connect again.
    ReconnectRequired = "reconnect_required", 401;
    /// The user chose not to share demographics, so Patient and userinfo are unavailable.
    DemographicsWithheld = "demographics_withheld", 403;
    /// The granted scopes do not cover this read.
    InsufficientScope = "insufficient_scope", 403;
    /// The path, resource type, id or query parameter is not on the allow-list.
    NotAllowed = "not_allowed", 403;
    /// No such resource.
    NotFound = "not_found", 404;
    /// Only GET is allowed here (or only POST).
    MethodNotAllowed = "method_not_allowed", 405;
    /// The request body is too large.
    PayloadTooLarge = "payload_too_large", 413;
    /// Upstream is throttling; see `retry_after`.
    RateLimited = "rate_limited", 429;
    /// Upstream could not be reached or failed.
    UpstreamUnavailable = "upstream_unavailable", 502;
    /// Upstream answered with an error the broker cannot map.
    UpstreamError = "upstream_error", 502;
    /// Something failed inside the broker; it was logged.
    Internal = "internal", 500;
    /// SDK only: the broker could not be reached.
    BrokerUnreachable = "broker_unreachable", 0;
    /// SDK only: the options or the broker's configuration are unusable.
    InvalidConfig = "invalid_config", 0;
    /// SDK only: called outside a browser (e.g. during server-side rendering).
    NotInBrowser = "not_in_browser", 0;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let body = ErrorBody {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            retry_after: Some(3),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":"rate_limited","message":"slow down","retry_after":3}"#
        );
        let plain = ErrorBody {
            code: ErrorCode::StateUsed,
            message: "m".into(),
            retry_after: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"code":"state_used","message":"m"}"#
        );
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *code);
        }
        for required in [
            "state_used",
            "flow_not_found",
            "reconnect_required",
            "access_denied",
            "demographics_withheld",
            "rate_limited",
            "invalid_request",
            "upstream_unavailable",
            "broker_unreachable",
            "invalid_config",
            "not_in_browser",
        ] {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == required),
                "{required}"
            );
        }
    }

    #[test]
    fn broker_codes_have_error_statuses() {
        for code in ErrorCode::ALL {
            let status = code.status();
            let sdk_only = matches!(
                code,
                ErrorCode::BrokerUnreachable | ErrorCode::InvalidConfig | ErrorCode::NotInBrowser
            );
            assert_eq!(status == 0, sdk_only, "{code}");
            assert!(sdk_only || (400..600).contains(&status), "{code}");
        }
    }

    #[test]
    fn provider_ids_are_path_safe() {
        assert!(ProviderId::new("medicare").is_ok());
        assert!(ProviderId::new("epic-sandbox-2").is_ok());
        for bad in ["", "Medicare", "../x", "a/b", "a%2fb", &"a".repeat(33)] {
            assert!(ProviderId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn complete_request_redacts_and_validates() {
        let json = r#"{"state":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","code":"canary-code","code_verifier":"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}"#;
        let req: CompleteFlowRequest = serde_json::from_str(json).unwrap();
        let shown = format!("{req:?}");
        assert!(!shown.contains("canary-code"), "{shown}");
        assert!(!shown.contains("dBjftJeZ4CVP"), "{shown}");
        assert!(!shown.contains("aaaaaaaaaaaaaaaa"), "{shown}");
        let bad_verifier = json.replace("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "short");
        assert!(serde_json::from_str::<CompleteFlowRequest>(&bad_verifier).is_err());
        let extra = json.replace("{\"state\"", "{\"x\":1,\"state\"");
        assert!(serde_json::from_str::<CompleteFlowRequest>(&extra).is_err());
    }

    #[test]
    fn create_flow_defaults_to_get() {
        let json = r#"{"provider":"medicare","state":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "redirect_uri":"http://localhost:8080/callback"}"#;
        let req: CreateFlowRequest = serde_json::from_str(json).unwrap();
        assert_eq!(req.method, AuthorizeMethod::Get);
        let bad = json.replace("E9Melhoa", "plain");
        assert!(serde_json::from_str::<CreateFlowRequest>(&bad).is_err());
    }
}
