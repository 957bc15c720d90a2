//! The patient compartment, checked on what a provider answers.
//!
//! A search is pinned to the connection's patient before it leaves (`fhir/allow.rs`, by the
//! parameter [`ResourceType::pin`] names), but a server may ignore a parameter it does not
//! know (HAPI FHIR in its lenient mode does) or answer a read of any id its token can see. So
//! for every provider but Blue Button (which keeps reads and searches to the token's
//! beneficiary itself, and whose Bundles are streamed), what comes back is checked before the
//! browser sees it:
//!
//! - a **read** of a type in the compartment must be a resource of that type and id whose
//!   patient element ([`ResourceType::patient_element`]) references the patient — otherwise
//!   the read answers `not_found`, as a read of another patient's Patient does;
//! - in a **search** Bundle, every entry of the searched type must be the patient's (a Patient
//!   search: the patient), and the only other entries allowed are `OperationOutcome`s and
//!   resources outside any compartment (a `_include`d Medication) — otherwise the search fails
//!   with `upstream_error` and nothing of it is relayed.
//!
//! The check reads only `resourceType`, `id` and the one element; everything else is skipped
//! by the parser, and what is relayed is the provider's bytes.

use std::borrow::Cow;

use connect_medicare_protocol::{contract::ErrorCode, resources::ResourceType};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// What the check needs of a resource.
#[derive(Deserialize)]
struct Seen<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<&'a RawValue>,
    #[serde(borrow)]
    patient: Option<&'a RawValue>,
    #[serde(borrow)]
    beneficiary: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow)]
    reference: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    resource: Option<Seen<'a>>,
}

/// Whose the resources must be.
pub(crate) struct Owner<'a> {
    /// The connection's patient.
    pub(crate) patient: &'a str,
    /// The provider's FHIR base, for absolute references.
    pub(crate) fhir_base: &'a str,
}

