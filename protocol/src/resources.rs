//! The FHIR resource types the broker can serve for one patient, and how each is kept to that
//! patient's compartment.
//!
//! A SMART patient-level token lets the app read the patient's own data, but the broker does
//! not leave that to the server alone: every search is pinned to the connection's patient by the
//! search parameter that names the patient for that type ([`ResourceType::pin`]), and every
//! resource read or found is checked to point at that patient through the element that
//! references it ([`ResourceType::patient_element`]). The table follows US Core 6.1's search
//! requirements (the parameters a US Core server must support), trimmed to the ones that
//! take tokens and dates: enough for the lists apps draw, and nothing that names another
//! resource the caller could steer.
//!
//! Blue Button serves three of these types ([`ResourceType::BLUE_BUTTON`]), with its own
//! parameters.
//!
//! ```
//! use connect_medicare_protocol::resources::{ParamKind, ResourceType};
//!
//! let observation = ResourceType::get("Observation").unwrap();
//! assert_eq!(observation.pin("123"), Some(("patient", "123".to_owned())));
//! assert_eq!(observation.patient_element(), Some("subject"));
//! assert_eq!(observation.param("category"), Some(ParamKind::Token));
//! assert!(observation.param("subject").is_none());
//! assert!(ParamKind::Date.check("ge2024-01-01", false).is_ok());
//! assert!(observation.check_sort("-date,code").is_err());
//! ```

use crate::prelude::*;

/// How a search of the type is pinned to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pin {
    /// `_id=<patient>`: the type is Patient itself.
    Id,
    /// `<name>=<patient>`.
    Param(&'static str),
    /// `<name>=Patient/<patient>`.
    Reference(&'static str),
    /// Not in the patient compartment (a Medication, a Practitioner): read by id only, never
    /// searched.
    Shared,
}

/// What a search parameter's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A FHIR token: `code`, `system|code` or `|code`, several joined by `,` (any of them).
    Token,
    /// A FHIR date or dateTime, optionally after one of the prefixes `eq ne gt lt ge le sa eb ap`.
    /// Repeatable once, for a range.
    Date,
    /// A FHIR date or dateTime after `lt`, `le`, `gt` or `ge`, as Blue Button requires it (on
    /// any other server, a [`ParamKind::Date`]). Repeatable once, for a range.
    PrefixedDate,
    /// Claim types: on Blue Button its own list ([`crate::EobType::parse_list`]); elsewhere a
    /// token.
    ClaimTypes,
}

/// The most bytes of one parameter value.
pub const MAX_VALUE_LEN: usize = 512;

impl ParamKind {
    /// Whether a value of this kind may appear twice in one search (a date range).
    pub fn repeatable(self) -> bool {
        matches!(self, Self::Date | Self::PrefixedDate)
    }

    /// Checks one value; `blue_button` selects Blue Button's claim-type list.
    ///
    /// # Errors
    ///
    /// Why the value is refused, in words for an error message.
    pub fn check(self, value: &str, blue_button: bool) -> Result<(), &'static str> {
        match self {
            Self::Token => token(value),
            Self::ClaimTypes if blue_button => crate::EobType::parse_list(value)
                .map(|_| ())
                .ok_or("must be a comma list of claim types"),
            Self::ClaimTypes => token(value),
            Self::Date => {
                let rest = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
                    .iter()
                    .find_map(|p| value.strip_prefix(p))
                    .unwrap_or(value);
                date(rest).ok_or("must be a FHIR date or dateTime, after an optional prefix")
            }
            // Blue Button insists on a prefix; any other server takes a date as FHIR does.
            Self::PrefixedDate if !blue_button => Self::Date.check(value, false),
            Self::PrefixedDate => ["lt", "le", "gt", "ge"]
                .iter()
                .find_map(|p| value.strip_prefix(p))
                .and_then(date)
                .ok_or("needs an lt, le, gt or ge prefix and a FHIR date"),
        }
    }
}

fn token(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_VALUE_LEN {
        return Err("must be 1 to 512 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII characters");
    }
    Ok(())
}

