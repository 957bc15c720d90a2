//! Only with the `measure-gloo-net` feature, for `scripts/measure-wasm.sh`: what the module
//! would carry if it fetched and read the broker's answers itself — `gloo-net` for the request,
//! `serde` and `serde-wasm-bindgen` for the JSON — instead of the JS layer's `fetch` and
//! `JSON.parse`. Never shipped: the measurement is why.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::prelude::*;

/// A `/v1/config` provider entry, as far as a sign-in reads it.
#[derive(Debug, Deserialize, Serialize)]
struct Provider {
    id: String,
    authorization_endpoint: String,
    client_id: String,
    redirect_uri: String,
    aud: String,
    scopes_supported: Option<Vec<String>>,
    authorize_post: bool,
}

/// `GET /v1/config`.
#[derive(Debug, Deserialize, Serialize)]
struct Config {
    providers: Vec<Provider>,
}

/// Reads `{broker}/v1/config` with gloo-net and answers it as a JS object.
#[wasm_bindgen(js_name = fetchConfig)]
pub async fn fetch_config(broker: String) -> Result<JsValue, JsValue> {
    let failed = |e: gloo_net::Error| JsValue::from_str(&e.to_string());
    let config: Config = gloo_net::http::Request::get(&[broker.as_str(), "/v1/config"].concat())
        .header("x-connect-medicare", "1")
        .send()
        .await
        .map_err(failed)?
        .json()
        .await
        .map_err(failed)?;
    Ok(serde_wasm_bindgen::to_value(&config)?)
}
