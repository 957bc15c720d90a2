//! ExplanationOfBenefit resources for all eight claim types, built from four samples in
//! `fixtures/bb2-samples/`: CMS's carrier, inpatient and outpatient claims, and the project's
//! own prescription drug event in the same shape.
//!
//! Each type starts from its nearest sample and keeps every JSON key path of it; what changes
//! is what the backend (BFD) would change for that type: the type codings (`nch_clm_type_cd`,
//! the `eob-type` code, the C4BB claim type), the C4BB profile, ids and claim numbers, dates,
//! the Coverage part, facility codes, and then per claim, deterministically: NPIs of the care
//! team (a pool of providers per beneficiary, with valid check digits), diagnoses (ICD-10),
//! DRGs, procedure / revenue / drug codes, the number of lines, quantities and every amount.
//!
//! | type | sample | `nch_clm_type_cd` | C4BB profile | Coverage |
//! |---|---|---|---|---|
//! | carrier | carrier | 71 | Professional-NonClinician | Part B |
//! | dme | carrier | 82 | Professional-NonClinician | Part B |
//! | hha | outpatient | 10 | Professional-NonClinician (as BFD) | Part A |
//! | hospice | inpatient | 50 | Inpatient-Institutional | Part A |
//! | inpatient | inpatient | 60 | Inpatient-Institutional | Part A |
//! | outpatient | outpatient | 40 | Outpatient-Institutional | Part B |
//! | pde | drug event | — | Pharmacy | Part D |
//! | snf | inpatient | 20 | Inpatient-Institutional | Part A |

use connect_medicare_protocol::EobType;
use serde_json::{Map, Value, json};

use crate::{
    clock::{format_date, format_datetime, format_instant_millis},
    data::{ClaimMeta, TEMPLATE_PATIENT, User, mix, replace_strings, template},
};

const C4BB: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";
const VARIABLES: &str = "https://bluebutton.cms.gov/resources/variables/";
const CLAIM_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
const US_NPI: &str = "http://hl7.org/fhir/sid/us-npi";

/// The four samples, parsed once.
#[derive(Debug)]
pub(crate) struct Templates {
    carrier: Value,
    pde: Value,
    inpatient: Value,
    outpatient: Value,
}

impl Templates {
    pub(crate) fn new() -> Self {
        Self {
            carrier: template(include_str!(
                "../../fixtures/bb2-samples/eob_read_carrier_v2.json"
            )),
            pde: template(include_str!(
                "../../fixtures/bb2-samples/eob_read_pde_v2.json"
            )),
            inpatient: template(include_str!(
                "../../fixtures/bb2-samples/eob_read_in_pt_v2.json"
            )),
            outpatient: template(include_str!(
                "../../fixtures/bb2-samples/eob_read_out_pt_v2.json"
            )),
        }
    }

    /// The sample a claim type is built from.
    fn nearest(&self, kind: EobType) -> &Value {
        match kind {
            EobType::Carrier | EobType::Dme => &self.carrier,
            EobType::Pde => &self.pde,
            EobType::Inpatient | EobType::Snf | EobType::Hospice => &self.inpatient,
            EobType::Outpatient | EobType::Hha => &self.outpatient,
        }
    }
}

/// `nch_clm_type_cd` (the CCW claim type), absent on drug events.
fn nch_claim_type(kind: EobType) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        EobType::Carrier => (
            "71",
            "Local carrier non-durable medical equipment, prosthetics, orthotics, and supplies (DMEPOS) claim",
        ),
        EobType::Dme => ("82", "DMERC; DMEPOS claim"),
        EobType::Hha => ("10", "HHA claim"),
        EobType::Hospice => ("50", "Hospice claim"),
        EobType::Inpatient => ("60", "Inpatient claim"),
        EobType::Outpatient => ("40", "Hospital Outpatient claim"),
        EobType::Snf => ("20", "Non swing bed Skilled Nursing Facility (SNF) claim"),
        EobType::Pde => return None,
    })
}

/// The C4BB claim type.
fn c4bb_claim_type(kind: EobType) -> (&'static str, &'static str) {
    match kind {
        EobType::Carrier | EobType::Dme => ("professional", "Professional"),
        EobType::Pde => ("pharmacy", "Pharmacy"),
        _ => ("institutional", "Institutional"),
    }
}

