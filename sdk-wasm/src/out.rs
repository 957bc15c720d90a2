//! What every export answers: its fields joined by `\n`, or a refusal — `!`, a stable error
//! code (the broker contract's [`ErrorCode`](connect_medicare_protocol::contract::ErrorCode)s),
//! `\n`, and a human message. The JS layer turns a refusal into a `ConnectMedicareError`.
//! Messages are static strings: no `format!` in the module, and never a secret.

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
    /// A browser facility is missing (here: random bytes).
    pub const NOT_IN_BROWSER: &str = ErrorCode::NotInBrowser.as_str();
    /// The authorization server answered with an error other than a refusal by the user.
    pub const UPSTREAM_ERROR: &str = ErrorCode::UpstreamError.as_str();
}

/// The fields, joined by `\n`.
pub(crate) fn fields(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(part);
    }
    out
}

/// A refusal with `code` and `message`. When a protocol rule refused, the message says what
/// was refused, not which rule (`audience_mismatch`, say): naming rules would bring the
/// protocol's whole table of rule codes into the module. The broker runs the same rules.
pub(crate) fn fail(code: &str, message: &str) -> String {
    fields(&[&["!", code].concat(), message])
}

/// Input that only a broken caller sends: a line break in a value, a number that is not one,
/// fields that are not what an earlier operation answered.
pub(crate) fn unfit(code: &str) -> String {
    fail(code, "Input the module cannot read")
}

/// A refusal read back (for tests and native callers): `Some((code, message))`.
pub fn refusal(answer: &str) -> Option<(&str, &str)> {
    let rest = answer.strip_prefix('!')?;
    Some(rest.split_once('\n').unwrap_or((rest, "")))
}
