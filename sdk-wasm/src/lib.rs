//! # connect-medicare (wasm SDK)
//!
//! The browser half of Connect Medicare, published to npm as `connect-medicare`: the module
//! that produces PKCE and `state` in the browser and handles the redirect. It is a
//! `#[wasm_bindgen]` layer over [`connect_medicare_protocol`] — the rules a sign-in's security
//! rests on are the protocol crate's, the very code the broker runs — and does the browser's
//! part of a sign-in itself, through `web-sys` and `js-sys`:
//!
//! - [`SignIn::new`] draws `state` and the PKCE verifier from `getrandom` (the browser's
//!   `crypto.getRandomValues`) and derives the S256 challenge (`sha2` + `base64`, in the
//!   protocol crate);
//! - [`SignIn::follow`] validates the broker's authorize request against the broker's
//!   published configuration and this sign-in's own `state` and challenge, writes the flow
//!   record and hands it to the JS layer to keep, and only then navigates: `location.assign`
//!   to the very URL it validated, or a form it builds from the very fields it validated,
//!   submitted;
//! - on the redirect, [`complete_callback`] (`completeCallback` in JS) reads the callback
//!   against the flow record the JS layer took out of sessionStorage under the callback's
//!   `state`: a well-formed callback, `state` before `error`, the record's TTL, and what
//!   `POST /v1/flows/complete` needs.
//!
//! The npm package's JS layer (`npm/src/`) does what is cheaper in JS: `fetch` to the broker,
//! `JSON.parse` of FHIR, paging, the public API — and, measured (see `browser.rs`), the
//! sessionStorage calls and the `history.replaceState` that cleans the address bar. It loads
//! this module (wasm-bindgen's own `--target web` glue) only for a sign-in: `connect()` and the
//! callback route.
//!
//! # Size
//!
//! The module is synchronous (no futures, no `wasm-bindgen-futures`), reads JS values with
//! `js_sys::Reflect` rather than serde, and scripts/build-npm.sh builds it without `std` (the
//! default `std` feature is for tests and native builds): a panic, which no path should reach,
//! traps. `docs/architecture.md` gives the measured reasons, and the command that re-measures
//! them, for leaving `gloo-net`, `serde-wasm-bindgen` and `serde_json` out of it.
//!
//! # Security
//!
//! - The SDK never sees the client secret or a token: the broker holds them, the browser only
//!   an HttpOnly cookie.
//! - What is validated is what is followed: [`SignIn::follow`] navigates with the values it
//!   checked, never with a copy the JS layer could change in between.
//! - The flow record holds the verifier under its `state` with a TTL; the JS layer removes it
//!   from sessionStorage before [`complete_callback`] reads it, so a callback completes at most
//!   once.

#![forbid(unsafe_code)]
// Without `std` (how scripts/build-npm.sh builds the shipped module) the crate is `core` and
// `alloc` only; a panic, which no path should reach, traps.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod browser;
mod flow;
/// The flow rules, for the fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::flow::{Completed, callback_state, complete, is_return_path};
}
#[cfg(feature = "measure-gloo-net")]
pub mod measure;
pub mod out;
#[cfg(test)]
mod tests;

pub use connect_medicare_protocol as protocol;
pub use flow::{
    Answer, Completed, ProviderEntry, Started, callback_state, complete, finish, is_return_path,
    start,
};

use crate::prelude::*;

use connect_medicare_protocol::{PkceVerifier, State};
use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::browser::{get, text};
use crate::out::{Refusal, code};

/// One sign-in, from its secrets to the navigation (`new SignIn(post, returnTo)` in JS).
#[wasm_bindgen]
pub struct SignIn {
    state: State,
    verifier: PkceVerifier,
    post: bool,
    return_to: Option<String>,
}

#[wasm_bindgen]
impl SignIn {
    /// Draws `state` and the PKCE verifier (32 random bytes each, from `getrandom`), for an
    /// authorize request sent as a form POST when `post`, returning to `return_to` (a
    /// same-origin path) afterwards.
    #[wasm_bindgen(constructor)]
    pub fn new(post: bool, return_to: Option<String>) -> Result<SignIn, JsValue> {
        let mut random = [0; 64];
        getrandom::fill(&mut random).map_err(|_| {
            Refusal::new(
                code::NOT_IN_BROWSER,
                "crypto.getRandomValues is not available",
            )
        })?;
        let (state, verifier) = start(&random, return_to.as_deref())?;
        Ok(SignIn {
            state,
            verifier,
            post,
            return_to,
        })
    }

