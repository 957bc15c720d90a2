//! Blue Button's per-access-token rate limit on the FHIR views: Django REST framework's
//! `SimpleRateThrottle` (`apps/dot_ext/throttling.py`, `TokenRateThrottle`), reproduced
//! with the sandbox's clock so tests age the window instead of sleeping.
//!
//! The throttle keeps, per token, the times of the requests it let through inside the last
//! window (a sliding log, newest first). A request is refused when the log is full; it then
//! answers 429 with `Retry-After` and DRF's "Request was throttled. Expected available in N
//! seconds." Every throttled view's answer carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds, written as a float).

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    str::FromStr,
    sync::Mutex,
};

use axum::http::{HeaderMap, HeaderValue};

/// A rate as DRF writes it: `10/second`, `600/minute`, `100/s` (the period's first letter
/// counts: `s`, `m`, `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRate {
    /// Requests allowed per period.
    pub requests: u32,
    /// The period, in seconds.
    pub period_seconds: u32,
}

impl ThrottleRate {
    /// `requests` per second.
    pub fn per_second(requests: u32) -> Self {
        Self {
            requests,
            period_seconds: 1,
        }
    }
}

impl Default for ThrottleRate {
    /// 10 requests per second per token, near the public sandbox's rate.
    fn default() -> Self {
        Self::per_second(10)
    }
}

impl FromStr for ThrottleRate {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid rate {raw:?} (expected e.g. 10/second, 600/minute)");
        let (count, period) = raw.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = count.trim().parse().map_err(|_| bad())?;
        let period_seconds = match period.trim().chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        Ok(Self {
            requests,
            period_seconds,
        })
    }
}

impl fmt::Display for ThrottleRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = match self.period_seconds {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{period}", self.requests)
    }
}

/// The rate-limit headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub(crate) limit: i64,
    pub(crate) remaining: i64,
    /// Milliseconds until the oldest request in the window leaves it.
    pub(crate) reset_millis: i64,
}

impl RateHeaders {
    /// Writes `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put("x-ratelimit-limit", self.limit.to_string());
        put("x-ratelimit-remaining", self.remaining.to_string());
        put(
            "x-ratelimit-reset",
            seconds_as_python_float(self.reset_millis),
        );
    }
}

/// Seconds as Python's `str(float)` writes them: `1.0`, `0.734`.
pub(crate) fn seconds_as_python_float(millis: i64) -> String {
    if millis % 1000 == 0 {
        format!("{}.0", millis / 1000)
    } else {
        // An exact ratio of integers: the nearest double prints back as the short decimal.
        format!("{}", millis as f64 / 1000.0)
    }
}

/// What the throttle decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) headers: RateHeaders,
    /// `None` when allowed; when refused, `Some(wait)` with DRF's wait rounded up to whole
    /// seconds (`None` inside when DRF cannot say).
    pub(crate) refused: Option<Option<u64>>,
}

/// The per-token request logs.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    logs: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// `SimpleRateThrottle.allow_request` for `key` at `now_millis`.
    pub(crate) fn check(&self, rate: ThrottleRate, key: &str, now_millis: i64) -> Decision {
        let duration = i64::from(rate.period_seconds) * 1000;
        let limit = i64::from(rate.requests);
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if logs.len() > 10_000 {
            // Forget tokens whose window is over, so a long-running sandbox stays small.
            logs.retain(|_, log| log.front().is_some_and(|t| *t > now_millis - duration));
        }
        let log = logs.entry(key.to_owned()).or_default();
        while log.back().is_some_and(|t| *t <= now_millis - duration) {
            log.pop_back();
        }
        let refused = if log.len() as i64 >= limit {
            // DRF's `wait()`: the time until the oldest request leaves the window, shared
            // among the requests that will then be available.
            let remaining = log.back().map_or(duration, |t| duration - (now_millis - t));
            let available = limit - log.len() as i64 + 1;
            Some((available > 0).then(|| {
                let wait_millis = remaining as f64 / available as f64;
                (wait_millis / 1000.0).ceil() as u64
            }))
        } else {
            log.push_front(now_millis);
            None
        };
        let reset_millis = log.back().map_or(duration, |t| duration - (now_millis - t));
        Decision {
            headers: RateHeaders {
                limit,
                remaining: limit - log.len() as i64,
                reset_millis,
            },
            refused,
        }
    }

    /// Forgets every token's log.
    pub(crate) fn reset(&self) {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// DRF's `Throttled` detail: "Request was throttled." and, when it knows, "Expected
/// available in N seconds." (singular for one second).
pub(crate) fn throttled_detail(wait: Option<u64>) -> String {
    match wait {
        None => "Request was throttled.".to_owned(),
        Some(1) => "Request was throttled. Expected available in 1 second.".to_owned(),
        Some(n) => format!("Request was throttled. Expected available in {n} seconds."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_drf_reads_them() {
        assert_eq!("10/second".parse(), Ok(ThrottleRate::per_second(10)));
        assert_eq!(
            "600/m".parse(),
            Ok(ThrottleRate {
                requests: 600,
                period_seconds: 60
            })
        );
        assert!("ten/second".parse::<ThrottleRate>().is_err());
        assert!("10".parse::<ThrottleRate>().is_err());
        assert_eq!(ThrottleRate::default().to_string(), "10/second");
    }

    #[test]
    fn a_sliding_window_per_token() {
        let throttle = Throttle::default();
        let rate = ThrottleRate::per_second(3);
        for n in 0..3 {
            let d = throttle.check(rate, "a", 1_000 + n * 100);
            assert_eq!(d.refused, None);
            assert_eq!(d.headers.remaining, 2 - n);
        }
        // Full at t=1.3 s: the oldest (t=1.0 s) leaves at t=2.0 s.
        let d = throttle.check(rate, "a", 1_300);
        assert_eq!(d.refused, Some(Some(1)));
        assert_eq!(d.headers.remaining, 0);
        assert_eq!(d.headers.reset_millis, 700);
        // Another token has its own window.
        assert_eq!(throttle.check(rate, "b", 1_300).refused, None);
        // At t=2.0 s the first request has left the window.
        assert_eq!(throttle.check(rate, "a", 2_000).refused, None);
    }

    #[test]
    fn reset_is_written_as_python_floats() {
        assert_eq!(seconds_as_python_float(1000), "1.0");
        assert_eq!(seconds_as_python_float(734), "0.734");
        assert_eq!(seconds_as_python_float(60_000), "60.0");
        assert_eq!(
            throttled_detail(Some(60)),
            "Request was throttled. Expected available in 60 seconds."
        );
        assert_eq!(
            throttled_detail(Some(1)),
            "Request was throttled. Expected available in 1 second."
        );
    }
}
