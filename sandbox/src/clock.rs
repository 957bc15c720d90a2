//! The sandbox's clock: the system time (or a frozen instant) plus an offset that tests move
//! forward, so grants, tokens and rate-limit windows can be aged without waiting; and the
//! calendar the emulator's data needs (day numbers, months added, the date and time forms Blue
//! Button writes), on the `time` crate.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use time::{
    Date, Month, OffsetDateTime, Time, format_description::BorrowedFormatItem,
    macros::format_description,
};

/// A shared, adjustable clock with millisecond precision. Clones share the same state.
///
/// By default it follows the system time plus an offset that tests move forward, so grants,
/// tokens and throttle windows can be aged without waiting. A *frozen* clock stands still
/// until it is advanced, which makes sub-second behaviour (the rate limit) deterministic.
#[derive(Debug, Clone)]
pub struct Clock {
    state: Arc<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    offset_millis: AtomicI64,
    /// Where a frozen clock stands (unix milliseconds, before the offset); `LIVE` when the
    /// clock follows the system time.
    frozen_at: AtomicI64,
}

const LIVE: i64 = i64::MIN;

fn system_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self {
            state: Arc::new(ClockState {
                offset_millis: AtomicI64::new(0),
                frozen_at: AtomicI64::new(LIVE),
            }),
        }
    }

    /// A clock that stands still at the current system time until it is advanced.
    pub fn frozen() -> Self {
        let clock = Self::new();
        clock.freeze();
        clock
    }

    /// A clock that stands still at `unix_seconds` until it is advanced.
    pub fn frozen_at(unix_seconds: i64) -> Self {
        let clock = Self::new();
        clock
            .state
            .frozen_at
            .store(unix_seconds.saturating_mul(1000), Ordering::SeqCst);
        clock
    }

    /// Now, in unix seconds (rounded down).
    pub fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Now, in unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        let base = match self.state.frozen_at.load(Ordering::SeqCst) {
            LIVE => system_millis(),
            frozen => frozen,
        };
        base.saturating_add(self.state.offset_millis.load(Ordering::SeqCst))
    }

    /// Moves the clock forward (or back, with a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.advance_millis(seconds.saturating_mul(1000));
    }

    /// Moves the clock forward (or back, with a negative value) by `millis` milliseconds.
    pub fn advance_millis(&self, millis: i64) {
        self.state.offset_millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// The current offset from the clock's base (the system time, or where it was frozen), in
    /// whole seconds.
    pub fn offset(&self) -> i64 {
        self.offset_millis().div_euclid(1000)
    }

    /// The current offset from the clock's base, in milliseconds.
    pub fn offset_millis(&self) -> i64 {
        self.state.offset_millis.load(Ordering::SeqCst)
    }

    /// Stops the clock where it stands now; [`Clock::advance`] still moves it.
    pub fn freeze(&self) {
        if !self.is_frozen() {
            self.state
                .frozen_at
                .store(system_millis(), Ordering::SeqCst);
        }
    }

    /// Lets a frozen clock follow the system time again, keeping its offset.
    pub fn resume(&self) {
        self.state.frozen_at.store(LIVE, Ordering::SeqCst);
    }

    /// Whether the clock stands still.
    pub fn is_frozen(&self) -> bool {
        self.state.frozen_at.load(Ordering::SeqCst) != LIVE
    }
}

/// The unix epoch's Julian day number: day numbers here count days since 1970-01-01.
const EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The date of a day number, or `None` past `time`'s range (years ±9999).
fn date_of(days: i64) -> Option<Date> {
    let julian = i32::try_from(days.checked_add(EPOCH_JULIAN_DAY)?).ok()?;
    Date::from_julian_day(julian).ok()
}

/// The instant of a unix time in seconds (UTC), clamped to `time`'s range.
fn instant(at: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at).unwrap_or(if at < 0 {
        OffsetDateTime::new_utc(Date::MIN, Time::MIDNIGHT)
    } else {
        OffsetDateTime::new_utc(Date::MAX, Time::MIDNIGHT)
    })
}

