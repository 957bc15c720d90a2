//! Upstream trouble, as the sandbox's faults produce it: throttling (a short `Retry-After` is
//! waited out once, a long one is passed to the browser), 5xx and dropped connections
//! (retried for reads, then `upstream_unavailable`), and gzip passed through.

mod common;

use common::*;
use connect_medicare_protocol::contract::ErrorCode;
use connect_medicare_sandbox::{FaultConfig, Storm};
use reqwest::header;

#[tokio::test]
async fn a_short_retry_after_is_waited_out_once() {
    let sandbox = sandbox_with(|c| {
        c.faults = FaultConfig {
            storm: Some(Storm::Requests(1)),
            ..FaultConfig::default()
        };
    })
    .await;
    let (_sandbox, _setup, broker, mut browser, _) = signed_in(sandbox, 1).await;
    // The first upstream read is throttled with Retry-After: 1; the browser never sees it.
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let metrics = reqwest::get(format!("{}/metrics", broker.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cm_broker_upstream_throttled_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_long_throttle_reaches_the_browser_with_retry_after() {
    let sandbox = sandbox_with(|c| {
        c.faults = FaultConfig {
            storm: Some(Storm::Seconds(60)),
            ..FaultConfig::default()
        };
    })
    .await;
    let (sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox, 2).await;
    let reply = browser.get("/v1/fhir/medicare/ExplanationOfBenefit").await;
    assert_eq!(reply.status, 429);
    let error = reply.error();
    assert_eq!(error.code, ErrorCode::RateLimited);
    // The storm's 60 s run on the sandbox's clock from its start; the sign-in took some of them.
    let seconds = error.retry_after.expect("a retry_after");
    assert!((30..=60).contains(&seconds), "{seconds}");
    assert_eq!(
        reply.headers[header::RETRY_AFTER],
        seconds.to_string().as_str()
    );
    // The connection is intact: once the storm passes, reads work again.
    sandbox.clock().advance(61);
    assert_eq!(
        browser
            .get("/v1/fhir/medicare/ExplanationOfBenefit")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn upstream_errors_are_retried_then_reported() {
    let sandbox = sandbox_with(|c| {
        c.faults = FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        };
    })
    .await;
    let (_sandbox, _setup, broker, mut browser, _) = signed_in(sandbox, 3).await;
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.code(), ErrorCode::UpstreamUnavailable);
    let metrics = reqwest::get(format!("{}/metrics", broker.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"cm_broker_upstream_seconds_count{call="fhir"} 3"#),
        "one try and two retries: {metrics}"
    );
}

#[tokio::test]
async fn some_upstream_errors_are_absorbed_by_retries() {
    // Seeded dice: with a one-in-three failure rate, three tries make every read succeed.
    let sandbox = sandbox_with(|c| {
        c.seed = 7;
        c.faults = FaultConfig {
            error_rate: 0.33,
            ..FaultConfig::default()
        };
    })
    .await;
    let (_sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox, 4).await;
    let mut ok = 0;
    for i in 0..10 {
        let reply = browser
            .get(&format!(
                "/v1/fhir/medicare/ExplanationOfBenefit?_count=2&startIndex={i}"
            ))
            .await;
        if reply.status == 200 {
            ok += 1;
        } else {
            assert_eq!(reply.code(), ErrorCode::UpstreamUnavailable);
        }
    }
    assert!(ok >= 9, "{ok} of 10 reads succeeded");
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported() {
    let sandbox = sandbox_with(|c| {
        c.faults = FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        };
    })
    .await;
    // Every API request is dropped, the token exchange too: the sign-in fails cleanly.
    let (sandbox, _setup, _broker, mut browser) = stack(sandbox).await;
    let (flow, code) = authorize(
        &mut browser,
        &sandbox,
        5,
        connect_medicare_sandbox::driver::Consent::ALLOW,
    )
    .await;
    let reply = complete(&mut browser, &flow, &code).await;
    assert_eq!(reply.code(), ErrorCode::UpstreamUnavailable);
}

#[tokio::test]
async fn gzip_passes_through_only_when_the_browser_asks() {
    let (_sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox().await, 8).await;
    // A client that does not decompress, to see the bytes as they cross.
    browser.http = reqwest::Client::builder().no_gzip().build().unwrap();
    let plain = browser
        .get("/v1/fhir/medicare/ExplanationOfBenefit?_count=20")
        .await;
    assert_eq!(plain.status, 200);
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.json()["entry"].as_array().unwrap().len(), 20);
    let gzipped = browser
        .send_with(
            reqwest::Method::GET,
            "/v1/fhir/medicare/ExplanationOfBenefit?_count=20",
            None,
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.headers[header::CONTENT_ENCODING], "gzip");
    assert!(
        gzipped.body.len() * 4 < plain.body.len(),
        "{} vs {}",
        gzipped.body.len(),
        plain.body.len()
    );
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzipped.body[..]),
        &mut inflated,
    )
    .unwrap();
    let inflated: serde_json::Value = serde_json::from_slice(&inflated).unwrap();
    let plain = plain.json();
    // The same page (timestamps such as `meta.lastUpdated` are per response).
    let ids = |bundle: &serde_json::Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].to_string())
            .collect()
    };
    assert_eq!(inflated["total"], plain["total"]);
    assert_eq!(ids(&inflated), ids(&plain));
}