/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh:mm]`.
fn date(value: &str) -> Option<()> {
    let b = value.as_bytes();
    let digits = |range: core::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|s| s.len() == range.len() && s.iter().all(u8::is_ascii_digit))
    };
    let two = |at: usize, max: u32| {
        digits(at..at + 2) && u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0') <= max
    };
    if !digits(0..4) {
        return None;
    }
    match b.len() {
        4 => return Some(()),
        7 if b[4] == b'-' && two(5, 12) => return Some(()),
        10 if b[4] == b'-' && two(5, 12) && b[7] == b'-' && two(8, 31) => return Some(()),
        n if n > 10 => {}
        _ => return None,
    }
    let date_ok = b[4] == b'-' && two(5, 12) && b[7] == b'-' && two(8, 31) && b[10] == b'T';
    if !date_ok || !two(11, 23) || b.get(13) != Some(&b':') || !two(14, 59) {
        return None;
    }
    let mut at = 16;
    if b.get(at) == Some(&b':') {
        if !two(at + 1, 60) {
            return None;
        }
        at += 3;
        if b.get(at) == Some(&b'.') {
            let fraction = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if fraction == 0 || fraction > 9 {
                return None;
            }
            at += 1 + fraction;
        }
    }
    match b.get(at) {
        None => Some(()),
        Some(b'Z') if at + 1 == b.len() => Some(()),
        Some(b'+' | b'-')
            if at + 6 == b.len() && two(at + 1, 14) && b[at + 3] == b':' && two(at + 4, 59) =>
        {
            Some(())
        }
        _ => None,
    }
}

/// A resource type the broker knows how to keep to one patient.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    name: &'static str,
    pin: Pin,
    /// The element that references the patient; `None` for Patient and shared types.
    element: Option<&'static str>,
    params: &'static [(&'static str, ParamKind)],
    /// What `_sort` may name (each optionally after `-`).
    sorts: &'static [&'static str],
    /// What `_include` may name: only references to resources outside any compartment.
    includes: &'static [&'static str],
}

use ParamKind::{ClaimTypes, Date, PrefixedDate, Token};

const LAST_UPDATED: (&str, ParamKind) = ("_lastUpdated", PrefixedDate);

const fn compartment(
    name: &'static str,
    element: &'static str,
    params: &'static [(&'static str, ParamKind)],
    sorts: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        name,
        pin: Pin::Param("patient"),
        element: Some(element),
        params,
        sorts,
        includes: &[],
    }
}

const fn shared(name: &'static str) -> ResourceType {
    ResourceType {
        name,
        pin: Pin::Shared,
        element: None,
        params: &[],
        sorts: &[],
        includes: &[],
    }
}

/// Every type, by name.
static TYPES: &[ResourceType] = &[
    compartment(
        "AllergyIntolerance",
        "patient",
        &[("clinical-status", Token), LAST_UPDATED],
        &["_lastUpdated"],
    ),
    compartment(
        "CarePlan",
        "subject",
        &[
            ("category", Token),
            ("date", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["date", "_lastUpdated"],
    ),
    compartment(
        "CareTeam",
        "subject",
        &[("status", Token), LAST_UPDATED],
        &["_lastUpdated"],
    ),
    compartment(
        "Condition",
        "subject",
        &[
            ("category", Token),
            ("clinical-status", Token),
            ("code", Token),
            ("onset-date", Date),
            ("recorded-date", Date),
            ("abatement-date", Date),
            LAST_UPDATED,
        ],
        &["onset-date", "recorded-date", "_lastUpdated"],
    ),
    ResourceType {
        name: "Coverage",
        pin: Pin::Reference("beneficiary"),
        element: Some("beneficiary"),
        params: &[LAST_UPDATED],
        sorts: &[],
        includes: &[],
    },
    compartment(
        "Device",
        "patient",
        &[("type", Token), ("status", Token), LAST_UPDATED],
        &["_lastUpdated"],
    ),
    compartment(
        "DiagnosticReport",
        "subject",
        &[
            ("category", Token),
            ("code", Token),
            ("date", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["date", "_lastUpdated"],
    ),
    compartment(
        "DocumentReference",
        "subject",
        &[
            ("category", Token),
            ("type", Token),
            ("date", Date),
            ("period", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["date", "period", "_lastUpdated"],
    ),
    compartment(
        "Encounter",
        "subject",
        &[
            ("class", Token),
            ("date", Date),
            ("status", Token),
            ("type", Token),
            LAST_UPDATED,
        ],
        &["date", "_lastUpdated"],
    ),
    ResourceType {
        name: "ExplanationOfBenefit",
        pin: Pin::Param("patient"),
        element: Some("patient"),
        params: &[
            ("type", ClaimTypes),
            ("service-date", PrefixedDate),
            LAST_UPDATED,
        ],
        sorts: &[],
        includes: &[],
    },
    compartment(
        "Goal",
        "subject",
        &[
            ("lifecycle-status", Token),
            ("target-date", Date),
            LAST_UPDATED,
        ],
        &["target-date", "_lastUpdated"],
    ),
    compartment(
        "Immunization",
        "patient",
        &[("date", Date), ("status", Token), LAST_UPDATED],
        &["date", "_lastUpdated"],
    ),
    shared("Location"),
    shared("Medication"),
    compartment(
        "MedicationDispense",
        "subject",
        &[("status", Token), ("type", Token), LAST_UPDATED],
        &["_lastUpdated"],
    ),
    ResourceType {
        includes: &["MedicationRequest:medication"],
        ..compartment(
            "MedicationRequest",
            "subject",
            &[
                ("intent", Token),
                ("status", Token),
                ("authoredon", Date),
                LAST_UPDATED,
            ],
            &["authoredon", "_lastUpdated"],
        )
    },
    compartment(
        "Observation",
        "subject",
        &[
            ("category", Token),
            ("code", Token),
            ("date", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["date", "_lastUpdated"],
    ),
    shared("Organization"),
    ResourceType {
        name: "Patient",
        pin: Pin::Id,
        element: None,
        params: &[LAST_UPDATED],
        sorts: &[],
        includes: &[],
    },
    shared("Practitioner"),
    compartment(
        "Procedure",
        "subject",
        &[
            ("code", Token),
            ("date", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["date", "_lastUpdated"],
    ),
    compartment(
        "QuestionnaireResponse",
        "subject",
        &[("status", Token), ("authored", Date), LAST_UPDATED],
        &["authored", "_lastUpdated"],
    ),
    compartment(
        "ServiceRequest",
        "subject",
        &[
            ("category", Token),
            ("code", Token),
            ("authored", Date),
            ("status", Token),
            LAST_UPDATED,
        ],
        &["authored", "_lastUpdated"],
    ),
    compartment(
        "Specimen",
        "subject",
        &[("type", Token), LAST_UPDATED],
        &["_lastUpdated"],
    ),
];

impl ResourceType {
    /// The types Blue Button 2.0 serves.
    pub const BLUE_BUTTON: [&'static str; 3] = ["Patient", "Coverage", "ExplanationOfBenefit"];

    /// The type named `name` (exactly, as FHIR spells it), if the broker knows it.
    pub fn get(name: &str) -> Option<&'static ResourceType> {
        TYPES
            .binary_search_by(|t| t.name.cmp(name))
            .ok()
            .map(|i| &TYPES[i])
    }

    /// Every type the broker knows, by name.
    pub fn all() -> &'static [ResourceType] {
        TYPES
    }

    /// The type's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the type may be searched: every type in the patient compartment. A shared type
    /// (Medication, Practitioner, Organization, Location) is only read by id.
    pub fn searchable(&self) -> bool {
        self.pin != Pin::Shared
    }

    /// The parameter and value that pin a search to `patient`; `None` for a shared type.
    pub fn pin(&self, patient: &str) -> Option<(&'static str, String)> {
        match self.pin {
            Pin::Id => Some(("_id", patient.to_owned())),
            Pin::Param(name) => Some((name, patient.to_owned())),
            Pin::Reference(name) => Some((name, format!("Patient/{patient}"))),
            Pin::Shared => None,
        }
    }

    /// The parameter and value that pin a search to `patient` on a server of `kind`: as
    /// [`Self::pin`], but a Coverage search on a server other than Blue Button names the patient
    /// by `patient`, the parameter US Core requires servers to support (Blue Button's is
    /// `beneficiary`).
    pub fn pin_on(
        &self,
        kind: crate::ProviderKind,
        patient: &str,
    ) -> Option<(&'static str, String)> {
        match self.pin {
            Pin::Reference(_) if kind != crate::ProviderKind::BlueButton => {
                Some(("patient", patient.to_owned()))
            }
            _ => self.pin(patient),
        }
    }

    /// The element that references the patient (`subject`, `patient`, `beneficiary`); `None`
    /// for Patient (its `id` is the patient) and for shared types.
    pub fn patient_element(&self) -> Option<&'static str> {
        self.element
    }

    /// Whether a resource of this type is the patient's own (a Patient) or about them.
    pub fn is_patient(&self) -> bool {
        self.pin == Pin::Id
    }

    /// The kind of the search parameter `name`, if the type allows it. Paging (`_count`,
    /// `startIndex`), `_sort` and `_include` are the caller's to check.
    pub fn param(&self, name: &str) -> Option<ParamKind> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
    }

    /// The names [`Self::param`] allows, for an error message.
    pub fn param_names(&self) -> impl Iterator<Item = &'static str> {
        self.params.iter().map(|(n, _)| *n)
    }

    /// Whether the type can be sorted at all.
    pub fn sortable(&self) -> bool {
        !self.sorts.is_empty()
    }

    /// Checks a `_sort` value: a comma list of this type's sort keys, each optionally after `-`.
    ///
    /// # Errors
    ///
    /// Why it is refused, in words for an error message.
    pub fn check_sort(&self, value: &str) -> Result<(), &'static str> {
        if value.is_empty() || value.split(',').count() > self.sorts.len() {
            return Err("must name this type's sort keys, each once");
        }
        let ok = value.split(',').all(|key| {
            let key = key.strip_prefix('-').unwrap_or(key);
            self.sorts.contains(&key)
        });
        if ok {
            Ok(())
        } else {
            Err("may only name this type's sort keys, each optionally after -")
        }
    }

    /// What `_sort` may name (each optionally after `-`).
    pub fn sort_keys(&self) -> &'static [&'static str] {
        self.sorts
    }

    /// What `_include` may name for this type (`MedicationRequest:medication`).
    pub fn includes(&self) -> &'static [&'static str] {
        self.includes
    }

    /// Whether `reference` (a FHIR `Reference.reference`) points at `patient`: `Patient/<id>`
    /// (or one of its versions, `…/_history/<v>`), or the same under `fhir_base` (an absolute
    /// reference to the server's own Patient).
    pub fn references_patient(reference: &str, patient: &str, fhir_base: &str) -> bool {
        let relative = reference
            .strip_prefix(fhir_base.trim_end_matches('/'))
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(reference);
        let Some(rest) = relative.strip_prefix("Patient/") else {
            return false;
        };
        // `Patient/<id>`, or one version of it: `Patient/<id>/_history/<version>`.
        let id = match rest.split_once("/_history/") {
            Some((id, version)) if !version.is_empty() && !version.contains('/') => id,
            Some(_) => return false,
            None => rest,
        };
        id == patient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_table_is_sorted_and_every_compartment_type_pins_and_references_the_patient() {
        assert!(TYPES.windows(2).all(|w| w[0].name < w[1].name));
        for t in ResourceType::all() {
            assert_eq!(ResourceType::get(t.name), Some(t));
            match t.pin {
                Pin::Shared => {
                    assert!(!t.searchable() && t.element.is_none() && t.params.is_empty());
                }
                Pin::Id => assert_eq!(t.name, "Patient"),
                Pin::Param(_) | Pin::Reference(_) => {
                    assert!(t.searchable() && t.element.is_some(), "{}", t.name);
                }
            }
            for key in t.sorts {
                let kind = t.param(key);
                assert!(
                    matches!(kind, Some(ParamKind::Date | ParamKind::PrefixedDate)),
                    "{}: sorts by {key}",
                    t.name
                );
            }
        }
        for name in ResourceType::BLUE_BUTTON {
            assert!(ResourceType::get(name).is_some());
        }
        assert!(ResourceType::get("observation").is_none());
        assert!(ResourceType::get("Binary").is_none());
    }

    #[test]
    fn pins_name_the_patient_as_each_type_is_searched() {
        let pin = |name: &str| ResourceType::get(name).unwrap().pin("p1");
        assert_eq!(pin("Patient"), Some(("_id", "p1".to_owned())));
        assert_eq!(
            pin("Coverage"),
            Some(("beneficiary", "Patient/p1".to_owned()))
        );
        assert_eq!(
            pin("ExplanationOfBenefit"),
            Some(("patient", "p1".to_owned()))
        );
        assert_eq!(pin("Condition"), Some(("patient", "p1".to_owned())));
        assert_eq!(pin("Medication"), None);
        let coverage = ResourceType::get("Coverage").unwrap();
        assert_eq!(
            coverage.pin_on(crate::ProviderKind::Smart, "p1"),
            Some(("patient", "p1".to_owned()))
        );
        assert_eq!(
            coverage.pin_on(crate::ProviderKind::BlueButton, "p1"),
            Some(("beneficiary", "Patient/p1".to_owned()))
        );
    }

    #[test]
    fn dates_follow_fhir_and_their_prefixes() {
        for ok in [
            "2024",
            "2024-02",
            "2024-02-29",
            "2024-02-29T10:00",
            "2024-02-29T10:00:59",
            "2024-02-29T10:00:59.123Z",
            "2024-02-29T10:00:59+05:30",
            "ge2024-01-01",
            "ap2024",
            "sa2024-01-01T00:00:00Z",
        ] {
            assert!(ParamKind::Date.check(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "24",
            "2024-1",
            "2024-13",
            "2024-01-32",
            "2024-01-01T",
            "2024-01-01T25:00",
            "2024-01-01T10:00:00.",
            "2024-01-01T10:00Zjunk",
            "2024-01-01 10:00",
            "xx2024",
            "ge",
            "2024-01-01T10:00:00+5:30",
        ] {
            assert!(ParamKind::Date.check(bad, false).is_err(), "{bad}");
        }
        assert!(ParamKind::PrefixedDate.check("2024-01-01", true).is_err());
        assert!(ParamKind::PrefixedDate.check("eq2024-01-01", true).is_err());
        assert!(ParamKind::PrefixedDate.check("le2024-01-01", true).is_ok());
        // On any other server, as a FHIR date.
        assert!(ParamKind::PrefixedDate.check("2024-01-01", false).is_ok());
        assert!(ParamKind::PrefixedDate.check("eq2024-01-01", false).is_ok());
        assert!(
            ParamKind::PrefixedDate
                .check("xx2024-01-01", false)
                .is_err()
        );
    }

    #[test]
    fn tokens_are_bounded_visible_ascii() {
        assert!(
            ParamKind::Token
                .check("http://loinc.org|8867-4,8480-6", false)
                .is_ok()
        );
        for bad in ["", "a b", "a\r\nb", "é", &"x".repeat(513)] {
            assert!(ParamKind::Token.check(bad, false).is_err(), "{bad:?}");
        }
        assert!(ParamKind::ClaimTypes.check("carrier,pde", true).is_ok());
        assert!(ParamKind::ClaimTypes.check("claims", true).is_err());
        assert!(ParamKind::ClaimTypes.check("claims", false).is_ok());
    }

    #[test]
    fn sorts_name_only_the_types_own_keys() {
        let observation = ResourceType::get("Observation").unwrap();
        assert!(observation.check_sort("-date").is_ok());
        assert!(observation.check_sort("date,-_lastUpdated").is_ok());
        for bad in ["", "code", "--date", "date,date,date", "patient", "-"] {
            assert!(observation.check_sort(bad).is_err(), "{bad}");
        }
        assert!(
            !ResourceType::get("ExplanationOfBenefit")
                .unwrap()
                .sortable()
        );
    }

    #[test]
    fn references_point_at_the_patient_relatively_or_under_the_base() {
        let base = "https://ehr.example/fhir/";
        let is = |r: &str| ResourceType::references_patient(r, "p1", base);
        assert!(is("Patient/p1"));
        assert!(is("https://ehr.example/fhir/Patient/p1"));
        assert!(!is("Patient/p10"));
        assert!(is("Patient/p1/_history/2"));
        assert!(!is("Patient/p1/_history/"));
        assert!(!is("Patient/p1/x"));
        assert!(!is("https://evil.example/fhir/Patient/p1"));
        assert!(!is("Group/p1"));
        assert!(!is("p1"));
    }
}
