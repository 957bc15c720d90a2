//! The encodings the rules need, from the crates made for them: RustCrypto's `sha2`, `base64`
//! and `form_urlencoded` — each `no_std` with `alloc`, as the wasm SDK builds this crate. The
//! functions here only fix the variant the rules use (unpadded base64url, a 32-byte digest,
//! form pairs as owned strings).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

use crate::prelude::*;

/// Unpadded base64url (RFC 4648 §5, RFC 7636 Appendix A) of `bytes`.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `raw` is the unpadded base64url encoding of exactly 32 bytes (a SHA-256 digest)
/// in canonical form: 43 characters of the alphabet whose last one leaves no stray bits (the
/// `base64` engine refuses padding and non-zero trailing bits).
pub(crate) fn is_base64url_digest(raw: &str) -> bool {
    raw.len() == 43
        && URL_SAFE_NO_PAD
            .decode(raw)
            .is_ok_and(|digest| digest.len() == 32)
}

/// SHA-256 (FIPS 180-4) of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Decodes an `application/x-www-form-urlencoded` string into its `(name, value)` pairs, in
/// order (`form_urlencoded::parse`: `&`-separated, empty pieces skipped, split at the first
/// `=`, `+` as a space, percent-escapes decoded, invalid UTF-8 replaced by U+FFFD).
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Encodes pairs as `application/x-www-form-urlencoded` (`form_urlencoded::Serializer`).
pub(crate) fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of FIPS 180-2 (Appendix B) and the empty message.
    #[test]
    fn sha256_vectors() {
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    /// RFC 4648 §10's vectors, in the URL-safe alphabet without padding.
    #[test]
    fn base64url_vectors() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(raw.as_bytes()), encoded);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn digests_are_43_canonical_characters() {
        let digest = base64url(&sha256(b"x"));
        assert!(is_base64url_digest(&digest));
        // The last character of 43 carries two stray bits: they must be zero.
        // "B" is 000001: a stray bit set, never canonical.
        assert!(!is_base64url_digest(&format!("{}B", &digest[..42])));
        assert!(!is_base64url_digest(&format!("{}=", &digest[..42])));
        assert!(!is_base64url_digest(&format!("{}+", &digest[..42])));
        assert!(!is_base64url_digest(&digest[..42]));
        assert!(!is_base64url_digest(&format!("{digest}A")));
    }

    #[test]
    fn form_round_trip() {
        let encoded = form_encode([("a b", "c&d=e"), ("é", "+/")]);
        assert_eq!(encoded, "a+b=c%26d%3De&%C3%A9=%2B%2F");
        assert_eq!(
            form_pairs(&encoded),
            [
                ("a b".to_owned(), "c&d=e".to_owned()),
                ("é".to_owned(), "+/".to_owned())
            ]
        );
        assert_eq!(
            form_pairs("&x&=y&%ZZ=%FF"),
            [
                ("x".to_owned(), String::new()),
                (String::new(), "y".to_owned()),
                ("%ZZ".to_owned(), "\u{fffd}".to_owned())
            ]
        );
    }
}
