//! Injected faults, for testing clients against a server that misbehaves the way a real one
//! does: latency, upstream failures (Blue Button's 502s), dropped connections, and a forced
//! 429 storm. Random faults are drawn from dice seeded by [`SandboxConfig::seed`], one
//! sequence per kind of fault, so the same seed and the same sequence of requests give the
//! same faults.
//!
//! Where each applies:
//!
//! - **latency**: before every API request (FHIR reads and searches on both faces, userinfo,
//!   the token endpoints);
//! - **dropped connection**: on the same routes; the request is processed (a refresh
//!   rotates its tokens) and then the TCP connection is closed without an answer;
//! - **upstream failure** (`error_rate`): FHIR reads and searches answer
//!   `502 {"detail":"An error occurred contacting the upstream server"}` after the token,
//!   scope and rate checks; a Blue Button refresh answers
//!   `502 {"status_code":502,"message":"Failed to retrieve data from data source."}` *after*
//!   rotating the tokens, as the real server does;
//! - **429 storm**: every Blue Button FHIR read or search answers 429 for a number of
//!   seconds (of the sandbox's clock) or for a number of requests;
//! - **gzip always**: every answer over 1 KB is gzip-compressed whether or not the request's
//!   `Accept-Encoding` asked for it, as a misconfigured proxy or CDN in front of a provider
//!   may do;
//! - **`Retry-After` as a date**: a storm's 429 gives `Retry-After` as an HTTP-date rather than
//!   seconds (RFC 9110 allows both).

use std::{sync::Mutex, time::Duration};

use serde_json::{Value, json};

use crate::{
    config::{SandboxConfig, Storm},
    throttle::ThrottleRate,
};

/// The faults in force, changed at run time through `/__admin/faults`.
#[derive(Debug)]
pub(crate) struct Faults {
    seed: u64,
    state: Mutex<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    latency_ms: u64,
    error_rate: f64,
    drop_rate: f64,
    throttle: Option<ThrottleRate>,
    storm_until_millis: Option<i64>,
    storm_requests: u64,
    gzip_always: bool,
    retry_after_date: bool,
    revoke_status: Option<u16>,
    leak_patients: bool,
    /// How many times each die was thrown: `[errors, drops]`.
    throws: [u64; 2],
}

/// The two dice.
#[derive(Debug, Clone, Copy)]
enum Die {
    Error = 0,
    Drop = 1,
}

/// What a 429 storm answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StormAnswer {
    /// Milliseconds until the storm is over (one second for a storm counted in requests).
    pub(crate) remaining_millis: i64,
}

/// A partial update of the faults (the body of `POST /__admin/faults`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultPatch {
    latency_ms: Option<u64>,
    error_rate: Option<f64>,
    drop_rate: Option<f64>,
    /// Start a storm of this many seconds (0 ends any storm).
    storm_seconds: Option<u64>,
    /// Start a storm of this many requests (0 ends any storm).
    storm_requests: Option<u64>,
    /// A rate (`10/second`), or `"off"`.
    throttle: Option<String>,
    /// Forget every token's rate-limit window.
    #[serde(default)]
    reset_throttle: bool,
    /// Compress answers whether or not they were asked to be.
    gzip_always: Option<bool>,
    /// Give a storm's `Retry-After` as an HTTP-date.
    retry_after_date: Option<bool>,
    /// The revocation endpoints answer this status (400-599); 0 lets them revoke again.
    revoke_status: Option<u16>,
    /// The SMART face's clinical searches and reads answer other patients' resources too.
    leak_patients: Option<bool>,
}

fn check_rate(name: &str, rate: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{name} must be between 0 and 1"))
    }
}

