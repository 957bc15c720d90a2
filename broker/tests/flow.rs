//! The whole flow over real HTTP against the sandbox: config → register flow → sign in at
//! the sandbox's pages → complete → session → FHIR reads with paging (links on a foreign
//! host) → refresh by aging tokens → disconnect, which revokes upstream.

mod common;

use common::*;
use connect_medicare_protocol::{
    AuthorizeRedirect, BundleLinks, PageRequest,
    contract::{ConfigResponse, ConnectionStatus, ErrorCode, SessionResponse},
};
use serde_json::json;

#[tokio::test]
async fn the_whole_flow_from_config_to_disconnect() {
    let (sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;

    // Config: the provider, its client id and redirect URI, and no secret.
    let reply = browser.get("/v1/config").await;
    assert_eq!(reply.status, 200);
    assert!(!String::from_utf8_lossy(&reply.body).contains(CLIENT_SECRET));
    let config: ConfigResponse = serde_json::from_slice(&reply.body).unwrap();
    let info = &config.providers[0];
    assert_eq!(info.id.as_str(), "medicare");
    assert_eq!(info.client_id.as_str(), CLIENT_ID);
    assert_eq!(info.redirect_uri.as_str(), REDIRECT_URI);
    assert_eq!(
        info.authorization_endpoint,
        format!("{}/v2/o/authorize/", sandbox.origin())
    );
    assert!(info.authorize_post);

    // Register a flow: the authorize request passes the SDK's own validation.
    let flow = start_flow(&mut browser, "get").await;
    flow.authorize
        .validate(&info.expectations(&flow.state, &flow.verifier.challenge()))
        .unwrap();
    assert!(browser.cookies.contains_key("__Host-cm-flow"));

    // Sign in and consent at the sandbox, come back with a code, complete.
    let callback = sign_in(
        &sandbox,
        &flow,
        9,
        connect_medicare_sandbox::driver::Consent::ALLOW,
    )
    .await;
    assert!(callback.starts_with(REDIRECT_URI));
    let reply = complete(&mut browser, &flow, &code_from(&callback, &flow)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let session: SessionResponse = serde_json::from_slice(&reply.body).unwrap();
    let connection = &session.connections[0];
    assert_eq!(connection.status, ConnectionStatus::Connected);
    assert_eq!(
        connection.patient.as_ref().unwrap().as_str(),
        "-20140000008334"
    );
    assert!(connection.demographics_shared);
    assert!(connection.grant_expires_at.is_some());
    assert!(browser.cookies.contains_key("__Host-cm-session"));
    assert!(
        !browser.cookies.contains_key("__Host-cm-flow"),
        "the flow cookie is cleared"
    );
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    let (access, refresh, generation) = stored_tokens(&broker, &browser).await;
    assert!(!body.contains(&access), "no token reaches the browser");
    assert_eq!(generation, 1);

    // GET /v1/session says the same.
    let again: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert_eq!(again, session);

    // FHIR reads: Patient, Coverage, every EOB page by startIndex (links name a foreign host).
    let patient = browser.get("/v1/fhir/medicare/Patient").await;
    assert_eq!(patient.status, 200);
    assert_eq!(
        patient.json()["entry"][0]["resource"]["id"],
        "-20140000008334"
    );
    let coverage = browser.get("/v1/fhir/medicare/Coverage").await.json();
    assert_eq!(coverage["total"], 4);
    let mut path = "/v1/fhir/medicare/ExplanationOfBenefit?_count=50".to_owned();
    let mut seen = 0;
    let total = loop {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let bundle = page.json();
        seen += bundle["entry"].as_array().map_or(0, Vec::len);
        let links = BundleLinks::from_bundle_json(&page.body).unwrap();
        for link in bundle["link"].as_array().unwrap() {
            assert!(!link["url"].as_str().unwrap().contains(&broker.base));
        }
        match links.next_page().unwrap() {
            Some(PageRequest { start_index, count }) => {
                path = format!(
                    "/v1/fhir/medicare/ExplanationOfBenefit?_count={}&startIndex={start_index}",
                    count.unwrap()
                );
            }
            None => break bundle["total"].as_u64().unwrap() as usize,
        }
    };
    assert!(total > 200);
    assert_eq!(seen, total);

    // Age the access token past expiry on both sides: the broker refreshes before reading.
    broker.advance(3601);
    sandbox.clock().advance(3601);
    let eob = browser.get("/v1/fhir/medicare/ExplanationOfBenefit").await;
    assert_eq!(eob.status, 200);
    let (new_access, new_refresh, generation) = stored_tokens(&broker, &browser).await;
    assert_eq!(generation, 2, "exactly one refresh");
    assert_ne!(new_access, access);
    // The spent refresh token is dead upstream (rotation).
    let (status, _) = sandbox_refresh(&sandbox, refresh.as_deref().unwrap()).await;
    assert_eq!(status, 400);

    // The token dies upstream while the broker thinks it is fresh: 401 → refresh → replay.
    sandbox.clock().advance(3601);
    let eob = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(eob.status, 200);
    assert_eq!(stored_tokens(&broker, &browser).await.2, 3);

    // Disconnect: revoked upstream (the grant is gone), local data deleted, cookie cleared.
    let (_, current_refresh, _) = stored_tokens(&broker, &browser).await;
    let reply = browser.post("/v1/session/disconnect", json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"disconnected": ["medicare"], "revocations": [{"provider": "medicare", "status": "revoked"}]})
    );
    assert!(!browser.cookies.contains_key("__Host-cm-session"));
    let (status, body) = sandbox_refresh(&sandbox, current_refresh.as_deref().unwrap()).await;
    assert_eq!(status, 403, "the grant was deleted upstream: {body}");
    assert!(new_refresh.is_some());
    let session: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert!(session.connections.is_empty());
    let gone = browser.get("/v1/fhir/medicare/Patient").await;
    assert_eq!(gone.code(), ErrorCode::NotConnected);
    // Idempotent.
    let reply = browser.post("/v1/session/disconnect", json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"disconnected": [], "revocations": []}));
}

#[tokio::test]
async fn post_authorize_works_end_to_end() {
    let (sandbox, _setup, _broker, mut browser) = stack(sandbox().await).await;
    let flow = start_flow(&mut browser, "post").await;
    match &flow.authorize {
        AuthorizeRedirect::Post { action, fields } => {
            assert_eq!(action, &format!("{}/v2/o/authorize/", sandbox.origin()));
            assert!(
                fields
                    .iter()
                    .any(|(k, v)| k == "code_challenge_method" && v == "S256")
            );
        }
        other => panic!("{other:?}"),
    }
    let callback = sign_in(
        &sandbox,
        &flow,
        1,
        connect_medicare_sandbox::driver::Consent::ALLOW,
    )
    .await;
    assert_eq!(
        complete(&mut browser, &flow, &code_from(&callback, &flow))
            .await
            .status,
        200
    );
}
