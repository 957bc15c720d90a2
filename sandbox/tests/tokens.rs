//! The token endpoint, rotation, grants, revocation, introspection and userinfo — over real
//! HTTP, with Blue Button's statuses and bodies asserted verbatim.

mod common;

use common::*;
use reqwest::header;
use serde_json::json;

const TIMED_OUT: &str = "User access has timed out. To refresh Medicare data, end user must re-authenticate and consent to share their data.";
const NOT_FOUND: &str = "User access cannot be found. To refresh Medicare data, end user must re-authenticate and consent to share their data.";

#[tokio::test]
async fn code_exchange_gives_blue_buttons_token_response() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 11);
    let code = code_for(&sandbox, &flow, 5).await;
    let response = redeem(&sandbox, CLIENT_ID, &flow, &code).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body = json(response).await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "token_type",
            "scope",
            "refresh_token",
            "patient",
            "access_grant_expiration"
        ]
    );
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["patient"], "-20140000008330");
    assert!(body.get("id_token").is_none());
    // 13 months from now, written with a `T`.
    let expiration = body["access_grant_expiration"].as_str().unwrap();
    let parsed = connect_medicare_protocol::Timestamp::parse_rfc3339(expiration).unwrap();
    let now = sandbox.clock().now();
    let days = (parsed.unix_seconds() - now) / 86_400;
    assert!((393..=397).contains(&days), "{expiration}: {days} days");
    assert!(expiration.contains('T'));
}

