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
//!
//! Here: the samples, and [`build`] with its steps in order. What each type is coded as is in
//! `kinds.rs`, the code lists in `codes.rs`, the providers in `providers.rs`, diagnoses and
//! lines in `content.rs`, and the claim's dice in `dice.rs`.

mod codes;
mod content;
mod dice;
mod kinds;
mod providers;

use connect_medicare_protocol::EobType;
use serde_json::{Value, json};

use self::{
    content::{diagnoses, items},
    dice::Dice,
    kinds::{coverage_part, header_codes, profile, type_codings},
    providers::npis,
};
use crate::{
    clock::{format_date, format_datetime, format_instant_millis},
    samples::{TEMPLATE_PATIENT, replace_strings, template},
    users::{ClaimMeta, User},
};

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
                "../../../fixtures/bb2-samples/eob_read_carrier_v2.json"
            )),
            pde: template(include_str!(
                "../../../fixtures/bb2-samples/eob_read_pde_v2.json"
            )),
            inpatient: template(include_str!(
                "../../../fixtures/bb2-samples/eob_read_in_pt_v2.json"
            )),
            outpatient: template(include_str!(
                "../../../fixtures/bb2-samples/eob_read_out_pt_v2.json"
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
