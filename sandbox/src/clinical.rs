//! US Core clinical data on the SMART face: Observation, Condition, AllergyIntolerance,
//! Immunization and MedicationRequest for every user, searched as a HAPI FHIR server searches
//! them.
//!
//! - Every search must name the caller's own patient (`patient=<id>` or `Patient/<id>`), as
//!   EHRs require of patient-level tokens: without it a 400, with another patient a 403.
//! - Each type honours the search parameters US Core requires of it (token parameters match
//!   `code`, `system|code` or `|code`, several joined by `,`; date parameters take the FHIR
//!   prefixes), `_sort` on its dates (`-` for descending) and `_count`;
//!   `_include=MedicationRequest:medication` adds the Medications a page's requests name. Any
//!   other parameter is refused with HAPI's 400, "Unknown search parameter".
//! - Pages are HAPI's opaque `_getpages` links (`fhir/search.rs`).
//! - Reads find only the caller's own resources — unless the `leak_patients` fault is on: then
//!   the face answers as a server that ignores the patient (HAPI in lenient mode, a token that
//!   sees every patient) would, with the next user's resources mixed into every search and any
//!   user's resource read by id. The broker must not relay them.
//!
//! The data is generated from the user's index, so it is the same on every run.

use serde_json::{Value, json};

use crate::{
    clock::{days_from_civil, format_date, format_instant_millis},
    search::parse_fhir_time,
    users::{User, mix},
};

/// The clinical types the SMART face serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    AllergyIntolerance,
    Condition,
    Immunization,
    MedicationRequest,
    Observation,
}

/// A search parameter of a type: a token or a date, read from a record.
#[derive(Clone, Copy)]
enum Param {
    Token,
    Date,
}

impl Kind {
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "AllergyIntolerance" => Self::AllergyIntolerance,
            "Condition" => Self::Condition,
            "Immunization" => Self::Immunization,
            "MedicationRequest" => Self::MedicationRequest,
            "Observation" => Self::Observation,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AllergyIntolerance => "AllergyIntolerance",
            Self::Condition => "Condition",
            Self::Immunization => "Immunization",
            Self::MedicationRequest => "MedicationRequest",
            Self::Observation => "Observation",
        }
    }

    fn params(self) -> &'static [(&'static str, Param)] {
        match self {
            Self::AllergyIntolerance => &[("clinical-status", Param::Token)],
            Self::Condition => &[
                ("category", Param::Token),
                ("clinical-status", Param::Token),
                ("code", Param::Token),
                ("onset-date", Param::Date),
                ("recorded-date", Param::Date),
                ("abatement-date", Param::Date),
            ],
            Self::Immunization => &[("date", Param::Date), ("status", Param::Token)],
            Self::MedicationRequest => &[
                ("intent", Param::Token),
                ("status", Param::Token),
                ("authoredon", Param::Date),
            ],
            Self::Observation => &[
                ("category", Param::Token),
                ("code", Param::Token),
                ("date", Param::Date),
                ("status", Param::Token),
            ],
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::AllergyIntolerance => "alg",
            Self::Condition => "cnd",
            Self::Immunization => "imm",
            Self::MedicationRequest => "mrq",
            Self::Observation => "obs",
        }
    }
}

/// One generated resource, with what its searches compare.
pub(crate) struct Record {
    /// `(parameter, system, code)`.
    tokens: Vec<(&'static str, &'static str, String)>,
    /// `(parameter, unix milliseconds)`.
    dates: Vec<(&'static str, i64)>,
    pub(crate) body: Value,
}

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// The observations every user has: LOINC code, name, category, unit, lowest value, spread.
const OBSERVATIONS: [(&str, &str, &str, &str, f64, u64); 4] = [
    ("29463-7", "Body weight", "vital-signs", "kg", 55.0, 40),
    ("8867-4", "Heart rate", "vital-signs", "/min", 58.0, 30),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "laboratory",
        "%",
        5.0,
        3,
    ),
    (
        "2339-0",
        "Glucose [Mass/volume] in Blood",
        "laboratory",
        "mg/dL",
        80.0,
        80,
    ),
];
/// How many of each observation a user has, 45 days apart.
const OBSERVATION_DATES: i64 = 8;

/// SNOMED code, name, category, clinical status.
const CONDITIONS: [(&str, &str, &str, &str); 5] = [
    (
        "38341003",
        "Hypertensive disorder",
        "problem-list-item",
        "active",
    ),
    (
        "44054006",
        "Diabetes mellitus type 2",
        "problem-list-item",
        "active",
    ),
    ("55822004", "Hyperlipidemia", "problem-list-item", "active"),
    (
        "10509002",
        "Acute bronchitis",
        "encounter-diagnosis",
        "resolved",
    ),
    (
        "44465007",
        "Sprain of ankle",
        "encounter-diagnosis",
        "resolved",
    ),
];

