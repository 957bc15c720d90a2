//! # connect-medicare (wasm SDK)
//!
//! The browser half of Connect Medicare, published to npm as `connect-medicare`. It stays a
//! thin `#[wasm_bindgen]` layer over [`connect_medicare_protocol`]: the rules a sign-in's
//! security rests on — `state` and PKCE made from `crypto.getRandomValues`, the validation of
//! the authorize request before the browser follows it, the callback (`state` before `error`)
//! and the flow record kept for it (TTL, same-origin return path) — are the protocol crate's,
//! the very code the broker runs, and run here.
//!
//! # A strings-only boundary
//!
//! The module exports one function, [`call`]: an operation number and its fields joined by
//! `\n`, answered with one string — fields joined by `\n`, or a refusal: `!`, the error's
//! stable code, `\n` and a human message (see [`out`]). The operations are the pure
//! functions below; the npm package's JS layer (`npm/src/index.js`) does the browser's part —
//! `fetch` to the broker, sessionStorage, the address bar, navigation — and calls in here
//! before it acts:
//!
//! | op | function | JS layer |
//! |---|---|---|
//! | 0 | [`start`] | `connect`: then `POST /v1/flows` |
//! | 1 | [`finish`] | keeps the record it answers, then navigates |
//! | 2 | [`callback_state`] | `handleRedirect`: cleans the address bar, takes the record kept under that state |
//! | 3 | [`complete`] | then `POST /v1/flows/complete` |
//!
//! One function of strings needs no more glue than a string copy each way
//! (`sdk-wasm/js/loader.js`). A field never holds a line break (a URL, a path, base64url,
//! digits), and [`call`] refuses input with more or fewer fields than the operation takes, or
//! a number that is not one, so no value can pass for another.
//!
//! # Size
//!
//! The module ships to every visitor: it holds no `JsValue` (its one import is wasm-bindgen's
//! start hook for the externref table it never uses), no `serde_json`, `format!` or
//! panicking paths; and scripts/build-npm.sh builds it without `std` (the default `std`
//! feature is for tests and native builds): a panic, which no path should reach, traps.
//! Refusals carry a message, not the protocol rule's own code (`audience_mismatch`, say):
//! the table of those codes would ship too; the broker runs the same rules.
//!
//! # Security
//!
//! - The SDK never sees the client secret or a token: the broker holds them, the browser only
//!   an HttpOnly cookie.
//! - [`finish`] checks the broker's authorize request with
//!   [`AuthorizeRedirect::validate`](connect_medicare_protocol::AuthorizeRedirect::validate)
//!   against the broker's published configuration and this tab's own `state` and challenge;
//!   only when it passes does the JS layer navigate to the very URL it passed in (GET), or
//!   post the very fields whose encoding it passed in (POST).
//! - The flow record holds the verifier under its `state` with a TTL; [`complete`] reads it
//!   once (the JS layer removes it before calling) and checks `state` before `error`.

#![forbid(unsafe_code)]
// Without `std` (how scripts/build-npm.sh builds the shipped module) the crate is `core` and
// `alloc` only; a panic, which no path should reach, traps.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod flow;
pub mod out;
#[cfg(test)]
mod tests;

pub use connect_medicare_protocol as protocol;
pub use flow::{
    Answer, ProviderEntry, Started, callback_state, complete, finish, is_return_path, start,
};

use crate::prelude::*;

use connect_medicare_protocol::text::{cut, parse_uint};
use wasm_bindgen::prelude::*;

use crate::out::{code, unfit};

/// The most fields an operation takes.
const MAX_FIELDS: usize = 16;

/// The module's one export: runs operation `op` (see the table above) on the `\n`-joined
/// `input` fields. An empty field is an absent option; numbers are decimal; flags `1` or `0`.
/// Input that does not fit the operation is refused.
#[wasm_bindgen]
pub fn call(op: u32, input: &str) -> String {
    let mut f = [""; MAX_FIELDS];
    let mut n = 0;
    let mut rest = Some(input);
    while let Some((field, next)) = rest.map(|r| cut(r, b'\n')) {
        if let Some(slot) = f.get_mut(n) {
            *slot = field;
        }
        n += 1;
        rest = next;
    }
    let number = |s: &str| parse_uint(s, u64::MAX);
    match (op, n) {
        (0, 2) => match random(f[0]) {
            Some(random) => start(&random, some(f[1])),
            None => unfit(code::INVALID_CONFIG),
        },
        (1, 16) => match (number(f[14]), number(f[15])) {
            (Some(expires_in), Some(now)) => finish(
                &ProviderEntry {
                    id: f[0],
                    authorization_endpoint: f[1],
                    client_id: f[2],
                    redirect_uri: f[3],
                    aud: f[4],
                    scopes_supported: some(f[5]),
                    authorize_post: f[6] == "1",
                },
                &Started {
                    state: f[7],
                    verifier: f[8],
                    post: f[9] == "1",
                    return_to: some(f[10]),
                },
                &Answer {
                    method: f[11],
                    target: f[12],
                    form: f[13],
                    expires_in,
                },
                now,
            ),
            _ => unfit(code::INVALID_CONFIG),
        },
        (2, 1) => callback_state(f[0]),
        (3, 3) => match number(f[2]) {
            Some(now) => complete(f[0], some(f[1]), now),
            None => unfit(code::INVALID_REQUEST),
        },
        (0..=1, _) => unfit(code::INVALID_CONFIG),
        _ => unfit(code::INVALID_REQUEST),
    }
}

/// `s`, or `None` when it is empty.
fn some(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// 64 bytes from 128 hex digits.
fn random(hex: &str) -> Option<[u8; 64]> {
    let digits = hex.as_bytes();
    if digits.len() != 128 {
        return None;
    }
    let mut out = [0; 64];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let digit = |d: u8| char::from(d).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// What the standard prelude gives and `no_std` does not.
mod prelude {
    pub(crate) use alloc::{borrow::ToOwned, string::String};
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
