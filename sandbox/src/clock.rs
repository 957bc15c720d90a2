//! The sandbox's clock: the system time (or a frozen instant) plus an offset that tests move
//! forward, so grants, tokens and rate-limit windows can be aged without waiting.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
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

/// `at` plus `months` calendar months, the day clamped to the target month's length
/// (Blue Button's 13-month grants end on the same day of the month, 13 months on).
pub(crate) fn add_months(at: i64, months: u32) -> i64 {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m - 1) + i64::from(months);
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * 86_400 + secs
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or with a space instead of `T`.
pub(crate) fn format_rfc3339(at: i64, separator: char) -> String {
    let (y, m, d) = civil_from_days(at.div_euclid(86_400));
    let secs = at.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}{separator}{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A FHIR `instant` with milliseconds, as the backend writes `meta.lastUpdated`:
/// `2020-11-09T22:52:58.934+00:00`.
pub(crate) fn format_instant_millis(at_millis: i64) -> String {
    let secs = at_millis.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        at_millis.rem_euclid(1000)
    )
}

/// A FHIR `dateTime` to the second with an explicit offset, as the backend writes
/// `ExplanationOfBenefit.created`: `2021-03-08T23:28:09+00:00`.
pub(crate) fn format_datetime(at: i64) -> String {
    let mut out = format_rfc3339(at, 'T');
    out.pop();
    out.push_str("+00:00");
    out
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of a `YYYY-MM-DD` date.
pub(crate) fn parse_date(raw: &str) -> Option<i64> {
    let mut parts = raw.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.get(..2)?.parse().ok()?;
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then(|| days_from_civil(y, m, d))
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
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
