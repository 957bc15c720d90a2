//! # connect-medicare (wasm SDK)
//!
//! The browser half of Connect Medicare, published to npm as `connect-medicare`. It stays a
//! thin `#[wasm_bindgen]` layer over [`connect_medicare_protocol`]: every rule — PKCE, `state`,
//! the authorize-request validation, callback parsing, paging — is the protocol crate's; this
//! crate adds the browser around them (`crypto.getRandomValues`, sessionStorage, navigation,
//! the address bar) and maps every failure to one JS error class with a stable `code`.
//!
//! The exports are synchronous. The npm package's small JS layer (`npm/src/index.js`) does the
//! asynchronous part — `fetch` to the broker — and calls in here before and after each
//! request:
//!
//! | step | wasm export | JS layer |
//! |---|---|---|
//! | create | [`broker_base`], [`check_config`] | `GET /v1/config` |
//! | connect | [`connect_request`] → [`connect_finish`] → [`navigate`] | `POST /v1/flows` after the first |
//! | callback | [`handle_redirect`] | `POST /v1/flows/complete` (the `complete` callback) |
//! | reads | [`eob_query`], [`next_page`], [`page_plan`] | `GET /v1/fhir/...`, the page pool |
//! | errors | — | every non-2xx answer: `brokerError` in `js/error.js` |
//!
//! # Size
//!
//! The module ships to every visitor, so it keeps `serde_json`, `format!`, async state machines
//! and panicking paths out: bodies are parsed by the browser's `JSON.parse` and read field by
//! field, messages are static strings, failures are values. scripts/build-npm.sh builds it
//! without `std` (the `std` feature, on by default for tests and native builds, is off there):
//! no panic machinery, and the protocol crate without its `messages`, so refusals carry
//! [`Error::code`](connect_medicare_protocol::Error::code) only. Errors that need no rule —
//! the mapping of a broker answer that is not 2xx — live in `js/error.js`, and the
//! completions [`handle_redirect`] shares are kept in a JS `Map` the JS layer owns.
//!
//! # Security
//!
//! - The SDK never sees the client secret or a token: the broker holds them, the browser only
//!   an HttpOnly cookie. Every broker request carries [`CSRF_HEADER`].
//! - The authorize request the broker returns is checked with
//!   [`AuthorizeRedirect::validate`](connect_medicare_protocol::AuthorizeRedirect::validate)
//!   against the broker's published configuration and this tab's own `state` and challenge
//!   before the browser goes anywhere.
//! - The verifier is kept in sessionStorage under its `state` with a TTL and read once;
//!   `state` is checked before `error`; `code` and `state` leave the address bar at once.
//! - Paging reads only `startIndex` and `_count` from a Bundle link; the next page is the same
//!   search sent to the broker.
//!
//! [`CSRF_HEADER`]: connect_medicare_protocol::contract::CSRF_HEADER

#![forbid(unsafe_code)]
// Without `std` (how scripts/build-npm.sh builds the shipped module) the crate is `core` and
// `alloc` only; a panic, which no path should reach, traps.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod browser;
mod config;
mod error;
mod flow;
mod js;
mod paging;
mod storage;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

pub use config::{broker_base, check_config, csrf_header};
pub use connect_medicare_protocol as protocol;
pub use flow::{connect_finish, connect_request, handle_redirect, navigate};
pub use paging::{eob_query, next_page, page_plan};
pub use storage::FlowStorage;

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

/// A small allocator instead of dlmalloc: about 2.5 KB less brotli in the shipped module.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
