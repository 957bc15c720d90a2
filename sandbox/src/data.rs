//! Deterministic synthetic data for the sandbox's 30 users, built from Blue Button v2
//! responses (`fixtures/bb2-samples/`, from the CMS server's public test fixtures), so every
//! resource keeps the samples' shape: C4BB profiles, BB2 identifiers, extensions and code
//! systems.
//!
//! Each user has a Patient, four Coverage resources (Parts A, B, C, D) and claims of all
//! eight types (carrier, dme, hha, hospice, inpatient, outpatient, pde, snf); three users
//! have hundreds of claims. Claims are generated on demand from a light index
//! ([`ClaimMeta`]), so a user with hundreds of claims costs nothing until a page of them is
//! asked for, and kept once built, so a page asked for again costs a copy. The users and that index are in `users.rs`; how a claim is built is in
//! `claims/`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use serde_json::{Value, json};

use crate::{
    claims::{self, Templates},
    clock::{add_months, format_date, format_datetime, format_instant_millis, parse_date},
    samples::{TEMPLATE_PATIENT, replace_strings, template},
    users::{ClaimMeta, USER_COUNT, User, make_user},
};

/// The one beneficiary who has died (the samples' Patient carries `deceasedDateTime`).
const DECEASED_USER: usize = 13;

/// The parsed templates and the 30 users.
#[derive(Debug)]
pub struct Dataset {
    users: Vec<User>,
    patient: Value,
    coverages: Vec<Value>,
    templates: Templates,
    capability: Value,
    /// Claims built once and kept, by user and claim: building a claim from its sample is most
    /// of what a page of claims costs the emulator, and a claim never changes but for
    /// `created`, written per answer. Bounded by the data set (every claim of every user).
    built: Mutex<HashMap<(usize, usize), Arc<Value>>>,
}

impl Dataset {
    /// Builds the users and parses the templates.
    pub fn new() -> Self {
        let coverage_bundle = template(include_str!(
            "../../fixtures/bb2-samples/coverage_search_v2.json"
        ));
        let coverages = coverage_bundle["entry"]
            .as_array()
            .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        let users = (0..USER_COUNT).map(make_user).collect();
        Self {
            users,
            patient: template(include_str!(
                "../../fixtures/bb2-samples/patient_read_v2.json"
            )),
            coverages,
            templates: Templates::new(),
            capability: template(include_str!("../../fixtures/bb2-samples/fhir_meta_v2.json")),
            built: Mutex::default(),
        }
    }