/// SNOMED code, name, clinical status.
const ALLERGIES: [(&str, &str, &str); 2] = [
    ("91936005", "Allergy to penicillin", "active"),
    ("91935009", "Allergy to peanut", "resolved"),
];

/// CVX code, name, years before the reference day.
const IMMUNIZATIONS: [(&str, &str, i64); 4] = [
    ("141", "Influenza, seasonal, injectable", 0),
    ("141", "Influenza, seasonal, injectable", 1),
    ("141", "Influenza, seasonal, injectable", 2),
    ("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose", 3),
];

/// RxNorm code, name, status.
const MEDICATIONS: [(&str, &str, &str); 3] = [
    (
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "active",
    ),
    ("314076", "Lisinopril 10 MG Oral Tablet", "active"),
    ("308182", "Amoxicillin 250 MG Oral Capsule", "completed"),
];

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn day_millis(day: i64) -> i64 {
    day * 86_400_000
}

/// Every resource of `kind` that `user` has, in id order.
pub(crate) fn records(user: &User, kind: Kind) -> Vec<Record> {
    let u = user.index;
    // The user's reference day: spread over the first half of 2024.
    let today =
        days_from_civil(2024, 6, 30) - i64::try_from(mix(&[u as u64, 7]) % 180).unwrap_or(0);
    let subject = json!({"reference": format!("Patient/{}", user.patient_id)});
    let id = |n: usize| format!("{}-{u}-{n}", kind.prefix());
    let meta = |profile: &str, day: i64| {
        json!({"profile": [format!("http://hl7.org/fhir/us/core/StructureDefinition/{profile}")],
               "lastUpdated": format_instant_millis(day_millis(day) + 3_600_000)})
    };
    let mut out = Vec::new();
    match kind {
        Kind::Observation => {
            for (c, (code, name, category, unit, low, spread)) in OBSERVATIONS.iter().enumerate() {
                for k in 0..OBSERVATION_DATES {
                    let n = c * OBSERVATION_DATES as usize + k as usize;
                    let day = today - 45 * k;
                    let roll = mix(&[u as u64, n as u64, 11]) % (spread * 10);
                    let value = low + (roll as f64) / 10.0;
                    let status = if k == OBSERVATION_DATES - 1 {
                        "amended"
                    } else {
                        "final"
                    };
                    let profile = if *category == "laboratory" {
                        "us-core-observation-lab"
                    } else {
                        "us-core-vital-signs"
                    };
                    out.push(Record {
                        tokens: vec![
                            ("category", OBSERVATION_CATEGORY, (*category).to_owned()),
                            ("code", LOINC, (*code).to_owned()),
                            ("status", "", status.to_owned()),
                        ],
                        dates: vec![("date", day_millis(day) + 9 * 3_600_000)],
                        body: json!({
                            "resourceType": "Observation",
                            "id": id(n),
                            "meta": meta(profile, day),
                            "status": status,
                            "category": [coding(OBSERVATION_CATEGORY, category, category)],
                            "code": coding(LOINC, code, name),
                            "subject": subject,
                            "effectiveDateTime": format!("{}T09:00:00Z", format_date(day)),
                            "valueQuantity": {"value": value, "unit": unit,
                                              "system": "http://unitsofmeasure.org", "code": unit},
                        }),
                    });
                }
            }
        }
        Kind::Condition => {
            for (n, (code, name, category, status)) in CONDITIONS.iter().enumerate() {
                let onset = today - 400 * (n as i64 + 1);
                let recorded = onset + 3;
                // A resolved condition ended a month after it began.
                let abated = (*status == "resolved").then_some(onset + 30);
                let mut dates = vec![
                    ("onset-date", day_millis(onset)),
                    ("recorded-date", day_millis(recorded)),
                ];
                dates.extend(abated.map(|day| ("abatement-date", day_millis(day))));
                let mut body = json!({
                        "resourceType": "Condition",
                        "id": id(n),
                        "meta": meta("us-core-condition-problems-health-concerns", recorded),
                        "clinicalStatus": coding(CONDITION_CLINICAL, status, status),
                        "verificationStatus": coding(
                            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "confirmed", "Confirmed"),
                        "category": [coding(CONDITION_CATEGORY, category, category)],
                        "code": coding(SNOMED, code, name),
                        "subject": subject,
                        "onsetDateTime": format_date(onset),
                        "recordedDate": format_date(recorded),
                });
                if let Some(day) = abated {
                    body["abatementDateTime"] = json!(format_date(day));
                }
                out.push(Record {
                    tokens: vec![
                        ("category", CONDITION_CATEGORY, (*category).to_owned()),
                        ("clinical-status", CONDITION_CLINICAL, (*status).to_owned()),
                        ("code", SNOMED, (*code).to_owned()),
                    ],
                    dates,
                    body,
                });
            }
        }
        Kind::AllergyIntolerance => {
            for (n, (code, name, status)) in ALLERGIES.iter().enumerate() {
                let day = today - 2000 - 300 * n as i64;
                out.push(Record {
                    tokens: vec![("clinical-status", ALLERGY_CLINICAL, (*status).to_owned())],
                    dates: Vec::new(),
                    body: json!({
                        "resourceType": "AllergyIntolerance",
                        "id": id(n),
                        "meta": meta("us-core-allergyintolerance", day),
                        "clinicalStatus": coding(ALLERGY_CLINICAL, status, status),
                        "code": coding(SNOMED, code, name),
                        "patient": subject,
                        "recordedDate": format_date(day),
                    }),
                });
            }
        }
        Kind::Immunization => {
            for (n, (code, name, years)) in IMMUNIZATIONS.iter().enumerate() {
                let day = today - 20 - 365 * years;
                out.push(Record {
                    tokens: vec![("status", "", "completed".to_owned())],
                    dates: vec![("date", day_millis(day))],
                    body: json!({
                        "resourceType": "Immunization",
                        "id": id(n),
                        "meta": meta("us-core-immunization", day),
                        "status": "completed",
                        "vaccineCode": coding(CVX, code, name),
                        "patient": subject,
                        "occurrenceDateTime": format_date(day),
                        "primarySource": true,
                    }),
                });
            }
        }
        Kind::MedicationRequest => {
            for (n, (code, name, status)) in MEDICATIONS.iter().enumerate() {
                let day = today - 90 - 200 * n as i64;
                out.push(Record {
                    tokens: vec![
                        ("status", "", (*status).to_owned()),
                        ("intent", "", "order".to_owned()),
                    ],
                    dates: vec![("authoredon", day_millis(day))],
                    body: json!({
                        "resourceType": "MedicationRequest",
                        "id": id(n),
                        "meta": meta("us-core-medicationrequest", day),
                        "status": status,
                        "intent": "order",
                        "medicationReference": {"reference": format!("Medication/{}", medication_id(code)), "display": name},
                        "subject": subject,
                        "authoredOn": format_date(day),
                        "requester": {"display": "Example Clinic"},
                    }),
                });
            }
        }
    }
    out
}

