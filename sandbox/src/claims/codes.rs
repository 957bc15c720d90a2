//! The codes claims are drawn from: ICD-10 diagnoses, DRGs, HCPCS / CPT procedures, revenue
//! centers (and which ones each claim type bills under) and drugs.

use connect_medicare_protocol::EobType;

pub(super) const ICD10_CODES: [(&str, &str); 24] = [
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

pub(super) const DRGS: [&str; 12] = [
    "191", "193", "291", "292", "470", "871", "392", "690", "683", "065", "189", "280",
];

/// HCPCS / CPT codes of professional services.
pub(super) const PROFESSIONAL_CODES: [&str; 18] = [
    "99213", "99214", "99215", "99232", "99308", "G0439", "93000", "80053", "85025", "36415",
    "71046", "77085", "90686", "97110", "92014", "66984", "20610", "99495",
];

/// HCPCS codes of hospital outpatient lines.
pub(super) const OUTPATIENT_CODES: [&str; 10] = [
    "80048", "85025", "36415", "71046", "93005", "99284", "74176", "96372", "80053", "99283",
];

/// HCPCS codes of durable medical equipment.
pub(super) const DME_CODES: [&str; 10] = [
    "E0601", "A4253", "E0114", "K0001", "E0260", "A7030", "E1390", "L1833", "A4259", "E0143",
];

/// Revenue centers, as the CCW codebook describes them.
pub(super) const REVENUE: [(&str, &str); 27] = [
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
pub(super) fn revenue_centers(kind: EobType) -> &'static [usize] {
    match kind {
        EobType::Snf => &[0, 3, 4, 5, 7, 8, 13, 14, 15],
        EobType::Hha => &[1, 18, 19, 13, 14, 15],
        EobType::Hospice => &[21, 22, 23, 24, 5],
        EobType::Outpatient => &[5, 7, 8, 9, 10, 16, 17, 20, 25],
        _ => &[2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 25],
    }
}

/// Drugs, as `ndc` codings show them.
pub(super) const DRUGS: [(&str, &str); 12] = [
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
