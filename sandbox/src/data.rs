//! Deterministic synthetic data for the sandbox's 30 users, built from Blue Button v2
//! responses (`fixtures/bb2-samples/`, from the CMS server's public test fixtures), so every
//! resource keeps the samples' shape: C4BB profiles, BB2 identifiers, extensions and code
//! systems.
//!
//! Each user has a Patient, four Coverage resources (Parts A, B, C, D) and claims of all
//! eight types (carrier, dme, hha, hospice, inpatient, outpatient, pde, snf); three users
//! have hundreds of claims. Claims are generated on demand from a light index
//! ([`ClaimMeta`]), so a user with hundreds of claims costs nothing until a page of them is
//! asked for; how a claim is built is in `claims.rs`.

use connect_medicare_protocol::EobType;
use serde_json::{Value, json};

use crate::{
    claims::{self, Templates},
    clock::{add_months, format_date, format_instant_millis, parse_date},
};

/// How many synthetic users exist: `BBUser00000` … `BBUser00029`.
pub const USER_COUNT: usize = 30;

/// The patient id in the samples, replaced by each user's own.
pub(crate) const TEMPLATE_PATIENT: &str = "-20140000008325";

/// The one beneficiary who has died (the samples' Patient carries `deceasedDateTime`).
const DECEASED_USER: usize = 13;

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
    /// The Medicare Beneficiary Identifier (synthetic, `1S…`).
    pub mbi: String,
    /// Given name.
    pub given: &'static str,
    /// Family name.
    pub family: &'static str,
    claims: Vec<ClaimMeta>,
}

impl User {
    /// The user's claims, in Blue Button's order (by claim id, which follows the service
    /// date).
    pub fn claims(&self) -> &[ClaimMeta] {
        &self.claims
    }

    /// Birth date, as days since 1970-01-01.
    pub fn birth_day(&self) -> i64 {
        parse_date("1924-05-01").unwrap_or(0) + (self.index as i64) * 371
    }

    /// When the Patient and Coverage resources were last updated (unix milliseconds).
    pub fn last_updated_millis(&self) -> i64 {
        // The samples' 2020-11-09T22:50:14.146Z, a minute apart per user.
        parse_date("2020-11-09").unwrap_or(0) * 86_400_000
            + 82_214_146
            + (self.index as i64) * 61_003
    }
}

/// What the index knows about one claim without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimMeta {
    /// The claim's position in the user's list.
    pub index: usize,
    /// Its claim type.
    pub kind: EobType,
    /// The first day of service (`billablePeriod.start`), as days since 1970-01-01.
    pub service_day: i64,
    /// The last day of service (`billablePeriod.end`, the claim's "through" date), which the
    /// `service-date` search compares.
    pub end_day: i64,
    /// `meta.lastUpdated`, in unix milliseconds, which the `_lastUpdated` search compares.
    pub last_updated_millis: i64,
}

impl ClaimMeta {
    /// The claim number (`clm_id`, or `pde_id` for drug events).
    pub fn number(&self, user: &User) -> u64 {
        2_000_000_000 + (user.index as u64) * 100_000 + self.index as u64
    }

    /// The ExplanationOfBenefit id, shaped like Blue Button's (`carrier-…`, `pde-…`).
    pub fn id(&self, user: &User) -> String {
        format!("{}-{}", self.kind.as_str(), self.number(user))
    }

    /// The NCH weekly processing date (days since 1970-01-01): the Friday after the claim
    /// went through.
    pub fn processing_day(&self) -> i64 {
        let day = self.end_day + 7;
        // 1970-01-02 was a Friday.
        day + (1 - day).rem_euclid(7)
    }
}

/// The parsed templates and the 30 users.
#[derive(Debug)]
pub struct Dataset {
    users: Vec<User>,
    patient: Value,
    coverages: Vec<Value>,
    templates: Templates,
    capability: Value,
}

