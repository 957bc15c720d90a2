//! # connect-medicare-broker
//!
//! The self-hosted token broker of Connect Medicare (a backend-for-frontend): it holds the
//! confidential client secret, redeems authorization codes, stores and refreshes tokens server
//! side, proxies an allow-listed set of FHIR reads, and revokes on disconnect, so no secret or
//! token ever reaches the browser. It speaks the contract in
//! [`connect_medicare_protocol::contract`].
//!
//! What is here:
//!
//! - [`Config`]: the TOML file plus `CM_BROKER_*` overrides, validated once at start
//!   (`broker.example.toml` documents every field).
//! - [`KeyRing`]: tokens at rest, sealed with XChaCha20-Poly1305 and bound to their session
//!   and field.
//! - [`SessionId`], [`FlowCookie`] and the hashes the store keeps instead of them.
//! - [`Store`]: flows, sessions, connections with their refresh leases, and the revocation
//!   queue, one role trait each ([`FlowStore`], [`SessionStore`], [`ConnectionStore`],
//!   [`RevocationStore`]);
//!   [`SqliteStore`] (WAL, migrated at start), [`PgStore`] (several replicas, which it keeps to
//!   one refresh per connection between them) and [`MemoryStore`] (tests).
//! - [`ApiError`] and [`ApiJson`]: one JSON error shape for every failure.
//! - [`app`]: the router — the `/v1` API (flows, session, disconnect, the FHIR proxy),
//!   `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, and the optional static site;
//!   [`metrics_app`] when `/metrics` has a listener of its own; and [`serve`] /
//!   [`serve_metrics`], with their header-read deadlines, connection and header caps and
//!   graceful shutdown.
//!
//! # Quick start
//!
//! What `connect-medicare-broker serve` does:
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//!
//! use connect_medicare_broker::{AppState, Config, SystemClock, open_store, serve};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(Path::new("broker.toml"))?; // plus CM_BROKER_* overrides
//! for warning in config.warnings() {
//!     eprintln!("warning: {warning}");
//! }
//! let store = open_store(config.database()).await?; // migrations applied here
//! let listener = tokio::net::TcpListener::bind(config.listen()).await?;
//! let state = AppState::new(Arc::new(config), store, Arc::new(SystemClock)).await?;
//! serve(listener, state, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - The client secret, token-encryption keys, cookie values and tokens are secret types with
//!   redacted `Debug`; configuration errors name fields, never values.
//! - The store never sees a raw `state`, cookie value or plaintext token: flows are keyed by
//!   SHA-256 of the state, sessions by SHA-256 of the cookie, tokens are ciphertexts.
//! - Token writes are compare-and-set on a generation number, and flow completion is a single
//!   atomic step, so concurrent requests cannot redeem a code twice or resurrect a
//!   disconnected session.

#![forbid(unsafe_code)]

mod app;
mod clock;
mod compartment;
mod config;
mod cookies;
mod crypto;
mod error;
mod fhir;
mod flows;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod ids;
mod metrics;
mod ops;
mod origin;
mod pages;
mod refresh;
mod server;
mod session;
mod site;
mod state;
mod store;
mod upstream;

pub use app::{MAX_BODY_BYTES, app, install_panic_hook};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ClientAuth, Config, DatabaseConfig, ENV_PREFIX, Env, PostgresUrl, ProviderConfig,
    ProviderUpstream, ResolvedProvider, UpstreamTimeouts,
};
pub use crypto::{Aad, Ciphertext, KeyId, KeyMaterial, KeyRing, TokenKind, new_key_id};
pub use error::{ApiError, ApiJson, Error, Record, Result};
pub use ids::{FlowCookie, FlowCookieHash, FlowKey, ProofHash, SessionHash, SessionId};
pub use ops::{OPENAPI, metrics_app, probe_upstreams};
pub use origin::Origin;
pub use server::{MAX_HEADER_BYTES, SHUTDOWN_GRACE, serve, serve_metrics};
pub use session::drain_revocations;
pub use site::{content_security_policy, form_action_sources};
pub use state::AppState;
pub use store::{
    BeginOutcome, ConnectionRecord, ConnectionStore, Disconnected, FlowRecord, FlowStatus,
    FlowStore, LeaseHolder, MemoryStore, NewRevocation, PendingRevocation, PgStore,
    RevocationStore, RevokePolicy, Rotation, SessionRecord, SessionStore, SqliteStore, Store,
    TokenUpdate, open_store,
};