impl Owner<'_> {
    /// Whether `seen`, of type `resource`, is the patient's.
    fn owns(&self, resource: &ResourceType, seen: &Seen<'_>) -> bool {
        if seen.resource_type.as_deref() != Some(resource.name()) {
            return false;
        }
        if resource.is_patient() {
            return seen.id.as_deref() == Some(self.patient);
        }
        let element = match resource.patient_element() {
            Some("subject") => seen.subject,
            Some("patient") => seen.patient,
            Some("beneficiary") => seen.beneficiary,
            // Outside the compartment: nobody's.
            _ => return true,
        };
        element
            .and_then(|raw| serde_json::from_str::<Reference<'_>>(raw.get()).ok())
            .and_then(|r| r.reference)
            .is_some_and(|r| ResourceType::references_patient(&r, self.patient, self.fhir_base))
    }

    /// Checks a read of `resource` `id`: `Ok` when `body` is that resource and the patient's;
    /// `not_found` otherwise.
    pub(crate) fn check_read(
        &self,
        body: &[u8],
        resource: &ResourceType,
        id: &str,
    ) -> Result<(), ApiError> {
        let seen: Option<Seen<'_>> = serde_json::from_slice(body).ok();
        let own =
            seen.is_some_and(|seen| seen.id.as_deref() == Some(id) && self.owns(resource, &seen));
        if own {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::NotFound, "no such resource"))
        }
    }

    /// Checks the `entry` array of a search Bundle of `resource`.
    pub(crate) fn check_entries(
        &self,
        entries: &RawValue,
        resource: &ResourceType,
    ) -> Result<(), ApiError> {
        let entries: Vec<Entry<'_>> = serde_json::from_str(entries.get()).map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamError,
                "the provider's Bundle entries are not FHIR resources",
            )
        })?;
        for seen in entries.iter().filter_map(|e| e.resource.as_ref()) {
            let kind = seen.resource_type.as_deref().unwrap_or_default();
            let allowed = if kind == resource.name() {
                self.owns(resource, seen)
            } else {
                kind == "OperationOutcome"
                    || ResourceType::get(kind).is_some_and(|t| !t.searchable())
            };
            if !allowed {
                return Err(ApiError::new(
                    ErrorCode::UpstreamError,
                    "the provider answered with a resource outside the connection's patient \
                     compartment; nothing of it was relayed",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BASE: &str = "https://ehr.example/fhir/";

    fn owner() -> Owner<'static> {
        Owner {
            patient: "p1",
            fhir_base: BASE,
        }
    }

    fn get(name: &str) -> &'static ResourceType {
        ResourceType::get(name).unwrap()
    }

    fn read(body: serde_json::Value, resource: &str, id: &str) -> Option<ErrorCode> {
        owner()
            .check_read(&serde_json::to_vec(&body).unwrap(), get(resource), id)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn a_read_is_the_patients_own_resource_of_that_type_and_id() {
        let observation = |subject: serde_json::Value| json!({"resourceType": "Observation", "id": "o1", "subject": subject, "status": "final"});
        assert_eq!(
            read(
                observation(json!({"reference": "Patient/p1"})),
                "Observation",
                "o1"
            ),
            None
        );
        assert_eq!(
            read(
                observation(json!({"reference": format!("{BASE}Patient/p1")})),
                "Observation",
                "o1"
            ),
            None
        );
        for (body, id) in [
            (observation(json!({"reference": "Patient/p2"})), "o1"),
            (observation(json!({"reference": "Group/p1"})), "o1"),
            (observation(json!({"display": "someone"})), "o1"),
            (observation(json!("Patient/p1")), "o1"),
            (observation(json!({"reference": "Patient/p1"})), "o2"),
            (
                json!({"resourceType": "Condition", "id": "o1", "subject": {"reference": "Patient/p1"}}),
                "o1",
            ),
            (json!({"resourceType": "Observation", "id": "o1"}), "o1"),
            (json!([1, 2]), "o1"),
        ] {
            assert_eq!(
                read(body.clone(), "Observation", id),
                Some(ErrorCode::NotFound),
                "{body}"
            );
        }
        // Each type by its own element.
        let allergy = json!({"resourceType": "AllergyIntolerance", "id": "a", "patient": {"reference": "Patient/p1"}});
        assert_eq!(read(allergy, "AllergyIntolerance", "a"), None);
        let wrong = json!({"resourceType": "AllergyIntolerance", "id": "a", "subject": {"reference": "Patient/p1"}});
        assert_eq!(
            read(wrong, "AllergyIntolerance", "a"),
            Some(ErrorCode::NotFound)
        );
    }

    fn entries(list: serde_json::Value, resource: &str) -> Option<ErrorCode> {
        let raw = RawValue::from_string(list.to_string()).unwrap();
        owner()
            .check_entries(&raw, get(resource))
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn a_search_relays_only_the_patients_entries_outcomes_and_shared_resources() {
        let condition = |patient: &str| json!({"resource": {"resourceType": "Condition", "id": "c", "subject": {"reference": format!("Patient/{patient}")}}, "search": {"mode": "match"}});
        assert_eq!(
            entries(json!([condition("p1"), condition("p1")]), "Condition"),
            None
        );
        assert_eq!(
            entries(json!([condition("p1"), condition("p2")]), "Condition"),
            Some(ErrorCode::UpstreamError)
        );
        let outcome = json!({"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}});
        let medication = json!({"resource": {"resourceType": "Medication", "id": "m"}, "search": {"mode": "include"}});
        let other_patient = json!({"resource": {"resourceType": "Patient", "id": "p2"}});
        assert_eq!(
            entries(json!([condition("p1"), outcome, medication]), "Condition"),
            None
        );
        assert_eq!(
            entries(json!([condition("p1"), other_patient.clone()]), "Condition"),
            Some(ErrorCode::UpstreamError)
        );
        assert_eq!(
            entries(json!([other_patient]), "Patient"),
            Some(ErrorCode::UpstreamError)
        );
        assert_eq!(
            entries(
                json!([{"resource": {"resourceType": "Patient", "id": "p1"}}]),
                "Patient"
            ),
            None
        );
        assert_eq!(entries(json!([{"fullUrl": "x"}]), "Condition"), None);
        assert_eq!(
            entries(json!({"not": "a list"}), "Condition"),
            Some(ErrorCode::UpstreamError)
        );
    }
}
