//! How the module refuses: a [`Refusal`] — a stable error code (the broker contract's
//! [`ErrorCode`](connect_medicare_protocol::contract::ErrorCode)s) and a human message — thrown
//! to JS as an `Error` with a `code` property, which the JS layer rethrows as a
//! `ConnectMedicareError`. Messages are static text (or a server's OAuth error code): no
//! `format!` in the module, and never a secret.

use crate::prelude::*;

/// The codes the module refuses with, as strings: constants, so it holds these and not the
/// contract's whole table.
pub mod code {
    use connect_medicare_protocol::contract::ErrorCode;

    /// The user declined at the authorization server.
    pub const ACCESS_DENIED: &str = ErrorCode::AccessDenied.as_str();
    /// No flow this tab started matches the callback (expired, used, or never started).
    pub const FLOW_NOT_FOUND: &str = ErrorCode::FlowNotFound.as_str();
    /// The app's options or the broker's configuration or answer are unusable.
    pub const INVALID_CONFIG: &str = ErrorCode::InvalidConfig.as_str();
    /// A malformed callback, or one that does not match its flow.
    pub const INVALID_REQUEST: &str = ErrorCode::InvalidRequest.as_str();
    /// A browser facility is missing (random bytes, storage, a page to navigate from).
    pub const NOT_IN_BROWSER: &str = ErrorCode::NotInBrowser.as_str();
    /// The authorization server answered with an error other than a refusal by the user.
    pub const UPSTREAM_ERROR: &str = ErrorCode::UpstreamError.as_str();
}

/// Why the module refused. When a protocol rule refused, the message says what was refused,
/// not which rule (`audience_mismatch`, say): naming rules would bring the protocol's whole
/// table of rule codes into the module. The broker runs the same rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable machine code (one of [`code`]).
    pub code: &'static str,
    /// What a person reads.
    pub message: String,
}

impl Refusal {
    /// A refusal with a static message.
    pub fn new(code: &'static str, message: &str) -> Self {
        Self {
            code,
            message: message.to_owned(),
        }
    }
}
