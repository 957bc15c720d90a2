//! The emulator against what CMS's own server code answered (`fixtures/bb2-observed/`): the
//! same requests, and the same status, error body and `WWW-Authenticate`, for the token
//! endpoint's client-authentication and grant errors, the FHIR views' token challenges, a
//! second consent by the same beneficiary, introspection and the grant-deleting revocation.
//!
//! The captures' keys compared here are listed in `COMPARED`; the comparison of every capture
//! (headers such as `Content-Type`, `Cache-Control`, `Allow` and `X-RateLimit-*` included) is
//! still to come, and the captures not yet reproduced are not asserted.

mod common;

use common::*;
use connect_medicare_sandbox::Sandbox;
use reqwest::Response;
use serde_json::Value;

/// Every capture this file reproduces.
const COMPARED: [&str; 14] = [
    "token_no_client_auth",
    "token_bad_secret",
    "token_unsupported_grant",
    "refresh_no_client_auth",
    "refresh_unknown",
    "refresh_reuse",
    "fhir_no_token",
    "fhir_bad_token",
    "fhir_old_access_after_refresh",
    "revoke_grant",
    "fhir_access_token_expired",
    "fhir_grant_timed_out",
    "first_access_after_second_consent",
    "first_refresh_after_second_consent",
];

fn captures() -> Value {
    let mut all = serde_json::Map::new();
    for file in ["raw-bb2.json", "raw-bb2-extra.json"] {
        let path = format!(
            "{}/../fixtures/bb2-observed/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let Value::Object(map) = serde_json::from_str::<Value>(&raw).unwrap() else {
            panic!("{path} is not an object");
        };
        all.extend(map);
    }
    Value::Object(all)
}

/// The emulator's answer, as the captures record one.
async fn answer(response: Response) -> Value {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    serde_json::json!({"status": status, "www-authenticate": challenge, "body": body})
}

/// Compares the parts this file holds the emulator to: status, `WWW-Authenticate`, and the
/// body when it is an error (a token response's or a resource's content is not compared).
fn assert_same(key: &str, observed: &Value, ours: &Value) {
    assert_eq!(ours["status"], observed["status"], "{key}: status");
    assert_eq!(
        ours["www-authenticate"],
        observed["headers"]
            .get("www-authenticate")
            .cloned()
            .unwrap_or(Value::Null),
        "{key}: WWW-Authenticate"
    );
    if observed["status"].as_u64().unwrap() >= 400 || observed["body"] == "" {
        assert_eq!(ours["body"], observed["body"], "{key}: body");
    }
}

