//! A generic SMART App Launch provider beside Medicare in one session: discovery fetched at
//! start, POST authorize, refresh tokens via offline_access, RFC 7009 on disconnect.

mod common;

use common::*;
use connect_medicare_protocol::{
    ProviderKind,
    contract::{ConfigResponse, ErrorCode, SessionResponse},
};
use connect_medicare_sandbox::driver::Consent;
use serde_json::json;

#[tokio::test]
async fn medicare_and_a_smart_server_in_one_session() {
    let (sandbox, _setup, broker, mut browser) = stack_with(sandbox().await, with_ehr).await;

    let config: ConfigResponse =
        serde_json::from_slice(&browser.get("/v1/config").await.body).unwrap();
    let ehr = config
        .providers
        .iter()
        .find(|p| p.id.as_str() == "ehr")
        .unwrap();
    assert_eq!(ehr.kind, ProviderKind::Smart);
    assert_eq!(ehr.aud.as_str(), sandbox.smart_fhir_base());
    assert!(ehr.scopes.to_string().contains("offline_access"));

    connect(&mut browser, &sandbox, 16).await;
    let flow = start_flow_for(&mut browser, "ehr", "post").await;
    flow.authorize
        .validate(&ehr.expectations(&flow.state, &flow.verifier.challenge()))
        .unwrap();
    let callback = sign_in(&sandbox, &flow, 16, Consent::ALLOW).await;
    let code = code_from(&callback, &flow);
    assert!(
        code.len() > 800,
        "a signed code, as SMART's reference server issues"
    );
    let reply = complete_callback(&mut browser, &flow, &callback).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let session: SessionResponse = serde_json::from_slice(&reply.body).unwrap();
    let providers: Vec<&str> = session
        .connections
        .iter()
        .map(|c| c.provider.as_str())
        .collect();
    assert_eq!(providers, ["ehr", "medicare"]);

    // Reads from both.
    assert_eq!(
        browser
            .get("/v1/fhir/ehr/ExplanationOfBenefit?_count=5")
            .await
            .status,
        200
    );
    assert_eq!(
        browser
            .get("/v1/fhir/medicare/ExplanationOfBenefit?_count=5")
            .await
            .status,
        200
    );
    assert_eq!(
        browser.get("/v1/userinfo/ehr").await.status,
        404,
        "no userinfo advertised"
    );

    // Refresh on the SMART side works through offline_access.
    broker.advance(3601);
    sandbox.clock().advance(3601);
    assert_eq!(browser.get("/v1/fhir/ehr/Coverage").await.status, 200);

    // Disconnect one: the other stays.
    let reply = browser
        .post("/v1/session/disconnect", json!({"provider": "ehr"}))
        .await;
    assert_eq!(
        reply.json(),
        json!({"disconnected": ["ehr"], "revocations": [{"provider": "ehr", "status": "revoked"}]})
    );
    let session: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    let providers: Vec<&str> = session
        .connections
        .iter()
        .map(|c| c.provider.as_str())
        .collect();
    assert_eq!(providers, ["medicare"]);
    assert!(browser.cookies.contains_key("__Host-cm-session"));
}

