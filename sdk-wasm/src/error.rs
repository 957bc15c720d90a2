//! Every failure becomes one JS class, `ConnectMedicareError`, with a stable `code` (the
//! broker contract's [`ErrorCode`]s, including the SDK's own `broker_unreachable`,
//! `invalid_config` and `not_in_browser`), a human message, and `retryAfter` when rate
//! limited. Messages are static strings: no `format!` in the module, and never a secret.

use std::borrow::Cow;

use connect_medicare_protocol::{Error as RuleError, OAuthErrorCode, contract::ErrorCode};
use wasm_bindgen::prelude::*;

use crate::js;

#[wasm_bindgen(module = "/js/error.js")]
extern "C" {
    /// The JS error class (`js/error.js`), re-exported by the npm package.
    #[wasm_bindgen(js_name = ConnectMedicareError)]
    type JsConnectMedicareError;

    #[wasm_bindgen(constructor, js_class = "ConnectMedicareError")]
    fn new(code: &str, message: &str, retry_after: Option<f64>) -> JsConnectMedicareError;
}

/// A failure on its way to JS.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    retry_after: Option<f64>,
}

impl Failure {
    /// A failure the SDK raises itself.
    pub(crate) fn new(code: ErrorCode, message: &'static str) -> Self {
        Self {
            code: Cow::Borrowed(code.as_str()),
            message: Cow::Borrowed(message),
            retry_after: None,
        }
    }

    /// A protocol rule refused something: `context`, then the rule's own code in brackets.
    pub(crate) fn rule(code: ErrorCode, context: &'static str, err: &RuleError) -> Self {
        Self {
            code: Cow::Borrowed(code.as_str()),
            message: Cow::Owned([context, " (", err.code(), ")"].concat()),
            retry_after: None,
        }
    }

    /// The error a callback carried, once its `state` matched: `access_denied` when the user
    /// declined, `upstream_error` for anything else the authorization server said. The
    /// server's `error_description` is not shown: anyone can put text in a URL.
    pub(crate) fn authorization(code: &OAuthErrorCode) -> Self {
        if *code == OAuthErrorCode::AccessDenied {
            return Self::new(
                ErrorCode::AccessDenied,
                "The user did not allow access to their data",
            );
        }
        Self {
            code: Cow::Borrowed(ErrorCode::UpstreamError.as_str()),
            message: Cow::Owned(
                [
                    "The authorization server refused the request (",
                    code.as_str(),
                    ")",
                ]
                .concat(),
            ),
            retry_after: None,
        }
    }

    /// A broker answer that is not 2xx: its `{code, message, retry_after}` body when it has
    /// one, otherwise a code chosen from the status (a proxy's HTML error page, say).
    pub(crate) fn from_response(status: u16, body: &JsValue, retry_after: Option<f64>) -> Self {
        if let Some(code) = js::get_str(body, "code") {
            let message = js::get_str(body, "message")
                .filter(|m| !m.is_empty() && m.len() <= 500)
                .map_or(Cow::Borrowed("The broker refused the request"), Cow::Owned);
            let retry_after = js::get(body, "retry_after").as_f64().or(retry_after);
            return Self {
                code: known_code(code),
                message,
                retry_after,
            };
        }
        let (code, message) = match status {
            429 => (
                ErrorCode::RateLimited,
                "Too many requests: try again shortly",
            ),
            404 | 405 => (
                ErrorCode::InvalidConfig,
                "No Connect Medicare broker answers at this URL",
            ),
            500..=599 => (
                ErrorCode::BrokerUnreachable,
                "The broker could not be reached",
            ),
            _ => (
                ErrorCode::Internal,
                "The broker answered with an unexpected status",
            ),
        };
        Self {
            retry_after,
            ..Self::new(code, message)
        }
    }
}

/// A code from the broker: one of the contract's (kept as the SDK's own static string), or an
/// unknown but well-formed one from a newer broker (kept as sent), else `upstream_error`.
fn known_code(raw: String) -> Cow<'static, str> {
    if let Some(code) = ErrorCode::ALL.iter().find(|c| c.as_str() == raw) {
        return Cow::Borrowed(code.as_str());
    }
    let well_formed = !raw.is_empty()
        && raw.len() <= 40
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if well_formed {
        Cow::Owned(raw)
    } else {
        Cow::Borrowed(ErrorCode::UpstreamError.as_str())
    }
}

impl From<Failure> for JsValue {
    fn from(failure: Failure) -> JsValue {
        JsConnectMedicareError::new(&failure.code, &failure.message, failure.retry_after).into()
    }
}

/// A promise rejected with `failure`.
pub(crate) fn rejected(failure: Failure) -> js_sys::Promise {
    js_sys::Promise::reject(&failure.into())
}

/// The `ConnectMedicareError` for a broker answer that is not 2xx: `status`, the body as
/// `JSON.parse` read it (`undefined` when it was not JSON) and the `Retry-After` header.
#[wasm_bindgen(js_name = brokerError)]
pub fn broker_error(status: u16, body: JsValue, retry_after: Option<String>) -> JsValue {
    let retry_after = retry_after
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map(f64::from);
    Failure::from_response(status, &body, retry_after).into()
}