/// The C4BB profile BFD declares for the type.
fn profile(kind: EobType) -> String {
    let name = match kind {
        EobType::Carrier | EobType::Dme | EobType::Hha => {
            "C4BB-ExplanationOfBenefit-Professional-NonClinician"
        }
        EobType::Inpatient | EobType::Snf | EobType::Hospice => {
            "C4BB-ExplanationOfBenefit-Inpatient-Institutional"
        }
        EobType::Outpatient => "C4BB-ExplanationOfBenefit-Outpatient-Institutional",
        EobType::Pde => "C4BB-ExplanationOfBenefit-Pharmacy",
    };
    format!("{C4BB}{name}")
}

/// The Coverage the claim is paid under.
fn coverage_part(kind: EobType) -> &'static str {
    match kind {
        EobType::Carrier | EobType::Dme | EobType::Outpatient => "part-b",
        EobType::Pde => "part-d",
        _ => "part-a",
    }
}

/// `nch_near_line_rec_ident_cd`: which kind of record the claim came in.
fn near_line(kind: EobType) -> (&'static str, &'static str) {
    match kind {
        EobType::Dme => (
            "M",
            "Part B DMEPOS claim record (processed by DME Regional Carrier)",
        ),
        EobType::Outpatient => (
            "W",
            "Part B institutional claim record (outpatient [HOP], home health agency [HHA])",
        ),
        EobType::Carrier | EobType::Pde => (
            "O",
            "Part B physician/supplier claim record (processed by local carriers; can include DMEPOS services)",
        ),
        _ => (
            "V",
            "Part A institutional claim record (inpatient [IP], skilled nursing facility [SNF], hospice [HOS], or home health agency [HHA])",
        ),
    }
}

/// `clm_fac_type_cd` and `clm_srvc_clsfctn_type_cd` (the type of bill's first two digits).
fn facility(kind: EobType) -> ((&'static str, &'static str), &'static str) {
    match kind {
        EobType::Snf => (("2", "Skilled nursing facility (SNF)"), "1"),
        EobType::Hha => (("3", "Home Health Agency (HHA)"), "2"),
        EobType::Hospice => (("8", "Special facility or ASC surgery"), "1"),
        EobType::Outpatient => (("1", "Hospital"), "3"),
        _ => (("1", "Hospital"), "1"),
    }
}

const ICD10_CODES: [(&str, &str); 24] = [
    ("I10", "ESSENTIAL (PRIMARY) HYPERTENSION"),
    ("E119", "TYPE 2 DIABETES MELLITUS WITHOUT COMPLICATIONS"),
    ("E785", "HYPERLIPIDEMIA, UNSPECIFIED"),
    ("J449", "CHRONIC OBSTRUCTIVE PULMONARY DISEASE, UNSPECIFIED"),
    ("I4891", "UNSPECIFIED ATRIAL FIBRILLATION"),
    ("I509", "HEART FAILURE, UNSPECIFIED"),
    ("N183", "CHRONIC KIDNEY DISEASE, STAGE 3 (MODERATE)"),
    (
        "M810",
        "AGE-RELATED OSTEOPOROSIS W/O CURRENT PATHOLOGICAL FRACTURE",
    ),
    ("M170", "BILATERAL PRIMARY OSTEOARTHRITIS OF KNEE"),
    (
        "F0390",
        "UNSPECIFIED DEMENTIA WITHOUT BEHAVIORAL DISTURBANCE",
    ),
    ("J189", "PNEUMONIA, UNSPECIFIED ORGANISM"),
    ("N390", "URINARY TRACT INFECTION, SITE NOT SPECIFIED"),
    ("E039", "HYPOTHYROIDISM, UNSPECIFIED"),
    (
        "I2510",
        "ATHSCL HEART DISEASE OF NATIVE CORONARY ARTERY W/O ANG PCTRS",
    ),
    ("G4733", "OBSTRUCTIVE SLEEP APNEA (ADULT) (PEDIATRIC)"),
    ("H2513", "AGE-RELATED NUCLEAR CATARACT, BILATERAL"),
    (
        "K219",
        "GASTRO-ESOPHAGEAL REFLUX DISEASE WITHOUT ESOPHAGITIS",
    ),
    ("R0602", "SHORTNESS OF BREATH"),
    ("Z23", "ENCOUNTER FOR IMMUNIZATION"),
    ("A419", "SEPSIS, UNSPECIFIED ORGANISM"),
    (
        "S72001A",
        "FRACTURE OF UNSP PART OF NECK OF RIGHT FEMUR, INIT",
    ),
    ("I639", "CEREBRAL INFARCTION, UNSPECIFIED"),
    ("C61", "MALIGNANT NEOPLASM OF PROSTATE"),
    (
        "C3490",
        "MALIGNANT NEOPLASM OF UNSP PART OF UNSP BRONCHUS OR LUNG",
    ),
];

