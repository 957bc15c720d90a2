//! The generic SMART App Launch 2.2 face: discovery with `issuer`, no slash quirks, POST
//! authorize through the real pages, refresh tokens only with `offline_access`, RFC 7009.

mod common;

use common::*;
use connect_medicare_protocol::{
    AuthorizeRequest, ClientId, FhirBase, PkceVerifier, Provider, RedirectUri, Scopes,
    SmartConfiguration, State,
};
use connect_medicare_sandbox::{
    Sandbox,
    driver::{Consent, Outcome},
};
use serde_json::Value;

async fn provider(sandbox: &Sandbox) -> Provider {
    let body = client()
        .get(format!(
            "{}.well-known/smart-configuration",
            sandbox.smart_fhir_base()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let config = SmartConfiguration::from_json(&body).unwrap();
    assert_eq!(
        config.issuer.as_deref(),
        Some(format!("{}/smart", sandbox.origin()).as_str())
    );
    Provider::from_smart_configuration(
        FhirBase::parse(&sandbox.smart_fhir_base()).unwrap(),
        &config,
    )
    .unwrap()
}

async fn smart_tokens(sandbox: &Sandbox, scopes: &str, post: bool, seed: u8) -> Value {
    let provider = provider(sandbox).await;
    assert!(provider.supports_authorize_post());
    let state = State::from_random_bytes([seed; 32]);
    let verifier = PkceVerifier::from_random_bytes([seed + 1; 32]);
    let request = AuthorizeRequest::new(
        &provider,
        ClientId::new(CLIENT_ID).unwrap(),
        RedirectUri::parse(REDIRECT_URI).unwrap(),
        Scopes::parse(scopes).unwrap(),
        &state,
        &verifier.challenge(),
    )
    .unwrap();
    let url = match consent(sandbox, &request.to_redirect(post), 12, Consent::ALLOW).await {
        Outcome::Redirected(url) => url,
        other => panic!("{other:?}"),
    };
    assert_eq!(param(&url, "state").as_deref(), Some(state.as_str()));
    let response = client()
        .post(provider.token_endpoint())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &param(&url, "code").unwrap()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    json(response).await
}

#[tokio::test]
async fn a_full_flow_through_the_pages_with_post_authorize() {
    let sandbox = sandbox().await;
    let body = smart_tokens(
        &sandbox,
        "openid launch/patient patient/*.rs offline_access",
        true,
        20,
    )
    .await;
    assert!(
        body.get("access_grant_expiration").is_none(),
        "a Blue Button extension"
    );
    assert_eq!(body["patient"], "-20140000008337");
    // As SMART's reference server answers: display hints, and an id_token for `openid`.
    assert_eq!(body["need_patient_banner"], true);
    assert!(
        body["smart_style_url"]
            .as_str()
            .unwrap()
            .starts_with(sandbox.origin())
    );
    let id_token: Vec<&str> = body["id_token"].as_str().unwrap().split('.').collect();
    assert_eq!(id_token.len(), 3);
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token[1],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "-20140000008337");
    let access = body["access_token"].as_str().unwrap();
    let page = get(
        &sandbox,
        "/smart/fhir/ExplanationOfBenefit?_count=5",
        access,
    )
    .await;
    assert_eq!(page.status(), 200);
    let page = json(page).await;
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    // HAPI FHIR's opaque paging: a search id on the server's base, with an offset.
    let next = next["url"].as_str().unwrap();
    let base = sandbox.smart_fhir_base();
    assert!(
        next.starts_with(&format!("{}?_getpages=", base.trim_end_matches('/')))
            && next.contains("&_getpagesoffset=5&_count=5"),
        "{next}"
    );
    let second = json(get(&sandbox, &next[sandbox.origin().len()..], access).await).await;
    let ids = |bundle: &serde_json::Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&second).len(), 5);
    assert!(
        ids(&second).iter().all(|id| !ids(&page).contains(id)),
        "the next five"
    );
    // An unknown search id is not found.
    assert_eq!(
        get(
            &sandbox,
            "/smart/fhir?_getpages=nope&_getpagesoffset=5",
            access
        )
        .await
        .status(),
        404
    );
    // Tokens of one face do not work on the other.
    assert_eq!(
        get(&sandbox, "/v2/fhir/ExplanationOfBenefit", access)
            .await
            .status(),
        401
    );

    let refreshed = client()
        .post(format!("{}/smart/auth/token", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(refreshed).await;

    // RFC 7009 on the refresh token kills both.
    let revoke = client()
        .post(format!("{}/smart/auth/revoke", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", refreshed["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let after = get(
        &sandbox,
        "/smart/fhir/Patient",
        refreshed["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(after.status(), 401);
    assert_eq!(json(after).await["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn refresh_tokens_only_with_offline_or_online_access() {
    let sandbox = sandbox().await;
    let without = smart_tokens(&sandbox, "openid patient/Patient.rs", false, 30).await;
    assert!(without.get("refresh_token").is_none());
    let online = smart_tokens(&sandbox, "patient/Patient.rs online_access", false, 32).await;
    assert!(online.get("refresh_token").is_some());
}

#[tokio::test]
async fn errors_are_redirected_except_for_a_bad_redirect_uri() {
    let sandbox = sandbox().await;
    let provider = provider(&sandbox).await;
    let state = State::from_random_bytes([40; 32]);
    let verifier = PkceVerifier::from_random_bytes([41; 32]);
    let request = AuthorizeRequest::new(
        &provider,
        ClientId::new(CLIENT_ID).unwrap(),
        RedirectUri::parse(REDIRECT_URI).unwrap(),
        Scopes::parse("openid").unwrap(),
        &state,
        &verifier.challenge(),
    )
    .unwrap();
    let wrong_aud = request
        .url()
        .replace("%2Fsmart%2Ffhir%2F", "%2Fv2%2Ffhir%2F");
    let response = client().get(&wrong_aud).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI));
    assert_eq!(param(location, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(location, "state").as_deref(), Some(state.as_str()));

    let evil = request.url().replace("localhost%3A8080", "evil.example");
    let response = client().get(&evil).send().await.unwrap();
    assert_eq!(
        response.status(),
        400,
        "never redirect to an unregistered URI"
    );
}
