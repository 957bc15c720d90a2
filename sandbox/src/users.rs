//! The 30 synthetic beneficiaries and the light index of their claims ([`ClaimMeta`]): who
//! they are and which claims they have, deterministically, without building any resource.

use connect_medicare_protocol::EobType;

use crate::clock::parse_date;

/// How many synthetic users exist: `BBUser00000` … `BBUser00029`.
pub const USER_COUNT: usize = 30;

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

/// User `index`: their name, credentials, ids and claim index.
pub(crate) fn make_user(index: usize) -> User {
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