    /// The `state` to register with the broker.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.state.as_str().to_owned()
    }

    /// The S256 code challenge to register with the broker.
    #[wasm_bindgen(getter = codeChallenge)]
    pub fn code_challenge(&self) -> String {
        self.verifier.challenge().as_str().to_owned()
    }

    /// With `provider` (the provider's entry in the broker's `/v1/config`) and `answer` (the
    /// broker's answer to `POST /v1/flows`): validates the authorize request, calls
    /// `keep(state, record)` — the JS layer keeps the flow record in sessionStorage, and
    /// throws when it cannot — and then navigates: a GET, or a hidden form POSTed. Used once:
    /// the object is spent.
    pub fn follow(
        self,
        provider: &JsValue,
        answer: &JsValue,
        keep: &Function,
    ) -> Result<(), JsValue> {
        let unusable = || {
            Refusal::new(
                code::INVALID_CONFIG,
                "The broker's /v1/config lists an unusable provider",
            )
        };
        let field = |key| text(provider, key).ok_or_else(unusable);
        let (id, authorization_endpoint, client_id, redirect_uri, aud) = (
            field("id")?,
            field("authorization_endpoint")?,
            field("client_id")?,
            field("redirect_uri")?,
            field("aud")?,
        );
        let scopes_supported = match get(provider, "scopes_supported") {
            v if v.is_null() || v.is_undefined() => None,
            v => Some(browser::strings(&v).ok_or_else(unusable)?.join(" ")),
        };
        let entry = ProviderEntry {
            id: &id,
            authorization_endpoint: &authorization_endpoint,
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            aud: &aud,
            scopes_supported: scopes_supported.as_deref(),
            authorize_post: get(provider, "authorize_post").as_bool() == Some(true),
        };
        let authorize = get(answer, "authorize");
        let method = text(&authorize, "method").unwrap_or_default();
        let target = text(&authorize, if self.post { "action" } else { "url" }).unwrap_or_default();
        // A field that is not a [name, value] pair of strings refuses the whole request.
        let fields = match get(&authorize, "fields") {
            v if v.is_undefined() => Vec::new(),
            v => browser::pairs(&v).ok_or_else(|| {
                Refusal::new(
                    code::INVALID_CONFIG,
                    "The broker's authorize request does not match its configuration",
                )
            })?,
        };
        let expires_in = get(answer, "expires_in").as_f64().map_or(0, seconds);
        let now = browser::now();
        let started = Started {
            state: &self.state,
            verifier: &self.verifier,
            post: self.post,
            return_to: self.return_to.as_deref(),
        };
        let answer = Answer {
            method: &method,
            target: &target,
            fields,
            expires_in,
        };
        let (redirect, record) = finish(&entry, &started, answer, now)?;
        keep.call2(
            &JsValue::NULL,
            &JsValue::from(self.state.as_str()),
            &JsValue::from(record),
        )?;
        browser::navigate(&redirect)?;
        Ok(())
    }
}

/// A whole number of seconds from a JSON number, within a day: anything else is 0 (unsaid).
fn seconds(n: f64) -> u64 {
    if n.is_finite() && n >= 1.0 {
        // In range by the clamp: the cast neither truncates a whole part nor wraps.
        n.min(86_400.0) as u64
    } else {
        0
    }
}

/// Reads the callback `url` against `record`, the flow record kept under its `state` (already
/// taken out of sessionStorage; `undefined` when there was none): `state` first — a readable,
/// unexpired record whose `state` matches — then the callback's `error`, then its code.
/// Answers `{state, code, codeVerifier, provider, returnTo, iss}` (`returnTo` and `iss` are
/// `null` when there is none; the broker checks `iss`).
#[wasm_bindgen(js_name = completeCallback)]
pub fn complete_callback(url: &str, record: Option<String>) -> Result<JsValue, JsValue> {
    let done = complete(url, record.as_deref(), browser::now())?;
    let out = js_sys::Object::new();
    let set = |key: &str, value: JsValue| browser::set(&out, key, &value);
    let optional = |v: Option<String>| v.map_or(JsValue::NULL, JsValue::from);
    set("state", done.state.into());
    set("code", done.code.into());
    set("codeVerifier", done.verifier.into());
    set("provider", done.provider.into());
    set("returnTo", optional(done.return_to));
    set("iss", optional(done.iss));
    Ok(out.into())
}

impl From<Refusal> for JsValue {
    /// A JS `Error` with the refusal's message and a `code` property.
    fn from(refusal: Refusal) -> JsValue {
        let error = js_sys::Error::new(&refusal.message);
        browser::set(&error, "code", &refusal.code.into());
        error.into()
    }
}

/// What the standard prelude gives and `no_std` does not.
mod prelude {
    pub(crate) use alloc::{borrow::ToOwned, string::String, vec::Vec};
}

/// Without `std` a panic traps: the module carries no panic message, location or formatting
/// code. Nothing is lost: with `panic = "abort"` a panic was already the end of the module.
#[cfg(all(not(feature = "std"), target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// A small allocator instead of dlmalloc: a smaller shipped module.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
