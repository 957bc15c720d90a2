//! `metadata` on both faces: the CapabilityStatement, with the SMART `oauth-uris` extension
//! naming this server's authorize and token endpoints.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::Response,
};
use serde_json::{Value, json};

use super::render::fhir_json;
use crate::state::{Profile, Shared};

/// `GET /v2/fhir/metadata` (and `/smart/fhir/metadata`): the CapabilityStatement, with the
/// SMART `oauth-uris` extension pointing at this server. Public, like Blue Button's.
pub(crate) async fn bb2_metadata(State(shared): State<Arc<Shared>>) -> Response {
    metadata(&shared, Profile::BlueButton)
}

/// `GET /smart/fhir/metadata`.
pub(crate) async fn smart_metadata(State(shared): State<Arc<Shared>>) -> Response {
    metadata(&shared, Profile::Smart)
}

fn metadata(shared: &Shared, profile: Profile) -> Response {
    let mut capability = shared.data.capability().clone();
    let origin = shared.origin();
    let (authorize, token) = match profile {
        Profile::BlueButton => (
            format!("{origin}/v2/o/authorize"),
            format!("{origin}/v2/o/token"),
        ),
        Profile::Smart => (
            format!("{origin}/smart/auth/authorize"),
            format!("{origin}/smart/auth/token"),
        ),
    };
    if let Some(rest) = capability.get_mut("rest").and_then(Value::as_array_mut) {
        for entry in rest {
            entry["security"] = json!({
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": authorize},
                        {"url": "token", "valueUri": token},
                    ]
                }],
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"
                }]}]
            });
        }
    }
    let mut response = fhir_json(&capability);
    if profile == Profile::BlueButton {
        // Blue Button serves its CapabilityStatement as plain JSON.
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}
