//! The one error type of the protocol rules.

use crate::prelude::*;

use crate::oauth_error::OAuthError;

/// Why a protocol rule refused its input.
///
/// Every variant has a stable machine code ([`Error::code`]) and a human message
/// ([`core::fmt::Display`]). Messages never contain a secret: verifiers, codes and tokens are
/// described, never echoed. Without the `messages` feature (on by default, and with `json`)
/// the human parts — a scope's broken rule, why a URL is refused — are empty strings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PKCE code verifier that is not 43–128 characters of `[A-Za-z0-9-._~]`.
    #[error("PKCE code verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")]
    InvalidVerifier,
    /// A PKCE code challenge that is not a 43-character unpadded base64url SHA-256 digest.
    #[error("PKCE code challenge must be 43 characters of unpadded base64url (S256)")]
    InvalidChallenge,
    /// A `code_challenge_method` other than `S256`.
    #[error("code_challenge_method must be S256")]
    UnsupportedChallengeMethod,
    /// A `state` value that is too short, too long, or has characters outside base64url.
    #[error("state must be 16-128 characters of A-Z a-z 0-9 - _ . ~")]
    InvalidState,
    /// The `state` in a callback does not match the one this flow sent.
    #[error("state does not match the authorization request")]
    StateMismatch,
    /// A scope string that breaks the SMART grammar.
    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope {
        /// The offending scope token.
        scope: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scope the provider does not list; asking for it would strand the user on an error page.
    #[error("scope {0:?} is not supported by this provider")]
    UnsupportedScope(String),
    /// A URL that cannot be used where it was given.
    #[error("invalid {what}: {reason}")]
    InvalidUrl {
        /// Which URL (`redirect_uri`, `authorization_endpoint`, ...).
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `aud` is not exactly the provider's FHIR base URL.
    #[error("aud must equal the FHIR base URL exactly")]
    AudienceMismatch,
    /// A request parameter differs from what configuration says it must be.
    #[error("authorize request parameter {0} does not match configuration")]
    ParameterMismatch(&'static str),
    /// A parameter that appears more than once where exactly one is allowed.
    #[error("parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// A required parameter is absent.
    #[error("missing required parameter {0}")]
    MissingParameter(&'static str),
    /// A callback's `iss` is missing where the server promised it, or is not the server's
    /// issuer (RFC 9207): the response may come from another server (a mix-up attack).
    #[error("the callback's iss is missing or is not the provider's issuer (RFC 9207)")]
    IssuerMismatch,
    /// An authorization code that is present but unusable.
    #[error("invalid authorization code: {0}")]
    InvalidCode(&'static str),
    /// A SMART configuration document that cannot be used.
    #[error("unusable SMART configuration: {0}")]
    InvalidSmartConfiguration(&'static str),
    /// The authorization server redirected back with an OAuth error (RFC 6749 §4.1.2.1).
    /// Boxed: it is by far the largest variant, and every `Result` of the crate carries an
    /// `Error`'s size.
    #[error("authorization failed: {0}")]
    Authorization(Box<OAuthError>),
    /// A token endpoint answer that is not a usable token response.
    #[error("invalid token response: {reason}")]
    InvalidTokenResponse {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timestamp that is neither RFC 3339 (with `T` or a space) nor empty.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// A paging link or Bundle that cannot be turned into a page request.
    #[error("invalid paging: {0}")]
    InvalidPaging(&'static str),
    /// A malformed JSON document where one of ours was expected.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
}

impl Error {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidVerifier => "invalid_verifier",
            Error::InvalidChallenge => "invalid_challenge",
            Error::UnsupportedChallengeMethod => "unsupported_challenge_method",
            Error::InvalidState => "invalid_state",
            Error::StateMismatch => "state_mismatch",
            Error::InvalidScope { .. } => "invalid_scope",
            Error::UnsupportedScope(_) => "unsupported_scope",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::AudienceMismatch => "audience_mismatch",
            Error::ParameterMismatch(_) => "parameter_mismatch",
            Error::DuplicateParameter(_) => "duplicate_parameter",
            Error::MissingParameter(_) => "missing_parameter",
            Error::InvalidCode(_) => "invalid_code",
            Error::IssuerMismatch => "issuer_mismatch",
            Error::InvalidSmartConfiguration(_) => "invalid_smart_configuration",
            Error::Authorization(e) => e.code().as_str(),
            Error::InvalidTokenResponse { .. } => "invalid_token_response",
            Error::InvalidTimestamp(_) => "invalid_timestamp",
            Error::InvalidPaging(_) => "invalid_paging",
            Error::InvalidJson(_) => "invalid_json",
        }
    }
}

/// The human part of an error (a reason, a parameter's role): `$text` with the `messages`
/// feature, empty without it. The browser SDK leaves the feature off: it reports
/// [`Error::code`] only, and the text would ship to every visitor unread.
macro_rules! msg {
    ($text:literal) => {
        if cfg!(feature = "messages") {
            $text
        } else {
            ""
        }
    };
}
pub(crate) use msg;

/// Shorthand for results of the protocol rules.
pub type Result<T, E = Error> = core::result::Result<T, E>;