/// Writes `at` with `format`; the formats here are all numeric, so writing cannot fail.
fn write(at: OffsetDateTime, format: &[BorrowedFormatItem<'_>]) -> String {
    at.format(format).unwrap_or_default()
}

/// `at` plus `months` calendar months, the day clamped to the target month's length
/// (Blue Button's 13-month grants end on the same day of the month, 13 months on).
pub(crate) fn add_months(at: i64, months: u32) -> i64 {
    let start = instant(at);
    let total =
        i64::from(start.year()) * 12 + i64::from(u8::from(start.month())) - 1 + i64::from(months);
    let (Ok(year), Ok(month)) = (
        i32::try_from(total.div_euclid(12)),
        Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1)),
    ) else {
        return at;
    };
    let day = start.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day)
        .map(|date| start.replace_date(date).unix_timestamp())
        .unwrap_or(at)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or with a space instead of `T`.
pub(crate) fn format_rfc3339(at: i64, separator: char) -> String {
    let text = write(
        instant(at),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    );
    if separator == 'T' {
        text
    } else {
        text.replacen('T', &separator.to_string(), 1)
    }
}

/// A FHIR `instant` with milliseconds, as the backend writes `meta.lastUpdated`:
/// `2020-11-09T22:52:58.934+00:00`.
pub(crate) fn format_instant_millis(at_millis: i64) -> String {
    let at = instant(at_millis.div_euclid(1000))
        .replace_millisecond(u16::try_from(at_millis.rem_euclid(1000)).unwrap_or(0))
        .unwrap_or_else(|_| instant(at_millis.div_euclid(1000)));
    write(
        at,
        format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00"
        ),
    )
}

/// A FHIR `dateTime` to the second with an explicit offset, as the backend writes
/// `ExplanationOfBenefit.created`: `2021-03-08T23:28:09+00:00`.
pub(crate) fn format_datetime(at: i64) -> String {
    write(
        instant(at),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"),
    )
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub(crate) fn format_date(days: i64) -> String {
    date_of(days)
        .and_then(|date| {
            date.format(format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_default()
}

/// The day number of a `YYYY-MM-DD` date (anything after the day, such as a time, is ignored).
pub(crate) fn parse_date(raw: &str) -> Option<i64> {
    let date = Date::parse(raw.get(..10)?, format_description!("[year]-[month]-[day]")).ok()?;
    Some(i64::from(date.to_julian_day()) - EPOCH_JULIAN_DAY)
}

/// Days in `month` (1–12) of `year`.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match (
        i32::try_from(year),
        u8::try_from(month).map(Month::try_from),
    ) {
        (Ok(year), Ok(Ok(month))) => u32::from(time::util::days_in_month(month, year)),
        _ => 0,
    }
}

/// The day number of a calendar date (days since 1970-01-01); callers pass a real date (a day
/// that does not exist counts as the epoch).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let date = (|| {
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
    })();
    date.map_or(0, |date| i64::from(date.to_julian_day()) - EPOCH_JULIAN_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_months_on() {
        // 2026-11-22T10:00:00Z + 13 months = 2027-12-22T10:00:00Z
        let at = days_from_civil(2026, 11, 22) * 86_400 + 36_000;
        assert_eq!(
            format_rfc3339(add_months(at, 13), 'T'),
            "2027-12-22T10:00:00Z"
        );
        // Clamped: Jan 31 + 1 month = Feb 28.
        let jan31 = days_from_civil(2027, 1, 31) * 86_400;
        assert_eq!(
            format_rfc3339(add_months(jan31, 1), ' '),
            "2027-02-28 00:00:00Z"
        );
    }

    #[test]
    fn dates_round_trip() {
        for day in [-1, 0, 16_000, 20_000] {
            assert_eq!(parse_date(&format_date(day)), Some(day));
        }
        assert_eq!(parse_date("2023-02-29"), None);
    }

    #[test]
    fn advancing_is_shared() {
        let clock = Clock::new();
        let other = clock.clone();
        let before = clock.now();
        other.advance(3600);
        assert!(clock.now() >= before + 3600);
        assert_eq!(clock.offset(), 3600);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::frozen_at(1_700_000_000);
        assert_eq!(clock.now_millis(), 1_700_000_000_000);
        clock.advance_millis(1_250);
        assert_eq!(clock.now_millis(), 1_700_000_001_250);
        assert_eq!(clock.now(), 1_700_000_001);
        assert!(clock.is_frozen());
        clock.resume();
        assert!(!clock.is_frozen());
    }

    #[test]
    fn instants_carry_milliseconds_and_an_offset() {
        let at = days_from_civil(2020, 11, 9) * 86_400_000 + 82_378_934;
        assert_eq!(format_instant_millis(at), "2020-11-09T22:52:58.934+00:00");
        assert_eq!(format_datetime(at / 1000), "2020-11-09T22:52:58+00:00");
    }
}
