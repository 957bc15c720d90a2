//! A failed FHIR request, and how each face writes it: Blue Button's `{"detail": …}` with its
//! headers, the SMART face's OperationOutcome.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::json;

use crate::{
    errors::{self, ACCESS_TIMED_OUT, NO_PERMISSION, UPSTREAM_ERROR},
    search::SearchError,
    state::Profile,
    throttle::throttled_detail,
};

/// A failed FHIR request, written in the profile's error shape.
pub(super) enum Failure {
    InvalidToken(errors::TokenProblem),
    TimedOut,
    Forbidden,
    NotFound,
    BadRequest(String),
    /// 429, with DRF's wait in whole seconds when it knows it.
    Throttled(Option<u64>),
    /// Throttled until this instant (unix milliseconds), given as an HTTP-date.
    ThrottledUntil(u64, i64),
    /// The backend failed: 502.
    Upstream,
}

impl From<SearchError> for Failure {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Invalid(detail) => Failure::BadRequest(detail),
            SearchError::Backend(diagnostics) => {
                Failure::BadRequest(format!("{UPSTREAM_ERROR}:{diagnostics}"))
            }
        }
    }
}

impl Failure {
    pub(super) fn into_response(self, profile: Profile) -> Response {
        match profile {
            Profile::BlueButton => match self {
                Failure::InvalidToken(problem) => errors::invalid_token(problem),
                Failure::TimedOut => errors::grant_ended(ACCESS_TIMED_OUT),
                Failure::Forbidden => errors::detail(StatusCode::FORBIDDEN, NO_PERMISSION),
                Failure::NotFound => errors::detail(StatusCode::NOT_FOUND, "Not found."),
                Failure::BadRequest(detail) => errors::detail(StatusCode::BAD_REQUEST, &detail),
                Failure::Throttled(wait) => {
                    let mut response =
                        errors::detail(StatusCode::TOO_MANY_REQUESTS, &throttled_detail(wait));
                    // DRF writes `Retry-After` only for a non-zero wait.
                    if let Some(wait) = wait.filter(|w| *w > 0) {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
                    }
                    response
                }
                Failure::ThrottledUntil(wait, until_millis) => {
                    let mut response = errors::detail(
                        StatusCode::TOO_MANY_REQUESTS,
                        &throttled_detail(Some(wait)),
                    );
                    let until = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(
                            u64::try_from(until_millis).unwrap_or(0),
                        );
                    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(until)) {
                        response.headers_mut().insert(header::RETRY_AFTER, date);
                    }
                    response
                }
                Failure::Upstream => errors::detail(StatusCode::BAD_GATEWAY, UPSTREAM_ERROR),
            },
            Profile::Smart => {
                let (status, code, text) = match self {
                    Failure::InvalidToken(_) => (
                        StatusCode::UNAUTHORIZED,
                        "login",
                        "Invalid or expired access token".to_owned(),
                    ),
                    Failure::TimedOut => (
                        StatusCode::UNAUTHORIZED,
                        "expired",
                        ACCESS_TIMED_OUT.to_owned(),
                    ),
                    Failure::Forbidden => {
                        (StatusCode::FORBIDDEN, "forbidden", NO_PERMISSION.to_owned())
                    }
                    Failure::NotFound => (
                        StatusCode::NOT_FOUND,
                        "not-found",
                        "Resource not found".to_owned(),
                    ),
                    Failure::BadRequest(detail) => (StatusCode::BAD_REQUEST, "invalid", detail),
                    Failure::Throttled(_) | Failure::ThrottledUntil(..) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "throttled",
                        "Too many requests".to_owned(),
                    ),
                    Failure::Upstream => (
                        StatusCode::BAD_GATEWAY,
                        "transient",
                        UPSTREAM_ERROR.to_owned(),
                    ),
                };
                let mut response = errors::json(
                    status,
                    json!({"resourceType": "OperationOutcome",
                           "issue": [{"severity": "error", "code": code, "diagnostics": text}]}),
                );
                if status == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    );
                }
                response
            }
        }
    }
}