impl Faults {
    pub(crate) fn new(config: &SandboxConfig, now_millis: i64) -> Self {
        let faults = &config.faults;
        let (storm_until_millis, storm_requests) = match faults.storm {
            Some(Storm::Seconds(s)) => (Some(after_seconds(now_millis, s)), 0),
            Some(Storm::Requests(n)) => (None, n),
            None => (None, 0),
        };
        Self {
            seed: config.seed,
            state: Mutex::new(FaultState {
                latency_ms: faults.latency_ms,
                error_rate: faults.error_rate.clamp(0.0, 1.0),
                drop_rate: faults.drop_rate.clamp(0.0, 1.0),
                throttle: config.throttle,
                storm_until_millis,
                storm_requests,
                gzip_always: faults.gzip_always,
                retry_after_date: faults.retry_after_date,
                revoke_status: faults.revoke_status,
                leak_patients: false,
                throws: [0, 0],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latency to add to an API request.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().latency_ms)
    }

    /// The rate limit in force.
    pub(crate) fn throttle(&self) -> Option<ThrottleRate> {
        self.lock().throttle
    }

    /// Throws the upstream-failure die.
    pub(crate) fn upstream_fails(&self) -> bool {
        self.throw(Die::Error)
    }

    /// Throws the dropped-connection die.
    pub(crate) fn connection_drops(&self) -> bool {
        self.throw(Die::Drop)
    }

    fn throw(&self, die: Die) -> bool {
        let mut state = self.lock();
        let rate = match die {
            Die::Error => state.error_rate,
            Die::Drop => state.drop_rate,
        };
        let n = state.throws[die as usize];
        state.throws[die as usize] += 1;
        rate > 0.0 && unit(self.seed, die as u64, n) < rate
    }

    /// Whether a 429 storm answers this request (a storm counted in requests spends one).
    pub(crate) fn storm(&self, now_millis: i64) -> Option<StormAnswer> {
        let mut state = self.lock();
        if let Some(until) = state.storm_until_millis {
            if until > now_millis {
                return Some(StormAnswer {
                    remaining_millis: until - now_millis,
                });
            }
            state.storm_until_millis = None;
        }
        if state.storm_requests > 0 {
            state.storm_requests -= 1;
            return Some(StormAnswer {
                remaining_millis: 1000,
            });
        }
        None
    }

    /// Applies a partial update; answers whether it asked to forget the rate-limit windows.
    pub(crate) fn update(&self, patch: FaultPatch, now_millis: i64) -> Result<bool, String> {
        let throttle = match patch.throttle.as_deref() {
            None => None,
            Some("off" | "none") => Some(None),
            Some(raw) => Some(Some(raw.parse::<ThrottleRate>()?)),
        };
        let error_rate = patch
            .error_rate
            .map(|r| check_rate("error_rate", r))
            .transpose()?;
        let drop_rate = patch
            .drop_rate
            .map(|r| check_rate("drop_rate", r))
            .transpose()?;
        let revoke_status = match patch.revoke_status {
            None => None,
            Some(0) => Some(None),
            Some(status @ 400..=599) => Some(Some(status)),
            Some(_) => return Err("revoke_status must be 0 or 400-599".to_owned()),
        };
        let mut state = self.lock();
        if let Some(status) = revoke_status {
            state.revoke_status = status;
        }
        if let Some(ms) = patch.latency_ms {
            state.latency_ms = ms;
        }
        if let Some(rate) = error_rate {
            state.error_rate = rate;
        }
        if let Some(rate) = drop_rate {
            state.drop_rate = rate;
        }
        if let Some(rate) = throttle {
            state.throttle = rate;
        }
        if let Some(seconds) = patch.storm_seconds {
            state.storm_requests = 0;
            state.storm_until_millis = (seconds > 0).then(|| after_seconds(now_millis, seconds));
        }
        if let Some(requests) = patch.storm_requests {
            state.storm_until_millis = None;
            state.storm_requests = requests;
        }
        if let Some(always) = patch.gzip_always {
            state.gzip_always = always;
        }
        if let Some(date) = patch.retry_after_date {
            state.retry_after_date = date;
        }
        if let Some(leak) = patch.leak_patients {
            state.leak_patients = leak;
        }
        Ok(patch.reset_throttle)
    }

    /// Whether a storm's `Retry-After` is an HTTP-date.
    pub(crate) fn retry_after_date(&self) -> bool {
        self.lock().retry_after_date
    }

    /// Whether answers are compressed even when not asked to be.
    pub(crate) fn revoke_status(&self) -> Option<u16> {
        self.lock().revoke_status
    }

    pub(crate) fn gzip_always(&self) -> bool {
        self.lock().gzip_always
    }

    /// Whether the SMART face answers as a server that ignores the patient: the next user's
    /// clinical resources in every search, and any user's read by id (`clinical.rs`).
    pub(crate) fn leak_patients(&self) -> bool {
        self.lock().leak_patients
    }

    /// The faults in force, as `GET /__admin/faults` shows them.
    pub(crate) fn snapshot(&self, now_millis: i64) -> Value {
        let state = self.lock();
        let storm = match (state.storm_until_millis, state.storm_requests) {
            (Some(until), _) if until > now_millis => {
                json!({"seconds_left": (until - now_millis) as f64 / 1000.0})
            }
            (_, n) if n > 0 => json!({"requests_left": n}),
            _ => Value::Null,
        };
        json!({
            "latency_ms": state.latency_ms,
            "error_rate": state.error_rate,
            "drop_rate": state.drop_rate,
            "throttle": state.throttle.map(|r| r.to_string()),
            "storm": storm,
            "gzip_always": state.gzip_always,
            "retry_after_date": state.retry_after_date,
            "revoke_status": state.revoke_status,
            "leak_patients": state.leak_patients,
            "seed": self.seed,
        })
    }
}

/// `seconds` after `now_millis`, saturating.
fn after_seconds(now_millis: i64, seconds: u64) -> i64 {
    now_millis.saturating_add(
        i64::try_from(seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    )
}

/// A uniform number in `[0, 1)` from the seed, the die and the throw (SplitMix64).
fn unit(seed: u64, die: u64, throw: u64) -> f64 {
    let mut z = seed
        .wrapping_add(die.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(throw.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FaultConfig;

    #[test]
    fn dice_are_uniform_enough_and_seeded() {
        let hits = (0..10_000).filter(|n| unit(7, 0, *n) < 0.25).count();
        assert!((2_300..2_700).contains(&hits), "{hits}");
        let a: Vec<bool> = (0..64).map(|n| unit(1, 0, n) < 0.5).collect();
        let b: Vec<bool> = (0..64).map(|n| unit(1, 0, n) < 0.5).collect();
        let c: Vec<bool> = (0..64).map(|n| unit(2, 0, n) < 0.5).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn storms_end_by_time_or_count() {
        let config = SandboxConfig {
            faults: FaultConfig {
                storm: Some(Storm::Seconds(2)),
                ..FaultConfig::default()
            },
            ..SandboxConfig::default()
        };
        let faults = Faults::new(&config, 10_000);
        assert_eq!(
            faults.storm(10_500),
            Some(StormAnswer {
                remaining_millis: 1_500
            })
        );
        assert_eq!(faults.storm(12_000), None);
        faults
            .update(
                FaultPatch {
                    storm_requests: Some(2),
                    ..FaultPatch::default()
                },
                12_000,
            )
            .unwrap();
        assert!(faults.storm(12_000).is_some());
        assert!(faults.storm(12_000).is_some());
        assert_eq!(faults.storm(12_000), None);
    }
}
