//! # connect-medicare (wasm SDK)
//!
//! The browser half of Connect Medicare, published to npm as `connect-medicare`. It stays a
//! thin `#[wasm_bindgen]` layer over [`connect_medicare_protocol`]: PKCE and `state` from
//! `crypto.getRandomValues`, the authorize redirect, the callback, and typed FHIR reads through
//! the token broker.
//!
//! This crate has no exports yet: the bindings arrive with the SDK issue. Until then nothing
//! here pretends to work.

#![forbid(unsafe_code)]

pub use connect_medicare_protocol as protocol;