const DRGS: [&str; 12] = [
    "191", "193", "291", "292", "470", "871", "392", "690", "683", "065", "189", "280",
];

/// HCPCS / CPT codes of professional services.
const PROFESSIONAL_CODES: [&str; 18] = [
    "99213", "99214", "99215", "99232", "99308", "G0439", "93000", "80053", "85025", "36415",
    "71046", "77085", "90686", "97110", "92014", "66984", "20610", "99495",
];

/// HCPCS codes of hospital outpatient lines.
const OUTPATIENT_CODES: [&str; 10] = [
    "80048", "85025", "36415", "71046", "93005", "99284", "74176", "96372", "80053", "99283",
];

/// HCPCS codes of durable medical equipment.
const DME_CODES: [&str; 10] = [
    "E0601", "A4253", "E0114", "K0001", "E0260", "A7030", "E1390", "L1833", "A4259", "E0143",
];

/// Revenue centers, as the CCW codebook describes them.
const REVENUE: [(&str, &str); 27] = [
    (
        "0022",
        "Skilled Nursing Facility (SNF) claim paid under PPS submitted as TOB 21X",
    ),
    ("0023", "Home Health services paid under PPS"),
    ("0111", "Private medical or general-medical/surgical/GYN"),
    (
        "0120",
        "Semi-private 2 bed (medical or general)-general classification",
    ),
    ("0191", "Subacute care-level I (skilled care)"),
    ("0250", "Pharmacy-general classification"),
    ("0260", "IV therapy-general classification"),
    ("0270", "Medical/surgical supplies-general classification"),
    ("0300", "Laboratory-general classification"),
    ("0301", "Laboratory-chemistry"),
    ("0320", "Radiology-diagnostic-general classification"),
    ("0360", "Operating room services-general classification"),
    ("0410", "Respiratory services-general classification"),
    ("0420", "Physical therapy-general classification"),
    ("0430", "Occupational therapy-general classification"),
    ("0440", "Speech-language pathology-general classification"),
    ("0450", "Emergency room-general classification"),
    ("0510", "Clinic-general classification"),
    ("0551", "Skilled nursing-visit charge"),
    ("0571", "Home health aide (home health)-visit charge"),
    ("0636", "Pharmacy-drugs requiring detailed coding"),
    ("0651", "Hospice services-routine home care"),
    ("0652", "Hospice services-continuous home care"),
    ("0655", "Hospice services-inpatient respite care"),
    (
        "0656",
        "Hospice services-general inpatient care (non-respite)",
    ),
    ("0730", "EKG/ECG-general classification"),
    ("0001", "Total charge"),
];

/// The revenue centers a claim type bills under (indexes into [`REVENUE`]).
fn revenue_centers(kind: EobType) -> &'static [usize] {
    match kind {
        EobType::Snf => &[0, 3, 4, 5, 7, 8, 13, 14, 15],
        EobType::Hha => &[1, 18, 19, 13, 14, 15],
        EobType::Hospice => &[21, 22, 23, 24, 5],
        EobType::Outpatient => &[5, 7, 8, 9, 10, 16, 17, 20, 25],
        _ => &[2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 25],
    }
}