/// The Medication a MedicationRequest names: `med-<RxNorm code>`.
fn medication_id(code: &str) -> String {
    format!("med-{code}")
}

/// A Medication by id (shared by every user, outside any compartment).
pub(crate) fn medication(id: &str) -> Option<Value> {
    MEDICATIONS.iter().find(|(code, ..)| medication_id(code) == id).map(|(code, name, _)| {
        json!({
            "resourceType": "Medication",
            "id": medication_id(code),
            "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication"]},
            "code": coding(RXNORM, code, name),
        })
    })
}

/// The Medications `requests` name (for `_include=MedicationRequest:medication`), each once.
pub(crate) fn included_medications(requests: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for request in requests {
        let id = request["medicationReference"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Medication/"));
        if let Some(found) = id.and_then(medication)
            && !out.iter().any(|m| m["id"] == found["id"])
        {
            out.push(found);
        }
    }
    out
}

/// The user index a resource id names (`obs-3-12` → 3).
pub(crate) fn owner_of(kind: Kind, id: &str) -> Option<usize> {
    let rest = id.strip_prefix(kind.prefix())?.strip_prefix('-')?;
    let (user, n) = rest.split_once('-')?;
    n.parse::<usize>().ok()?;
    user.parse().ok()
}

/// Why a search was refused: HAPI's 400 diagnostics.
pub(crate) type Refusal = String;

/// The records of `kind` among `candidates` that match the search `pairs`, sorted as `_sort`
/// asks. Paging parameters are the caller's.
pub(crate) fn search(
    kind: Kind,
    candidates: Vec<Record>,
    pairs: &[(String, String)],
) -> Result<Vec<Record>, Refusal> {
    let mut out = candidates;
    let mut sort: Option<String> = None;
    for (name, value) in pairs {
        match name.as_str() {
            // `patient` is checked by the caller, `_include` applied after paging.
            "_count" | "startIndex" | "patient" | "_include" | "_lastUpdated" => {}
            "_sort" => sort = Some(value.clone()),
            _ => {
                let Some((_, param)) = kind.params().iter().find(|(n, _)| n == name) else {
                    return Err(format!(
                        "Unknown search parameter \"{name}\" for resource type \"{}\"",
                        kind.name()
                    ));
                };
                let keep: Box<dyn Fn(&Record) -> bool> = match param {
                    Param::Token => {
                        let wanted: Vec<(Option<&str>, &str)> = value
                            .split(',')
                            .map(|item| match item.split_once('|') {
                                Some((system, code)) => (Some(system), code),
                                None => (None, item),
                            })
                            .collect();
                        Box::new(move |r: &Record| {
                            r.tokens.iter().any(|(p, system, code)| {
                                p == name
                                    && wanted.iter().any(|(s, c)| {
                                        c == code && s.is_none_or(|s| s.is_empty() || s == *system)
                                    })
                            })
                        })
                    }
                    Param::Date => {
                        let test = date_test(value)
                            .ok_or_else(|| format!("Invalid date/time format: \"{value}\""))?;
                        Box::new(move |r: &Record| {
                            r.dates.iter().any(|(p, at)| p == name && test(*at))
                        })
                    }
                };
                out.retain(|r| keep(r));
            }
        }
    }
    if let Some(sort) = sort {
        let keys: Vec<(bool, String)> = sort
            .split(',')
            .map(|k| match k.strip_prefix('-') {
                Some(k) => (true, k.to_owned()),
                None => (false, k.to_owned()),
            })
            .collect();
        for (descending, key) in keys.iter().rev() {
            let known = kind
                .params()
                .iter()
                .any(|(n, p)| n == key && matches!(p, Param::Date));
            if !known {
                return Err(format!("Unknown _sort parameter value \"{key}\""));
            }
            let at = |r: &Record| r.dates.iter().find(|(p, _)| p == key).map(|(_, at)| *at);
            out.sort_by(|a, b| {
                let order = at(a).cmp(&at(b));
                if *descending { order.reverse() } else { order }
            });
        }
    }
    Ok(out)
}

/// A test of a date parameter's value (`[prefix]date`) against an instant.
fn date_test(value: &str) -> Option<impl Fn(i64) -> bool> {
    let (prefix, rest) = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
        .iter()
        .find_map(|p| value.strip_prefix(p).map(|rest| (*p, rest)))
        .unwrap_or(("eq", value));
    let (low, high) = parse_fhir_time(rest)?;
    Some(move |at: i64| match prefix {
        "ne" => at < low || at >= high,
        "gt" | "sa" => at >= high,
        "lt" | "eb" => at < low,
        "ge" => at >= low,
        "le" => at < high,
        // eq, ap
        _ => at >= low && at < high,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn ids(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| r.body["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn searches_honour_tokens_dates_and_sorting() {
        let data = Dataset::new();
        let user = &data.users()[3];
        let all = || records(user, Kind::Observation);
        assert_eq!(all().len(), 32);
        let labs = search(Kind::Observation, all(), &pairs("category=laboratory")).unwrap();
        assert_eq!(labs.len(), 16);
        let a1c = search(
            Kind::Observation,
            all(),
            &pairs("code=http://loinc.org|4548-4,8867-4"),
        )
        .unwrap();
        assert_eq!(a1c.len(), 16);
        assert!(
            search(
                Kind::Observation,
                all(),
                &pairs("code=http://snomed.info/sct|4548-4")
            )
            .unwrap()
            .is_empty()
        );
        let newest = search(Kind::Observation, all(), &pairs("_sort=-date")).unwrap();
        let first = newest[0].dates[0].1;
        assert!(newest.iter().all(|r| r.dates[0].1 <= first));
        let recent = search(
            Kind::Observation,
            all(),
            &pairs(&format!("date=ge{}", format_date(first / 86_400_000 - 45))),
        )
        .unwrap();
        assert_eq!(
            recent.len(),
            8,
            "the two newest of each code: {:?}",
            ids(&recent)
        );
        let active = search(
            Kind::Condition,
            records(user, Kind::Condition),
            &pairs("clinical-status=active"),
        )
        .unwrap();
        assert_eq!(active.len(), 3);
        let ended = search(
            Kind::Condition,
            records(user, Kind::Condition),
            &pairs("abatement-date=ge1900"),
        )
        .unwrap();
        assert_eq!(ended.len(), 2, "the resolved ones");
        for bad in [
            "subject=Patient/x",
            "code:text=x",
            "date=yesterday",
            "_sort=code",
        ] {
            assert!(
                search(Kind::Observation, all(), &pairs(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_resource_names_its_user_and_its_id_the_owner() {
        let data = Dataset::new();
        let user = &data.users()[5];
        for kind in [
            Kind::AllergyIntolerance,
            Kind::Condition,
            Kind::Immunization,
            Kind::MedicationRequest,
            Kind::Observation,
        ] {
            for r in records(user, kind) {
                assert_eq!(owner_of(kind, r.body["id"].as_str().unwrap()), Some(5));
                let element = if r.body.get("patient").is_some() {
                    "patient"
                } else {
                    "subject"
                };
                assert_eq!(
                    r.body[element]["reference"],
                    format!("Patient/{}", user.patient_id)
                );
            }
        }
    }
}
