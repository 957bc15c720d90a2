//! Every Blue Button v2 response in `fixtures/bb2-samples/` is a fixture that the
//! protocol's parsers read: Bundles give their paging plan (links on a foreign host), the
//! OperationOutcome maps to an error, resources and userinfo carry valid FHIR patient ids.

use std::{fs, path::PathBuf};

use connect_medicare_protocol::{
    BundleLinks, ErrorShape, OAuthError, OAuthErrorCode, PageRequest, PatientId,
};
use serde_json::Value;

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/bb2-samples")
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(samples_dir())
        .expect("fixtures/bb2-samples is part of the repository")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_parses() {
    let samples = samples();
    // CMS's twelve, and the project's Part D event in their shape (fixtures/README.md).
    assert_eq!(
        samples.len(),
        13,
        "the sample set changed: review this test"
    );
    for (name, body) in &samples {
        let json: Value = serde_json::from_slice(body).unwrap();
        match json.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {
                let links = BundleLinks::from_bundle_json(body).unwrap();
                assert!(links.entries() > 0, "{name}");
                // BB2's samples have no `total`, one page, and links on http://testserver.
                assert_eq!(links.total(), None, "{name}");
                assert_eq!(links.next_page().unwrap(), None, "{name}");
                assert_eq!(links.page_plan().unwrap(), Some(vec![]), "{name}");
                for link in json["link"].as_array().unwrap() {
                    let url = link["url"].as_str().unwrap();
                    assert!(url.starts_with("http://testserver/"), "{name}: {url}");
                    let page = PageRequest::from_link(url).unwrap();
                    assert_eq!((page.start_index, page.count), (0, Some(10)), "{name}");
                }
            }
            Some("OperationOutcome") => {
                let error = OAuthError::from_response(500, Some("application/fhir+json"), body);
                assert_eq!(error.shape(), ErrorShape::OperationOutcome, "{name}");
                assert_eq!(error.code(), &OAuthErrorCode::Unspecified, "{name}");
                assert!(
                    error
                        .description()
                        .unwrap()
                        .contains("Unsupported ID pattern"),
                    "{name}"
                );
            }
            Some("Patient") => {
                PatientId::new(json["id"].as_str().unwrap()).unwrap();
            }
            Some("Coverage") => {
                let beneficiary = json["beneficiary"]["reference"].as_str().unwrap();
                let id = beneficiary.strip_prefix("Patient/").unwrap();
                PatientId::new(id).unwrap();
            }
            Some("ExplanationOfBenefit") => {
                let patient = json["patient"]["reference"].as_str().unwrap();
                PatientId::new(patient.strip_prefix("Patient/").unwrap()).unwrap();
            }
            Some("CapabilityStatement") => {
                assert!(
                    json["fhirVersion"].as_str().unwrap().starts_with("4.0."),
                    "{name}"
                );
            }
            Some(other) => panic!("{name}: unexpected resourceType {other}"),
            None => {
                // userinfo: not FHIR, but its `patient` is the beneficiary's FHIR id.
                assert_eq!(name, "userinfo_v2.json");
                let patient = PatientId::new(json["patient"].as_str().unwrap()).unwrap();
                assert_eq!(json["sub"].as_str(), Some(patient.as_str()));
            }
        }
    }
}