/// Drugs, as `ndc` codings show them.
const DRUGS: [(&str, &str); 12] = [
    (
        "50111043301",
        "Trazodone Hydrochloride - TRAZODONE HYDROCHLORIDE",
    ),
    ("00071015523", "Lipitor - ATORVASTATIN CALCIUM"),
    (
        "00093721401",
        "Metformin Hydrochloride - METFORMIN HYDROCHLORIDE",
    ),
    ("68180051301", "Lisinopril - LISINOPRIL"),
    ("00378395177", "Amlodipine Besylate - AMLODIPINE BESYLATE"),
    ("00074662490", "Synthroid - LEVOTHYROXINE SODIUM"),
    ("00186504031", "Nexium - ESOMEPRAZOLE MAGNESIUM"),
    ("00003089421", "Eliquis - APIXABAN"),
    ("00006027731", "Januvia - SITAGLIPTIN PHOSPHATE"),
    (
        "00173069600",
        "Advair Diskus - FLUTICASONE PROPIONATE AND SALMETEROL",
    ),
    (
        "16729002010",
        "Donepezil Hydrochloride - DONEPEZIL HYDROCHLORIDE",
    ),
    ("00093715498", "Simvastatin - SIMVASTATIN"),
];

/// A claim's dice: a deterministic sequence of numbers for one user's claim.
struct Dice {
    seed: [u64; 2],
    throws: u64,
}

impl Dice {
    fn new(user: usize, claim: usize) -> Self {
        Self {
            seed: [user as u64, claim as u64],
            throws: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.throws += 1;
        mix(&[self.seed[0], self.seed[1], 0xE0B, self.throws])
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A National Provider Identifier: nine digits starting with 1 or 2 and the Luhn check digit
/// computed over the `80840` prefix, as NPPES issues them.
pub(crate) fn npi(seed: u64) -> String {
    let base = 100_000_000 + seed % 200_000_000;
    let digits = format!("80840{base:09}");
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{base:09}{}", (10 - sum % 10) % 10)
}

/// Builds one claim's ExplanationOfBenefit; `now` (unix seconds) is written as `created`,
/// which the backend sets to the time it answers.
pub(crate) fn build(templates: &Templates, user: &User, claim: &ClaimMeta, now: i64) -> Value {
    let kind = claim.kind;
    let mut dice = Dice::new(user.index, claim.index);
    let mut eob = templates.nearest(kind).clone();
    replace_strings(&mut eob, TEMPLATE_PATIENT, &user.patient_id);
    let number = claim.number(user);
    eob["id"] = Value::String(claim.id(user));
    eob["meta"] = json!({
        "lastUpdated": format_instant_millis(claim.last_updated_millis),
        "profile": [profile(kind)],
    });
    identifiers(&mut eob, number, &mut dice);
    type_codings(&mut eob, kind);
    if kind == EobType::Pde {
        // BFD writes these on every claim; the drug-event sample lacks them.
        if let Some(object) = eob.as_object_mut() {
            object.insert("use".to_owned(), Value::String("claim".to_owned()));
        }
    }
    eob["created"] = Value::String(format_datetime(now));
    let (start, end) = (format_date(claim.service_day), format_date(claim.end_day));
    if let Some(period) = eob.get_mut("billablePeriod") {
        period["start"] = Value::String(start.clone());
        period["end"] = Value::String(end.clone());
    }
    if let Some(first) = eob
        .get_mut("insurance")
        .and_then(Value::as_array_mut)
        .and_then(|all| all.first_mut())
    {
        first["coverage"]["reference"] = Value::String(format!(
            "Coverage/{}-{}",
            coverage_part(kind),
            user.patient_id
        ));
    }
    header_codes(&mut eob, kind);
    npis(&mut eob, user, &mut dice);
    diagnoses(&mut eob, &mut dice);
    items(&mut eob, kind, &start, &end, &mut dice);
    let processed = format_date(claim.processing_day());
    for info in eob
        .get_mut("supportingInfo")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if info.get("timingDate").is_some() {
            info["timingDate"] = Value::String(processed.clone());
        }
    }
    // One factor for every amount keeps the claim's sums consistent.
    let factor = 0.4 + (dice.below(261) as f64) / 100.0;
    scale_money(&mut eob, factor);
    eob
}

fn identifiers(eob: &mut Value, number: u64, dice: &mut Dice) {
    let rx_reference = 10_000_000_000 + dice.next() % 89_999_999_999;
    for identifier in eob
        .get_mut("identifier")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let system = identifier["system"].as_str().unwrap_or_default();
        let value = if system.ends_with("/clm_id") || system.ends_with("/pde_id") {
            number.to_string()
        } else if system.ends_with("/claim-group") {
            (number + 50_000_000_000).to_string()
        } else if system.ends_with("/rx_srvc_rfrnc_num") {
            rx_reference.to_string()
        } else {
            continue;
        };
        identifier["value"] = Value::String(value);
    }
}

fn type_codings(eob: &mut Value, kind: EobType) {
    let (claim_type, claim_type_display) = c4bb_claim_type(kind);
    for coding in eob
        .pointer_mut("/type/coding")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        match coding["system"].as_str().unwrap_or_default() {
            s if s.ends_with("/nch_clm_type_cd") => {
                if let Some((code, display)) = nch_claim_type(kind) {
                    coding["code"] = code.into();
                    coding["display"] = display.into();
                }
            }
            EobType::SYSTEM => coding["code"] = kind.as_str().to_ascii_uppercase().into(),
            CLAIM_TYPE_SYSTEM => {
                coding["code"] = claim_type.into();
                coding["display"] = claim_type_display.into();
            }
            _ => {}
        }
    }
}

