//! The browser around the module: the address bar, navigation, the form POST and
//! `crypto.getRandomValues`. The calls that are more than one JS expression live in
//! `js/browser.js`; nothing reads a global before it is called (SSR-safe imports).

use crate::prelude::*;

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::error::{code, fail};

#[wasm_bindgen(module = "/js/browser.js")]
extern "C" {
    /// `location.href`, or `None` outside a page.
    #[wasm_bindgen(js_name = currentUrl)]
    pub(crate) fn current_url() -> Option<String>;

    /// `history.replaceState(history.state, "", url)`.
    #[wasm_bindgen(js_name = replaceUrl, catch)]
    pub(crate) fn replace_url(url: &str) -> Result<(), JsValue>;

    /// `location.assign(url)`.
    #[wasm_bindgen(catch)]
    fn navigate(url: &str) -> Result<(), JsValue>;

    /// Builds and submits a hidden form of `[name, value]` pairs.
    #[wasm_bindgen(js_name = submitForm, catch)]
    fn submit_form(action: &str, fields: Array) -> Result<(), JsValue>;

}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// 32 random bytes from the browser's CSPRNG.
pub(crate) fn random_32() -> Result<[u8; 32], JsValue> {
    let mut bytes = [0u8; 32];
    get_random_values(&mut bytes).map_err(|_| {
        fail(
            code::NOT_IN_BROWSER,
            "crypto.getRandomValues is not available",
        )
    })?;
    Ok(bytes)
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Sends the browser to the authorization server: a GET navigation, or a form POST.
pub(crate) fn go(redirect: &connect_medicare_protocol::AuthorizeRedirect) -> Result<(), JsValue> {
    use connect_medicare_protocol::AuthorizeRedirect;
    let sent = match redirect {
        AuthorizeRedirect::Get { url } => navigate(url),
        AuthorizeRedirect::Post { action, fields } => {
            let pairs = Array::new();
            for (name, value) in fields {
                pairs.push(&Array::of2(&name.into(), &value.into()));
            }
            submit_form(action, pairs)
        }
    };
    sent.map_err(|_| {
        fail(
            code::NOT_IN_BROWSER,
            "cannot navigate: there is no page to navigate from",
        )
    })
}
