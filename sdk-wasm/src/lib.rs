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
//! | errors | [`broker_error`] | every non-2xx answer |
//!
//! # Size
//!
//! The module ships to every visitor, so it keeps `serde_json`, `format!`, async state machines
//! and panicking paths out: bodies are parsed by the browser's `JSON.parse` and read field by
//! field, messages are static strings, failures are values.
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
pub use error::broker_error;
pub use flow::{connect_finish, connect_request, handle_redirect, navigate};
pub use paging::{eob_query, next_page, page_plan};
pub use storage::FlowStorage;

/// A small allocator instead of dlmalloc: about 2.5 KB less brotli in the shipped module.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