/// Sets the `valueCoding` of every extension with `url` under `extensions`.
fn set_extension(extensions: Option<&mut Value>, variable: &str, code: &str, display: &str) {
    let url = format!("{VARIABLES}{variable}");
    for ext in extensions
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if ext["url"] == url.as_str() {
            ext["valueCoding"]["code"] = code.into();
            if ext["valueCoding"].get("display").is_some() || !display.is_empty() {
                ext["valueCoding"]["display"] = display.into();
            }
        }
    }
}

fn header_codes(eob: &mut Value, kind: EobType) {
    if kind == EobType::Pde {
        return;
    }
    let (near_code, near_display) = near_line(kind);
    set_extension(
        eob.get_mut("extension"),
        "nch_near_line_rec_ident_cd",
        near_code,
        near_display,
    );
    if c4bb_claim_type(kind).0 == "institutional" {
        let ((fac_code, fac_display), class) = facility(kind);
        set_extension(
            eob.get_mut("facility").and_then(|f| f.get_mut("extension")),
            "clm_fac_type_cd",
            fac_code,
            fac_display,
        );
        set_extension(
            eob.get_mut("extension"),
            "clm_srvc_clsfctn_type_cd",
            class,
            "",
        );
    }
}

/// Every NPI in the claim (care team, referral, the billing organization, the pharmacy)
/// from the beneficiary's own providers, and every UPIN.
fn npis(eob: &mut Value, user: &User, dice: &mut Dice) {
    fn walk(value: &mut Value, pool: &[String], next: &mut usize) {
        match value {
            Value::Object(map) => {
                match provider_identifier(map) {
                    Some(Kind::Npi) => {
                        let npi = pool[*next % pool.len()].clone();
                        map.insert("value".to_owned(), Value::String(npi));
                        *next += 1;
                    }
                    Some(Kind::Upin) => {
                        // The retired six-character UPIN: a letter and five digits.
                        let seed = mix(&[*next as u64, pool.len() as u64, 0x0F1]);
                        let upin = format!(
                            "{}{:05}",
                            char::from(b'A' + (seed % 26) as u8),
                            (seed >> 8) % 100_000
                        );
                        map.insert("value".to_owned(), Value::String(upin));
                        *next += 1;
                    }
                    None => {}
                }
                map.values_mut().for_each(|v| walk(v, pool, next));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, pool, next)),
            _ => {}
        }
    }
    let pool: Vec<String> = (0..12)
        .map(|n| npi(mix(&[user.index as u64, n, 0x4E91])))
        .collect();
    let mut next = dice.below(pool.len());
    walk(eob, &pool, &mut next);
}

/// A provider identifier the claim carries.
enum Kind {
    Npi,
    Upin,
}

