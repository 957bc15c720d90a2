//! # connect-medicare-sandbox
//!
//! An offline emulator of the CMS Blue Button 2.0 v2 sandbox, quirks included, plus a
//! generic SMART App Launch 2.2 face on `/smart/`. It is the upstream for Connect Medicare's
//! tests, its demo and offline development, because CMS cannot be reached from our machines.
//!
//! What it reproduces (statuses and bodies verbatim from Blue Button):
//!
//! - discovery without `issuer`, advertising `/v2/o/authorize` and `/v2/o/revoke_token`
//!   **without** their trailing slash, which the server answers with **301** even for POST;
//! - authorize-time checks before sign-in (missing PKCE or `state`, `state` under 16
//!   characters, `plain`), a real sign-in page for `BBUser00000`–`BBUser00029`, a consent page
//!   with Allow / Deny and "share personal information", and the bare "Invalid scopes." page;
//! - single-use codes bound to the redirect URI, S256, refresh tokens that rotate and kill
//!   the previous access token, 13-month / one-time / research grants, both revocation
//!   endpoints, introspection and userinfo;
//! - FHIR reads and searches forced to the token's patient, `_count` ≤ 50, and Bundle links
//!   on a host that is not the sandbox's.
//!
//! # Quick start (in a test)
//!
//! ```no_run
//! use connect_medicare_sandbox::{AppConfig, Clock, Sandbox, SandboxConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = AppConfig::new("my-client", "my-secret", "http://localhost:8080/callback");
//! let sandbox = Sandbox::start(SandboxConfig::with_app(app), Clock::new()).await?;
//! println!("Blue Button at {}", sandbox.origin());
//! sandbox.clock().advance(3600); // age every token by an hour
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod app;
mod authorize;
mod clock;
mod config;
mod data;
mod discovery;
#[cfg(feature = "driver")]
pub mod driver;
mod errors;
mod fhir;
mod pages;
mod server;
mod state;
mod token;

pub use app::router;
pub use clock::Clock;
pub use config::{AppConfig, ExpirationFormat, GrantKind, SandboxConfig};
pub use data::{ClaimMeta, Dataset, USER_COUNT, User};
pub use server::Sandbox;
