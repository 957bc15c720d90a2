//! Whole-system tests of Connect Medicare: they start the sandbox and the broker on ephemeral
//! loopback ports and drive them over real HTTP (and, from `tests/e2e`, a real Chromium).
//!
//! The suites arrive with the sandbox and broker; the Node project beside this crate holds the
//! browser and package tooling (`playwright-core`, TypeScript, `@types/fhir`).

#![forbid(unsafe_code)]