fn provider_identifier(map: &Map<String, Value>) -> Option<Kind> {
    if !map.get("value").is_some_and(Value::is_string) {
        return None;
    }
    let has_code = |code: &str| {
        map.get("type")
            .and_then(|t| t["coding"].as_array())
            .is_some_and(|codings| codings.iter().any(|c| c["code"] == code))
    };
    if map.get("system").and_then(Value::as_str) == Some(US_NPI) || has_code("npi") {
        Some(Kind::Npi)
    } else if has_code("UPIN") {
        Some(Kind::Upin)
    } else {
        None
    }
}

fn diagnoses(eob: &mut Value, dice: &mut Dice) {
    let first = dice.below(ICD10_CODES.len());
    let step = 1 + dice.below(5);
    let drg = DRGS[dice.below(DRGS.len())];
    let mut n = 0;
    for diagnosis in eob
        .get_mut("diagnosis")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(codings) = diagnosis
            .pointer_mut("/diagnosisCodeableConcept/coding")
            .and_then(Value::as_array_mut)
        {
            let (code, display) = ICD10_CODES[(first + n * step) % ICD10_CODES.len()];
            n += 1;
            for coding in codings {
                coding["system"] = ICD10.into();
                coding["code"] = code.into();
                coding["display"] = display.into();
            }
        }
        if let Some(codings) = diagnosis
            .pointer_mut("/packageCode/coding")
            .and_then(Value::as_array_mut)
        {
            for coding in codings {
                coding["code"] = drg.into();
            }
        }
    }
}

fn items(eob: &mut Value, kind: EobType, start: &str, end: &str, dice: &mut Dice) {
    let Some(template_items) = eob.get("item").and_then(Value::as_array).cloned() else {
        return;
    };
    if template_items.is_empty() {
        return;
    }
    let extra = match kind {
        EobType::Carrier => dice.below(4),
        EobType::Dme => dice.below(2),
        EobType::Inpatient => 5 + dice.below(21),
        EobType::Snf => 3 + dice.below(13),
        EobType::Hospice => 2 + dice.below(9),
        EobType::Outpatient => dice.below(7),
        EobType::Hha => dice.below(5),
        EobType::Pde => 0,
    };
    let count = template_items.len() + extra;
    let mut lines = Vec::with_capacity(count);
    for i in 0..count {
        let mut line = template_items[i % template_items.len()].clone();
        line["sequence"] = json!(i + 1);
        match kind {
            EobType::Carrier | EobType::Dme => {
                let codes: &[&str] = if kind == EobType::Dme {
                    &DME_CODES
                } else {
                    &PROFESSIONAL_CODES
                };
                if let Some(coding) = line.pointer_mut("/productOrService/coding/0") {
                    coding["code"] = codes[dice.below(codes.len())].into();
                }
                if line.get("servicedPeriod").is_some() {
                    line["servicedPeriod"] = json!({"start": start, "end": end});
                }
                if kind == EobType::Dme
                    && let Some(coding) = line.pointer_mut("/category/coding/0")
                {
                    let (code, display) = if dice.below(2) == 0 {
                        ("P", "Lump sum purchase of DME, prosthetics orthotics")
                    } else {
                        ("R", "Rental of DME")
                    };
                    coding["code"] = code.into();
                    coding["display"] = display.into();
                }
                if let Some(quantity) = line.get_mut("quantity") {
                    quantity["value"] = json!(1 + dice.below(3));
                }
            }
            EobType::Pde => {
                let (ndc, name) = DRUGS[dice.below(DRUGS.len())];
                if let Some(coding) = line.pointer_mut("/productOrService/coding/0") {
                    coding["code"] = ndc.into();
                    coding["display"] = name.into();
                }
                if let Some(date) = line.get_mut("servicedDate") {
                    *date = Value::String(start.to_owned());
                }
                let days = if dice.below(3) == 0 { 90 } else { 30 };
                for ext in line
                    .pointer_mut("/quantity/extension")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let url = ext["url"].as_str().unwrap_or_default();
                    if url.ends_with("/fill_num") {
                        ext["valueQuantity"]["value"] = json!(1 + dice.below(11));
                    } else if url.ends_with("/days_suply_num") {
                        ext["valueQuantity"]["value"] = json!(days);
                    }
                }
                if let Some(quantity) = line.get_mut("quantity") {
                    quantity["value"] = json!(f64::from(days));
                }
            }
            _ => {
                let centers = revenue_centers(kind);
                let (code, display) = REVENUE[centers[dice.below(centers.len())]];
                if let Some(coding) = line.pointer_mut("/revenue/coding/0") {
                    coding["code"] = code.into();
                    coding["display"] = display.into();
                }
                if let Some(coding) = line.pointer_mut("/modifier/0/coding/0") {
                    coding["code"] = OUTPATIENT_CODES[dice.below(OUTPATIENT_CODES.len())].into();
                }
                if let Some(quantity) = line.get_mut("quantity") {
                    quantity["value"] = json!(1 + dice.below(12));
                }
            }
        }
        lines.push(line);
    }
    eob["item"] = Value::Array(lines);
}

