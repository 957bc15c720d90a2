//! The sandbox's clock: the system time plus an offset that tests move forward, so grants
//! and tokens can be aged without waiting.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// A shared, adjustable clock. Clones share the same offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.offset_seconds.load(Ordering::SeqCst))
    }

    /// Moves the clock forward (or back, with a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The current offset from the system time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_seconds.load(Ordering::SeqCst)
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

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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
}