#[tokio::test]
async fn a_smart_server_that_cannot_be_discovered_stops_the_broker_at_start() {
    let sandbox = sandbox().await;
    let mut setup = BrokerSetup::new(&sandbox);
    setup.toml.more_providers = smart_provider(
        "ehr",
        "Gone",
        &format!("{}/nowhere/fhir/", sandbox.origin()),
        "x",
        "",
    );
    let config = setup.config();
    let store = std::sync::Arc::new(connect_medicare_broker::MemoryStore::new());
    let clock = std::sync::Arc::new(connect_medicare_broker::SystemClock);
    let error = connect_medicare_broker::AppState::new(std::sync::Arc::new(config), store, clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("providers.ehr"), "{error}");
    assert!(!error.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn without_a_refresh_token_the_access_token_serves_until_it_expires() {
    // No offline_access: the SMART server gives no refresh token.
    let (sandbox, _setup, broker, mut browser) = stack_with(sandbox().await, |setup, sandbox| {
        with_ehr_config(
            setup,
            sandbox,
            "scopes = \"openid launch/patient patient/Patient.rs patient/Coverage.rs\"",
        );
    })
    .await;
    connect_ehr(&mut browser, &sandbox, 17).await;

    // Half a minute before the hour is out (inside the broker's 60 s refresh skew), the token
    // still works: it is served, not given up.
    broker.advance(3600 - 30);
    sandbox.clock().advance(3600 - 30);
    assert_eq!(browser.get("/v1/fhir/ehr/Coverage").await.status, 200);
    // Once it has expired, the user reconnects.
    broker.advance(31);
    sandbox.clock().advance(31);
    assert_eq!(
        browser.get("/v1/fhir/ehr/Coverage").await.code(),
        connect_medicare_protocol::contract::ErrorCode::ReconnectRequired
    );
}

/// A server that reads HTTP Basic credentials without form-decoding them (SMART's reference
/// server), and a secret with characters form-encoding changes: the RFC's encoded Basic fails
/// and the operator is told why; the plain Basic form and client_secret_post both sign in.
#[tokio::test]
async fn client_auth_per_provider_and_a_refusal_that_names_its_likely_cause() {
    const ODD_ID: &str = "odd-client";
    const ODD_SECRET: &str = "s3cr+t/=x";
    let sandbox = sandbox_with(|c| {
        c.apps.push(connect_medicare_sandbox::AppConfig::new(
            ODD_ID,
            ODD_SECRET,
            REDIRECT_URI,
        ));
        c.basic_auth_unencoded = true;
    })
    .await;
    for (client_auth, signs_in) in [
        (None, false),
        (Some("client_secret_basic_unencoded"), true),
        (Some("client_secret_post"), true),
    ] {
        let logs = Capture::default();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish(),
        );
        let mut setup = BrokerSetup::new(&sandbox);
        let client_auth_line =
            client_auth.map_or(String::new(), |a| format!("client_auth = \"{a}\""));
        setup.toml.more_providers = smart_provider(
            "odd",
            "Odd EHR",
            &sandbox.smart_fhir_base(),
            ODD_ID,
            &format!("client_secret = \"{ODD_SECRET}\"\n{client_auth_line}"),
        );
        let broker = Broker::start(&setup).await;
        let mut browser = Client::new(&broker);
        let flow = start_flow_for(&mut browser, "odd", "get").await;
        let callback = sign_in(&sandbox, &flow, 18, Consent::ALLOW).await;
        let reply = complete_callback(&mut browser, &flow, &callback).await;
        if signs_in {
            assert_eq!(reply.status, 200, "{client_auth:?}");
        } else {
            assert_eq!(
                reply.code(),
                connect_medicare_protocol::contract::ErrorCode::UpstreamError
            );
            assert!(
                reply.error().message.contains("credentials"),
                "{}",
                reply.error().message
            );
            assert!(
                logs.contains("client_secret_basic_unencoded"),
                "the log names the likely cause: {}",
                logs.text()
            );
            assert!(!logs.contains(ODD_SECRET), "{}", logs.text());
        }
    }
}

/// RFC 9207: the SMART face advertises `iss` in its callbacks, so a completion without it, or
/// with another server's, is refused before the code is sent anywhere (the mix-up defence).
#[tokio::test]
async fn a_callback_without_the_servers_iss_is_refused() {
    let (sandbox, _setup, _broker, mut browser) = stack_with(sandbox().await, with_ehr).await;
    let issuer = format!("{}/smart", sandbox.origin());
    for iss in [
        None,
        Some("https://evil.example/smart"),
        Some(issuer.as_str()),
    ] {
        let flow = start_flow_for(&mut browser, "ehr", "get").await;
        let callback = sign_in(&sandbox, &flow, 19, Consent::ALLOW).await;
        let sent = url_param(&callback, "iss");
        assert_eq!(
            sent.as_deref(),
            Some(issuer.as_str()),
            "the server sends its iss"
        );
        let reply = complete_with(&mut browser, &flow, &code_from(&callback, &flow), iss).await;
        if iss == Some(issuer.as_str()) {
            assert_eq!(reply.status, 200);
        } else {
            assert_eq!(
                reply.code(),
                connect_medicare_protocol::contract::ErrorCode::InvalidRequest,
                "{iss:?}"
            );
            assert!(
                reply.error().message.contains("RFC 9207"),
                "{}",
                reply.error().message
            );
        }
    }
}

/// RFC 9207 §2.4: two providers naming the same issuer could not be told apart by `iss`, so the
/// broker refuses to start with them.
#[tokio::test]
async fn two_providers_with_one_issuer_are_refused() {
    let sandbox = sandbox().await;
    let mut setup = BrokerSetup::new(&sandbox);
    with_ehr(&mut setup, &sandbox);
    let twin = setup.toml.more_providers.replace(
        r#"id = "ehr"
name = "Example EHR""#,
        r#"id = "ehr-twin"
name = "Example EHR again"
client_secret = "another-secret""#,
    );
    setup.toml.more_providers.push_str(&twin);
    let started = connect_medicare_broker::AppState::new(
        std::sync::Arc::new(setup.config()),
        std::sync::Arc::new(connect_medicare_broker::MemoryStore::new()),
        std::sync::Arc::new(connect_medicare_broker::SystemClock),
    )
    .await;
    let Err(refused) = started else {
        panic!("the broker refuses two providers with one issuer");
    };
    let text = refused.to_string();
    assert!(text.contains("same issuer"), "{text}");
    assert!(text.contains("ehr") && text.contains("ehr-twin"), "{text}");
}

/// The path and query of a link the broker wrote (`{APP_ORIGIN}/v1/…`).
fn own_path(url: &str) -> &str {
    let at = url
        .find("/v1/fhir/")
        .unwrap_or_else(|| panic!("not the broker's link: {url}"));
    &url[at..]
}

#[tokio::test]
async fn opaque_paging_links_are_sealed_for_the_session_that_received_them() {
    let (sandbox, _setup, broker, mut alice, _) =
        signed_in_with(sandbox().await, 16, with_ehr).await;
    connect_ehr(&mut alice, &sandbox, 16).await;

    // The emulator's SMART face pages as HAPI FHIR does; the broker relays its own links.
    let first = alice
        .get("/v1/fhir/ehr/ExplanationOfBenefit?_count=5")
        .await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let first = first.json();
    let total = first["total"].as_u64().unwrap();
    assert!(total > 10, "enough claims to page: {total}");
    let next_of = |bundle: &serde_json::Value| {
        bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned())
    };
    let next = next_of(&first).expect("a next link");
    assert!(
        next.contains("/v1/fhir/ehr/ExplanationOfBenefit?_page=") && !next.contains("getpages"),
        "{next}"
    );

    // Every page, one after another, until the last: every claim once.
    let mut ids: Vec<String> = Vec::new();
    let mut bundle = first.clone();
    let mut link = Some(next.clone());
    loop {
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            ids.push(entry["resource"]["id"].as_str().unwrap().to_owned());
        }
        let Some(url) = link.take() else { break };
        let reply = alice.get(own_path(&url)).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        // No search id reaches the browser: the server's own links (`self` carries one on
        // these pages) are dropped, and next and previous are the broker's.
        assert!(!String::from_utf8_lossy(&reply.body).contains("getpages"));
        bundle = reply.json();
        link = next_of(&bundle);
    }
    // The second page's previous link is sealed too, and leads back to the first page.
    let second = alice.get(own_path(&next)).await.json();
    let previous = second["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "previous")
        .map(|l| l["url"].as_str().unwrap().to_owned())
        .expect("a previous link");
    assert!(previous.contains("?_page="), "{previous}");
    let entry_ids = |bundle: &serde_json::Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let back = alice.get(own_path(&previous)).await.json();
    assert!(
        entry_ids(&back) == entry_ids(&first),
        "the previous page is the first"
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len() as u64, unique.len()), (total, ids.len()));

    // Another session, connected to the same server as another beneficiary, cannot replay it.
    let mut mallory = Client::new(&broker);
    connect_ehr(&mut mallory, &sandbox, 17).await;
    let replayed = mallory.get(own_path(&next)).await;
    assert_eq!(replayed.code(), ErrorCode::InvalidRequest);
    // Nor can the browser name an upstream URL, a search id, or another resource's link.
    let base = sandbox.smart_fhir_base().trim_end_matches('/').to_owned();
    let sealed = next.split("_page=").nth(1).unwrap();
    let forged = form_urlencoded::byte_serialize(
        format!("{base}/ExplanationOfBenefit?patient=-10000000000017").as_bytes(),
    )
    .collect::<String>();
    for (path, code) in [
        (
            format!("/v1/fhir/ehr/ExplanationOfBenefit?_page={forged}"),
            ErrorCode::InvalidRequest,
        ),
        (
            format!("/v1/fhir/ehr/Coverage?_page={sealed}"),
            ErrorCode::InvalidRequest,
        ),
        (
            "/v1/fhir/ehr/ExplanationOfBenefit?_getpages=x".to_owned(),
            ErrorCode::NotAllowed,
        ),
        (
            format!("/v1/fhir/ehr/ExplanationOfBenefit?_page={sealed}&_count=5"),
            ErrorCode::NotAllowed,
        ),
        (
            format!("/v1/fhir/medicare/ExplanationOfBenefit?_page={sealed}"),
            ErrorCode::NotAllowed,
        ),
    ] {
        assert_eq!(alice.get(&path).await.code(), code, "{path}");
    }
    // A sealed link lives half an hour...
    assert_eq!(alice.get(own_path(&next)).await.status, 200);
    // ...for the patient it was relayed for: after a disconnect and a sign-in as someone else
    // in the same session, it no longer opens.
    let reply = alice
        .post("/v1/session/disconnect", json!({"provider": "ehr"}))
        .await;
    assert_eq!(reply.status, 200);
    connect_ehr(&mut alice, &sandbox, 18).await;
    let earlier = alice.get(own_path(&next)).await;
    assert_eq!(earlier.code(), ErrorCode::InvalidRequest);
    assert!(earlier.error().message.contains("earlier connection"));
    let fresh = alice
        .get("/v1/fhir/ehr/ExplanationOfBenefit?_count=5")
        .await
        .json();
    let next = next_of(&fresh).expect("a next link");
    broker.advance(30 * 60);
    assert_eq!(
        alice.get(own_path(&next)).await.code(),
        ErrorCode::InvalidRequest
    );
}
