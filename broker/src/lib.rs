//! # connect-medicare-broker
//!
//! The self-hosted token broker of Connect Medicare (a backend-for-frontend): it holds the
//! confidential client secret, redeems authorization codes, stores and refreshes tokens server
//! side, proxies an allow-listed set of FHIR reads, and revokes on disconnect, so no secret or
//! token ever reaches the browser. It speaks the contract in
//! [`connect_medicare_protocol::contract`].
//!
//! The service itself arrives with the broker issues; this crate has no routes yet and does
//! not pretend to.

#![forbid(unsafe_code)]
