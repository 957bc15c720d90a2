//! Reading and building plain JS objects (what `JSON.parse` returns and `JSON.stringify`
//! takes) without serde in the module.

use crate::prelude::*;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

#[wasm_bindgen(module = "/js/browser.js")]
extern "C" {
    /// `target[key]`, or `undefined` when `target` is not an object or the read throws.
    #[wasm_bindgen(js_name = field)]
    pub(crate) fn get(target: &JsValue, key: &str) -> JsValue;
}

/// `target[key]` when it is a string.
pub(crate) fn get_str(target: &JsValue, key: &str) -> Option<String> {
    get(target, key).as_string()
}

/// `value` when it is an array.
pub(crate) fn array(value: JsValue) -> Option<Array> {
    Array::is_array(&value).then(|| value.unchecked_into())
}

/// `target[key]` when it is an array.
pub(crate) fn get_array(target: &JsValue, key: &str) -> Option<Array> {
    array(get(target, key))
}

/// Every element of `list` when all are strings.
pub(crate) fn strings(list: &Array) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for i in 0..list.length() {
        out.push(list.get(i).as_string()?);
    }
    Some(out)
}

/// A plain object from `(key, value)` pairs; `undefined` values are left out.
pub(crate) fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let out = Object::new();
    for (key, value) in pairs {
        if !value.is_undefined() {
            // Setting a data property on a fresh plain object cannot fail.
            let _ = Reflect::set(&out, &JsValue::from_str(key), value);
        }
    }
    out.into()
}

/// The parts one after the other.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part);
    }
    out
}

/// `n` in decimal.
pub(crate) fn decimal(n: u64) -> String {
    let mut out = if n >= 10 {
        decimal(n / 10)
    } else {
        String::new()
    };
    out.push(char::from(b'0' + (n % 10) as u8));
    out
}
