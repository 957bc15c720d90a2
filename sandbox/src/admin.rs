//! The test-control endpoints, served only when [`crate::SandboxConfig::admin`] is on
//! (`--admin`); otherwise these paths are plain 404s. They take no credentials: never expose
//! an admin-enabled sandbox beyond your machine.
//!
//! - `GET /__admin/faults` → the faults in force:
//!   `{"latency_ms":0,"error_rate":0.0,"drop_rate":0.0,"throttle":"10/second","storm":null,"gzip_always":false,"retry_after_date":false,"revoke_status":null,"seed":0}`
//! - `POST /__admin/faults` with any of `latency_ms`, `error_rate`, `drop_rate` (0 to 1),
//!   `storm_seconds` / `storm_requests` (0 ends a storm), `throttle` (`"10/second"` or
//!   `"off"`), `reset_throttle: true`, `gzip_always` and `retry_after_date` (true or false),
//!   `revoke_status` (400-599: the revocation endpoints answer it; 0: they revoke again)
//!   → the faults now in force.
//! - `GET /__admin/clock` → `{"now_ms":…,"now":"2026-11-22T10:00:00.000+00:00","offset_ms":0,"frozen":false}`
//! - `POST /__admin/clock` with any of `advance_seconds` (may be fractional or negative),
//!   `offset_seconds` (sets the offset), `freeze` (`true` stops the clock, `false` lets it run)
//!   → the clock now.
//!
//! A malformed body answers `400 {"detail": …}`.

use std::sync::Arc;

use axum::{
    Router, body::Bytes, extract::State, http::StatusCode, response::Response, routing::get,
};
use serde::Deserialize;
use serde_json::json;

use crate::{clock::format_instant_millis, errors, faults::FaultPatch, state::Shared};

/// The admin routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__admin/faults", get(faults).post(set_faults))
        .route("/__admin/clock", get(clock).post(set_clock))
}

/// The JSON body (empty means no change), or the 400 to answer.
fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(errors::detail(
            StatusCode::BAD_REQUEST,
            &format!("invalid body: {e}"),
        ))
    })
}

async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    errors::json(
        StatusCode::OK,
        shared.faults.snapshot(shared.clock.now_millis()),
    )
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: FaultPatch = match parse(&body) {
        Ok(patch) => patch,
        Err(response) => return *response,
    };
    match shared.faults.update(patch, shared.clock.now_millis()) {
        Ok(true) => shared.throttle.reset(),
        Ok(false) => {}
        Err(message) => return errors::detail(StatusCode::BAD_REQUEST, &message),
    }
    tracing::info!(faults = %shared.faults.snapshot(shared.clock.now_millis()), "faults changed");
    faults(State(shared)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockPatch {
    advance_seconds: Option<f64>,
    offset_seconds: Option<f64>,
    freeze: Option<bool>,
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    let now = shared.clock.now_millis();
    errors::json(
        StatusCode::OK,
        json!({
            "now_ms": now,
            "now": format_instant_millis(now),
            "offset_ms": shared.clock.offset_millis(),
            "frozen": shared.clock.is_frozen(),
        }),
    )
}

async fn set_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: ClockPatch = match parse(&body) {
        Ok(patch) => patch,
        Err(response) => return *response,
    };
    let millis = |seconds: f64| (seconds * 1000.0).round() as i64;
    match patch.freeze {
        Some(true) => shared.clock.freeze(),
        Some(false) => shared.clock.resume(),
        None => {}
    }
    if let Some(offset) = patch.offset_seconds {
        shared
            .clock
            .advance_millis(millis(offset) - shared.clock.offset_millis());
    }
    if let Some(seconds) = patch.advance_seconds {
        shared.clock.advance_millis(millis(seconds));
    }
    clock(State(shared)).await
}
