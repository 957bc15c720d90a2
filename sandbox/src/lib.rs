//! # connect-medicare-sandbox
//!
//! An offline emulator of the CMS Blue Button 2.0 v2 sandbox, quirks included (trailing-slash
//! 301s, rotating refresh tokens, the "Invalid scopes." page, BB2's error bodies), plus a
//! generic SMART App Launch 2.2 profile. It is the upstream for every test, the demo and
//! offline development, because CMS cannot be reached from our machines.
//!
//! The server arrives with the sandbox issues; this crate serves nothing yet and does not
//! pretend to.

#![forbid(unsafe_code)]
