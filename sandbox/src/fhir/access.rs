//! The checks before a FHIR view reaches the data, in Blue Button's order: the bearer token,
//! the scopes, the rate limit (whose headers go on every answer after it), and the backend.

use axum::{
    http::{HeaderMap, header},
    response::Response,
};
use connect_medicare_protocol::{Scope, Scopes};

use super::failure::Failure;
use crate::{
    errors::TokenProblem,
    state::{Profile, Shared},
    throttle::RateHeaders,
    users::User,
};

/// Who is calling, once the bearer token checked out.
pub(super) struct Caller<'a> {
    pub(super) user: &'a User,
    /// The user's index in the dataset.
    pub(super) index: usize,
    pub(super) scopes: Scopes,
    token: String,
}

pub(super) fn caller<'a>(
    shared: &'a Shared,
    profile: Profile,
    headers: &HeaderMap,
) -> Result<Caller<'a>, Failure> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Failure::InvalidToken(TokenProblem::Missing))?;
    let now = shared.clock.now();
    let inner = shared.lock();
    let record = inner
        .access
        .get(token)
        .filter(|a| a.profile == profile)
        .ok_or(Failure::InvalidToken(TokenProblem::Invalid))?;
    if record.expires_at <= now {
        return Err(Failure::InvalidToken(TokenProblem::Expired));
    }
    let grant = inner
        .grants
        .get(&(record.client_id.clone(), record.user, profile))
        .ok_or(Failure::InvalidToken(TokenProblem::Invalid))?;
    if grant.expires_at.is_some_and(|at| at <= now) {
        return Err(Failure::TimedOut);
    }
    Ok(Caller {
        user: &shared.data.users()[record.user],
        index: record.user,
        scopes: record.scopes.clone(),
        token: token.to_owned(),
    })
}

/// Whether `scopes` covers reading (`search == false`) or searching `resource`.
pub(super) fn allows(scopes: &Scopes, resource: &str, search: bool) -> bool {
    let needed = format!("patient/{resource}.{}", if search { "s" } else { "r" });
    Scope::parse(&needed).is_ok_and(|s| scopes.covers(&s))
}

/// The rate limit (and a forced 429 storm) on the Blue Button face: DRF checks throttles
/// after authentication and permissions, before the view runs.
pub(super) fn throttle(
    shared: &Shared,
    profile: Profile,
    caller: &Caller<'_>,
    limits: &mut Option<RateHeaders>,
) -> Result<(), Failure> {
    if profile != Profile::BlueButton {
        return Ok(());
    }
    let now = shared.clock.now_millis();
    let rate = shared.faults.throttle();
    if let Some(storm) = shared.faults.storm(now) {
        *limits = Some(RateHeaders {
            limit: rate.map_or(0, |r| i64::from(r.requests)),
            remaining: 0,
            reset_millis: storm.remaining_millis,
        });
        let wait = u64::try_from((storm.remaining_millis + 999) / 1000)
            .unwrap_or(1)
            .max(1);
        if shared.faults.retry_after_date() {
            return Err(Failure::ThrottledUntil(wait, now + storm.remaining_millis));
        }
        return Err(Failure::Throttled(Some(wait)));
    }
    if let Some(rate) = rate {
        let decision = shared.throttle.check(rate, &caller.token, now);
        *limits = Some(decision.headers);
        if let Some(wait) = decision.refused {
            return Err(Failure::Throttled(wait));
        }
    }
    Ok(())
}

/// The call to the backend, which an injected fault makes fail.
pub(super) fn backend(shared: &Shared) -> Result<(), Failure> {
    if shared.faults.upstream_fails() {
        return Err(Failure::Upstream);
    }
    Ok(())
}

/// Writes the rate-limit headers (when the throttle ran) on any answer.
pub(super) fn with_limits(mut response: Response, limits: Option<RateHeaders>) -> Response {
    if let Some(limits) = limits {
        limits.apply(response.headers_mut());
    }
    response
}
