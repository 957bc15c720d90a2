//! UTC timestamps (unix seconds) and Blue Button's `access_grant_expiration`.
//!
//! RFC 3339 is read by the `time` crate, and written from its calendar fields (`no_std`: the
//! wasm SDK builds this crate so, and `time`'s own formatting needs `std`). Beside it, two
//! rules of this crate's own: the space Blue Button's docs print instead of `T` (RFC 3339 §5.6
//! allows it) is read too, and a leap second (`:60`) is refused, since unix time cannot
//! represent it.

use crate::prelude::*;

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::error::{Error, Result};

/// A point in time: whole seconds since 1970-01-01T00:00:00Z (unix time, no leap seconds).
///
/// Parsed from RFC 3339 ([`Timestamp::parse_rfc3339`]), displayed and serialized as
/// `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The timestamp `seconds` after (or before, if negative) the unix epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Seconds since the unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This timestamp moved by `seconds`, or `None` on overflow.
    pub const fn checked_add_seconds(self, seconds: i64) -> Option<Self> {
        match self.0.checked_add(seconds) {
            Some(s) => Some(Self(s)),
            None => None,
        }
    }

    /// Parses an RFC 3339 date-time.
    ///
    /// Accepted: `2027-12-22T10:11:42Z`; a space instead of `T` (`2025-09-05 19:17:53Z`, as in
    /// Blue Button's docs); lowercase `t` and `z`; fractional seconds (truncated); a numeric
    /// offset `±HH:MM`. Everything else — a missing zone, `+0530`, out-of-range fields,
    /// 30 February, surrounding whitespace — is refused with [`Error::InvalidTimestamp`].
    /// Leap seconds (`:60`) are refused too: unix time cannot represent them.
    pub fn parse_rfc3339(raw: &str) -> Result<Self> {
        let invalid = || Error::InvalidTimestamp(raw.to_owned());
        let bytes = raw.as_bytes();
        // RFC 3339 puts `T` (or `t`, or a space: §5.6) between date and time; `time` takes
        // any character there, so the separator is checked here, and a space made a `T`.
        let spaced = match bytes.get(10) {
            Some(b'T' | b't') => false,
            Some(b' ') => true,
            _ => return Err(invalid()),
        };
        let normalized;
        let text = if spaced {
            normalized = [&raw[..10], "T", &raw[11..]].concat();
            normalized.as_str()
        } else {
            raw
        };
        // `time` reads `23:59:60` as the last instant of the day; unix time has no leap second.
        if bytes.get(16..19).is_some_and(|s| s == b":60") {
            return Err(invalid());
        }
        let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
        Ok(Self(at.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`, from `time`'s calendar fields (its formatting needs `std`,
    /// which the wasm SDK's build of this crate has not). Years outside 0000–9999 (which
    /// RFC 3339 cannot express) are written with a sign and at least four digits, ISO 8601
    /// style, and do not parse back; an instant beyond year ±999,999 is written as its unix
    /// seconds (`@…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(at) = OffsetDateTime::from_unix_timestamp(self.0) else {
            return write!(f, "@{}", self.0);
        };
        let year = at.year();
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(f, "{year:+05}")?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&raw).map_err(serde::de::Error::custom)
    }
}

/// When a Blue Button Data Access Grant ends: the token response's `access_grant_expiration`.
///
/// 13-month and one-time grants carry a date-time (with `T`, or with a space in Blue Button's
/// docs); research apps get `""`, which means the grant never expires.
///
/// Serialized as the timestamp string, or `null` for [`GrantExpiration::Never`]; deserialized
/// from a timestamp string, `""` or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantExpiration {
    /// The grant ends at this instant.
    At(Timestamp),
    /// The grant does not expire (research apps).
    Never,
}