#[tokio::test]
async fn oversized_upstream_bodies_are_not_relayed() {
    let (_sandbox, _setup, _broker, mut browser, _) =
        signed_in_with(sandbox().await, 9, |setup, _| {
            setup.toml.extra = "[upstream]\nmax_body_bytes = 65536".into();
        })
        .await;
    browser.http = reqwest::Client::builder().no_gzip().build().unwrap();
    // Small pages pass...
    assert_eq!(
        browser
            .get("/v1/fhir/medicare/Coverage?_count=1")
            .await
            .status,
        200
    );
    // ...a page of 50 claims (about 2 MB) announced with its length is refused...
    let big = browser
        .get("/v1/fhir/medicare/ExplanationOfBenefit?_count=50")
        .await;
    assert_eq!(big.code(), ErrorCode::UpstreamError);
    // ...and a compressed one that streams past the limit is cut off, never truncated into
    // something that parses.
    assert!(
        !relayed_whole_as_gzip(&browser, "/v1/fhir/medicare/ExplanationOfBenefit?_count=50").await,
        "a body over the limit was relayed whole"
    );
}

/// Whether `path`, asked for with `Accept-Encoding: gzip` by a client that does not inflate,
/// arrives whole: an answer cut off mid-transfer, a refusal (502) or a failed request is not.
async fn relayed_whole_as_gzip(browser: &Client, path: &str) -> bool {
    let cookie = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let response = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{}{path}", browser.base))
        .header("x-connect-medicare", "1")
        .header("accept-encoding", "gzip")
        .header(header::COOKIE, cookie)
        .send()
        .await;
    match response {
        Ok(response) if response.status() == 200 => response.bytes().await.is_ok(),
        Ok(response) => {
            assert_eq!(response.status(), 502);
            false
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_retry_after_date_is_read_as_the_time_it_names() {
    // A 429 storm of two minutes whose Retry-After is an HTTP-date (RFC 9110 allows either).
    let sandbox = sandbox_with(|c| {
        c.faults = FaultConfig {
            storm: Some(Storm::Seconds(120)),
            retry_after_date: true,
            ..FaultConfig::default()
        };
    })
    .await;
    let (_sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox, 2).await;
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.code(), ErrorCode::RateLimited);
    // The broker's clock and the sandbox's are both the test's start, give or take the
    // seconds the sign-in took: two minutes, not the 1 s a misread date would give.
    let seconds: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((90..=125).contains(&seconds), "{seconds}");
    assert_eq!(reply.error().retry_after, Some(seconds));
}

#[tokio::test]
async fn gzip_a_client_did_not_ask_for_never_reaches_it() {
    // A provider (or a proxy in front of it) that compresses whether asked or not.
    let sandbox = sandbox_with(|c| c.faults.gzip_always = true).await;
    // BBUser00008 has more than 20 claims.
    let (_sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox, 8).await;
    // A client that does not decompress, to see the bytes as they cross.
    browser.http = reqwest::Client::builder().no_gzip().build().unwrap();
    for accept in [None, Some("identity"), Some("gzip;q=0, identity")] {
        let extra: Vec<(&str, &str)> = accept.iter().map(|a| ("accept-encoding", *a)).collect();
        let reply = browser
            .send_with(
                reqwest::Method::GET,
                "/v1/fhir/medicare/ExplanationOfBenefit?_count=20",
                None,
                &extra,
            )
            .await;
        assert_eq!(reply.status, 200, "{accept:?}");
        assert!(
            reply.headers.get(header::CONTENT_ENCODING).is_none(),
            "{accept:?}: {:?}",
            reply.headers
        );
        assert_eq!(
            reply.json()["entry"].as_array().unwrap().len(),
            20,
            "{accept:?}"
        );
    }
    // A client that asks for gzip still gets it as it came.
    let reply = browser
        .send_with(
            reqwest::Method::GET,
            "/v1/fhir/medicare/ExplanationOfBenefit?_count=20",
            None,
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(reply.headers[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn the_relay_limit_counts_what_a_client_inflates() {
    const LIMIT: usize = 65_536;
    let (sandbox, _setup, broker, mut browser, _) =
        signed_in_with(sandbox().await, 12, |setup, _| {
            setup.toml.extra = format!("[upstream]\nmax_body_bytes = {LIMIT}");
        })
        .await;
    let path = "/v1/fhir/medicare/ExplanationOfBenefit?_count=10";

    // The page as the provider sends it, compressed: well under the limit, while it
    // inflates to far more.
    let (access, _, _) = stored_tokens(&broker, &browser).await;
    let direct = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!(
            "{}/v2/fhir/ExplanationOfBenefit/?_count=10",
            sandbox.origin()
        ))
        .bearer_auth(&access)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.headers()[header::CONTENT_ENCODING], "gzip");
    let compressed = direct.bytes().await.unwrap();
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut inflated,
    )
    .unwrap();
    assert!(
        compressed.len() < LIMIT / 2 && inflated.len() > 2 * LIMIT,
        "{} compressed, {} inflated",
        compressed.len(),
        inflated.len()
    );

    // Through the broker, to a client that would inflate it: never relayed whole.
    assert!(
        !relayed_whole_as_gzip(&browser, path).await,
        "a body that inflates past the limit was relayed whole"
    );
    // A page that fits, inflated, still passes compressed.
    let reply = browser
        .send_with(
            reqwest::Method::GET,
            "/v1/fhir/medicare/Coverage?_count=1",
            None,
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_slow_provider_times_out_into_upstream_unavailable() {
    let sandbox = sandbox_with(|c| c.admin = true).await;
    let (sandbox, _setup, broker, mut browser, _) = signed_in_with(sandbox, 10, |setup, _| {
        setup.toml.extra = "[upstream]\nrequest_timeout_seconds = 1".into();
    })
    .await;
    // From now on the provider takes 3 s to answer: longer than the broker waits for it.
    let slow = reqwest::Client::new()
        .post(format!("{}/__admin/faults", sandbox.origin()))
        .json(&serde_json::json!({"latency_ms": 3000}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.code(), ErrorCode::UpstreamUnavailable);
    let metrics = reqwest::get(format!("{}/metrics", broker.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"cm_broker_upstream_seconds_count{call="fhir"} 3"#),
        "one try and two retries: {metrics}"
    );
}
