//! US Core resources from a generic SMART server: which types are served (allow-lists and the
//! grant), which search parameters pass, and the patient compartment, checked on the way out
//! (the pinned search) and on the way back (what the server answered).

mod common;

use common::*;
use connect_medicare_protocol::{contract::ErrorCode, resources::ResourceType};
use serde_json::{Value, json};

/// Every entry's resource.
fn resources(reply: &Reply) -> Vec<Value> {
    reply.json()["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

/// The path and query of a link the broker wrote (`{APP_ORIGIN}/v1/…`).
fn own_path(url: &str) -> &str {
    &url[url.find("/v1/fhir/").expect("the broker's own link")..]
}

fn patient_of(resource: &Value) -> String {
    let element = if resource.get("patient").is_some() {
        "patient"
    } else {
        "subject"
    };
    resource[element]["reference"].as_str().unwrap().to_owned()
}

/// What [`connected`] starts: the sandbox, the broker (its setup holds the database) and a
/// browser connected to both, with the SMART face's patient.
struct Connected {
    sandbox: connect_medicare_sandbox::Sandbox,
    _setup: BrokerSetup,
    broker: Broker,
    browser: Client,
    patient: String,
}

/// A broker serving Medicare and the SMART face with `settings`, and a browser connected to
/// both as user 4 (the SMART face as user 4 too).
async fn connected(settings: &str) -> Connected {
    connected_as(settings, true).await
}

/// As [`connected`]; `with_patient`: whether the SMART connection has a patient in context.
async fn connected_as(settings: &str, with_patient: bool) -> Connected {
    let sandbox = sandbox_with(|c| c.admin = true).await;
    let (sandbox, setup, broker, mut browser, _) = signed_in_with(sandbox, 4, |setup, sandbox| {
        with_ehr_config(setup, sandbox, settings);
    })
    .await;
    connect_ehr(&mut browser, &sandbox, 4).await;
    let session = browser.get("/v1/session").await.json();
    let patient = session["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == "ehr")
        .unwrap()["patient"]
        .as_str()
        .map(str::to_owned);
    assert_eq!(patient.is_some(), with_patient, "{session}");
    let patient = patient.unwrap_or_default();
    Connected {
        sandbox,
        _setup: setup,
        broker,
        browser,
        patient,
    }
}

const US_CORE_SCOPES: &str = r#"scopes = "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/AllergyIntolerance.rs patient/Immunization.rs patient/MedicationRequest.rs""#;

#[tokio::test]
async fn the_types_a_grant_allows_are_searched_for_the_patient_with_us_core_parameters() {
    let Connected {
        mut browser,
        patient,
        sandbox: _sandbox,
        broker: _broker,
        _setup,
    } = connected(US_CORE_SCOPES).await;
    let me = format!("Patient/{patient}");
    // Every type the grant names, pinned to the patient.
    for (resource, count) in [
        ("Observation", 32),
        ("Condition", 5),
        ("AllergyIntolerance", 2),
        ("Immunization", 4),
        ("MedicationRequest", 3),
    ] {
        let reply = browser
            .get(&format!("/v1/fhir/ehr/{resource}?_count=100"))
            .await;
        assert_eq!(reply.status, 200, "{resource}: {:?}", reply.error());
        let found = resources(&reply);
        assert_eq!(found.len(), count, "{resource}");
        assert!(found.iter().all(|r| patient_of(r) == me), "{resource}");
    }
    // US Core's parameters reach the server and narrow the search.
    let labs = browser
        .get("/v1/fhir/ehr/Observation?category=laboratory&_count=100")
        .await;
    assert_eq!(resources(&labs).len(), 16);
    let a1c = browser
        .get("/v1/fhir/ehr/Observation?code=http://loinc.org%7C4548-4&_sort=-date&_count=100")
        .await;
    let dates: Vec<String> = resources(&a1c)
        .iter()
        .map(|r| r["effectiveDateTime"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dates.len(), 8);
    assert!(
        dates.windows(2).all(|w| w[0] > w[1]),
        "newest first: {dates:?}"
    );
    let since = &dates[1][..10];
    let recent = browser
        .get(&format!(
            "/v1/fhir/ehr/Observation?code=4548-4&date=ge{since}&date=le2100-01-01"
        ))
        .await;
    assert_eq!(resources(&recent).len(), 2);
    let active = browser
        .get("/v1/fhir/ehr/Condition?clinical-status=active&category=problem-list-item")
        .await;
    assert_eq!(resources(&active).len(), 3);
    // A read of the patient's own resource.
    let id = resources(&active)[0]["id"].as_str().unwrap().to_owned();
    let read = browser.get(&format!("/v1/fhir/ehr/Condition/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["id"], id.as_str());
    // Everything else about a search is refused before it leaves, each with its code.
    for (query, code) in [
        ("Observation?patient=someone-else", ErrorCode::NotAllowed),
        ("Observation?subject=Patient/x", ErrorCode::NotAllowed),
        ("Observation?code:text=glucose", ErrorCode::NotAllowed),
        (
            "Observation?_include=Observation:subject",
            ErrorCode::NotAllowed,
        ),
        (
            "Observation?_revinclude=Provenance:target",
            ErrorCode::NotAllowed,
        ),
        ("Observation?_has:Group:member:_id=1", ErrorCode::NotAllowed),
        ("Observation?onset-date=ge2020", ErrorCode::NotAllowed),
        ("Condition?date=ge2020", ErrorCode::NotAllowed),
        ("Observation?date=yesterday", ErrorCode::InvalidRequest),
        (
            "Observation?date=ge2020&date=le2021&date=ge2019",
            ErrorCode::InvalidRequest,
        ),
        (
            "Observation?category=laboratory&category=vital-signs",
            ErrorCode::InvalidRequest,
        ),
        (
            "Observation?code=a%0D%0AX-Evil:%201",
            ErrorCode::InvalidRequest,
        ),
        ("Observation?_sort=code", ErrorCode::InvalidRequest),
        ("Observation?_count=101", ErrorCode::InvalidRequest),
        (
            "MedicationRequest?_include=MedicationRequest:requester",
            ErrorCode::InvalidRequest,
        ),
        ("Medication?code=x", ErrorCode::NotAllowed),
        ("Binary", ErrorCode::NotAllowed),
        ("observation", ErrorCode::NotAllowed),
    ] {
        let reply = browser.get(&format!("/v1/fhir/ehr/{query}")).await;
        assert_eq!(reply.code(), code, "{query}: {:?}", reply.error());
    }
    // A value that smuggles a parameter stays one value: the server sees no second patient.
    let smuggled = browser
        .get("/v1/fhir/ehr/Observation?category=laboratory%26patient%3D-19990000000001")
        .await;
    assert_eq!(smuggled.status, 200);
    assert!(resources(&smuggled).is_empty());
    // The allowed _include passes, and the Medications it brings are relayed with the requests.
    let included = browser
        .get("/v1/fhir/ehr/MedicationRequest?_include=MedicationRequest:medication&status=active")
        .await;
    let kinds: Vec<String> = resources(&included)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "MedicationRequest/mrq-4-0",
            "MedicationRequest/mrq-4-1",
            "Medication/med-860975",
            "Medication/med-314076"
        ]
    );
}

#[tokio::test]
async fn types_outside_the_grant_answer_insufficient_scope_before_reaching_the_server() {
    // The SMART provider's default scopes: Patient, Coverage and ExplanationOfBenefit.
    let Connected {
        broker,
        mut browser,
        sandbox: _sandbox,
        patient: _patient,
        _setup,
    } = connected("").await;
    let fhir_calls = r#"cm_broker_upstream_seconds_count{call="fhir"}"#;
    let before = metric(&broker, fhir_calls).await;
    for path in [
        "Observation",
        "Condition?clinical-status=active",
        "Immunization/imm-4-0",
    ] {
        let reply = browser.get(&format!("/v1/fhir/ehr/{path}")).await;
        assert_eq!(reply.code(), ErrorCode::InsufficientScope, "{path}");
        assert!(
            reply.error().message.contains("patient/"),
            "says which scope: {:?}",
            reply.error()
        );
    }
    assert_eq!(metric(&broker, fhir_calls).await, before);
    // Medicare's three types are unchanged: Observation is not one of them.
    assert_eq!(
        browser.get("/v1/fhir/medicare/Observation").await.code(),
        ErrorCode::NotAllowed
    );
}

#[tokio::test]
async fn read_and_search_allow_lists_are_per_provider_and_ask_for_their_scopes() {
    let Connected {
        mut browser,
        patient,
        sandbox: _sandbox,
        broker: _broker,
        _setup,
    } = connected("read = [\"Patient\", \"Condition\"]\nsearch = [\"Patient\", \"Observation\"]")
        .await;
    let config = browser.get("/v1/config").await.json();
    let ehr = config["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "ehr")
        .unwrap()
        .clone();
    let scopes = match &ehr["scopes"] {
        Value::String(s) => s.clone(),
        list => list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" "),
    };
    for scope in [
        "launch/patient",
        "offline_access",
        "patient/Patient.rs",
        "patient/Condition.r",
        "patient/Observation.s",
    ] {
        assert!(scopes.split(' ').any(|s| s == scope), "{scope} in {scopes}");
    }
    assert!(!scopes.contains("ExplanationOfBenefit"), "{scopes}");
    assert_eq!(
        browser.get("/v1/fhir/ehr/Observation").await.status,
        200,
        "on the search list"
    );
    for (path, code) in [
        ("Condition", ErrorCode::NotAllowed),
        ("Observation/obs-4-0", ErrorCode::NotAllowed),
        ("ExplanationOfBenefit", ErrorCode::NotAllowed),
        ("Immunization", ErrorCode::NotAllowed),
    ] {
        let reply = browser.get(&format!("/v1/fhir/ehr/{path}")).await;
        assert_eq!(reply.code(), code, "{path}");
        assert!(
            reply.error().message.contains("allow-list"),
            "{path}: {:?}",
            reply.error()
        );
    }
    // Condition is on the read list: granted `.r`, read by id.
    let read = browser.get("/v1/fhir/ehr/Condition/cnd-4-0").await;
    assert_eq!(read.status, 200, "{:?}", read.error());
    assert_eq!(
        read.json()["subject"]["reference"],
        format!("Patient/{patient}")
    );
}

#[tokio::test]
async fn what_a_server_answers_about_another_patient_never_reaches_the_browser() {
    let Connected {
        sandbox,
        mut browser,
        broker: _broker,
        patient: _patient,
        _setup,
    } = connected(US_CORE_SCOPES).await;
    // Another patient's resource, by id: the server refuses it…
    let other = "obs-5-0";
    assert_eq!(
        browser
            .get(&format!("/v1/fhir/ehr/Observation/{other}"))
            .await
            .code(),
        ErrorCode::NotFound
    );
    // …and when it does not (a server that ignores the patient), the broker does.
    set_faults(&sandbox, json!({"leak_patients": true})).await;
    let leaked = browser
        .get(&format!("/v1/fhir/ehr/Observation/{other}"))
        .await;
    assert_eq!(leaked.code(), ErrorCode::NotFound);
    assert!(!String::from_utf8_lossy(&leaked.body).contains(other));
    // A search that mixes another patient in fails whole, with nothing of it relayed.
    for path in [
        "Observation?_count=100",
        "Condition",
        "Immunization?status=completed",
    ] {
        let reply = browser.get(&format!("/v1/fhir/ehr/{path}")).await;
        assert_eq!(reply.code(), ErrorCode::UpstreamError, "{path}");
        assert!(!String::from_utf8_lossy(&reply.body).contains("resourceType"));
    }
    // …and when the other patient shows up only on a later page, reached through the broker's
    // sealed links, that page fails the same way.
    let mut reply = browser.get("/v1/fhir/ehr/Observation?_count=10").await;
    let mut pages = 1;
    while reply.status == 200 {
        assert!(
            resources(&reply)
                .iter()
                .all(|r| patient_of(r) == resources(&reply)[0]["subject"]["reference"])
        );
        let next = reply.json()["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned())
            .expect("the leak is found before the last page");
        reply = browser.get(own_path(&next)).await;
        pages += 1;
    }
    assert_eq!(reply.code(), ErrorCode::UpstreamError);
    assert_eq!(
        pages, 4,
        "the own 32 fill three pages of 10; the fourth mixes another patient in"
    );
    // The patient's own read still passes.
    assert_eq!(
        browser.get("/v1/fhir/ehr/Observation/obs-4-0").await.status,
        200
    );
    set_faults(&sandbox, json!({"leak_patients": false})).await;
    assert_eq!(browser.get("/v1/fhir/ehr/Condition").await.status, 200);
}

#[tokio::test]
async fn without_a_patient_in_context_no_patient_data_is_read() {
    // A grant without `launch/patient`: the token response names no patient.
    let Connected {
        mut browser,
        patient: _patient,
        sandbox: _sandbox,
        broker: _broker,
        _setup,
    } = connected_as(
        r#"scopes = "openid fhirUser offline_access patient/Observation.rs patient/Medication.rs""#,
        false,
    )
    .await;
    for path in [
        "Observation/obs-4-0",
        "Observation/obs-5-0",
        "Observation?category=laboratory",
    ] {
        let reply = browser.get(&format!("/v1/fhir/ehr/{path}")).await;
        assert_eq!(reply.code(), ErrorCode::NotAllowed, "{path}");
        assert!(reply.error().message.contains("no patient"), "{path}");
    }
    // A resource outside any compartment needs no patient.
    assert_eq!(
        browser
            .get("/v1/fhir/ehr/Medication/med-860975")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn hostile_paths_and_links_hold_for_every_new_type() {
    let Connected {
        broker,
        browser,
        sandbox: _sandbox,
        patient: _patient,
        _setup,
    } = connected(US_CORE_SCOPES).await;
    for resource in [
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "Immunization",
        "MedicationRequest",
        "Medication",
    ] {
        // A sealed-link forgery is refused as one by the searchable types; Medication is never
        // searched at all.
        let forged = if resource == "Medication" {
            "not_allowed"
        } else {
            "invalid_request"
        };
        for (tail, code) in [
            ("/%2e%2e", "not_allowed"),
            ("/%2E", "not_allowed"),
            ("/..%2F..%2FPatient", "not_allowed"),
            ("/obs-4-0%2F_history", "not_allowed"),
            ("/x%00y", "not_allowed"),
            ("?_page=https%3A%2F%2Fevil.example%2Ffhir", forged),
            ("?_getpages=abc&_getpagesoffset=0", "not_allowed"),
            ("?patient=-19990000000001", "not_allowed"),
        ] {
            let path = format!("/v1/fhir/ehr/{resource}{tail}");
            let (status, body) = raw_get(&broker.base, &path, &browser).await;
            assert!(
                (400..500).contains(&status)
                    && body.contains(&format!("\"code\":\"{code}\""))
                    && !body.contains("resourceType"),
                "{path}: {status} {body}"
            );
        }
    }
}

#[test]
fn the_guide_lists_every_type_as_the_broker_serves_it() {
    let guide = include_str!("../../docs/smart-servers.md");
    let rows: Vec<Vec<String>> = guide
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| type "))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), ResourceType::all().len(), "one row per type");
    for t in ResourceType::all() {
        let row = rows
            .iter()
            .find(|r| r[0] == t.name())
            .unwrap_or_else(|| panic!("{} is missing from docs/smart-servers.md", t.name()));
        match t.pin("x") {
            None => assert_eq!(row[1], "read by id only", "{}", t.name()),
            Some((name, _)) => {
                assert!(
                    row[1].starts_with(&format!("`{name}`")),
                    "{}: {}",
                    t.name(),
                    row[1]
                );
            }
        }
        if let Some(element) = t.patient_element() {
            assert_eq!(row[2], format!("`{element}`"), "{}", t.name());
        }
        let params: Vec<&str> = t.param_names().collect();
        assert_eq!(row[3], params.join(", "), "{} parameters", t.name());
        assert_eq!(row[4], t.sort_keys().join(", "), "{} sort keys", t.name());
        assert_eq!(row[5], t.includes().join(", "), "{} includes", t.name());
    }
}
