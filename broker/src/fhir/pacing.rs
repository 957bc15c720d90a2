//! Pacing of upstream requests, per connection: the FHIR proxy's in-process state.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use connect_medicare_protocol::contract::ErrorCode;
use tokio::time::Instant;

use crate::{error::ApiError, ids::SessionHash};

/// Past this many connections in the pacing map, the ones whose slot has passed are forgotten
/// (not on every request: that would scan every connection each time).
const PRUNE_AT: usize = 4096;
/// The longest a request waits for its turn before the broker answers `rate_limited`.
const MAX_BUDGET_WAIT: Duration = Duration::from_secs(15);

/// The per-connection pacing of upstream requests: at most each provider's
/// `requests_per_second` in any [`WINDOW`] (a second and a margin) — the sliding log Blue
/// Button's throttle keeps per access token (Django REST framework's `SimpleRateThrottle`), so
/// a burst of pages goes out at once and only the requests past the limit wait for the window
/// to move.
///
/// Hand-written rather than `governor`: a GCRA limiter admits its burst *and* its rate within
/// one window (burst 9 at 9/s lets 17 through in a second), so to stay under a sliding log of
/// 10 it must halve one of them; and spacing requests evenly at 9/s would hold back a burst of
/// six planned pages by up to 0.67 s. With this window, `scripts/bench.sh paging` reads all 327
/// claims of one beneficiary at 200 ms latency in 0.65 s, near the floor of two round trips
/// (`BENCHMARKS.md`).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Per connection, the times of its last requests (the last `requests_per_second` at
    /// most), oldest first; a time may be in the future, a request waiting for it.
    sent: Mutex<HashMap<(SessionHash, String), VecDeque<Instant>>>,
}

/// The window a provider's `requests_per_second` counts over: a second, and a margin for the
/// network. The provider counts requests as they *arrive*: a burst sent exactly a second after
/// the previous one can reach it within the same second when the earlier burst was a little
/// slower on its way (seen as a rare 429 in `broker/tests/security.rs::
/// fifty_concurrent_requests_at_expiry_make_one_refresh`, bursts of 9 a second apart on
/// loopback). Paging stays one burst per round trip: 100 ms only delays a second burst.
const WINDOW: Duration = Duration::from_millis(1100);

impl Budget {
    /// Waits for this connection's next slot, or answers how many seconds to retry after
    /// when that would be longer than [`MAX_BUDGET_WAIT`]. `per_second` 0 paces nothing.
    pub(crate) async fn take(
        &self,
        key: (SessionHash, String),
        per_second: u32,
    ) -> Result<(), ApiError> {
        if per_second == 0 {
            return Ok(());
        }
        let limit = per_second as usize;
        let slot = {
            let mut map = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if map.len() > PRUNE_AT {
                map.retain(|_, sent| sent.back().is_some_and(|last| *last + WINDOW > now));
            }
            let sent = map.entry(key).or_default();
            // The request `limit` before this one must be a window ago.
            let slot = match sent.len().checked_sub(limit) {
                Some(i) => now.max(sent[i] + WINDOW),
                None => now,
            };
            if slot - now > MAX_BUDGET_WAIT {
                let seconds = (slot - now).as_secs().max(1);
                return Err(
                    ApiError::new(ErrorCode::RateLimited, "too many requests; slow down")
                        .with_retry_after(seconds),
                );
            }
            sent.push_back(slot);
            while sent.len() > limit {
                sent.pop_front();
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacing_keeps_each_connection_within_its_providers_rate_in_any_second() {
        let budget = Budget::default();
        let key = |n: u8| {
            let hash = SessionHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap();
            (hash, "ehr".to_owned())
        };
        let start = Instant::now();
        // Four per second: a burst of ten goes out four at once, then four a window (a second
        // and the network's margin) later, each a window after the one four before it, then two.
        let mut at = Vec::new();
        for _ in 0..10 {
            budget.take(key(1), 4).await.unwrap();
            at.push((Instant::now() - start).as_millis());
        }
        assert_eq!(at, [0, 0, 0, 0, 1100, 1100, 1100, 1100, 2200, 2200]);
        // Requests spread out are not held: one every 300 ms never puts five in a second.
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..6 {
            budget.take(key(1), 4).await.unwrap();
            at.push((Instant::now() - start).as_millis());
            tokio::time::advance(Duration::from_millis(300)).await;
        }
        assert_eq!(at, [0, 300, 600, 900, 1200, 1500]);
        // Another connection has a budget of its own; 0 paces nothing.
        let other = Instant::now();
        budget.take(key(2), 4).await.unwrap();
        for _ in 0..100 {
            budget.take(key(3), 0).await.unwrap();
        }
        assert_eq!(Instant::now(), other);
        // A slot further than MAX_BUDGET_WAIT away is not waited for: rate_limited, with
        // the seconds to wait.
        // (Sixteen requests take the slots of the next fifteen seconds, one every 1.1 s; the
        // next slot, 15.4 s away, is refused.)
        for _ in 0..16 {
            let key = key(4);
            let budget = &budget;
            let _ = tokio::time::timeout(Duration::ZERO, budget.take(key, 1)).await;
        }
        let refused = budget.take(key(4), 1).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert_eq!(refused.retry_after(), Some(15));
    }
}