pub(crate) fn template(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
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
                let last = user.claims.iter().map(|c| c.end_day).max().unwrap_or(0);
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

    /// One of the user's ExplanationOfBenefit resources, `created` at `now` (unix seconds).
    pub fn eob_at(&self, user: &User, claim: &ClaimMeta, now: i64) -> Value {
        claims::build(&self.templates, user, claim, now)
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

/// A deterministic 64-bit mix of a few numbers (SplitMix64 over their sum).
pub(crate) fn mix(parts: &[u64]) -> u64 {
    let mut z: u64 = 0x2545_F491_4F6C_DD1D;
    for part in parts {
        z = z.wrapping_add(*part).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// How many claims each user has: most a few dozen, three of them hundreds.
fn claim_count(index: usize) -> usize {
    match index {
        0 => 24,
        i if i % 10 == 9 => 240 + i * 3,
        i => 12 + (i * 17) % 60,
    }
}

/// Claim types beyond each user's first eight (one of each type), weighted roughly as in
/// Medicare: carrier and drug events most, facility stays least. The users with hundreds of
/// claims are frequent hospital patients, with far more institutional claims.
fn weighted_kind(roll: u64, frequent: bool) -> EobType {
    let table: [(u64, EobType); 8] = if frequent {
        [
            (24, EobType::Carrier),
            (46, EobType::Pde),
            (68, EobType::Outpatient),
            (74, EobType::Dme),
            (88, EobType::Inpatient),
            (93, EobType::Hha),
            (98, EobType::Snf),
            (100, EobType::Hospice),
        ]
    } else {
        [
            (36, EobType::Carrier),
            (66, EobType::Pde),
            (76, EobType::Outpatient),
            (82, EobType::Dme),
            (88, EobType::Inpatient),
            (92, EobType::Hha),
            (96, EobType::Snf),
            (100, EobType::Hospice),
        ]
    };
    let r = roll % 100;
    table
        .iter()
        .find(|(upto, _)| r < *upto)
        .map_or(EobType::Carrier, |(_, kind)| *kind)
}

/// How long a claim of this type lasts, in days after its first day.
fn stay_days(kind: EobType, roll: u64) -> i64 {
    let roll = roll as i64;
    match kind {
        EobType::Inpatient => 2 + roll % 8,
        EobType::Snf => 7 + roll % 29,
        EobType::Hospice => 14 + roll % 47,
        EobType::Hha => 29,
        _ => 0,
    }
}

fn make_user(index: usize) -> User {
    let first_day = parse_date("2019-01-07").unwrap_or(0);
    // Before this, the backend had no load times: such claims carry its fallback
    // `lastUpdated` of 2020-01-01T00:00:00.000Z.
    let fallback = parse_date("2020-01-01").unwrap_or(0) * 86_400_000;
    let claims = (0..claim_count(index))
        .map(|k| {
            let roll = mix(&[index as u64, k as u64, 0xC1A1]);
            // Every user has one claim of each type among their first eight.
            let kind = if k < 8 {
                EobType::ALL[(k + index) % EobType::ALL.len()]
            } else {
                weighted_kind(roll, index % 10 == 9)
            };
            let service_day = first_day + (k as i64) * 5 + (index as i64);
            let end_day = service_day + stay_days(kind, roll >> 8);
            let mut claim = ClaimMeta {
                index: k,
                kind,
                service_day,
                end_day,
                last_updated_millis: 0,
            };
            // Loaded a few days after the weekly processing date, in the evening batch.
            let loaded = (claim.processing_day() + 3 + (roll >> 16) as i64 % 5) * 86_400_000
                + 81_900_000
                + ((roll >> 24) % 900_000) as i64;
            claim.last_updated_millis = loaded.max(fallback);
            claim
        })
        .collect();
    let letters = b"ACDEFGHJKMNPQRTUVWXY";
    let r = mix(&[index as u64, 0x3B1]);
    let letter = |n: u64| letters[(n % letters.len() as u64) as usize] as char;
    User {
        index,
        username: format!("BBUser{index:05}"),
        password: format!("PW{index:05}!"),
        patient_id: format!("-2014000000{:04}", 8325 + index),
        // The MBI's layout: numeric, alpha, alphanumeric, numeric, alpha, alphanumeric,
        // numeric, alpha, alpha, numeric, numeric.
        mbi: format!(
            "1S{}{}{}{}{}{}{}{index:02}",
            index / 10,
            index % 10,
            letter(r),
            (r >> 8) % 10,
            (r >> 12) % 10,
            letter(r >> 16),
            letter(r >> 24),
        ),
        given: FIRST_NAMES[index],
        family: LAST_NAMES[index],
        claims,
    }
}

/// Replaces `from` with `to` inside every string of a JSON tree.
pub(crate) fn replace_strings(value: &mut Value, from: &str, to: &str) {
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
