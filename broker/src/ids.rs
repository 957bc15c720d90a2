//! The random values the broker hands to browsers in cookies ([`SessionId`], [`FlowCookie`]),
//! and the SHA-256 hashes it stores instead of them ([`SessionHash`], [`FlowCookieHash`],
//! [`FlowKey`]).
//!
//! The store never sees a raw cookie value or a raw `state`: a copy of the database does not
//! let anyone ride a session or finish a flow. Lookups are by hash, so no constant-time
//! comparison of the raw values is needed.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use connect_medicare_protocol::{State, contract::SessionProof};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Length of a cookie value: 32 bytes as unpadded base64url.
const COOKIE_VALUE_LEN: usize = 43;

/// `N` bytes from the operating system's random number generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(Error::Random)?;
    Ok(bytes)
}

/// Lowercase hex of `bytes` (RustCrypto's `base16ct`).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// The 32 bytes of 64 lowercase hex digits, or `None` (uppercase digits are refused too).
fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let decoded = base16ct::lower::decode(hex, &mut out).ok()?.len();
    (decoded == out.len()).then_some(out)
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The 32 digest bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// 64 lowercase hex digits: the form the store keeps.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }

            /// Parses [`Self::to_hex`]'s output (64 lowercase hex digits).
            pub fn from_hex(hex: &str) -> Option<Self> {
                from_hex(hex).map(Self)
            }

            fn digest(input: &[u8]) -> Self {
                Self(Sha256::digest(input).into())
            }
        }

        impl fmt::Debug for $name {
            /// The first 8 hex digits: enough to correlate, not a lookup key.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..8])
            }
        }
    };
}

digest_type! {
    /// SHA-256 of a [`SessionId`]'s cookie value: the store's key for a session.
    SessionHash
}

digest_type! {
    /// SHA-256 of a [`FlowCookie`]'s value: binds a flow record to the browser that started it.
    FlowCookieHash
}

digest_type! {
    /// SHA-256 of a session's [`SessionProof`]: what the session record keeps.
    ///
    /// The proof shows that a browser owns a session: 256 random bits returned in the JSON
    /// body when the session is made or its id rotated — never in a cookie, never by
    /// `GET /v1/session` — and kept by the SDK in the app origin's storage. Someone who can
    /// plant a cookie for the host cannot read or write that storage, so a planted session
    /// cookie never comes with its proof.
    ProofHash
}

impl ProofHash {
    /// The hash the store keeps for `proof`.
    pub fn of(proof: &SessionProof) -> Self {
        Self::digest(proof.expose_secret().as_bytes())
    }

    /// Whether `proof` is the one this hash was made from, compared in constant time.
    pub fn matches(&self, proof: &SessionProof) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.ct_eq(&Self::of(proof).0))
    }

    /// A fresh proof from the operating system's random number generator.
    pub fn new_proof() -> Result<SessionProof> {
        random_bytes::<32>().map(SessionProof::from_random_bytes)
    }
}

digest_type! {
    /// SHA-256 of a flow's `state`: the store's key for a flow (it never sees the raw state).
    FlowKey
}

impl FlowKey {
    /// The key of the flow registered with this `state`.
    pub fn from_state(state: &State) -> Self {
        Self::digest(state.as_str().as_bytes())
    }
}

