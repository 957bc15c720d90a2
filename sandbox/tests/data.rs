//! The synthetic data over real HTTP: every resource type keeps the JSON key paths of the
//! Blue Button responses in `fixtures/bb2-samples/` (array indices collapsed),
//! all eight claim types exist and are coded as themselves, and claims vary.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::*;
use connect_medicare_protocol::EobType;
use serde_json::Value;

/// A Blue Button sample from the repository's fixtures.
fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/bb2-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every key path of a JSON value, array indices collapsed (`.item[].adjudication[].amount`).
fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, prefix: String, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    walk(child, format!("{prefix}.{key}"), out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    walk(item, format!("{prefix}[]"), out);
                }
            }
            _ => {
                out.insert(prefix);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, String::new(), &mut out);
    out
}

fn assert_has_paths(generated: &Value, sample: &BTreeSet<String>, what: &str) {
    let have = key_paths(generated);
    let missing: Vec<&String> = sample.difference(&have).collect();
    assert!(missing.is_empty(), "{what} lacks {missing:#?}");
}

/// A sandbox whose rate limit stays out of the way of these many reads.
async fn unthrottled() -> connect_medicare_sandbox::Sandbox {
    sandbox_with(
        |c| c.throttle = None,
        connect_medicare_sandbox::Clock::new(),
    )
    .await
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

#[tokio::test]
async fn patients_and_coverage_keep_the_samples_key_paths() {
    let sandbox = unthrottled().await;
    let patient_sample = key_paths(&sample("patient_read_v2.json"));
    let coverage_samples: Vec<Value> = resources(&sample("coverage_search_v2.json"));
    assert_eq!(coverage_samples.len(), 4);
    // User 13 is the one deceased beneficiary: only their Patient has `deceasedDateTime`.
    for user in [0, 9, 13, 29] {
        let token = token_for(&sandbox, user).await;
        let me = format!("-2014000000{:04}", 8325 + user);
        let patient = get(&sandbox, &format!("/v2/fhir/Patient/{me}"), &token).await;
        assert_eq!(patient.status(), 200);
        let patient = json(patient).await;
        let mut expected = patient_sample.clone();
        if user != 13 {
            expected.remove(".deceasedDateTime");
            assert!(patient.get("deceasedDateTime").is_none());
        }
        assert_has_paths(&patient, &expected, &format!("Patient of user {user}"));
        // BB2's identifiers: bene_id, and the MBI.
        let identifiers = patient["identifier"].as_array().unwrap();
        assert!(identifiers.iter().any(|i| i["system"]
            == "https://bluebutton.cms.gov/resources/variables/bene_id"
            && i["value"] == me.as_str()));
        let mbi = identifiers
            .iter()
            .find(|i| i["system"] == "http://hl7.org/fhir/sid/us-mbi")
            .expect("an MBI");
        assert_eq!(mbi["value"].as_str().unwrap().len(), 11);

        let coverages = resources(&bundle(&sandbox, "/v2/fhir/Coverage", &token).await);
        assert_eq!(coverages.len(), 4);
        for (part, sample) in ["part-a", "part-b", "part-c", "part-d"]
            .iter()
            .zip(&coverage_samples)
        {
            let generated = coverages
                .iter()
                .find(|c| c["id"] == format!("{part}-{me}").as_str())
                .unwrap_or_else(|| panic!("{part} for user {user}"));
            assert_has_paths(
                generated,
                &key_paths(sample),
                &format!("Coverage {part} of user {user}"),
            );
            assert_eq!(
                generated["beneficiary"]["reference"],
                format!("Patient/{me}").as_str()
            );
        }
    }
}

/// The sample each claim type is built from; drug events from the search bundle (all of its
/// drug events' key paths together).
fn eob_sample(kind: EobType) -> BTreeSet<String> {
    match kind {
        EobType::Carrier | EobType::Dme => key_paths(&sample("eob_read_carrier_v2.json")),
        EobType::Inpatient | EobType::Snf | EobType::Hospice => {
            key_paths(&sample("eob_read_in_pt_v2.json"))
        }
        EobType::Outpatient | EobType::Hha => key_paths(&sample("eob_read_out_pt_v2.json")),
        EobType::Pde => resources(&sample("eob_search_v2.json"))
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with("pde-"))
            .flat_map(key_paths)
            .collect(),
    }
}

