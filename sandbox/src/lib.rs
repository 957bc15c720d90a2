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
//!   characters, `plain`), Blue Button's sign-in redirect chain to a Medicare login on an
//!   origin of its own (a second listener) with a real sign-in page for
//!   `BBUser00000`–`BBUser00029`, a consent page
//!   with Allow / Deny and "share personal information", and the bare "Invalid scopes." page;
//! - single-use codes bound to the redirect URI, S256, refresh tokens that rotate and kill
//!   the previous access token, 13-month / one-time / research grants, both revocation
//!   endpoints, introspection and userinfo;
//! - FHIR reads and searches forced to the token's patient, `_count` ≤ 50, and Bundle links
//!   on a host that is not the sandbox's.
//!
//! And its FHIR side as demanding as production:
//!
//! - **Data**: 30 beneficiaries, each with a Patient (BB2's `bene_id` identifiers, the MBI,
//!   CCW extensions), Coverage for Parts A, B, C and D, and claims of all eight types
//!   (carrier, dme, hha, hospice, inpatient, outpatient, pde, snf) in CARIN Blue Button (C4BB)
//!   shape, built from real Blue Button responses and keeping every JSON key path of them;
//!   items, diagnoses, care teams with NPIs, adjudications and payments vary deterministically.
//!   `BBUser00009`, `BBUser00019` and `BBUser00029` have hundreds of claims: a page of 50
//!   inpatient or outpatient claims runs to several megabytes.
//! - **Search** as Blue Button: `type`, `service-date` and `_lastUpdated` (`lt|le|gt|ge`,
//!   repeatable into an interval; a missing operator answers Blue Button's 400 verbatim),
//!   unknown parameters ignored, `total`, and links that carry the search.
//! - **Compression**: gzip when `Accept-Encoding` asks for it and the body is over 1 KB.
//! - **Rate limit** per access token on the FHIR views (not userinfo, not metadata), as
//!   Django REST framework's `SimpleRateThrottle` does it: `429` with `Retry-After` and
//!   "Request was throttled. Expected available in N seconds.", and `X-RateLimit-Limit`,
//!   `-Remaining`, `-Reset` (float seconds) on every answer (the literal `None` where no limit
//!   was checked, as Blue Button writes them). 10 requests per second by
//!   default ([`SandboxConfig::throttle`]); it runs on the sandbox's [`Clock`], so tests
//!   advance a frozen clock instead of sleeping.
//! - **Faults** ([`FaultConfig`]), deterministic under [`SandboxConfig::seed`]: latency,
//!   upstream failures (Blue Button's 502s, on FHIR and on refresh — after the rotation),
//!   dropped connections, and a forced 429 storm; plus a clock offset. With
//!   [`SandboxConfig::admin`], `/__admin/faults` and `/__admin/clock` change them while the
//!   sandbox runs (they are 404s otherwise).
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
//!
//! # Faults and the rate limit (in a test)
//!
//! ```no_run
//! use connect_medicare_sandbox::{
//!     AppConfig, Clock, FaultConfig, Sandbox, SandboxConfig, Storm, ThrottleRate,
//! };
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = AppConfig::new("my-client", "my-secret", "http://localhost:8080/callback");
//! let config = SandboxConfig {
//!     apps: vec![app],
//!     throttle: Some(ThrottleRate::per_second(5)),
//!     faults: FaultConfig {
//!         error_rate: 0.1,            // one FHIR call in ten answers 502
//!         storm: Some(Storm::Requests(3)), // the first three answer 429
//!         ..FaultConfig::default()
//!     },
//!     seed: 42,
//!     admin: true,
//!     ..SandboxConfig::default()
//! };
//! // A frozen clock: the rate-limit window moves only when the test advances it.
//! let sandbox = Sandbox::start(config, Clock::frozen()).await?;
//! sandbox.clock().advance_millis(1_000);
//! # Ok(()) }
//! ```
//!
//! # Security
//!
//! The sandbox is a test peer: its tokens and codes are derived from the seed, and the admin
//! endpoints take no credentials. Bind it to loopback.
//!
//! Specifications: RFC 6749, RFC 7636 (PKCE), RFC 7009 (revocation), RFC 7662
//! (introspection), SMART App Launch 2.2, CARIN Blue Button (C4BB) v2.

#![forbid(unsafe_code)]

mod admin;
mod app;
mod authorize;
mod claims;
mod clinical;
mod clock;
mod config;
mod data;
mod discovery;
#[cfg(feature = "driver")]
pub mod driver;
mod errors;
mod faults;
mod fhir;
mod form;
mod login;
mod network;
mod pages;
mod samples;
mod search;
mod server;
mod state;
mod throttle;
mod token;
mod users;

pub use clock::Clock;
pub use config::{AppConfig, ExpirationFormat, FaultConfig, GrantKind, SandboxConfig, Storm};
pub use data::Dataset;
pub use server::{Listen, Sandbox};
pub use throttle::ThrottleRate;
pub use users::{ClaimMeta, USER_COUNT, User};
