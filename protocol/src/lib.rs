//! # connect-medicare-protocol
//!
//! The rules of [Connect Medicare](https://github.com/connect-medicare/connect-medicare), with
//! no I/O and no random-number backend: callers hand in random bytes (the browser SDK from
//! `crypto.getRandomValues`, the broker from the operating system) and HTTP bodies, and get
//! back validated values, URLs and typed errors. Both halves of the toolkit — the wasm SDK and
//! the Axum token broker — depend on this crate, so they cannot drift apart.
//!
//! What lives here:
//!
//! - [`PkceVerifier`] / [`PkceChallenge`]: PKCE with S256 only ([RFC 7636]).
//! - [`State`]: 256-bit `state`, compared in constant time.
//! - [`Scope`] / [`Scopes`]: SMART App Launch v1 (`patient/X.read`) and v2 (`patient/X.rs`)
//!   scopes, normalised and compared ([SMART App Launch 2.2 §scopes]).
//! - [`Provider`]: the Blue Button 2.0 profiles (sandbox, production, a local emulator) and
//!   generic SMART servers built from their `.well-known/smart-configuration`.
//! - [`AuthorizeRequest`]: the GET URL or POST form, and the one validation both halves run
//!   before anyone navigates.
//! - [`Callback`]: the redirect back, `state` checked before `error` ([RFC 6749 §4.1.2]).
//! - [`TokenResponse`] and [`OAuthError`]: tolerant parsing of what token endpoints and Blue
//!   Button actually send.
//! - [`PageRequest`]: paging that never trusts a link's host.
//! - [`resources`]: the FHIR types served for one patient, and how each is pinned to them.
//! - [`contract`]: the broker's HTTP API, shared by SDK and broker.
//!
//! # Quick start
//!
//! ```no_run
//! use connect_medicare_protocol::{
//!     AuthorizeRequest, ClientId, PkceVerifier, Provider, RedirectUri, Scopes, State,
//! };
//!
//! # fn random_32() -> [u8; 32] { [7; 32] }
//! let provider = Provider::blue_button_sandbox();
//! let verifier = PkceVerifier::from_random_bytes(random_32());
//! let state = State::from_random_bytes(random_32());
//! let request = AuthorizeRequest::new(
//!     &provider,
//!     ClientId::new("my-client-id")?,
//!     RedirectUri::parse("https://app.example.com/callback")?,
//!     Scopes::parse("openid patient/Patient.rs patient/ExplanationOfBenefit.rs")?,
//!     &state,
//!     &verifier.challenge(),
//! )?;
//! let url = request.url(); // navigate here
//! # Ok::<(), connect_medicare_protocol::Error>(())
//! ```
//!
//! # Security
//!
//! - Secrets (verifiers, codes, tokens, client secrets) are [`secrecy`] types or types with a
//!   redacted `Debug`; none is `Clone` where a copy would be a second place to leak from.
//! - `state` is compared with [`subtle::ConstantTimeEq`].
//! - Only `S256` exists: there is no way to build a `plain` challenge.
//! - Paging reads only `startIndex` and `_count` from a link; its scheme, host and path are
//!   ignored, because Blue Button passes its backend's links through unchanged.
//!
//! [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636
//! [RFC 6749 §4.1.2]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
//! [SMART App Launch 2.2 §scopes]: https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html

#![forbid(unsafe_code)]
// `std` only with the `std` feature (on with `json`, so by default): the browser SDK builds
// this crate on `core` and `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What the standard prelude gives and `no_std` does not.
mod prelude {
    #[allow(unused_imports)]
    pub(crate) use alloc::{
        borrow::ToOwned,
        boxed::Box,
        format,
        string::{String, ToString},
        vec,
        vec::Vec,
    };
}

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod authorize;
mod callback;
mod codec;
pub mod contract;
mod error;
#[cfg(test)]
mod golden;
mod ids;
mod newtype;
mod oauth_error;
mod paging;
mod pkce;
mod provider;
pub mod resources;
mod scope;
mod smart_config;
mod state;
pub mod text;
mod timestamp;
mod token;
mod url;

pub use authorize::{AuthorizeExpectations, AuthorizeRedirect, AuthorizeRequest};
pub use callback::{AuthorizationCode, Callback, strip_callback_params};
pub use error::{Error, Result};
pub use ids::{ClientId, ClientSecret, FhirBase, PatientId, RedirectUri};
pub use oauth_error::{ErrorShape, OAuthError, OAuthErrorCode};
pub use paging::{BundleLinks, PageRequest};
pub use pkce::{PkceChallenge, PkceVerifier, S256, check_method};
pub use provider::{
    BLUE_BUTTON_PRODUCTION, BLUE_BUTTON_SANDBOX, DisconnectKind, EobType, Provider, ProviderKind,
};
pub use scope::{Permissions, Scope, Scopes};
pub use smart_config::SmartConfiguration;
pub use state::{MAX_STATE_LEN, MIN_STATE_LEN, State};
pub use timestamp::{GrantExpiration, Timestamp};
pub use token::{AccessToken, RefreshToken, TokenResponse, TokenType};
