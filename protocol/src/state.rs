//! The OAuth `state` parameter (RFC 6749 §10.12): 256 random bits, single use, compared in
//! constant time.

use crate::prelude::*;

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::{
    codec::base64url,
    error::{Error, Result},
};

/// Blue Button refuses a `state` under 16 characters before the user even signs in.
pub const MIN_STATE_LEN: usize = 16;
/// Upper bound we accept from elsewhere, so a hostile value cannot bloat storage keys.
pub const MAX_STATE_LEN: usize = 128;

/// An OAuth `state` value.
///
/// Made by this toolkit from 32 random bytes (43 characters of unpadded base64url, 256 bits —
/// above SMART's 122-bit floor and Blue Button's 16-character minimum). Values from elsewhere
/// are accepted at 16–128 characters of `[A-Za-z0-9-._~]`.
///
/// `state` is the key that binds a callback to the browser that started the flow, so it is not
/// `Clone`, its `Debug` is redacted, and [`State::matches`] compares in constant time.
pub struct State(String);

impl State {
    /// A state from 32 random bytes supplied by the caller's RNG.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(base64url(&bytes))
    }

    /// Validates a state received from elsewhere (a callback URL, a request body).
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = (MIN_STATE_LEN..=MAX_STATE_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::InvalidState)
        }
    }

    /// The value as sent in `state=`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with another state.
    pub fn matches(&self, other: &State) -> bool {
        self.matches_str(other.as_str())
    }

    /// Constant-time equality with a raw string (length differences return early, which
    /// reveals only the length).
    pub fn matches_str(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State([redacted])")
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_state_is_43_chars_and_valid() {
        let s = State::from_random_bytes([42; 32]);
        assert_eq!(s.as_str().len(), 43);
        assert!(State::parse(s.as_str()).is_ok());
    }

    #[test]
    fn length_rules_match_blue_button() {
        assert!(State::parse(&"a".repeat(16)).is_ok());
        assert_eq!(
            State::parse(&"a".repeat(15)).unwrap_err(),
            Error::InvalidState
        );
        assert!(State::parse(&"a".repeat(128)).is_ok());
        assert!(State::parse(&"a".repeat(129)).is_err());
        assert!(State::parse("aaaaaaaaaaaaaaaa&code=x").is_err());
        assert!(State::parse("aaaaaaaaaaaaaaaa aaaa").is_err());
    }

    #[test]
    fn comparison() {
        let a = State::from_random_bytes([1; 32]);
        let b = State::from_random_bytes([2; 32]);
        assert!(a.matches(&State::parse(a.as_str()).unwrap()));
        assert!(!a.matches(&b));
        assert!(!a.matches_str(&a.as_str()[..42]));
        assert!(!a.matches_str(""));
    }

    #[test]
    fn debug_is_redacted() {
        let s = State::from_random_bytes([9; 32]);
        let shown = format!("{s:?}");
        assert!(!shown.contains(s.as_str()), "{shown}");
        assert!(shown.contains("redacted"));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn distinct_bytes_give_distinct_states(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (sa, sb) = (State::from_random_bytes(a), State::from_random_bytes(b));
            prop_assert_eq!(sa.matches(&sb), a == b);
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            if let Ok(state) = State::parse(&s) {
                prop_assert!(state.matches_str(&s));
            }
        }
    }
}
