//! Writing FHIR answers: one resource, or a search Bundle with its id, stamp, links and
//! entries, as `application/fhir+json` serialized once.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{clock::format_instant_millis, form::Pairs, state::Shared, users::User};

/// A FHIR JSON answer, serialized once (bundles run to megabytes).
pub(super) fn fhir_json(body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+json"),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A search Bundle of `entries` (one page of `total`), with `links`, and the `included`
/// resources after them (search mode `include`).
#[allow(clippy::too_many_arguments)]
pub(super) fn searchset(
    shared: &Shared,
    resource: &str,
    user: &User,
    pairs: &Pairs,
    total: usize,
    links: Vec<Value>,
    entries: Vec<Value>,
    included: Vec<Value>,
) -> Response {
    let now = shared.clock.now_millis();
    // The backend stamps a bundle with its last load, or a newer resource's update.
    let newest = entries
        .iter()
        .filter_map(|e| e["meta"]["lastUpdated"].as_str())
        .max()
        .map(str::to_owned);
    let stamp = format_instant_millis(now);
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": bundle_id(shared, resource, user, pairs, now),
        "meta": {"lastUpdated": newest.filter(|n| *n > stamp).unwrap_or(stamp)},
        "type": "searchset",
        "total": total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = entries
            .into_iter()
            .map(|resource| json!({"resource": resource}))
            .chain(
                included
                    .into_iter()
                    .map(|resource| json!({"resource": resource, "search": {"mode": "include"}})),
            )
            .collect();
    }
    fhir_json(&bundle)
}

/// A UUID-shaped id, as the backend gives each search answer; derived from the search and
/// the time, so it is stable for a frozen clock.
fn bundle_id(shared: &Shared, resource: &str, user: &User, pairs: &Pairs, now: i64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(shared.config.seed.to_le_bytes());
    hasher.update(resource.as_bytes());
    hasher.update(user.patient_id.as_bytes());
    for (k, v) in pairs {
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hasher.update(now.to_le_bytes());
    crate::state::uuid_from_digest(&hasher.finalize())
}
