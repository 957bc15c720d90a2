//! The few encodings the rules need, written out instead of taken from `base64`, `sha2` and
//! `form_urlencoded`: each is a few dozen lines, and the crates' generality costs the browser
//! module several kilobytes. Tests compare every function here with the crate it replaces.

use crate::prelude::*;

use crate::text::cut;

/// The base64url alphabet (RFC 4648 §5).
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 4648 §5, RFC 7636 Appendix A) of `bytes`.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    // Bits not yet written, and how many.
    let (mut acc, mut bits) = (0u32, 0);
    let mut put = |v: u32| out.push(char::from(B64URL[v as usize & 63]));
    for &b in bytes {
        acc = acc << 8 | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            put(acc >> bits);
        }
    }
    if bits > 0 {
        put(acc << (6 - bits));
    }
    out
}

/// The value of one base64url character.
fn base64url_value(c: u8) -> Option<u8> {
    B64URL.iter().position(|&a| a == c).map(|v| v as u8)
}

/// Whether `raw` is the unpadded base64url encoding of exactly 32 bytes (a SHA-256 digest)
/// in canonical form: 43 characters of the alphabet whose last one leaves no stray bits.
pub(crate) fn is_base64url_digest(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() == 43
        && b.iter().all(|&c| base64url_value(c).is_some())
        // 43 characters carry 258 bits: the last character's two low bits must be zero.
        && b.last().and_then(|&c| base64url_value(c)).is_some_and(|v| v & 3 == 0)
}

/// SHA-256 round constants (FIPS 180-4 §4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4) of `data`: written for size, not speed (PKCE hashes 43 bytes).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let bits = (data.len() as u64).wrapping_mul(8);
    // The padded message — the data, 0x80, zeros, the bit length — read a byte at a time.
    let total = (data.len() + 9).div_ceil(64) * 64;
    let byte = |i: usize| -> u8 {
        if let Some(b) = data.get(i) {
            *b
        } else if i == data.len() {
            0x80
        } else if i + 8 >= total {
            (bits >> (8 * (total - 1 - i))) as u8
        } else {
            0
        }
    };
    let mut w = [0u32; 64];
    let mut at = 0;
    while at < total {
        for i in 0..64 {
            w[i] = if i < 16 {
                (0..4).fold(0, |n, k| n << 8 | u32::from(byte(at + 4 * i + k)))
            } else {
                let (x, y) = (w[i - 15], w[i - 2]);
                (x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3))
                    .wrapping_add(y.rotate_right(17) ^ y.rotate_right(19) ^ (y >> 10))
                    .wrapping_add(w[i - 16])
                    .wrapping_add(w[i - 7])
            };
        }
        let mut v = h;
        for i in 0..64 {
            let [a, b, c, d, e, f, g, hh] = v;
            let t1 = hh
                .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
                .wrapping_add((e & f) ^ (!e & g))
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
                .wrapping_add((a & b) ^ (a & c) ^ (b & c));
            v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        }
        for (h, v) in h.iter_mut().zip(v) {
            *h = h.wrapping_add(v);
        }
        at += 64;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (h[i / 4] >> (24 - 8 * (i % 4))) as u8;
    }
    out
}

/// The value of one hexadecimal digit, either case.
fn hex_value(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|v| v as u8)
}

/// One `application/x-www-form-urlencoded` name or value, decoded as the WHATWG URL
/// standard (and the `form_urlencoded` crate) do: `+` is a space, `%XX` a byte (a `%` not
/// followed by two hex digits stays as it is), and bytes that are not UTF-8 become U+FFFD.
fn form_decode(input: &str) -> String {
    let input = input.as_bytes();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        i += 1;
        let byte = match b {
            b'+' => b' ',
            b'%' => match (
                input.get(i).copied().and_then(hex_value),
                input.get(i + 1).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    hi << 4 | lo
                }
                _ => b'%',
            },
            other => other,
        };
        out.push(byte);
    }
    utf8_lossy(&out)
}