#[tokio::test]
async fn every_claim_type_keeps_its_samples_key_paths() {
    let sandbox = unthrottled().await;
    for user in [0, 9] {
        let token = token_for(&sandbox, user).await;
        for kind in EobType::ALL {
            let expected = eob_sample(kind);
            let page = bundle(
                &sandbox,
                &format!(
                    "/v2/fhir/ExplanationOfBenefit?type={}&_count=50",
                    kind.as_str()
                ),
                &token,
            )
            .await;
            let claims = resources(&page);
            assert!(!claims.is_empty(), "user {user} has {kind:?} claims");
            for claim in &claims {
                let id = claim["id"].as_str().unwrap();
                assert!(id.starts_with(&format!("{}-", kind.as_str())), "{id}");
                assert_has_paths(claim, &expected, id);
                let codes: Vec<&str> = claim["type"]["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["system"] == EobType::SYSTEM)
                    .filter_map(|c| c["code"].as_str())
                    .collect();
                assert_eq!(codes, [kind.as_str().to_ascii_uppercase()], "{id}");
            }
        }
    }
}

#[tokio::test]
async fn claims_vary_in_codes_providers_and_amounts() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 19).await;
    let page = bundle(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?type=carrier&_count=50",
        &token,
    )
    .await;
    let claims = resources(&page);
    assert_eq!(claims.len(), 50);
    let set = |f: &dyn Fn(&Value) -> Vec<String>| -> HashSet<String> {
        claims.iter().flat_map(f).collect()
    };
    let payments = set(&|c| vec![c["payment"]["amount"]["value"].to_string()]);
    let diagnoses = set(&|c| {
        c["diagnosis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["diagnosisCodeableConcept"]["coding"][0]["code"].to_string())
            .collect()
    });
    let npis = set(&|c| {
        c["careTeam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["provider"]["identifier"]["value"].to_string())
            .collect()
    });
    let lines: HashSet<usize> = claims
        .iter()
        .map(|c| c["item"].as_array().unwrap().len())
        .collect();
    assert!(payments.len() > 20, "{payments:?}");
    assert!(diagnoses.len() > 10, "{diagnoses:?}");
    assert!(npis.len() > 5, "{npis:?}");
    assert!(lines.len() > 1, "{lines:?}");
    // The same request gives the same claims.
    let again = bundle(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?type=carrier&_count=50",
        &token,
    )
    .await;
    let strip = |mut v: Vec<Value>| {
        for c in &mut v {
            c["created"] = Value::Null;
        }
        v
    };
    assert_eq!(strip(resources(&again)), strip(claims));
}

#[tokio::test]
async fn institutional_pages_of_fifty_run_to_megabytes() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 29).await;
    for (types, at_least) in [
        ("inpatient,outpatient", 2_500_000),
        ("outpatient", 3_000_000),
        ("inpatient", 1_500_000),
        ("snf,hospice,hha", 1_500_000),
        ("carrier", 1_000_000),
        ("dme", 300_000),
        ("pde", 400_000),
        (
            "carrier,dme,hha,hospice,inpatient,outpatient,pde,snf",
            1_500_000,
        ),
    ] {
        let response = client()
            .get(format!(
                "{}/v2/fhir/ExplanationOfBenefit?type={types}&_count=50",
                sandbox.origin()
            ))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        let page: Value = serde_json::from_slice(&body).unwrap();
        let entries = page["entry"].as_array().map_or(0, Vec::len);
        eprintln!(
            "BBUser00029, type={types}, _count=50: {entries} of {} claims, {} bytes",
            page["total"],
            body.len()
        );
        assert_eq!(
            entries,
            page["total"].as_u64().unwrap().min(50) as usize,
            "{types}"
        );
        assert!(body.len() > at_least, "{types}: {} bytes", body.len());
    }
}
