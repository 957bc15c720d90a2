//! What a claim says was done: its diagnoses (ICD-10 codes and the DRG) and its service lines
//! (how many, and their codes, dates and quantities), drawn from `codes.rs`.

use connect_medicare_protocol::EobType;
use serde_json::{Value, json};

use super::{
    codes::{
        DME_CODES, DRGS, DRUGS, ICD10_CODES, OUTPATIENT_CODES, PROFESSIONAL_CODES, REVENUE,
        revenue_centers,
    },
    dice::Dice,
};

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

pub(super) fn diagnoses(eob: &mut Value, dice: &mut Dice) {
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

pub(super) fn items(eob: &mut Value, kind: EobType, start: &str, end: &str, dice: &mut Dice) {
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
