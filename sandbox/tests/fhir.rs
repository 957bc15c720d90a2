//! The FHIR surface over real HTTP: reads and searches forced to the token's patient,
//! `_count` rules, and paging by `startIndex` with links on a foreign host.

mod common;

use std::collections::HashSet;

use common::*;
use connect_medicare_protocol::{BundleLinks, PageRequest};
use serde_json::{Value, json};

async fn bundle(sandbox: &connect_medicare_sandbox::Sandbox, path: &str, token: &str) -> Value {
    let response = get(sandbox, path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "application/fhir+json");
    json(response).await
}

#[tokio::test]
async fn searches_and_reads_are_forced_to_the_tokens_patient() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 2).await;
    let token = body["access_token"].as_str().unwrap();
    let me = body["patient"].as_str().unwrap();
    let other = "-20140000008330";

    let patients = bundle(&sandbox, &format!("/v2/fhir/Patient?_id={other}"), token).await;
    assert_eq!(patients["total"], 1);
    assert_eq!(patients["entry"][0]["resource"]["id"], me);

    let read = get(&sandbox, &format!("/v2/fhir/Patient/{me}"), token).await;
    assert_eq!(read.status(), 200);
    assert_eq!(json(read).await["name"][0]["family"], "Garcia");
    let foreign = get(&sandbox, &format!("/v2/fhir/Patient/{other}"), token).await;
    assert_eq!(foreign.status(), 404);
    assert_eq!(json(foreign).await, json!({"detail": "Not found."}));

    let coverage = bundle(
        &sandbox,
        &format!("/v2/fhir/Coverage?beneficiary=Patient/{other}"),
        token,
    )
    .await;
    assert_eq!(coverage["total"], 4);
    for entry in coverage["entry"].as_array().unwrap() {
        assert_eq!(
            entry["resource"]["beneficiary"]["reference"],
            format!("Patient/{me}").as_str()
        );
    }
    let part_a = get(&sandbox, &format!("/v2/fhir/Coverage/part-a-{me}"), token).await;
    assert_eq!(part_a.status(), 200);
    assert_eq!(
        get(
            &sandbox,
            &format!("/v2/fhir/Coverage/part-a-{other}"),
            token
        )
        .await
        .status(),
        404
    );

    let eobs = bundle(
        &sandbox,
        &format!("/v2/fhir/ExplanationOfBenefit/?patient={other}&unknown=1"),
        token,
    )
    .await;
    let first_id = eobs["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        eobs["entry"][0]["resource"]["patient"]["reference"],
        format!("Patient/{me}").as_str()
    );
    assert_eq!(
        get(
            &sandbox,
            &format!("/v2/fhir/ExplanationOfBenefit/{first_id}"),
            token
        )
        .await
        .status(),
        200
    );

    assert_eq!(
        get(&sandbox, "/v2/fhir/Observation", token).await.status(),
        404
    );
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", "not-a-token")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn count_rules_are_blue_buttons() {
    let sandbox = sandbox().await;
    let token = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 9).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let default = bundle(&sandbox, "/v2/fhir/ExplanationOfBenefit", &token).await;
    assert_eq!(default["entry"].as_array().unwrap().len(), 10);
    let fifty = bundle(&sandbox, "/v2/fhir/ExplanationOfBenefit?_count=50", &token).await;
    assert_eq!(fifty["entry"].as_array().unwrap().len(), 50);
    for (count, detail) in [
        ("51", "value must be at most 50"),
        ("500", "value must be at most 50"),
        // voluptuous's `Coerce(int)`.
        ("ten", "expected int"),
    ] {
        let response = get(
            &sandbox,
            &format!("/v2/fhir/ExplanationOfBenefit?_count={count}"),
            &token,
        )
        .await;
        assert_eq!(response.status(), 400, "{count}");
        assert_eq!(json(response).await, json!({"detail": detail}));
    }
    let invalid_type = get(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?type=carrier,claims",
        &token,
    )
    .await;
    assert_eq!(invalid_type.status(), 400);
    assert_eq!(
        json(invalid_type).await,
        json!({"detail": "the type parameter value is not valid"})
    );
    // The backend refuses a start past the results; Blue Button passes its diagnostics on.
    let past_the_end = get(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?startIndex=100000",
        &token,
    )
    .await;
    assert_eq!(past_the_end.status(), 400);
    let total = bundle(&sandbox, "/v2/fhir/ExplanationOfBenefit", &token).await["total"]
        .as_u64()
        .unwrap();
    assert_eq!(
        json(past_the_end).await,
        json!({"detail": format!("An error occurred contacting the upstream server:Value for startIndex (100000) must be less than than result size ({total})")})
    );
    // A search that finds nothing is a Bundle with no entry.
    let nothing = bundle(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?service-date=lt1990-01-01",
        &token,
    )
    .await;
    assert_eq!(nothing["total"], 0);
    assert!(nothing.get("entry").is_none(), "an empty page has no entry");
}