macro_rules! cookie_secret {
    ($(#[$doc:meta])* $name:ident => $hash:ident) => {
        $(#[$doc])*
        pub struct $name(SecretString);

        impl $name {
            /// A fresh value: 256 bits from the operating system's RNG.
            pub fn generate() -> Result<Self> {
                random_bytes::<32>().map(Self::from_random_bytes)
            }

            /// The value made from these 32 random bytes (43 characters of base64url).
            pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
                Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
            }

            /// Reads a cookie value: exactly 43 characters of canonical unpadded base64url
            /// encoding 32 bytes. Anything else is `None` (treat as "no cookie").
            pub fn parse(cookie_value: &str) -> Option<Self> {
                let canonical = cookie_value.len() == COOKIE_VALUE_LEN
                    && URL_SAFE_NO_PAD
                        .decode(cookie_value)
                        .is_ok_and(|bytes| bytes.len() == 32);
                canonical.then(|| Self(SecretString::from(cookie_value.to_owned())))
            }

            /// The value, for the one place that writes it out (`Set-Cookie`, or the body).
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// SHA-256 of the cookie value: what the store keeps.
            pub fn hash(&self) -> $hash {
                $hash::digest(self.0.expose_secret().as_bytes())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

cookie_secret! {
    /// The session cookie's value: 256 random bits, base64url (43 characters).
    ///
    /// Not `Clone`, `Debug` redacted. The store keys sessions by [`SessionId::hash`].
    SessionId => SessionHash
}

cookie_secret! {
    /// The flow cookie's value: 256 random bits, base64url (43 characters), set with
    /// `POST /v1/flows` and required to complete the flow.
    ///
    /// Not `Clone`, `Debug` redacted. The flow record keeps [`FlowCookie::hash`].
    FlowCookie => FlowCookieHash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_matches_only_its_own_hash() {
        let proof = ProofHash::new_proof().unwrap();
        let other = ProofHash::new_proof().unwrap();
        assert_eq!(proof.expose_secret().len(), 43);
        let hash = ProofHash::of(&proof);
        assert!(hash.matches(&proof));
        assert!(!hash.matches(&other));
        assert!(!hash.matches(&SessionProof::parse(&"A".repeat(43)).unwrap()));
        assert_eq!(format!("{proof:?}"), "SessionProof([redacted])");
    }

    #[test]
    fn session_ids_are_43_base64url_chars_and_unique() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn parse_round_trips_and_hash_is_stable() {
        let id = SessionId::from_random_bytes([7; 32]);
        let parsed = SessionId::parse(id.expose_secret()).unwrap();
        assert_eq!(parsed.hash(), id.hash());
        // SHA-256 of the cookie value, as hex.
        let expected = Sha256::digest(id.expose_secret().as_bytes());
        assert_eq!(id.hash().as_bytes()[..], expected[..]);
        assert_eq!(SessionHash::from_hex(&id.hash().to_hex()), Some(id.hash()));
        assert_eq!(id.hash().to_hex().len(), 64);
    }

    #[test]
    fn parse_refuses_anything_but_canonical_values() {
        let good = SessionId::from_random_bytes([0xAB; 32]);
        let good = good.expose_secret();
        assert!(SessionId::parse(good).is_some());
        let mut non_canonical = good.to_owned();
        // The last character carries 2 bits of padding; '9' (0b111101) sets one: refused.
        non_canonical.pop();
        non_canonical.push('9');
        for bad in [
            "",
            &good[..42],
            &format!("{good}A"),
            &format!("{}=", &good[..42]),
            &good.replace(|c: char| c.is_ascii_alphabetic(), "+"),
            &format!("{} ", &good[..42]),
            &non_canonical,
            &format!("{}a", "é".repeat(21)),
        ] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
            assert!(FlowCookie::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let id = SessionId::from_random_bytes([1; 32]);
        let shown = format!("{id:?}");
        assert_eq!(shown, "SessionId([redacted])");
        assert!(!shown.contains(id.expose_secret()));
        let cookie = FlowCookie::from_random_bytes([2; 32]);
        assert_eq!(format!("{cookie:?}"), "FlowCookie([redacted])");
        let hash = format!("{:?}", id.hash());
        assert!(
            hash.starts_with("SessionHash(") && hash.len() < 30,
            "{hash}"
        );
    }

    #[test]
    fn flow_key_is_sha256_of_the_state() {
        let state = State::from_random_bytes([9; 32]);
        let key = FlowKey::from_state(&state);
        let expected = Sha256::digest(state.as_str().as_bytes());
        assert_eq!(key.as_bytes()[..], expected[..]);
        assert_eq!(
            key,
            FlowKey::from_state(&State::parse(state.as_str()).unwrap())
        );
        assert_ne!(key, FlowKey::from_state(&State::from_random_bytes([8; 32])));
    }

    #[test]
    fn hex_parsing_is_strict() {
        assert!(SessionHash::from_hex(&"a".repeat(64)).is_some());
        assert!(SessionHash::from_hex(&"A".repeat(64)).is_none());
        assert!(SessionHash::from_hex(&"a".repeat(63)).is_none());
        assert!(SessionHash::from_hex(&"g".repeat(64)).is_none());
    }
}