/// Multiplies every money amount (`amount`, `usedMoney`, `valueMoney`) by `factor`,
/// rounded to cents.
fn scale_money(value: &mut Value, factor: f64) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if matches!(key.as_str(), "amount" | "usedMoney" | "valueMoney")
                    && let Some(v) = child.get("value").and_then(Value::as_f64)
                {
                    child["value"] = json!(((v * factor) * 100.0).round() / 100.0);
                } else {
                    scale_money(child, factor);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scale_money(v, factor)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    #[test]
    fn npis_carry_a_valid_check_digit() {
        // CMS's example: 123456789 → check digit 3.
        assert_eq!(npi(23_456_789), "1234567893");
        for seed in 0..50 {
            let n = npi(mix(&[seed]));
            assert_eq!(n.len(), 10);
            assert!(n.starts_with('1') || n.starts_with('2'), "{n}");
        }
    }

    #[test]
    fn each_type_is_coded_as_its_own() {
        let data = Dataset::new();
        let user = &data.users()[9];
        for kind in EobType::ALL {
            let claim = user.claims().iter().find(|c| c.kind == kind).unwrap();
            let eob = data.eob(user, claim);
            let text = eob.to_string();
            assert!(eob["id"].as_str().unwrap().starts_with(kind.as_str()));
            assert!(
                eob["type"]["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["system"] == EobType::SYSTEM
                        && c["code"] == kind.as_str().to_ascii_uppercase().as_str()),
                "{kind:?}"
            );
            assert_eq!(eob["meta"]["profile"][0], profile(kind).as_str());
            assert!(text.contains(&format!("Coverage/{}-", coverage_part(kind))));
            assert!(
                !text.contains("9999999999"),
                "{kind:?} kept a placeholder NPI"
            );
            assert!(!text.contains("icd-9-cm"), "{kind:?} kept an ICD-9 code");
        }
    }

    /// FHIR JSON has no `null`: nothing the generator touches may leave one behind.
    fn assert_no_null(value: &Value, path: &str) {
        match value {
            Value::Null => panic!("null at {path}"),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| assert_no_null(v, &format!("{path}[{i}]"))),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| assert_no_null(v, &format!("{path}.{k}"))),
            _ => {}
        }
    }

    #[test]
    fn no_resource_holds_a_null() {
        let data = Dataset::new();
        for user in data.users() {
            assert_no_null(&data.patient(user), "Patient");
            for coverage in data.coverages(user) {
                assert_no_null(&coverage, "Coverage");
            }
            for claim in user.claims() {
                assert_no_null(&data.eob(user, claim), &claim.id(user));
            }
        }
    }

    #[test]
    fn claims_vary_and_are_deterministic() {
        let data = Dataset::new();
        let user = &data.users()[19];
        let carriers: Vec<_> = user
            .claims()
            .iter()
            .filter(|c| c.kind == EobType::Carrier)
            .take(6)
            .map(|c| data.eob(user, c))
            .collect();
        let payments: std::collections::HashSet<String> = carriers
            .iter()
            .map(|e| e["payment"]["amount"]["value"].to_string())
            .collect();
        assert!(payments.len() > 3, "{payments:?}");
        let again = data.eob(user, &user.claims()[0]);
        assert_eq!(again, data.eob(user, &user.claims()[0]));
    }
}
