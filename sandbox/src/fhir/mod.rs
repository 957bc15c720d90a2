//! The FHIR surface: `metadata`, `Patient`, `Coverage`, `ExplanationOfBenefit` (read and
//! search), and `userinfo`. Every search is forced to the token's own patient; Bundle links
//! are written on a foreign host, as Blue Button passes its backend's links through.
//!
//! A Blue Button read or search goes through the same steps as on the real server: the
//! token (401), the scopes (403), the per-token rate limit (429, with the `X-RateLimit-*`
//! headers from then on), Blue Button's parameter checks (400), the backend (an injected
//! upstream failure answers 502), the backend's own checks (400), then the data.
//!
//! Here: the routes' handlers, gathered from the submodules — searches and their paging in
//! `search.rs`, reads by id in `read.rs`, the CapabilityStatement in `metadata.rs`, userinfo in
//! `userinfo.rs`; the checks before the data in `access.rs`, the answers in `render.rs`, the
//! failures in `failure.rs`.

mod access;
mod failure;
mod metadata;
mod read;
mod render;
mod search;
mod userinfo;

pub(crate) use self::{
    metadata::{bb2_metadata, smart_metadata},
    read::{bb2_read, smart_read},
    search::{bb2_search, smart_pages, smart_search},
    userinfo::userinfo,
};
