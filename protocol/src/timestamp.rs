//! UTC timestamps (unix seconds) and Blue Button's `access_grant_expiration`.
//!
//! The date math is written out here (Howard Hinnant's `days_from_civil` and its inverse) so
//! the crate needs no date library: the only formats read are RFC 3339 and the variant Blue
//! Button's docs print, with a space instead of `T`.

use crate::prelude::*;

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Seconds in a day.
const DAY: i64 = 86_400;

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
        parse(raw.as_bytes()).ok_or_else(|| Error::InvalidTimestamp(raw.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`. Years outside 0000–9999 (which RFC 3339 cannot express) are
    /// written with a sign and at least four digits, ISO 8601 style, and do not parse back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY);
        let secs = self.0.rem_euclid(DAY);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(f, "{year:+05}")?;
        }
        write!(f, "-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
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

/// Parses `YYYY-MM-DD[Tt ]HH:MM:SS[.fff][Zz|±HH:MM]`, or `None`.
fn parse(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !separators_ok
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let mut rest = &b[19..];
    if let [b'.', fraction @ ..] = rest {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 5 && zone[2] == b':' => {
            let (h, m) = (digits(zone, 0, 2)?, digits(zone, 3, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let local = days * DAY + hour * 3600 + minute * 60 + second;
    Some(Timestamp(local - offset))
}

/// The `len` ASCII digits at `b[at..]` as a number, or `None`.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    b.get(at..at + len)?.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Whether `year` is a Gregorian leap year.
fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date `year-month-day`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

    #[test]
    fn civil_round_trip_by_day() {
        // Every day from 1600 to 2400 maps back to itself.
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2400, 12, 31);
        for days in start..=end {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
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
