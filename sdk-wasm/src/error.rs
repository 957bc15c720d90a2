//! Every failure becomes one JS class, `ConnectMedicareError`, with a stable `code` (the
//! broker contract's [`ErrorCode`](connect_medicare_protocol::contract::ErrorCode)s,
//! including the SDK's own `broker_unreachable`, `invalid_config` and `not_in_browser`) and a
//! human message. Messages are static strings (with a protocol rule's own code appended): no
//! `format!` in the module, and never a secret.
//!
//! A broker answer that is not 2xx is mapped in `js/error.js` (`brokerError`), next to the
//! class: that needs no rule of the protocol, only the contract's codes.

use connect_medicare_protocol::Error as RuleError;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/error.js")]
extern "C" {
    /// The JS error class (`js/error.js`), re-exported by the npm package.
    #[wasm_bindgen(js_name = ConnectMedicareError)]
    type JsConnectMedicareError;

    #[wasm_bindgen(constructor, js_class = "ConnectMedicareError")]
    fn new(code: &str, message: &str) -> JsConnectMedicareError;
}

/// The codes the SDK raises, as strings: constants, so the module holds these five and not
/// the contract's whole table.
pub(crate) mod code {
    use connect_medicare_protocol::contract::ErrorCode;

    pub(crate) const ACCESS_DENIED: &str = ErrorCode::AccessDenied.as_str();
    pub(crate) const FLOW_NOT_FOUND: &str = ErrorCode::FlowNotFound.as_str();
    pub(crate) const INVALID_CONFIG: &str = ErrorCode::InvalidConfig.as_str();
    pub(crate) const INVALID_REQUEST: &str = ErrorCode::InvalidRequest.as_str();
    pub(crate) const NOT_IN_BROWSER: &str = ErrorCode::NotInBrowser.as_str();
    pub(crate) const UPSTREAM_ERROR: &str = ErrorCode::UpstreamError.as_str();
}

/// A `ConnectMedicareError` the SDK raises itself: `code` is one of [`code`]'s.
pub(crate) fn fail(code: &str, message: &str) -> JsValue {
    JsConnectMedicareError::new(code, message).into()
}

/// A protocol rule refused something: `context`, then the rule's own code in brackets.
pub(crate) fn refused(code: &str, context: &str, err: &RuleError) -> JsValue {
    fail(code, &crate::js::concat(&[context, " (", err.code(), ")"]))
}

/// `invalid_config` with `message`.
pub(crate) fn invalid_config(message: &str) -> JsValue {
    fail(code::INVALID_CONFIG, message)
}
