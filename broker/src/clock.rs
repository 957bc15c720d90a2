//! The broker's notion of "now", injectable so tests can age tokens, flows and sessions
//! without sleeping.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use connect_medicare_protocol::Timestamp;

/// A source of the current time, in whole unix seconds.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        };
        Timestamp::from_unix_seconds(seconds)
    }
}

/// A clock that only moves when told to: for tests (of this crate and of the whole system).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.unix_seconds()))
    }

    /// Moves the clock to `to` (backwards too).
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.unix_seconds(), Ordering::SeqCst);
    }

    /// Moves the clock by `seconds` (negative moves it back), saturating at the ends.
    pub fn advance(&self, seconds: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(seconds))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_000));
        assert_eq!(clock.now().unix_seconds(), 1_000);
        clock.advance(3_600);
        assert_eq!(clock.now().unix_seconds(), 4_600);
        clock.advance(-600);
        assert_eq!(clock.now().unix_seconds(), 4_000);
        clock.set(Timestamp::from_unix_seconds(7));
        assert_eq!(clock.now().unix_seconds(), 7);
        clock.set(Timestamp::from_unix_seconds(i64::MAX));
        clock.advance(1);
        assert_eq!(clock.now().unix_seconds(), i64::MAX);
    }

    #[test]
    fn system_clock_is_after_2024() {
        // 2024-01-01T00:00:00Z: a machine whose clock is before this is misconfigured.
        assert!(SystemClock.now().unix_seconds() > 1_704_067_200);
    }

    #[test]
    fn clocks_are_object_safe() {
        let clocks: Vec<Box<dyn Clock>> = vec![
            Box::new(SystemClock),
            Box::new(ManualClock::new(Timestamp::UNIX_EPOCH)),
        ];
        assert_eq!(clocks[1].now(), Timestamp::UNIX_EPOCH);
    }
}