    /// Every user.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// The user with this username (case-sensitive, as the mock login is).
    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// The user with this patient id.
    pub fn user_by_patient(&self, patient_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.patient_id == patient_id)
    }

    /// The CapabilityStatement template.
    pub fn capability(&self) -> &Value {
        &self.capability
    }

    /// The user's Patient resource: BB2's `bene_id` identifiers plus the MBI, the CCW
    /// extensions (race, dual eligibility, reference year), name, sex, birth date and address.
    pub fn patient(&self, user: &User) -> Value {
        let mut patient = self.patient.clone();
        replace_strings(&mut patient, TEMPLATE_PATIENT, &user.patient_id);
        patient["meta"]["lastUpdated"] =
            Value::String(format_instant_millis(user.last_updated_millis()));
        const RACES: [(&str, &str); 6] = [
            ("1", "White"),
            ("2", "Black"),
            ("4", "Asian"),
            ("5", "Hispanic"),
            ("3", "Other"),
            ("6", "North American Native"),
        ];
        let (race, race_display) = RACES[user.index % RACES.len()];
        if let Some(extensions) = patient.get_mut("extension").and_then(Value::as_array_mut) {
            for ext in extensions {
                if ext["url"] == "https://bluebutton.cms.gov/resources/variables/race" {
                    ext["valueCoding"]["code"] = race.into();
                    ext["valueCoding"]["display"] = race_display.into();
                }
            }
        }
        if let Some(identifiers) = patient.get_mut("identifier").and_then(Value::as_array_mut) {
            identifiers.push(json!({
                "type": {"coding": [{
                    "extension": [{
                        "url": "https://bluebutton.cms.gov/resources/codesystem/identifier-currency",
                        "valueCoding": {
                            "system": "https://bluebutton.cms.gov/resources/codesystem/identifier-currency",
                            "code": "current",
                            "display": "Current"
                        }
                    }],
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "MC",
                    "display": "Patient's Medicare number"
                }]},
                "system": "http://hl7.org/fhir/sid/us-mbi",
                "value": user.mbi,
            }));
        }
        patient["name"] = json!([
            {"use": "usual", "family": user.family, "given": [user.given, "X"]}
        ]);
        patient["gender"] = Value::String(
            if user.index.is_multiple_of(2) {
                "female"
            } else {
                "male"
            }
            .to_owned(),
        );
        patient["birthDate"] = Value::String(format_date(user.birth_day()));
        let object = patient.as_object_mut();
        if let Some(object) = object {
            if user.index == DECEASED_USER {
                let last = user.claims().iter().map(|c| c.end_day).max().unwrap_or(0);
                object.insert(
                    "deceasedDateTime".to_owned(),
                    Value::String(format_date(last + 45)),
                );
            } else {
                // Living beneficiaries have no death date.
                object.remove("deceasedDateTime");
            }
        }
        const ADDRESSES: [(&str, &str); 6] = [
            ("05", "90210"),
            ("10", "33101"),
            ("33", "10001"),
            ("45", "73301"),
            ("14", "60601"),
            ("23", "48201"),
        ];
        let (state, zip) = ADDRESSES[user.index % ADDRESSES.len()];
        patient["address"] = json!([{"state": state, "postalCode": zip}]);
        patient
    }

    /// The user's Coverage resources: Parts A, B, C and D.
    pub fn coverages(&self, user: &User) -> Vec<Value> {
        // Medicare starts on the first of the month of the 65th birthday.
        let sixty_five = add_months(user.birth_day() * 86_400, 65 * 12).div_euclid(86_400);
        let start = format_date(first_of_month(sixty_five));
        self.coverages
            .iter()
            .map(|c| {
                let mut c = c.clone();
                replace_strings(&mut c, TEMPLATE_PATIENT, &user.patient_id);
                c["meta"]["lastUpdated"] =
                    Value::String(format_instant_millis(user.last_updated_millis()));
                if let Some(period) = c.get_mut("period") {
                    period["start"] = Value::String(start.clone());
                }
                c
            })
            .collect()
    }

    /// One of the user's ExplanationOfBenefit resources, with `created` at the claim's last
    /// update. The server writes the time of the request instead, as the backend does.
    pub fn eob(&self, user: &User, claim: &ClaimMeta) -> Value {
        self.eob_at(user, claim, claim.last_updated_millis.div_euclid(1000))
    }

    /// One of the user's ExplanationOfBenefit resources, `created` at `now` (unix seconds):
    /// built the first time it is asked for, then copied from the kept one.
    pub fn eob_at(&self, user: &User, claim: &ClaimMeta, now: i64) -> Value {
        let key = (user.index, claim.index);
        let kept = self.built_claims().get(&key).cloned();
        let built = kept.unwrap_or_else(|| {
            let built = Arc::new(claims::build(&self.templates, user, claim, now));
            self.built_claims().insert(key, built.clone());
            built
        });
        let mut eob = Value::clone(&built);
        eob["created"] = Value::String(format_datetime(now));
        eob
    }

    fn built_claims(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, usize), Arc<Value>>> {
        self.built.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Dataset {
    fn default() -> Self {
        Self::new()
    }
}

fn first_of_month(day: i64) -> i64 {
    let date = format_date(day);
    parse_date(&format!("{}-01", &date[..7])).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use connect_medicare_protocol::EobType;

    use super::*;

    #[test]
    fn a_kept_claim_is_the_claim_built_afresh_with_this_answers_created() {
        let data = Dataset::new();
        let user = &data.users()[2];
        for claim in user.claims().iter().take(20) {
            let first = data.eob_at(user, claim, 1_700_000_000);
            let later = data.eob_at(user, claim, 1_800_000_000);
            assert_eq!(
                first,
                claims::build(&data.templates, user, claim, 1_700_000_000)
            );
            assert_eq!(
                later,
                claims::build(&data.templates, user, claim, 1_800_000_000)
            );
            assert_ne!(first["created"], later["created"]);
        }
        assert_eq!(data.built_claims().len(), 20.min(user.claims().len()));
    }

    #[test]
    fn thirty_users_with_credentials_and_ids() {
        let data = Dataset::new();
        assert_eq!(data.users().len(), 30);
        let first = &data.users()[0];
        assert_eq!(
            (first.username.as_str(), first.password.as_str()),
            ("BBUser00000", "PW00000!")
        );
        assert_eq!(first.patient_id, "-20140000008325");
        let last = data.user_by_name("BBUser00029").unwrap();
        assert_eq!(last.password, "PW00029!");
        assert_eq!(last.patient_id, "-20140000008354");
        assert!(data.users().iter().any(|u| u.claims().len() >= 250));
        let mbis: std::collections::HashSet<_> = data.users().iter().map(|u| &u.mbi).collect();
        assert_eq!(mbis.len(), 30);
        assert!(data.users().iter().all(|u| u.mbi.len() == 11));
    }

    #[test]
    fn every_user_has_every_claim_type_in_claim_id_order() {
        let data = Dataset::new();
        for user in data.users() {
            for kind in EobType::ALL {
                assert!(user.claims().iter().any(|c| c.kind == kind), "{kind:?}");
            }
            for pair in user.claims().windows(2) {
                assert!(pair[0].number(user) < pair[1].number(user));
                assert!(pair[0].service_day < pair[1].service_day);
            }
            for claim in user.claims() {
                assert!(claim.end_day >= claim.service_day);
                assert!(claim.last_updated_millis > claim.end_day * 86_400_000);
            }
        }
    }

    #[test]
    fn resources_belong_to_their_user() {
        let data = Dataset::new();
        let user = &data.users()[3];
        let patient = data.patient(user);
        assert_eq!(patient["id"], user.patient_id.as_str());
        assert!(!patient.to_string().contains(TEMPLATE_PATIENT));
        assert!(patient.get("deceasedDateTime").is_none());
        assert!(
            data.patient(&data.users()[DECEASED_USER])
                .get("deceasedDateTime")
                .is_some()
        );
        let coverages = data.coverages(user);
        assert_eq!(coverages.len(), 4);
        assert_eq!(
            coverages[0]["beneficiary"]["reference"],
            format!("Patient/{}", user.patient_id).as_str()
        );
        for claim in user.claims().iter().take(8) {
            let eob = data.eob(user, claim);
            assert_eq!(eob["id"], claim.id(user).as_str());
            assert_eq!(
                eob["patient"]["reference"],
                format!("Patient/{}", user.patient_id).as_str()
            );
            assert!(!eob.to_string().contains(TEMPLATE_PATIENT));
        }
    }
}
