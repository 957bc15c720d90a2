//! PKCE with S256 only — [RFC 7636](https://www.rfc-editor.org/rfc/rfc7636).

use crate::prelude::*;

use core::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::{
    codec::{base64url, is_base64url_digest, sha256},
    error::{Error, Result},
    newtype::string_newtype_serde,
};

/// The only `code_challenge_method` this toolkit sends or accepts.
pub const S256: &str = "S256";

/// A PKCE code verifier (RFC 7636 §4.1): 43–128 characters of `[A-Za-z0-9-._~]`.
///
/// Made from 32 random bytes it is 43 characters of unpadded base64url. Not `Clone`, and its
/// `Debug` is redacted: it is the proof that redeems a code, and lives in one place only.
pub struct PkceVerifier(SecretString);

impl PkceVerifier {
    /// A verifier from 32 random bytes (the caller's RNG: `crypto.getRandomValues` in the
    /// browser, the OS in the broker): 43 characters of unpadded base64url.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(base64url(&bytes)))
    }

    /// Validates a verifier received from elsewhere (RFC 7636 §4.1 grammar and length).
    pub fn parse(raw: &str) -> Result<Self> {
        if is_verifier(raw) {
            Ok(Self(SecretString::from(raw)))
        } else {
            Err(Error::InvalidVerifier)
        }
    }

    /// Its S256 challenge: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
    pub fn challenge(&self) -> PkceChallenge {
        PkceChallenge(base64url(&sha256(self.0.expose_secret().as_bytes())))
    }

    /// The verifier, for the one request that sends it (the token exchange).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

impl Serialize for PkceVerifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for PkceVerifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = SecretString::from(String::deserialize(deserializer)?);
        Self::parse(raw.expose_secret()).map_err(serde::de::Error::custom)
    }
}

fn is_verifier(raw: &str) -> bool {
    (43..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A PKCE S256 code challenge: 43 characters of unpadded base64url (a SHA-256 digest).
///
/// Public by design (it travels in the authorize URL), so it is `Clone` and `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// Validates a challenge received from elsewhere. Only S256 challenges exist here.
    pub fn parse(raw: &str) -> Result<Self> {
        if is_base64url_digest(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::InvalidChallenge)
        }
    }

    /// The challenge as sent in `code_challenge`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method that goes with it: always `S256`.
    pub fn method(&self) -> &'static str {
        S256
    }

    /// Whether `verifier` hashes to this challenge, compared in constant time.
    pub fn is_satisfied_by(&self, verifier: &PkceVerifier) -> bool {
        verifier
            .challenge()
            .0
            .as_bytes()
            .ct_eq(self.0.as_bytes())
            .into()
    }
}

string_newtype_serde!(PkceChallenge, PkceChallenge::parse);

/// Checks a `code_challenge_method` value: `S256` passes, everything else (`plain`,
/// lowercase `s256`, empty) is refused.
pub fn check_method(method: &str) -> Result<()> {
    if method == S256 {
        Ok(())
    } else {
        Err(Error::UnsupportedChallengeMethod)
    }
}

/// The RFC 7636 Appendix B vector, run natively and in the browser by `golden.rs`.
#[cfg(test)]
pub(crate) mod golden {
    use super::*;

    /// Appendix B's verifier and challenge.
    pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    /// Appendix B's 32 random octets, which encode to [`VERIFIER`].
    pub(crate) const OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];

    pub(crate) fn check() {
        let from_bytes = PkceVerifier::from_random_bytes(OCTETS);
        assert_eq!(from_bytes.expose_secret(), VERIFIER);
        let verifier = PkceVerifier::parse(VERIFIER).unwrap();
        assert_eq!(verifier.challenge().as_str(), CHALLENGE);
        let challenge = PkceChallenge::parse(CHALLENGE).unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
        assert_eq!(challenge.method(), "S256");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_from_bytes_is_43_chars() {
        let v = PkceVerifier::from_random_bytes([0xff; 32]);
        assert_eq!(v.expose_secret().len(), 43);
        assert!(PkceVerifier::parse(v.expose_secret()).is_ok());
    }

    #[test]
    fn verifier_length_and_alphabet() {
        assert!(PkceVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(PkceVerifier::parse(&"~._-".repeat(32)).is_ok());
        assert_eq!(
            PkceVerifier::parse(&"a".repeat(42)).unwrap_err(),
            Error::InvalidVerifier
        );
        assert!(PkceVerifier::parse(&"a".repeat(129)).is_err());
        assert!(PkceVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
        assert!(PkceVerifier::parse(&format!("{}=", "a".repeat(43))).is_err());
        assert!(PkceVerifier::parse(&format!("{}é", "a".repeat(43))).is_err());
    }

    #[test]
    fn wrong_verifier_does_not_satisfy() {
        let challenge = PkceChallenge::parse(golden::CHALLENGE).unwrap();
        let other = PkceVerifier::from_random_bytes([1; 32]);
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn challenge_must_be_a_digest() {
        assert!(PkceChallenge::parse("short").is_err());
        // 43 chars but '+' is not base64url.
        assert!(PkceChallenge::parse(&format!("{}+", "A".repeat(42))).is_err());
        // A plain verifier (64 chars) is not an S256 challenge.
        assert!(PkceChallenge::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn only_s256() {
        assert!(check_method("S256").is_ok());
        for bad in ["plain", "s256", "", "S512"] {
            assert_eq!(check_method(bad), Err(Error::UnsupportedChallengeMethod));
        }
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let v = PkceVerifier::parse(golden::VERIFIER).unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains(golden::VERIFIER));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn serde_validates() {
        let v: PkceVerifier = serde_json::from_str(&format!("\"{}\"", golden::VERIFIER)).unwrap();
        assert_eq!(v.challenge().as_str(), golden::CHALLENGE);
        assert!(serde_json::from_str::<PkceVerifier>("\"short\"").is_err());
        assert!(serde_json::from_str::<PkceChallenge>("\"short\"").is_err());
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn generated_verifiers_are_valid(bytes in any::<[u8; 32]>()) {
            let v = PkceVerifier::from_random_bytes(bytes);
            prop_assert_eq!(v.expose_secret().len(), 43);
            let reparsed = PkceVerifier::parse(v.expose_secret()).unwrap();
            let challenge = reparsed.challenge();
            prop_assert!(PkceChallenge::parse(challenge.as_str()).is_ok());
            prop_assert!(challenge.is_satisfied_by(&v));
        }

        #[test]
        fn unreserved_strings_of_valid_length_parse(s in "[A-Za-z0-9._~-]{43,128}") {
            prop_assert!(PkceVerifier::parse(&s).is_ok());
        }

        #[test]
        fn hostile_verifiers_are_refused(
            prefix in "[A-Za-z0-9._~-]{0,100}",
            bad in "[^A-Za-z0-9._~-]",
            suffix in "[A-Za-z0-9._~-]{0,100}",
        ) {
            let s = format!("{prefix}{bad}{suffix}");
            prop_assert_eq!(PkceVerifier::parse(&s).unwrap_err(), Error::InvalidVerifier);
        }

        #[test]
        fn wrong_lengths_are_refused(s in "[A-Za-z0-9]{0,42}|[A-Za-z0-9]{129,300}") {
            prop_assert!(PkceVerifier::parse(&s).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = PkceVerifier::parse(&s);
            let _ = PkceChallenge::parse(&s);
        }
    }
}
