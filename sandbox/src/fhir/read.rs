//! Reads by id, `GET {fhir}/{type}/{id}`: Blue Button's three resources, and on the SMART face
//! the clinical ones and `Medication`. Another patient's id is simply not found.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};

use super::{
    access::{allows, backend, caller, throttle, with_limits},
    failure::Failure,
    render::fhir_json,
    search::Resource,
};
use crate::{
    clinical,
    state::{Profile, Shared},
    throttle::RateHeaders,
};

/// `GET {fhir}/{type}/{id}` — read.
pub(crate) async fn bb2_read(
    State(shared): State<Arc<Shared>>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&shared, Profile::BlueButton, &resource, &id, &headers)
}

/// `GET /smart/fhir/{type}/{id}`.
pub(crate) async fn smart_read(
    State(shared): State<Arc<Shared>>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&shared, Profile::Smart, &resource, &id, &headers)
}

fn read(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
) -> Response {
    let mut limits = None;
    let response = read_inner(
        shared,
        profile,
        resource,
        id.trim_end_matches('/'),
        headers,
        &mut limits,
    )
    .unwrap_or_else(|failure| failure.into_response(profile));
    with_limits(response, limits)
}

fn read_inner(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
    limits: &mut Option<RateHeaders>,
) -> Result<Response, Failure> {
    if profile == Profile::Smart && resource == "Medication" {
        let caller = caller(shared, profile, headers)?;
        if !allows(&caller.scopes, "Medication", false) {
            return Err(Failure::Forbidden);
        }
        return clinical::medication(id)
            .map(|m| fhir_json(&m))
            .ok_or(Failure::NotFound);
    }
    if let (Profile::Smart, Some(kind)) = (profile, clinical::Kind::parse(resource)) {
        let caller = caller(shared, profile, headers)?;
        if !allows(&caller.scopes, kind.name(), false) {
            return Err(Failure::Forbidden);
        }
        backend(shared)?;
        let owner = clinical::owner_of(kind, id)
            .filter(|owner| *owner == caller.index || shared.faults.leak_patients())
            .and_then(|owner| shared.data.users().get(owner))
            .ok_or(Failure::NotFound)?;
        return clinical::records(owner, kind)
            .into_iter()
            .find(|r| r.body["id"] == id)
            .map(|r| fhir_json(&r.body))
            .ok_or(Failure::NotFound);
    }
    let resource = Resource::parse(resource).ok_or(Failure::NotFound)?;
    let caller = caller(shared, profile, headers)?;
    if !allows(&caller.scopes, resource.name(), false) {
        return Err(Failure::Forbidden);
    }
    throttle(shared, profile, &caller, limits)?;
    backend(shared)?;
    let user = caller.user;
    let found = match resource {
        Resource::Patient => (id == user.patient_id).then(|| shared.data.patient(user)),
        Resource::Coverage => shared
            .data
            .coverages(user)
            .into_iter()
            .find(|c| c["id"] == id),
        Resource::ExplanationOfBenefit => user
            .claims()
            .iter()
            .find(|c| c.id(user) == id)
            .map(|c| shared.data.eob_at(user, c, shared.clock.now())),
    };
    // Another patient's id is simply not found.
    found.map(|r| fhir_json(&r)).ok_or(Failure::NotFound)
}
