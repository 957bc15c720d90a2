//! The per-access-token rate limit on the FHIR views, over real HTTP, on a frozen clock: the
//! window moves only when the test advances the clock.

mod common;

use common::*;
use connect_medicare_sandbox::{Clock, ThrottleRate};
use reqwest::Response;
use serde_json::json;

fn limits(response: &Response) -> (Option<String>, Option<String>, Option<String>) {
    (
        header_value(response, "x-ratelimit-limit"),
        header_value(response, "x-ratelimit-remaining"),
        header_value(response, "x-ratelimit-reset"),
    )
}

fn some(
    limit: &str,
    remaining: &str,
    reset: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    (
        Some(limit.to_owned()),
        Some(remaining.to_owned()),
        Some(reset.to_owned()),
    )
}

#[tokio::test]
async fn ten_per_second_per_token_then_429_with_drfs_answer() {
    let sandbox = sandbox_with(|_| {}, Clock::frozen()).await;
    let token = token_for(&sandbox, 1).await;
    let other = token_for(&sandbox, 2).await;
    let me = "-20140000008326";

    // Ten requests in the same instant: each says how many are left and when the window
    // frees up (the oldest request leaves it in 1.0 s).
    for n in 0..10 {
        let path = if n % 2 == 0 {
            "/v2/fhir/ExplanationOfBenefit".to_owned()
        } else {
            format!("/v2/fhir/Patient/{me}")
        };
        let response = get(&sandbox, &path, &token).await;
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(limits(&response), some("10", &(9 - n).to_string(), "1.0"));
    }
    let refused = get(&sandbox, "/v2/fhir/Coverage", &token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header_value(&refused, "retry-after").as_deref(), Some("1"));
    assert_eq!(limits(&refused), some("10", "0", "1.0"));
    assert_eq!(
        json(refused).await,
        json!({"detail": "Request was throttled. Expected available in 1 second."})
    );

    // Another token has a window of its own.
    let response = get(&sandbox, "/v2/fhir/Coverage", &other).await;
    assert_eq!(response.status(), 200);
    assert_eq!(limits(&response), some("10", "9", "1.0"));

    // userinfo and metadata are not throttled: their rate headers are the literal `None`.
    for _ in 0..12 {
        let response = get(&sandbox, "/v2/connect/userinfo", &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(limits(&response), some("None", "None", "None"));
    }
    let metadata = get(&sandbox, "/v2/fhir/metadata", &token).await;
    assert_eq!(metadata.status(), 200);
    assert_eq!(limits(&metadata), some("None", "None", "None"));

    // 0.4 s on, still refused; the window frees up at 1.0 s.
    sandbox.clock().advance_millis(400);
    let refused = get(&sandbox, "/v2/fhir/Patient", &token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(limits(&refused), some("10", "0", "0.6"));
    sandbox.clock().advance_millis(600);
    let response = get(&sandbox, "/v2/fhir/Patient", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(limits(&response), some("10", "9", "1.0"));

    // A refused parameter still counts and carries the headers; a bad token never reaches
    // the throttle.
    let bad = get(&sandbox, "/v2/fhir/ExplanationOfBenefit?_count=ten", &token).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(limits(&bad), some("10", "8", "1.0"));
    let unknown = get(&sandbox, "/v2/fhir/Patient", "not-a-token").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(limits(&unknown), some("None", "None", "None"));
}

#[tokio::test]
async fn a_slower_rate_says_how_many_seconds_to_wait() {
    let sandbox = sandbox_with(
        |c| c.throttle = Some("3/minute".parse::<ThrottleRate>().unwrap()),
        Clock::frozen(),
    )
    .await;
    let token = token_for(&sandbox, 5).await;
    // Requests at 0, 0.25 and 0.5 s: the oldest leaves the window at 60 s.
    for (n, reset) in ["60.0", "59.75", "59.5"].into_iter().enumerate() {
        let response = get(&sandbox, "/v2/fhir/Patient", &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(limits(&response), some("3", &(2 - n).to_string(), reset));
        sandbox.clock().advance_millis(250);
    }
    // At 0.75 s, refused until then.
    let refused = get(&sandbox, "/v2/fhir/Patient", &token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header_value(&refused, "retry-after").as_deref(), Some("60"));
    assert_eq!(limits(&refused), some("3", "0", "59.25"));
    assert_eq!(
        json(refused).await,
        json!({"detail": "Request was throttled. Expected available in 60 seconds."})
    );
    sandbox.clock().advance(30);
    let refused = get(&sandbox, "/v2/fhir/Patient", &token).await;
    assert_eq!(header_value(&refused, "retry-after").as_deref(), Some("30"));
    assert_eq!(
        json(refused).await,
        json!({"detail": "Request was throttled. Expected available in 30 seconds."})
    );
    sandbox.clock().advance_millis(29_250);
    assert_eq!(
        get(&sandbox, "/v2/fhir/Patient", &token).await.status(),
        200
    );
}

#[tokio::test]
async fn the_rate_limit_can_be_turned_off() {
    let sandbox = sandbox_with(|c| c.throttle = None, Clock::frozen()).await;
    let token = token_for(&sandbox, 6).await;
    for _ in 0..25 {
        let response = get(&sandbox, "/v2/fhir/Patient", &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(limits(&response), some("None", "None", "None"));
    }
}
