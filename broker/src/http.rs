//! Small HTTP pieces every router shares: the `/v1` paths from the contract, the
//! `Cache-Control: no-store` layer and the JSON answers for an unknown route or method.

use axum::http::{HeaderValue, header};
use connect_medicare_protocol::contract::ErrorCode;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;

/// A contract route (`protocol/src/contract.rs`, `routes`) as the `/v1` router, nested under
/// `/v1`, names it: the router's paths come from the contract, not from a second spelling.
pub(crate) fn under_v1(route: &'static str) -> &'static str {
    route.strip_prefix("/v1").unwrap_or(route)
}

/// `Cache-Control: no-store` on every answer of the routes it wraps: the whole `/v1` API (what
/// it answers is about a session, and often personal data) and the health probes. The static
/// site is not wrapped: its files may be cached. ([`ApiError`] sets it too, wherever it is
/// answered.)
pub(crate) fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// The answer for a route that does not exist.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// The answer for a route that exists, asked with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed here",
    )
}
