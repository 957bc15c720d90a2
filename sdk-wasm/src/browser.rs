//! The browser's part of a sign-in, through `web-sys` and `js-sys`: reading the JS values the
//! JS layer passes in, and the navigation. A failure of the browser (no page) is a
//! [`Refusal`] with `not_in_browser`; none is a panic.
//!
//! sessionStorage and the address bar are the JS layer's (`npm/src/flow.js`): measured, doing
//! them here cost 2.6 KB and 2.1 KB brotli-11 of a sign-in's payload (docs/architecture.md).

use crate::prelude::*;

use connect_medicare_protocol::AuthorizeRedirect;
use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, HtmlFormElement, HtmlInputElement};

use crate::out::{Refusal, code};

/// `object[key]`, or `undefined` (not an object, a throwing getter).
pub(crate) fn get(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `object[key]` when it is a string.
pub(crate) fn text(object: &JsValue, key: &str) -> Option<String> {
    get(object, key).as_string()
}

/// Sets `object[key]` (on an object this module made: it cannot fail).
pub(crate) fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// `value` as an array of strings.
pub(crate) fn strings(value: &JsValue) -> Option<Vec<String>> {
    if !Array::is_array(value) {
        return None;
    }
    Array::from(value).iter().map(|v| v.as_string()).collect()
}

/// `value` as an array of `[name, value]` string pairs.
pub(crate) fn pairs(value: &JsValue) -> Option<Vec<(String, String)>> {
    if !Array::is_array(value) {
        return None;
    }
    Array::from(value)
        .iter()
        .map(|pair| match strings(&pair)?.as_slice() {
            [name, value] => Some((name.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now() -> u64 {
    // `Date.now()` is a whole, non-negative number of milliseconds below 2^53.
    js_sys::Date::now() as u64
}

fn no_page(_: JsValue) -> Refusal {
    Refusal::new(code::NOT_IN_BROWSER, "There is no page to navigate from")
}

/// Sends the browser to the authorization server: a GET navigation to the URL, or a hidden
/// form with the fields, POSTed in UTF-8 to this window.
pub(crate) fn navigate(redirect: &AuthorizeRedirect) -> Result<(), Refusal> {
    let window = web_sys::window().ok_or_else(|| no_page(JsValue::NULL))?;
    match redirect {
        AuthorizeRedirect::Get { url } => window.location().assign(url).map_err(no_page),
        AuthorizeRedirect::Post { action, fields } => {
            let document = window.document().ok_or_else(|| no_page(JsValue::NULL))?;
            let form: HtmlFormElement = element(&document, "form")?;
            form.set_method("post");
            form.set_action(action);
            // UTF-8 whatever the page's charset, and this window whatever its <base target>.
            form.set_accept_charset("UTF-8");
            form.set_target("_self");
            form.set_hidden(true);
            for (name, value) in fields {
                let input: HtmlInputElement = element(&document, "input")?;
                input.set_type("hidden");
                input.set_name(name);
                input.set_value(value);
                form.append_child(&input).map_err(no_page)?;
            }
            let body = document.body().ok_or_else(|| no_page(JsValue::NULL))?;
            body.append_child(&form).map_err(no_page)?;
            form.submit().map_err(no_page)
        }
    }
}

/// A new `<tag>` element, as the type `create_element` makes for it.
fn element<T: JsCast>(document: &Document, tag: &str) -> Result<T, Refusal> {
    // `createElement` of these tags makes exactly these interfaces: no runtime check needed.
    Ok(document
        .create_element(tag)
        .map_err(no_page)?
        .unchecked_into())
}
