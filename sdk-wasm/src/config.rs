//! The broker's address and `GET /v1/config`, read from the JS object `JSON.parse` made into
//! the protocol's [`ProviderInfo`], whose [`expectations`](ProviderInfo::expectations) check
//! every authorize request before the browser follows it.

use crate::prelude::*;

use connect_medicare_protocol::{
    ClientId, EobType, FhirBase, ProviderKind, RedirectUri, Scopes,
    contract::{CSRF_HEADER, CSRF_VALUE, ProviderId, ProviderInfo},
};
use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::{error::invalid_config, js};

/// The `broker` option as the base of every request: an absolute URL (`https`, or `http` on
/// loopback) or a same-origin path (`/cm`), without its trailing slash.
#[wasm_bindgen(js_name = brokerBase)]
pub fn broker_base(raw: &str) -> Result<String, JsValue> {
    let mut base = raw;
    while let Some(shorter) = base.strip_suffix('/') {
        base = shorter;
    }
    let bad = |c: &[u8]| base.bytes().any(|b| c.contains(&b));
    let ok = match base.strip_prefix('/') {
        Some(path) => !path.starts_with('/') && !bad(b"\\?#"),
        None if base.is_empty() => !raw.is_empty(),
        None => RedirectUri::parse(base).is_ok() && !bad(b"?#"),
    };
    if !ok {
        return Err(invalid_config(
            "broker must be an https URL (http on localhost) or a path such as /cm",
        ));
    }
    Ok(base.to_owned())
}

/// The CSRF header every broker request carries: `[name, value]`.
#[wasm_bindgen(js_name = csrfHeader)]
pub fn csrf_header() -> Array {
    Array::of2(&CSRF_HEADER.into(), &CSRF_VALUE.into())
}

/// The error for a `/v1/config` without a usable provider.
pub(crate) fn unusable() -> JsValue {
    invalid_config("The broker's /v1/config lists no usable provider")
}

/// Checks a `/v1/config` answer and returns its `providers` array: every provider must be
/// readable and valid (ids, client id, redirect URI, FHIR base, scopes).
#[wasm_bindgen(js_name = checkConfig)]
pub fn check_config(config: JsValue) -> Result<JsValue, JsValue> {
    let list = js::get_array(&config, "providers").ok_or_else(unusable)?;
    if list.length() == 0 || (0..list.length()).any(|i| provider(&list.get(i)).is_none()) {
        return Err(unusable());
    }
    Ok(list.into())
}

/// One provider of `/v1/config`, validated.
pub(crate) fn provider(p: &JsValue) -> Option<ProviderInfo> {
    let text = |key| js::get_str(p, key);
    let scopes = |key| {
        let mut words = String::new();
        for word in js::strings(&js::get_array(p, key)?)? {
            if !words.is_empty() {
                words.push(' ');
            }
            words.push_str(&word);
        }
        Scopes::parse(&words).ok()
    };
    let scopes_supported = match js::get(p, "scopes_supported") {
        v if v.is_null() || v.is_undefined() => None,
        _ => Some(scopes("scopes_supported")?),
    };
    let mut eob_types = Vec::new();
    if let Some(list) = js::get_array(p, "eob_types") {
        for t in js::strings(&list)? {
            eob_types.push(EobType::parse(&t)?);
        }
    }
    Some(ProviderInfo {
        id: ProviderId::new(&text("id")?).ok()?,
        name: text("name")?,
        kind: match text("kind")?.as_str() {
            "blue_button" => ProviderKind::BlueButton,
            "smart" => ProviderKind::Smart,
            _ => return None,
        },
        client_id: ClientId::new(&text("client_id")?).ok()?,
        authorization_endpoint: text("authorization_endpoint")?,
        aud: FhirBase::parse(&text("aud")?).ok()?,
        scopes: scopes("scopes")?,
        scopes_supported,
        redirect_uri: RedirectUri::parse(&text("redirect_uri")?).ok()?,
        authorize_post: js::get(p, "authorize_post").as_bool()?,
        max_page_size: js::get(p, "max_page_size")
            .as_f64()
            .filter(|n| *n >= 1.0 && *n <= 10_000.0)
            .map(|n| n as u32),
        eob_types,
    })
}
