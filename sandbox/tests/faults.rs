//! Injected faults over real HTTP: the admin endpoints (and their absence), latency,
//! upstream failures with Blue Button's 502 bodies, dropped connections, 429 storms, the
//! clock offset — deterministic under a seed.

mod common;

use std::time::Duration;

use common::*;
use connect_medicare_sandbox::{Clock, FaultConfig, Sandbox, Storm};
use reqwest::Client;
use serde_json::{Value, json};

async fn admin(sandbox: &Sandbox, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", sandbox.origin());
    let response = match body {
        Some(body) => client().post(url).json(&body).send().await,
        None => client().get(url).send().await,
    }
    .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_endpoints_exist_only_when_enabled() {
    let sandbox = sandbox().await;
    for path in ["/__admin/faults", "/__admin/clock"] {
        let get = client()
            .get(format!("{}{path}", sandbox.origin()))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 404, "{path}");
        let post = client()
            .post(format!("{}{path}", sandbox.origin()))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn admin_faults_round_trip() {
    let sandbox = sandbox_with(|c| c.admin = true, Clock::new()).await;
    let (status, faults) = admin(&sandbox, "/__admin/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        faults,
        json!({"latency_ms": 0, "error_rate": 0.0, "drop_rate": 0.0,
               "throttle": "10/second", "storm": null, "gzip_always": false,
               "retry_after_date": false, "revoke_status": null, "leak_patients": false,
               "seed": 0})
    );
    let (status, faults) = admin(
        &sandbox,
        "/__admin/faults",
        Some(
            json!({"latency_ms": 250, "error_rate": 0.5, "drop_rate": 0.25,
                    "throttle": "20/minute", "storm_requests": 3, "gzip_always": true,
                    "retry_after_date": true, "leak_patients": true}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        faults,
        json!({"latency_ms": 250, "error_rate": 0.5, "drop_rate": 0.25,
               "throttle": "20/minute", "storm": {"requests_left": 3}, "gzip_always": true,
               "retry_after_date": true, "revoke_status": null, "leak_patients": true,
               "seed": 0})
    );
    let (_, faults) = admin(
        &sandbox,
        "/__admin/faults",
        Some(json!({"latency_ms": 0, "error_rate": 0.0, "drop_rate": 0.0,
                    "throttle": "off", "storm_requests": 0, "reset_throttle": true})),
    )
    .await;
    assert_eq!(faults["throttle"], Value::Null);
    assert_eq!(faults["storm"], Value::Null);
    for (body, detail) in [
        (
            json!({"error_rate": 2}),
            "error_rate must be between 0 and 1",
        ),
        (
            json!({"drop_rate": -0.5}),
            "drop_rate must be between 0 and 1",
        ),
        (
            json!({"throttle": "fast"}),
            "invalid rate \"fast\" (expected e.g. 10/second, 600/minute)",
        ),
    ] {
        let (status, answer) = admin(&sandbox, "/__admin/faults", Some(body)).await;
        assert_eq!(status, 400);
        assert_eq!(answer, json!({"detail": detail}));
    }
    let (status, answer) = admin(&sandbox, "/__admin/faults", Some(json!({"nope": 1}))).await;
    assert_eq!(status, 400);
    assert!(answer["detail"].as_str().unwrap().contains("unknown field"));
}

#[tokio::test]
async fn admin_clock_ages_tokens() {
    let sandbox = sandbox_with(|c| c.admin = true, Clock::new()).await;
    let token = token_for(&sandbox, 7).await;
    let (_, clock) = admin(&sandbox, "/__admin/clock", Some(json!({"freeze": true}))).await;
    assert_eq!(clock["frozen"], true);
    let before = clock["now_ms"].as_i64().unwrap();
    let (_, clock) = admin(
        &sandbox,
        "/__admin/clock",
        Some(json!({"advance_seconds": 1.5})),
    )
    .await;
    assert_eq!(clock["now_ms"].as_i64().unwrap(), before + 1_500);
    assert_eq!(sandbox.clock().now_millis(), before + 1_500);
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", &token).await.status(),
        200
    );
    // An hour on, the access token has expired.
    admin(
        &sandbox,
        "/__admin/clock",
        Some(json!({"advance_seconds": 3600})),
    )
    .await;
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", &token).await.status(),
        401
    );
    let (_, clock) = admin(
        &sandbox,
        "/__admin/clock",
        Some(json!({"offset_seconds": 0, "freeze": false})),
    )
    .await;
    assert_eq!(clock["offset_ms"], 0);
    assert_eq!(clock["frozen"], false);
}

#[tokio::test]
async fn a_clock_offset_applies_from_the_start() {
    let clock = Clock::frozen_at(1_800_000_000);
    let sandbox = sandbox_with(|c| c.clock_offset_seconds = -86_400, clock).await;
    assert_eq!(sandbox.clock().now(), 1_800_000_000 - 86_400);
    assert_eq!(sandbox.clock().offset(), -86_400);
}

#[tokio::test]
async fn latency_delays_every_api_answer() {
    let sandbox = sandbox_with(
        |c| {
            c.admin = true;
            c.throttle = None;
        },
        Clock::new(),
    )
    .await;
    let token = token_for(&sandbox, 8).await;
    admin(
        &sandbox,
        "/__admin/faults",
        Some(json!({"latency_ms": 5_000})),
    )
    .await;
    let impatient = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for path in ["/v2/fhir/Patient", "/v2/connect/userinfo"] {
        let error = impatient
            .get(format!("{}{path}", sandbox.origin()))
            .bearer_auth(&token)
            .send()
            .await
            .expect_err("slower than the client's timeout");
        assert!(error.is_timeout(), "{path}: {error}");
    }
    // Discovery is not an API route: no latency there.
    let discovery = impatient
        .get(format!(
            "{}/v2/fhir/.well-known/smart-configuration",
            sandbox.origin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    admin(&sandbox, "/__admin/faults", Some(json!({"latency_ms": 0}))).await;
    let response = impatient
        .get(format!("{}/v2/fhir/Patient", sandbox.origin()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn upstream_failures_answer_blue_buttons_502s() {
    let sandbox = sandbox_with(|c| c.faults.error_rate = 1.0, Clock::new()).await;
    let body = tokens(&sandbox, CLIENT_ID, ALL_SCOPES, 10).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    for path in [
        "/v2/fhir/ExplanationOfBenefit",
        "/v2/fhir/Patient/-20140000008335",
    ] {
        let response = get(&sandbox, path, access).await;
        assert_eq!(response.status(), 502, "{path}");
        // After the rate limit: its headers are there.
        assert!(header_value(&response, "x-ratelimit-remaining").is_some());
        assert_eq!(
            json(response).await,
            json!({"detail": "An error occurred contacting the upstream server"})
        );
    }
    // Blue Button's own parameter checks come before the backend is called.
    let bad = get(&sandbox, "/v2/fhir/ExplanationOfBenefit?_count=99", access).await;
    assert_eq!(bad.status(), 400);
    // userinfo does not call the backend.
    assert_eq!(
        get(&sandbox, "/v2/connect/userinfo", access).await.status(),
        200
    );

    // A refresh fails upstream *after* rotating: the client is left with spent tokens.
    let response = refresh(&sandbox, CLIENT_ID, refresh_token).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        json(response).await,
        json!({"status_code": 502, "message": "Failed to retrieve data from data source."})
    );
    let again = refresh(&sandbox, CLIENT_ID, refresh_token).await;
    assert_eq!(again.status(), 400);
    assert_eq!(json(again).await, json!({"error": "invalid_grant"}));
    assert_eq!(
        get(&sandbox, "/v2/connect/userinfo", access).await.status(),
        401
    );
}

/// Which of `n` searches failed upstream, for a sandbox with `seed` and a 50% error rate.
async fn failure_pattern(seed: u64, n: usize) -> Vec<bool> {
    let sandbox = sandbox_with(
        |c| {
            c.seed = seed;
            c.throttle = None;
            c.faults = FaultConfig {
                error_rate: 0.5,
                ..FaultConfig::default()
            };
        },
        Clock::new(),
    )
    .await;
    let token = token_for(&sandbox, 11).await;
    let mut pattern = Vec::new();
    for _ in 0..n {
        let status = get(&sandbox, "/v2/fhir/Coverage", &token).await.status();
        assert!(status == 200 || status == 502, "{status}");
        pattern.push(status == 502);
    }
    pattern
}

#[tokio::test]
async fn faults_are_deterministic_under_a_seed() {
    let first = failure_pattern(7, 24).await;
    assert_eq!(
        first,
        failure_pattern(7, 24).await,
        "same seed, same faults"
    );
    assert_ne!(
        first,
        failure_pattern(8, 24).await,
        "another seed, other faults"
    );
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}

#[tokio::test]
async fn dropped_connections_close_without_an_answer() {
    let sandbox = sandbox_with(
        |c| {
            c.admin = true;
            c.faults.drop_rate = 1.0;
        },
        Clock::new(),
    )
    .await;
    // Sign-in and consent are not API routes: the flow still works; the code redemption's
    // answer is dropped, though the code was spent.
    let flow = flow(&sandbox, CLIENT_ID, ALL_SCOPES, 90);
    let code = code_for(&sandbox, &flow, 12).await;
    let lost = client()
        .post(format!("{}/v2/o/token/", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", flow.verifier.expose_secret()),
        ])
        .send()
        .await
        .expect_err("no answer");
    assert!(!lost.is_timeout(), "{lost}");
    assert!(lost.status().is_none());

    admin(&sandbox, "/__admin/faults", Some(json!({"drop_rate": 0.0}))).await;
    let replay = redeem(&sandbox, CLIENT_ID, &flow, &code).await;
    assert_eq!(
        replay.status(),
        400,
        "the dropped redemption spent the code"
    );
    let token = token_for(&sandbox, 12).await;
    admin(&sandbox, "/__admin/faults", Some(json!({"drop_rate": 1.0}))).await;
    let error = client()
        .get(format!("{}/v2/fhir/Patient", sandbox.origin()))
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("no answer");
    assert!(!error.is_timeout(), "{error}");
    admin(&sandbox, "/__admin/faults", Some(json!({"drop_rate": 0.0}))).await;
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", &token).await.status(),
        200
    );
}

#[tokio::test]
async fn a_storm_of_requests_answers_429() {
    let sandbox = sandbox_with(
        |c| c.faults.storm = Some(Storm::Requests(3)),
        Clock::frozen(),
    )
    .await;
    let token = token_for(&sandbox, 14).await;
    for _ in 0..3 {
        let response = get(&sandbox, "/v2/fhir/ExplanationOfBenefit", &token).await;
        assert_eq!(response.status(), 429);
        assert_eq!(header_value(&response, "retry-after").as_deref(), Some("1"));
        assert_eq!(
            header_value(&response, "x-ratelimit-remaining").as_deref(),
            Some("0")
        );
        assert_eq!(
            json(response).await,
            json!({"detail": "Request was throttled. Expected available in 1 second."})
        );
    }
    let response = get(&sandbox, "/v2/fhir/ExplanationOfBenefit", &token).await;
    assert_eq!(response.status(), 200);
    // The storm's 429s did not use up the token's window.
    assert_eq!(
        header_value(&response, "x-ratelimit-remaining").as_deref(),
        Some("9")
    );
}

#[tokio::test]
async fn a_storm_of_seconds_ends_with_the_clock() {
    let sandbox = sandbox_with(
        |c| c.faults.storm = Some(Storm::Seconds(30)),
        Clock::frozen(),
    )
    .await;
    let token = token_for(&sandbox, 15).await;
    let response = get(&sandbox, "/v2/fhir/Coverage", &token).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        header_value(&response, "retry-after").as_deref(),
        Some("30")
    );
    assert_eq!(
        header_value(&response, "x-ratelimit-reset").as_deref(),
        Some("30.0")
    );
    assert_eq!(
        json(response).await,
        json!({"detail": "Request was throttled. Expected available in 30 seconds."})
    );
    // userinfo is never throttled.
    assert_eq!(
        get(&sandbox, "/v2/connect/userinfo", &token).await.status(),
        200
    );
    sandbox.clock().advance_millis(29_500);
    let response = get(&sandbox, "/v2/fhir/Coverage", &token).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header_value(&response, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header_value(&response, "x-ratelimit-reset").as_deref(),
        Some("0.5")
    );
    sandbox.clock().advance_millis(500);
    assert_eq!(
        get(&sandbox, "/v2/fhir/Coverage", &token).await.status(),
        200
    );
}