async fn post_token(
    sandbox: &Sandbox,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Value {
    let mut request = client().post(format!("{}/v2/o/token/", sandbox.origin()));
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    answer(request.form(form).send().await.unwrap()).await
}

#[tokio::test]
async fn the_emulator_answers_as_blue_buttons_own_code_did() {
    let observed = captures();
    let sandbox = sandbox().await;
    let mut ours = serde_json::Map::new();

    // The token endpoint's client authentication and grant types.
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 90);
    let code = code_for(&sandbox, &flow, 9).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", flow.verifier.expose_secret()),
    ];
    ours.insert(
        "token_no_client_auth".into(),
        post_token(&sandbox, None, &exchange).await,
    );
    ours.insert(
        "token_bad_secret".into(),
        post_token(&sandbox, Some((CLIENT_ID, "wrong")), &exchange).await,
    );
    ours.insert(
        "token_unsupported_grant".into(),
        post_token(
            &sandbox,
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
        )
        .await,
    );
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 10).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    ours.insert(
        "refresh_no_client_auth".into(),
        post_token(
            &sandbox,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
        .await,
    );
    ours.insert(
        "refresh_unknown".into(),
        answer(refresh(&sandbox, CLIENT_ID, "no-such-refresh-token").await).await,
    );

    // FHIR views: no token, an unknown one, the one a refresh replaced.
    let no_token = client()
        .get(format!("{}/v2/fhir/Patient/", sandbox.origin()))
        .send()
        .await
        .unwrap();
    ours.insert("fhir_no_token".into(), answer(no_token).await);
    ours.insert(
        "fhir_bad_token".into(),
        answer(get(&sandbox, "/v2/fhir/Patient/", "not-a-token").await).await,
    );
    let refreshed = json(refresh(&sandbox, CLIENT_ID, &refresh_token).await).await;
    ours.insert(
        "refresh_reuse".into(),
        answer(refresh(&sandbox, CLIENT_ID, &refresh_token).await).await,
    );
    ours.insert(
        "fhir_old_access_after_refresh".into(),
        answer(get(&sandbox, "/v2/fhir/Patient/", &access).await).await,
    );

    // /v2/o/revoke/ with the live access token.
    let live = refreshed["access_token"].as_str().unwrap();
    let revoked = client()
        .post(format!("{}/v2/o/revoke/", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", live)])
        .send()
        .await
        .unwrap();
    ours.insert("revoke_grant".into(), answer(revoked).await);

    // A second consent by the same beneficiary: the first pair afterwards.
    let first = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 11).await;
    let _second = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 11).await;
    ours.insert(
        "first_access_after_second_consent".into(),
        answer(
            get(
                &sandbox,
                "/v2/fhir/Patient/",
                first["access_token"].as_str().unwrap(),
            )
            .await,
        )
        .await,
    );
    ours.insert(
        "first_refresh_after_second_consent".into(),
        answer(
            refresh(
                &sandbox,
                CLIENT_ID,
                first["refresh_token"].as_str().unwrap(),
            )
            .await,
        )
        .await,
    );

    // An access token past its hour; then a grant past its end while the access token lives.
    let aging = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 12).await;
    sandbox.clock().advance(2 * 3600);
    let expired = get(
        &sandbox,
        "/v2/fhir/Patient/",
        aging["access_token"].as_str().unwrap(),
    );
    ours.insert(
        "fhir_access_token_expired".into(),
        answer(expired.await).await,
    );
    let grant_end = connect_medicare_protocol::Timestamp::parse_rfc3339(
        aging["access_grant_expiration"].as_str().unwrap(),
    )
    .unwrap()
    .unix_seconds();
    sandbox
        .clock()
        .advance(grant_end - sandbox.clock().now() - 1800);
    let renewed = refresh(
        &sandbox,
        CLIENT_ID,
        aging["refresh_token"].as_str().unwrap(),
    );
    let fresh = json(renewed.await).await;
    sandbox.clock().advance(1801);
    ours.insert(
        "fhir_grant_timed_out".into(),
        answer(
            get(
                &sandbox,
                "/v2/fhir/Patient/",
                fresh["access_token"].as_str().unwrap(),
            )
            .await,
        )
        .await,
    );

    for key in COMPARED {
        assert_same(key, &observed[key], &ours[key]);
    }
    assert_eq!(
        ours.len(),
        COMPARED.len(),
        "every reproduced capture is compared"
    );
}

#[tokio::test]
async fn introspection_names_no_patient() {
    let observed = captures();
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 13).await;
    let response = client()
        .post(format!("{}/v2/o/introspect/", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let ours = json(response).await;
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&ours), keys(&observed["introspect"]["body"]));
}

#[tokio::test]
async fn the_sandbox_helper_and_the_capability_statement_answer_as_captured() {
    let observed = captures();
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 14).await;
    let patient = body["patient"].as_str().unwrap();
    let url = format!(
        "{}/v2/o/expire_authenticated_user/{patient}/",
        sandbox.origin()
    );
    // Without the app's credentials or token: an empty 403.
    let refused = client().post(&url).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.bytes().await.unwrap().is_empty());
    // With the access token, as the capture was made.
    let done = client()
        .post(&url)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let expected = &observed["expire_user"];
    assert_eq!(done.status().as_u16(), expected["status"]);
    assert_eq!(
        done.headers()["content-type"],
        expected["headers"]["content-type"].as_str().unwrap()
    );
    assert_eq!(
        done.text().await.unwrap(),
        expected["body"].as_str().unwrap()
    );

    let metadata = client()
        .get(format!("{}/v2/fhir/metadata", sandbox.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(
        metadata.headers()["content-type"],
        observed["metadata"]["headers"]["content-type"]
            .as_str()
            .unwrap()
    );
}