#[tokio::test]
async fn codes_are_single_use_bound_and_short_lived() {
    let sandbox = sandbox().await;
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 12);
    let code = code_for(&sandbox, &flow, 1).await;

    // Wrong redirect URI, wrong verifier, short verifier: refused, code still usable.
    let wrong_redirect = token_request(
        &sandbox,
        CLIENT_ID,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:8080/other"),
            ("code_verifier", flow.verifier.expose_secret()),
        ],
    )
    .await;
    assert_eq!(wrong_redirect.status(), 400);
    assert_eq!(
        json(wrong_redirect).await,
        json!({"error": "invalid_request"})
    );
    let other = connect_medicare_protocol::PkceVerifier::from_random_bytes([99; 32]);
    for verifier in [other.expose_secret().to_owned(), "a".repeat(42)] {
        let bad = token_request(
            &sandbox,
            CLIENT_ID,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(bad.status(), 400);
        assert_eq!(json(bad).await, json!({"error": "invalid_grant"}));
    }

    // Client authentication: by Basic (above) or in the body; a bad secret is 401.
    let bad_client = client()
        .post(format!("{}/v2/o/token/", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_client.status(), 401);
    assert_eq!(json(bad_client).await, json!({"error": "invalid_client"}));

    let in_body = client()
        .post(format!("{}/v2/o/token", sandbox.origin()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", flow.verifier.expose_secret()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        in_body.status(),
        200,
        "client_secret_post and the unslashed token path work"
    );

    let again = redeem(&sandbox, CLIENT_ID, &flow, &code).await;
    assert_eq!(again.status(), 400);
    assert_eq!(json(again).await, json!({"error": "invalid_grant"}));

    // A code older than ten minutes is refused.
    let late = flow_for_late(&sandbox).await;
    assert_eq!(late.status(), 400);
}

async fn flow_for_late(sandbox: &connect_medicare_sandbox::Sandbox) -> reqwest::Response {
    let flow = flow(sandbox, CLIENT_ID, ALL_SCOPES, 13);
    let code = code_for(sandbox, &flow, 1).await;
    sandbox.clock().advance(601);
    redeem(sandbox, CLIENT_ID, &flow, &code).await
}

#[tokio::test]
async fn refresh_rotates_and_kills_the_previous_access_token() {
    let sandbox = sandbox().await;
    let first = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 3).await;
    let (access, refresh_token) = (
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", access).await.status(),
        200
    );

    let response = refresh(&sandbox, CLIENT_ID, refresh_token).await;
    assert_eq!(response.status(), 200);
    let second = json(response).await;
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], first["scope"]);

    let old = get(&sandbox, "/v2/fhir/Patient", access).await;
    assert_eq!(old.status(), 401, "the previous access token dies at once");
    assert_eq!(
        json(old).await,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(
        get(
            &sandbox,
            "/v2/fhir/Patient",
            second["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );

    let reuse = refresh(&sandbox, CLIENT_ID, refresh_token).await;
    assert_eq!(reuse.status(), 400);
    assert_eq!(json(reuse).await, json!({"error": "invalid_grant"}));

    let unknown = refresh(&sandbox, CLIENT_ID, "never-issued").await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        json(unknown).await,
        json!({"status_code": 400, "error": "invalid_request", "error_description": "Refresh token not found."})
    );

    // Refresh needs client authentication.
    let anonymous = client()
        .post(format!("{}/v2/o/token/", sandbox.origin()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(json(anonymous).await, json!({"error": "invalid_client"}));
}

#[tokio::test]
async fn access_tokens_live_one_hour() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 6).await;
    let access = body["access_token"].as_str().unwrap();
    sandbox.clock().advance(3599);
    assert_eq!(
        get(&sandbox, "/v2/fhir/Coverage", access).await.status(),
        200
    );
    sandbox.clock().advance(2);
    let expired = get(&sandbox, "/v2/fhir/Coverage", access).await;
    assert_eq!(expired.status(), 401);
    assert!(
        expired.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The refresh token still works after the access token expired.
    assert_eq!(
        refresh(&sandbox, CLIENT_ID, body["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn one_time_grants_last_an_hour_and_refuse_refresh() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, ONE_TIME_ID, ALL_SCOPES, 8).await;
    assert!(body.get("refresh_token").is_none());
    let expiration = connect_medicare_protocol::Timestamp::parse_rfc3339(
        body["access_grant_expiration"].as_str().unwrap(),
    )
    .unwrap();
    assert!((expiration.unix_seconds() - sandbox.clock().now() - 3600).abs() <= 2);
    let response = refresh(&sandbox, ONE_TIME_ID, "anything").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        json(response).await,
        json!({"status_code": 403, "error": "invalid_client", "error_description":
            "Your application is not allowed to refresh tokens. To refresh Medicare data, end user must re-authenticate and consent to share their data. If your application needs to refresh tokens, contact us at BlueButtonAPI@cms.hhs.gov."})
    );
}

#[tokio::test]
async fn research_grants_never_expire() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, RESEARCH_ID, ALL_SCOPES, 9).await;
    assert_eq!(body["access_grant_expiration"], "");
    sandbox.clock().advance(3 * 365 * 86_400);
    assert_eq!(
        refresh(
            &sandbox,
            RESEARCH_ID,
            body["refresh_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn an_expired_grant_answers_401_on_fhir_and_on_refresh() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 10).await;
    let expires = connect_medicare_protocol::Timestamp::parse_rfc3339(
        body["access_grant_expiration"].as_str().unwrap(),
    )
    .unwrap();
    // Just before the grant ends: refresh, so an access token outlives the grant.
    sandbox
        .clock()
        .advance(expires.unix_seconds() - sandbox.clock().now() - 600);
    let fresh =
        json(refresh(&sandbox, CLIENT_ID, body["refresh_token"].as_str().unwrap()).await).await;
    sandbox.clock().advance(1200);
    let fhir = get(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit",
        fresh["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(fhir.status(), 401);
    assert_eq!(json(fhir).await, json!({"detail": TIMED_OUT}));
    let again = refresh(
        &sandbox,
        CLIENT_ID,
        fresh["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(again.status(), 401);
    assert_eq!(
        json(again).await,
        json!({"status_code": 401, "error": "invalid_grant", "error_description": TIMED_OUT})
    );
}

async fn revoke_at(
    sandbox: &connect_medicare_sandbox::Sandbox,
    path: &str,
    client_id: &str,
    token: &str,
) -> reqwest::Response {
    client()
        .post(format!("{}{path}", sandbox.origin()))
        .basic_auth(client_id, Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// The sandbox-only `expire_authenticated_user` helper, called with the app's credentials.
async fn expire_user(
    sandbox: &connect_medicare_sandbox::Sandbox,
    patient: &str,
) -> reqwest::Response {
    client()
        .post(format!(
            "{}/v2/o/expire_authenticated_user/{patient}/",
            sandbox.origin()
        ))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rfc7009_revocation_kills_both_tokens_either_way() {
    let sandbox = sandbox().await;
    for revoke_access in [true, false] {
        let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 11 + revoke_access as usize).await;
        let (access, refresh_token) = (
            body["access_token"].as_str().unwrap(),
            body["refresh_token"].as_str().unwrap(),
        );
        let which = if revoke_access { access } else { refresh_token };
        let response = revoke_at(&sandbox, "/v2/o/revoke_token/", CLIENT_ID, which).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            get(&sandbox, "/v2/fhir/Patient", access).await.status(),
            401
        );
        assert_eq!(
            refresh(&sandbox, CLIENT_ID, refresh_token).await.status(),
            400
        );
    }
    assert_eq!(
        revoke_at(&sandbox, "/v2/o/revoke_token/", CLIENT_ID, "unknown-token")
            .await
            .status(),
        200
    );
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 14).await;
    let foreign = revoke_at(
        &sandbox,
        "/v2/o/revoke_token/",
        ONE_TIME_ID,
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(foreign.status(), 403);
    assert_eq!(
        json(foreign).await,
        json!({"status_code": 403, "description": "Application did not have access to the provided token."})
    );
}

#[tokio::test]
async fn revoke_deletes_the_grant_so_refresh_is_403() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 15).await;
    let response = revoke_at(
        &sandbox,
        "/v2/o/revoke/",
        CLIENT_ID,
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        get(
            &sandbox,
            "/v2/fhir/Patient",
            body["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    let after = refresh(&sandbox, CLIENT_ID, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(after.status(), 403);
    assert_eq!(
        json(after).await,
        json!({"status_code": 403, "error": "invalid_grant", "error_description": NOT_FOUND})
    );
    // Idempotent: a second revoke is still 200.
    assert_eq!(
        revoke_at(
            &sandbox,
            "/v2/o/revoke/",
            CLIENT_ID,
            body["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn revoke_deletes_the_grant_even_with_an_expired_access_token() {
    // Blue Button's RevokeView reads the access token's row, not its expiry.
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 20).await;
    sandbox.clock().advance(2 * 3600);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", access).await.status(),
        401,
        "expired"
    );
    let response = revoke_at(&sandbox, "/v2/o/revoke/", CLIENT_ID, access).await;
    assert_eq!(response.status(), 200);
    let after = refresh(&sandbox, CLIENT_ID, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(after.status(), 403, "the grant is gone");
}

#[tokio::test]
async fn revoke_given_a_refresh_token_keeps_the_grant() {
    // Blue Button's /v2/o/revoke/ looks the token up among access tokens only.
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 17).await;
    let response = revoke_at(
        &sandbox,
        "/v2/o/revoke/",
        CLIENT_ID,
        body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(response.bytes().await.unwrap().is_empty());
    // The pair is dead...
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", access).await.status(),
        401
    );
    // ...but the grant is still in the server's records: the sandbox helper finds it.
    let expired = expire_user(&sandbox, body["patient"].as_str().unwrap()).await;
    assert_eq!(expired.status(), 200, "the grant outlived the revocation");
}

#[tokio::test]
async fn a_second_consent_by_the_same_beneficiary_kills_the_first_pair() {
    let sandbox = sandbox().await;
    let first = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 18).await;
    let second = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 18).await;
    let old_access = first["access_token"].as_str().unwrap();
    let new_access = second["access_token"].as_str().unwrap();
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", old_access).await.status(),
        401
    );
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", new_access).await.status(),
        200
    );
    let after = refresh(
        &sandbox,
        CLIENT_ID,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(after.status(), 400);
    assert_eq!(
        json(after).await,
        json!({"error": "invalid_request", "error_description": "Refresh token not found.",
               "status_code": 400})
    );
    // Another beneficiary's pair is untouched.
    let other = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 19).await;
    let _ = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 18).await;
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", other_access)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_sandbox_helper_deletes_a_grant() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 16).await;
    let response = expire_user(&sandbox, body["patient"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let after = refresh(&sandbox, CLIENT_ID, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(after.status(), 403);
}

#[tokio::test]
async fn introspection_reports_live_tokens_only() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 17).await;
    let access = body["access_token"].as_str().unwrap();
    let live = json(revoke_at(&sandbox, "/v2/o/introspect/", CLIENT_ID, access).await).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["scope"], ALL_SCOPES);
    assert_eq!(live["client_id"], CLIENT_ID);
    assert_eq!(live["username"], "BBUser00017");
    revoke_at(&sandbox, "/v2/o/revoke_token/", CLIENT_ID, access).await;
    let dead = json(revoke_at(&sandbox, "/v2/o/introspect/", CLIENT_ID, access).await).await;
    assert_eq!(dead, json!({"active": false}));
}

#[tokio::test]
async fn userinfo_needs_profile() {
    let sandbox = sandbox().await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 18).await;
    let response = get(
        &sandbox,
        "/v2/connect/userinfo",
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let info = json(response).await;
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "sub",
            "name",
            "given_name",
            "family_name",
            "email",
            "iat",
            "patient"
        ]
    );
    assert_eq!(info["sub"], info["patient"]);
    assert_eq!(info["given_name"], "Karen");
    let narrow = tokens(&sandbox, CLIENT_ID, "openid patient/Coverage.rs", 19).await;
    let response = get(
        &sandbox,
        "/v2/connect/userinfo",
        narrow["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        json(response).await,
        json!({"detail": "You do not have permission to perform this action."})
    );
}
