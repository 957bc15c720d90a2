//! Reading and building plain JS objects (what `JSON.parse` returns and `JSON.stringify`
//! takes) without serde in the module.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// `target[key]`, or `undefined` when `target` is not an object or the read throws.
pub(crate) fn get(target: &JsValue, key: &str) -> JsValue {
    if !target.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `target[key]` when it is a string.
pub(crate) fn get_str(target: &JsValue, key: &str) -> Option<String> {
    get(target, key).as_string()
}

/// `target[key]` when it is an array.
pub(crate) fn get_array(target: &JsValue, key: &str) -> Option<Array> {
    let value = get(target, key);
    Array::is_array(&value).then(|| value.unchecked_into())
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
