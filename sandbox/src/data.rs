//! Deterministic synthetic data for the sandbox's 30 users, built from real Blue Button v2
//! responses (`data/`, copied from the CMS server's public test fixtures), so every resource
//! keeps the samples' shape: C4BB profiles, BB2 identifiers, extensions and code systems.
//!
//! Claims are generated on demand from a light index, so a user with hundreds of claims costs
//! nothing until a page of them is asked for.

use connect_medicare_protocol::EobType;
use serde_json::Value;

use crate::clock::{format_date, parse_date};

/// How many synthetic users exist: `BBUser00000` … `BBUser00029`.
pub const USER_COUNT: usize = 30;

/// The patient id in the samples, replaced by each user's own.
const TEMPLATE_PATIENT: &str = "-20140000008325";

const FIRST_NAMES: [&str; USER_COUNT] = [
    "Jane",
    "John",
    "Maria",
    "Robert",
    "Linda",
    "James",
    "Patricia",
    "Michael",
    "Barbara",
    "William",
    "Elizabeth",
    "David",
    "Susan",
    "Richard",
    "Jessica",
    "Joseph",
    "Sarah",
    "Thomas",
    "Karen",
    "Charles",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Dorothy",
    "Mark",
    "Sandra",
    "Donald",
];
const LAST_NAMES: [&str; USER_COUNT] = [
    "Doe",
    "Smith",
    "Garcia",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
];

/// One synthetic beneficiary.
#[derive(Debug, Clone)]
pub struct User {
    /// `0..30`.
    pub index: usize,
    /// `BBUser000NN`.
    pub username: String,
    /// `PW000NN!`.
    pub password: String,
    /// The FHIR patient id (negative, as Blue Button's synthetic ids are).
    pub patient_id: String,
    /// Given name.
    pub given: &'static str,
    /// Family name.
    pub family: &'static str,
    claims: Vec<ClaimMeta>,
}

impl User {
    /// The user's claims, oldest first.
    pub fn claims(&self) -> &[ClaimMeta] {
        &self.claims
    }
}

/// What the index knows about one claim without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimMeta {
    /// The claim's position in the user's list.
    pub index: usize,
    /// Its claim type.
    pub kind: EobType,
    /// Its service date, as days since 1970-01-01.
    pub service_day: i64,
}

impl ClaimMeta {
    /// The ExplanationOfBenefit id, shaped like Blue Button's (`carrier-…`, `pde-…`).
    pub fn id(&self, user: &User) -> String {
        format!(
            "{}-{}",
            self.kind.as_str(),
            2_000_000_000 + user.index * 100_000 + self.index
        )
    }
}

/// The parsed templates and the 30 users.
#[derive(Debug)]
pub struct Dataset {
    users: Vec<User>,
    patient: Value,
    coverages: Vec<Value>,
    carrier: Value,
    pde: Value,
    inpatient: Value,
    outpatient: Value,
    capability: Value,
}

fn template(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

impl Dataset {
    /// Builds the users and parses the templates.
    pub fn new() -> Self {
        let coverage_bundle = template(include_str!("../data/coverage_search_v2.json"));
        let coverages = coverage_bundle["entry"]
            .as_array()
            .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        let users = (0..USER_COUNT).map(make_user).collect();
        Self {
            users,
            patient: template(include_str!("../data/patient_read_v2.json")),
            coverages,
            carrier: template(include_str!("../data/eob_read_carrier_v2.json")),
            pde: template(include_str!("../data/eob_read_pde_v2.json")),
            inpatient: template(include_str!("../data/eob_read_in_pt_v2.json")),
            outpatient: template(include_str!("../data/eob_read_out_pt_v2.json")),
            capability: template(include_str!("../data/fhir_meta_v2.json")),
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

    /// The user's Patient resource.
    pub fn patient(&self, user: &User) -> Value {
        let mut patient = self.patient.clone();
        replace_strings(&mut patient, TEMPLATE_PATIENT, &user.patient_id);
        patient["name"] = serde_json::json!([
            {"use": "usual", "family": user.family, "given": [user.given, "X"]}
        ]);
        patient["birthDate"] = Value::String(format_date(
            parse_date("1940-01-01").unwrap_or(0) + (user.index as i64) * 397,
        ));
        patient["gender"] = Value::String(
            if user.index.is_multiple_of(2) {
                "female"
            } else {
                "male"
            }
            .to_owned(),
        );
        patient
    }

    /// The user's Coverage resources: Parts A, B, C and D.
    pub fn coverages(&self, user: &User) -> Vec<Value> {
        self.coverages
            .iter()
            .map(|c| {
                let mut c = c.clone();
                replace_strings(&mut c, TEMPLATE_PATIENT, &user.patient_id);
                c
            })
            .collect()
    }

    /// One of the user's ExplanationOfBenefit resources.
    pub fn eob(&self, user: &User, claim: &ClaimMeta) -> Value {
        let mut eob = match claim.kind {
            EobType::Pde => self.pde.clone(),
            EobType::Inpatient => self.inpatient.clone(),
            EobType::Outpatient => self.outpatient.clone(),
            _ => self.carrier.clone(),
        };
        replace_strings(&mut eob, TEMPLATE_PATIENT, &user.patient_id);
        eob["id"] = Value::String(claim.id(user));
        let date = format_date(claim.service_day);
        if let Some(period) = eob.get_mut("billablePeriod") {
            period["start"] = Value::String(date.clone());
            period["end"] = Value::String(date.clone());
        }
        if let Some(items) = eob.get_mut("item").and_then(Value::as_array_mut) {
            for item in items {
                if item.get("servicedDate").is_some() {
                    item["servicedDate"] = Value::String(date.clone());
                }
            }
        }
        eob
    }
}

impl Default for Dataset {
    fn default() -> Self {
        Self::new()
    }
}

fn make_user(index: usize) -> User {
    // A few users have hundreds of claims, so bundles run to several pages of 50.
    let count = match index {
        0 => 24,
        i if i % 10 == 9 => 240 + i * 3,
        i => 12 + (i * 17) % 60,
    };
    const PATTERN: [EobType; 8] = [
        EobType::Carrier,
        EobType::Pde,
        EobType::Carrier,
        EobType::Pde,
        EobType::Outpatient,
        EobType::Carrier,
        EobType::Pde,
        EobType::Inpatient,
    ];
    let first_day = parse_date("2019-01-07").unwrap_or(0);
    let claims = (0..count)
        .map(|k| ClaimMeta {
            index: k,
            kind: PATTERN[(k + index) % PATTERN.len()],
            service_day: first_day + (k as i64) * 5 + (index as i64),
        })
        .collect();
    User {
        index,
        username: format!("BBUser{index:05}"),
        password: format!("PW{index:05}!"),
        patient_id: format!("-2014000000{:04}", 8325 + index),
        given: FIRST_NAMES[index],
        family: LAST_NAMES[index],
        claims,
    }
}

/// Replaces `from` with `to` inside every string of a JSON tree.
fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn resources_belong_to_their_user() {
        let data = Dataset::new();
        let user = &data.users()[3];
        let patient = data.patient(user);
        assert_eq!(patient["id"], user.patient_id.as_str());
        assert!(!patient.to_string().contains(TEMPLATE_PATIENT));
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