/// `bytes` as text, each invalid sequence replaced by U+FFFD: the same string as
/// `String::from_utf8_lossy` (one U+FFFD per maximal ill-formed subpart, as Unicode §3.9
/// and the WHATWG Encoding standard say), decoded by hand to keep `core`'s fast validator out
/// of the browser module.
fn utf8_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&lead) = bytes.get(i) {
        // The sequence length, and the range its second byte must fall in.
        let (len, low, high) = match lead {
            0x00..=0x7f => (1, 0, 0),
            0xc2..=0xdf => (2, 0x80, 0xbf),
            0xe0 => (3, 0xa0, 0xbf),
            0xed => (3, 0x80, 0x9f),
            0xe1..=0xef => (3, 0x80, 0xbf),
            0xf0 => (4, 0x90, 0xbf),
            0xf1..=0xf3 => (4, 0x80, 0xbf),
            0xf4 => (4, 0x80, 0x8f),
            _ => (0, 0, 0),
        };
        let mut code = u32::from(lead) & (0xff >> (len + 1));
        let mut n = 1;
        while n < len {
            let (low, high) = if n == 1 { (low, high) } else { (0x80, 0xbf) };
            match bytes.get(i + n) {
                Some(&b) if (low..=high).contains(&b) => code = code << 6 | u32::from(b & 0x3f),
                _ => break,
            }
            n += 1;
        }
        out.push(match len {
            1 => char::from(lead),
            _ if n == len => char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
            _ => char::REPLACEMENT_CHARACTER,
        });
        i += n;
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` string into its `(name, value)` pairs, in
/// order: `&`-separated, empty pieces skipped, split at the first `=` (a piece without one is
/// a name with an empty value). The same pairs as `form_urlencoded::parse`.
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = Some(query);
    while let Some((piece, next)) = rest.map(|r| cut(r, b'&')) {
        if !piece.is_empty() {
            let (name, value) = cut(piece, b'=');
            pairs.push((form_decode(name), form_decode(value.unwrap_or_default())));
        }
        rest = next;
    }
    pairs
}

/// Appends `input` `application/x-www-form-urlencoded`: `*-._` and ASCII alphanumerics as
/// they are, a space as `+`, every other byte as `%XX` (uppercase).
fn form_encode_into(out: &mut String, input: &str) {
    for &b in input.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Encodes pairs as `application/x-www-form-urlencoded` (`name=value` joined by `&`), the
/// same string as `form_urlencoded::Serializer`.
pub(crate) fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        form_encode_into(&mut out, name);
        out.push('=');
        form_encode_into(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn base64url_vectors() {
        // RFC 4648 §10, without padding.
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
    fn form_decoding() {
        let pairs = form_pairs("a=1&&b=x+y%20z&c&=v&d=%zz%4&e=%C3%A9%FF&f=a=b");
        let expected = [
            ("a", "1"),
            ("b", "x y z"),
            ("c", ""),
            ("", "v"),
            ("d", "%zz%4"),
            ("e", "é\u{fffd}"),
            ("f", "a=b"),
        ];
        assert_eq!(pairs.len(), expected.len());
        for ((k, v), (ek, ev)) in pairs.iter().zip(expected) {
            assert_eq!((k.as_str(), v.as_str()), (ek, ev));
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode([("redirect_uri", "https://a.b/c?d=e f"), ("x", "*-._~é")]),
            "redirect_uri=https%3A%2F%2Fa.b%2Fc%3Fd%3De+f&x=*-._%7E%C3%A9"
        );
        assert_eq!(form_encode([]), "");
    }
}

/// The replaced crates as oracles, on arbitrary input.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use proptest::prelude::*;
    use sha2::Digest as _;

    use super::*;

    #[test]
    fn sha256_matches_sha2_at_every_length_around_the_blocks() {
        let data: Vec<u8> = (0..=200u8).map(|i| i.wrapping_mul(151)).collect();
        for len in 0..=data.len() {
            let oracle: [u8; 32] = sha2::Sha256::digest(&data[..len]).into();
            assert_eq!(sha256(&data[..len]), oracle, "{len}");
        }
    }

    proptest! {
        #[test]
        fn sha256_matches_sha2(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let oracle: [u8; 32] = sha2::Sha256::digest(&data).into();
            prop_assert_eq!(sha256(&data), oracle);
        }

        #[test]
        fn base64url_matches_base64(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(base64url(&data), URL_SAFE_NO_PAD.encode(&data));
        }

        #[test]
        fn digest_check_matches_base64(s in "[A-Za-z0-9_=+/-]{40,46}|[A-Za-z0-9_-]{43}|\\PC{0,50}") {
            let crate_says = s.len() == 43
                && URL_SAFE_NO_PAD.decode(&s).is_ok_and(|b| b.len() == 32);
            prop_assert_eq!(is_base64url_digest(&s), crate_says);
        }

        #[test]
        fn digests_round_trip(digest in any::<[u8; 32]>()) {
            prop_assert!(is_base64url_digest(&base64url(&digest)));
        }

        #[test]
        fn form_pairs_match_form_urlencoded(
            s in "([a-z%+=&2AFfG ]|%[0-9A-Fa-f]{2}|%[89A-F][0-9A-F]|\\PC){0,40}"
        ) {
            let oracle: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(form_pairs(&s), oracle);
        }

        #[test]
        fn utf8_lossy_matches_std(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(utf8_lossy(&bytes), String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn utf8_lossy_matches_std_on_sequence_edges(
            bytes in proptest::collection::vec(
                prop_oneof![0x00u8..0x80, 0x80u8..0xc0, 0xc0u8..0xc2, 0xc2u8..0xe0, Just(0xe0u8),
                            Just(0xedu8), 0xe1u8..0xf0, Just(0xf0u8), 0xf1u8..0xf4, Just(0xf4u8),
                            0xf5u8..=0xff, Just(0x8fu8), Just(0x90u8), Just(0x9fu8), Just(0xa0u8)],
                0..12,
            )
        ) {
            prop_assert_eq!(utf8_lossy(&bytes), String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn utf8_lossy_matches_std_near_utf8(s in "\\PC{0,10}", cut in 0usize..40, junk in any::<u8>()) {
            let mut bytes = s.into_bytes();
            let at = cut.min(bytes.len());
            bytes.insert(at, junk);
            bytes.truncate(cut.max(1));
            prop_assert_eq!(utf8_lossy(&bytes), String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn form_encode_matches_form_urlencoded(
            pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..5)
        ) {
            let mut oracle = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                oracle.append_pair(k, v);
            }
            let ours = form_encode(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert_eq!(ours, oracle.finish());
        }
    }
}
