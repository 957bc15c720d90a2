//! Small string helpers the rules are written with: byte-level and panic-free, so the browser
//! module holds one short copy of each instead of the standard library's general pattern
//! searchers. The SDK uses them too.

pub use crate::codec::form_pairs;

/// `s` before the first `c` (an ASCII byte), and what follows it when there is one: the
/// same as `s.split_once(char::from(c))`, with `None` in place of the second half when `c`
/// does not occur.
pub fn cut(s: &str, c: u8) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == c) {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

/// An unsigned decimal number up to `max`, read as `str::parse` reads unsigned integers: an
/// optional `+`, then one or more ASCII digits. `None` for anything else or a larger number.
pub fn parse_uint(s: &str, max: u64) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?
            .checked_add(digit.into())
            .filter(|n| *n <= max)
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn parse_uint_reads_as_str_parse(s in "[+-]?[0-9]{0,22}|\\PC{0,6}") {
            prop_assert_eq!(parse_uint(&s, u8::MAX.into()), s.parse::<u8>().ok().map(u64::from));
            prop_assert_eq!(parse_uint(&s, u16::MAX.into()), s.parse::<u16>().ok().map(u64::from));
            prop_assert_eq!(parse_uint(&s, u32::MAX.into()), s.parse::<u32>().ok().map(u64::from));
            prop_assert_eq!(parse_uint(&s, u64::MAX), s.parse::<u64>().ok());
        }

        #[test]
        fn cut_is_split_once(s in "[a-z#?é]{0,8}") {
            let ours = cut(&s, b'#');
            match s.split_once('#') {
                Some((a, b)) => prop_assert_eq!(ours, (a, Some(b))),
                None => prop_assert_eq!(ours, (s.as_str(), None)),
            }
        }
    }
}