impl GrantExpiration {
    /// Parses `access_grant_expiration`: `""` is [`GrantExpiration::Never`], anything else must
    /// be a timestamp [`Timestamp::parse_rfc3339`] accepts.
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.is_empty() {
            Ok(Self::Never)
        } else {
            Timestamp::parse_rfc3339(raw).map(Self::At)
        }
    }

    /// Whether the grant has ended at `now` (an `At` instant counts as already ended).
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        match self {
            Self::At(at) => now >= *at,
            Self::Never => false,
        }
    }

    /// The instant the grant ends, or `None` when it never does.
    pub fn at(&self) -> Option<Timestamp> {
        match self {
            Self::At(at) => Some(*at),
            Self::Never => None,
        }
    }
}

impl fmt::Display for GrantExpiration {
    /// The timestamp, or `never`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::At(at) => at.fmt(f),
            Self::Never => f.write_str("never"),
        }
    }
}

impl Serialize for GrantExpiration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::At(at) => at.serialize(serializer),
            Self::Never => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for GrantExpiration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Self::Never),
            Some(raw) => GrantExpiration::parse(&raw).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(raw: &str) -> i64 {
        Timestamp::parse_rfc3339(raw).unwrap().unix_seconds()
    }

    #[test]
    fn blue_button_shapes() {
        // In BB2's code: `T`.
        assert_eq!(ts("2027-12-22T10:11:42Z"), 1_829_470_302);
        // In BB2's docs: a space.
        assert_eq!(ts("2025-09-05 19:17:53Z"), 1_757_099_873);
        // Research apps: "".
        assert_eq!(GrantExpiration::parse("").unwrap(), GrantExpiration::Never);
        assert_eq!(
            GrantExpiration::parse("2027-12-22T10:11:42Z").unwrap(),
            GrantExpiration::At(Timestamp::from_unix_seconds(1_829_470_302))
        );
        assert_eq!(
            GrantExpiration::parse("2025-09-05 19:17:53Z").unwrap(),
            GrantExpiration::At(Timestamp::from_unix_seconds(1_757_099_873))
        );
    }

    #[test]
    fn lowercase_fractions_and_offsets() {
        let base = ts("2027-12-22T10:11:42Z");
        assert_eq!(ts("2027-12-22t10:11:42z"), base);
        assert_eq!(ts("2027-12-22T10:11:42.999999Z"), base);
        assert_eq!(ts("2027-12-22T10:11:42.5+00:00"), base);
        assert_eq!(ts("2027-12-22T10:11:42-00:00"), base);
        assert_eq!(ts("2027-12-22T05:11:42-05:00"), base);
        assert_eq!(ts("2027-12-22T15:41:42+05:30"), base);
        // Crossing midnight and a year boundary through the offset.
        assert_eq!(ts("2027-01-01T00:30:00+01:00"), ts("2026-12-31T23:30:00Z"));
    }

    #[test]
    fn refuses_malformed() {
        for raw in [
            "",
            "2027-12-22T10:11:42",
            "2027-12-22T10:11:42+0530",
            "2027-12-22T10:11:42+05",
            "2027-12-22T10:11:42 Z",
            " 2027-12-22T10:11:42Z",
            "2027-12-22T10:11:42Z ",
            "2027-12-22T10:11:42.Z",
            "2027-12-22X10:11:42Z",
            "2027-12-22T10:11Z",
            "27-12-22T10:11:42Z",
            "2027-13-22T10:11:42Z",
            "2027-00-22T10:11:42Z",
            "2027-12-00T10:11:42Z",
            "2027-12-32T10:11:42Z",
            "2027-04-31T10:11:42Z",
            "2027-02-30T10:11:42Z",
            "2027-12-22T24:00:00Z",
            "2027-12-22T10:60:00Z",
            "2027-12-22T10:11:60Z",
            "2027-12-22T10:11:42+24:00",
            "2027-12-22T10:11:42+05:60",
            "2027-12-22T10:11:42ZZ",
            "+027-12-22T10:11:42Z",
            "2027-1２-22T10:11:42Z",
            "2027-12-22T10:11:42.１Z",
        ] {
            let err = Timestamp::parse_rfc3339(raw).unwrap_err();
            assert_eq!(err, Error::InvalidTimestamp(raw.to_owned()), "{raw:?}");
            assert_eq!(err.code(), "invalid_timestamp");
        }
        assert!(GrantExpiration::parse(" ").is_err());
        assert!(GrantExpiration::parse("never").is_err());
    }

    #[test]
    fn leap_years() {
        assert_eq!(ts("2024-02-29T00:00:00Z"), 1_709_164_800);
        assert_eq!(ts("2000-02-29T12:00:00Z"), 951_825_600);
        assert!(Timestamp::parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(Timestamp::parse_rfc3339("1900-02-29T00:00:00Z").is_err());
        assert_eq!(
            Timestamp::from_unix_seconds(1_709_164_800).to_string(),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn epoch_and_extremes() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(Timestamp::UNIX_EPOCH.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix_seconds(-1).to_string(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(ts("1969-12-31T23:59:59Z"), -1);
        assert_eq!(ts("0000-01-01T00:00:00Z"), -62_167_219_200);
        assert_eq!(ts("9999-12-31T23:59:59Z"), 253_402_300_799);
        assert_eq!(
            Timestamp::from_unix_seconds(253_402_300_800).to_string(),
            "+10000-01-01T00:00:00Z"
        );
        // Display never panics, even at the ends of i64.
        let _ = Timestamp::from_unix_seconds(i64::MIN).to_string();
        let _ = Timestamp::from_unix_seconds(i64::MAX).to_string();
    }

    #[test]
    fn checked_add() {
        let t = Timestamp::from_unix_seconds(100);
        assert_eq!(t.checked_add_seconds(3600).unwrap().unix_seconds(), 3700);
        assert_eq!(t.checked_add_seconds(-200).unwrap().unix_seconds(), -100);
        assert_eq!(
            Timestamp::from_unix_seconds(i64::MAX).checked_add_seconds(1),
            None
        );
    }

    #[test]
    fn grant_expiry() {
        let at = Timestamp::from_unix_seconds(1000);
        let grant = GrantExpiration::At(at);
        assert!(!grant.is_expired_at(Timestamp::from_unix_seconds(999)));
        assert!(grant.is_expired_at(at));
        assert!(grant.is_expired_at(Timestamp::from_unix_seconds(1001)));
        assert!(!GrantExpiration::Never.is_expired_at(Timestamp::from_unix_seconds(i64::MAX)));
        assert_eq!(grant.at(), Some(at));
        assert_eq!(GrantExpiration::Never.at(), None);
        assert_eq!(GrantExpiration::Never.to_string(), "never");
    }

    #[test]
    fn serde() {
        let t = Timestamp::from_unix_seconds(1_829_470_302);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2027-12-22T10:11:42Z""#
        );
        let back: Timestamp = serde_json::from_str(r#""2027-12-22 10:11:42Z""#).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>(r#""2027-12-22""#).is_err());
        assert!(serde_json::from_str::<Timestamp>("1829729502").is_err());

        let grant = GrantExpiration::At(t);
        assert_eq!(
            serde_json::to_string(&grant).unwrap(),
            r#""2027-12-22T10:11:42Z""#
        );
        assert_eq!(
            serde_json::to_string(&GrantExpiration::Never).unwrap(),
            "null"
        );
        let parse = |json: &str| serde_json::from_str::<GrantExpiration>(json);
        assert_eq!(parse("null").unwrap(), GrantExpiration::Never);
        assert_eq!(parse(r#""""#).unwrap(), GrantExpiration::Never);
        assert_eq!(parse(r#""2027-12-22T10:11:42Z""#).unwrap(), grant);
        assert!(parse(r#""tomorrow""#).is_err());
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn display_parses_back(seconds in 0i64..=253_402_300_799) {
            let t = Timestamp::from_unix_seconds(seconds);
            let shown = t.to_string();
            prop_assert_eq!(Timestamp::parse_rfc3339(&shown).unwrap(), t);
            let spaced = shown.replacen('T', " ", 1);
            prop_assert_eq!(Timestamp::parse_rfc3339(&spaced).unwrap(), t);
        }

        #[test]
        fn never_panics(raw in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&raw);
        }
    }
}
