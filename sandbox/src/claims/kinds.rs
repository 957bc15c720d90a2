//! What each claim type is coded as (CCW and C4BB claim types, C4BB profile, Coverage part,
//! record kind, facility codes), and writing those codes into a claim's header.

use connect_medicare_protocol::EobType;
use serde_json::Value;

const C4BB: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";
const VARIABLES: &str = "https://bluebutton.cms.gov/resources/variables/";
const CLAIM_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/claim-type";

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
pub(super) fn profile(kind: EobType) -> String {
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
pub(super) fn coverage_part(kind: EobType) -> &'static str {
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

pub(super) fn type_codings(eob: &mut Value, kind: EobType) {
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

pub(super) fn header_codes(eob: &mut Value, kind: EobType) {
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