#[tokio::test]
async fn paging_through_hundreds_of_claims_by_start_index() {
    let sandbox = sandbox().await;
    // BBUser00009 has hundreds of claims.
    let token = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 9).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = HashSet::new();
    let mut path = "/v2/fhir/ExplanationOfBenefit?_count=50".to_owned();
    let mut pages = 0;
    let mut total = None;
    loop {
        let page = bundle(&sandbox, &path, &token).await;
        pages += 1;
        total = total.or(page["total"].as_u64());
        for entry in page["entry"].as_array().into_iter().flatten() {
            assert!(
                seen.insert(entry["resource"]["id"].as_str().unwrap().to_owned()),
                "no duplicates"
            );
        }
        for link in page["link"].as_array().unwrap() {
            let url = link["url"].as_str().unwrap();
            assert!(
                url.starts_with("https://prod-sbx.bfd.cms.example/v2/fhir/ExplanationOfBenefit"),
                "{url}"
            );
            assert!(!url.contains(sandbox.origin()));
        }
        let links = BundleLinks::from_bundle_json(page.to_string().as_bytes()).unwrap();
        match links.next_page().unwrap() {
            // The link's host is not ours: re-send the search with its startIndex.
            Some(PageRequest { start_index, count }) => {
                path = format!(
                    "/v2/fhir/ExplanationOfBenefit?_count={}&startIndex={start_index}",
                    count.unwrap()
                );
            }
            None => break,
        }
    }
    let total = total.unwrap() as usize;
    assert!(total >= 250, "{total}");
    assert_eq!(seen.len(), total);
    assert_eq!(pages, total.div_ceil(50));

    // The page plan from the first page's `last` link covers exactly the rest.
    let first = bundle(&sandbox, "/v2/fhir/ExplanationOfBenefit?_count=50", &token).await;
    let plan = BundleLinks::from_bundle_json(first.to_string().as_bytes())
        .unwrap()
        .page_plan()
        .unwrap()
        .unwrap();
    assert_eq!(plan.len(), pages - 1);
}

#[tokio::test]
async fn type_filter_and_links_carry_the_search() {
    let sandbox = sandbox().await;
    let token = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 19).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = bundle(&sandbox, "/v2/fhir/ExplanationOfBenefit?type=pde,https://bluebutton.cms.gov/resources/codesystem/eob-type|inpatient", &token).await;
    for entry in page["entry"].as_array().unwrap() {
        let id = entry["resource"]["id"].as_str().unwrap();
        assert!(
            id.starts_with("pde-") || id.starts_with("inpatient-"),
            "{id}"
        );
    }
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    assert!(next["url"].as_str().unwrap().contains("type=pde"));
}

#[tokio::test]
async fn scopes_gate_each_resource_and_metadata_is_public() {
    let sandbox = sandbox().await;
    let token = tokens(&sandbox, CLIENT_ID, "patient/Coverage.r", 4).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let search = get(&sandbox, "/v2/fhir/Coverage", &token).await;
    assert_eq!(search.status(), 403, ".r allows reads, not searches");
    let me = "-20140000008329";
    assert_eq!(
        get(&sandbox, &format!("/v2/fhir/Coverage/part-b-{me}"), &token)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&sandbox, "/v2/fhir/ExplanationOfBenefit", &token)
            .await
            .status(),
        403
    );
    let metadata = client()
        .get(format!("{}/v2/fhir/metadata", sandbox.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    let body = json(metadata).await;
    assert_eq!(body["resourceType"], "CapabilityStatement");
    assert!(
        body.to_string()
            .contains(&format!("{}/v2/o/authorize", sandbox.origin()))
    );
}

#[tokio::test]
async fn userinfo_is_not_a_fhir_view_and_refuses_a_fhir_accept() {
    let sandbox = sandbox().await;
    let token = token_for(&sandbox, 3).await;
    let url = format!("{}/v2/connect/userinfo", sandbox.origin());
    for (accept, status) in [
        (None, 200),
        (Some("application/json"), 200),
        (Some("*/*"), 200),
        (Some("application/fhir+json, application/json;q=0.5"), 200),
        (Some("application/fhir+json"), 406),
        (Some("text/html, application/json;q=0"), 406),
    ] {
        let mut request = client().get(&url).bearer_auth(&token);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{accept:?}");
        if status == 406 {
            assert_eq!(response.headers()["content-type"], "application/json");
            assert_eq!(
                json(response).await,
                json!({"detail": "Could not satisfy the request Accept header."})
            );
        }
    }
    // The negotiation comes before authentication, as in Django REST framework.
    let response = client()
        .get(&url)
        .header("accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
}
