//! `GET /v2/connect/userinfo`: the signed-in beneficiary's name and ids, as Blue Button's
//! JSON-only view answers them (not a FHIR view, and not throttled).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use serde_json::json;

use super::{access::caller, failure::Failure};
use crate::{
    clock::format_rfc3339,
    errors,
    state::{Profile, Shared},
};

/// Whether the request's `Accept` admits `application/json` (no `Accept` admits anything).
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return true;
    }
    ranges.any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        !refused && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

/// `GET /v2/connect/userinfo`: not throttled; 403 without `profile`.
pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // Blue Button's userinfo is a Django REST framework view rendering JSON only, and DRF
    // negotiates the content type before it authenticates: an Accept that JSON does not
    // satisfy (`application/fhir+json` alone, say) is a 406 whatever the token.
    if !accepts_json(&headers) {
        return errors::json(
            StatusCode::NOT_ACCEPTABLE,
            json!({"detail": "Could not satisfy the request Accept header."}),
        );
    }
    let caller = match caller(&shared, Profile::BlueButton, &headers) {
        Ok(caller) => caller,
        Err(failure) => return failure.into_response(Profile::BlueButton),
    };
    if !caller.scopes.iter().any(|s| s.as_str() == "profile") {
        return Failure::Forbidden.into_response(Profile::BlueButton);
    }
    let user = caller.user;
    errors::json(
        StatusCode::OK,
        json!({
            "sub": user.patient_id,
            "name": format!("{} {}", user.given, user.family),
            "given_name": user.given,
            "family_name": user.family,
            "email": format!("{}.{}@example.com", user.given.to_ascii_lowercase(), user.family.to_ascii_lowercase()),
            "iat": format_rfc3339(shared.clock.now(), 'T'),
            "patient": user.patient_id,
        }),
    )
}
