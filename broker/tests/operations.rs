//! Running the broker for real: limits, readiness, metrics, request ids, the OpenAPI
//! description, and logs free of secrets at trace level.

mod common;

use std::time::Duration;

use common::*;
use connect_medicare_protocol::contract::{ErrorCode, routes};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn raw(base: &str, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn oversized_bodies_and_headers_are_refused() {
    let (_sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let big = json!({"provider": "medicare", "state": "x".repeat(64 * 1024)});
    let reply = browser.post("/v1/flows", big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), ErrorCode::PayloadTooLarge);

    let header = format!(
        "GET /v1/config HTTP/1.1\r\nHost: x\r\nx-connect-medicare: 1\r\nx-filler: {}\r\n\r\n",
        "a".repeat(connect_medicare_broker::MAX_HEADER_BYTES + 1024)
    );
    let response = raw(&broker.base, header.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(80)]
    );
}

/// Opens a connection, sends `opening` (perhaps nothing) and never more: the broker must close
/// it by itself. Returns whether it did within `bound` (far above the configured deadline).
async fn closed_by_the_broker(base: &str, opening: &[u8], bound: Duration) -> bool {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(opening).await.unwrap();
    let mut buffer = Vec::new();
    tokio::time::timeout(bound, stream.read_to_end(&mut buffer))
        .await
        .is_ok()
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed_after_the_header_deadline() {
    let sandbox = sandbox().await;
    let mut setup = BrokerSetup::new(&sandbox);
    setup.toml.extra = "header_read_timeout_seconds = 1".into();
    let broker = Broker::start(&setup).await;
    let openings: [(&str, &[u8]); 4] = [
        ("nothing at all", b""),
        ("one byte of an HTTP/2 preface", b"P"),
        ("most of an HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        (
            "an unfinished HTTP/1.1 head",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        ),
    ];
    let checks = openings.map(|(what, opening)| {
        let base = broker.base.clone();
        async move {
            (
                what,
                closed_by_the_broker(&base, opening, Duration::from_secs(30)).await,
            )
        }
    });
    let open: Vec<&str> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|(_, closed)| !closed)
        .map(|(what, _)| what)
        .collect();
    assert!(
        open.is_empty(),
        "connections still open, having sent: {open:?}"
    );
    // A client that does send its request is served as before.
    let health = reqwest::get(format!("{}/healthz", broker.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn readiness_is_the_brokers_own_and_upstream_health_is_a_metric() {
    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let broker = Broker::start(&setup).await;
    let http = reqwest::Client::new();
    let metrics = || async {
        http.get(format!("{}/metrics", broker.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let ready = http
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.headers()["cache-control"], "no-store");
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"config": "loaded", "store": "ok"})
    );
    connect_medicare_broker::probe_upstreams(&broker.state).await;
    assert!(
        metrics()
            .await
            .contains(r#"cm_broker_upstream_up{provider="medicare"} 1"#)
    );

    // The provider goes away: the broker stays ready (sessions, disconnect and every other
    // replica keep working), and the metric says what is wrong.
    sandbox.stop().await.unwrap();
    let still = http
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    connect_medicare_broker::probe_upstreams(&broker.state).await;
    assert!(
        metrics()
            .await
            .contains(r#"cm_broker_upstream_up{provider="medicare"} 0"#)
    );

    // The store goes away: not ready.
    broker.store.close().await;
    let down = http
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(down.json::<Value>().await.unwrap()["store"], "unavailable");
    // Liveness depends on neither.
    assert_eq!(
        http.get(format!("{}/healthz", broker.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_count_routes_refreshes_and_upstream_latency_without_secrets() {
    let (sandbox, _setup, broker, mut browser, _) = signed_in(sandbox().await, 20).await;
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
    // Make the upstream token die so the proxy refreshes reactively.
    sandbox.clock().advance(3601);
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
    let (access, refresh, _) = stored_tokens(&broker, &browser).await;
    let text = metrics_text(&broker).await;
    assert!(text.contains(r#"cm_broker_requests_total{method="GET",route="/v1/fhir/{provider}/{resource}",status="200"} 2"#), "{text}");
    assert!(text.contains(
        r#"cm_broker_requests_total{method="POST",route="/v1/flows/complete",status="200"} 1"#
    ));
    assert!(text.contains("cm_broker_refreshes_total 1"));
    assert!(
        text.contains(r#"cm_broker_upstream_seconds_count{call="token"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"cm_broker_upstream_seconds_count{call="fhir"}"#));
    assert!(text.contains("cm_broker_store_seconds_count"));
    for secret in [
        CLIENT_SECRET,
        access.as_str(),
        refresh.as_deref().unwrap(),
        "-20140000008345",
    ] {
        assert!(!text.contains(secret), "metrics leak");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let (_sandbox, _setup, _broker, mut browser) = stack(sandbox().await).await;
    let a = browser.get("/v1/config").await;
    let b = browser.get("/v1/nope").await;
    let id = |r: &Reply| r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id(&a).len(), 24);
    assert_ne!(id(&a), id(&b));
    // A caller's own id is kept (for tracing through a reverse proxy).
    let c = browser
        .send_with(
            Method::GET,
            "/v1/config",
            None,
            &[("x-request-id", "from-the-proxy")],
        )
        .await;
    assert_eq!(id(&c), "from-the-proxy");
}

#[tokio::test]
async fn the_openapi_description_matches_the_routes() {
    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let broker = Broker::start(&setup).await;
    let served: Value = reqwest::get(format!("{}/openapi.json", broker.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checked_in: Value = serde_json::from_str(connect_medicare_broker::OPENAPI).unwrap();
    assert_eq!(served, checked_in);
    let paths = served["paths"].as_object().unwrap();
    // Every route of the contract (what the SDK calls) is documented...
    for route in [
        routes::CONFIG,
        routes::FLOWS,
        routes::FLOWS_COMPLETE,
        routes::SESSION,
        routes::DISCONNECT,
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    assert!(paths.contains_key(&format!("{}{{provider}}/{{resource}}", routes::FHIR)));
    assert!(paths.contains_key(&format!("{}{{provider}}/{{resource}}/{{id}}", routes::FHIR)));
    assert!(paths.contains_key(&format!("{}{{provider}}", routes::USERINFO)));
    assert_eq!(
        paths.len(),
        8,
        "a documented route that the contract does not name"
    );
    // ...and every documented operation is served: never "no such route" or a wrong method.
    let mut browser = Client::new(&broker);
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{provider}", "medicare")
                .replace("{resource}", "Patient")
                .replace("{id}", "-1");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST).then(|| json!({}));
            let reply = browser.send(method.clone(), &concrete, body).await;
            if !reply.status.is_success() {
                let error = reply.error();
                assert_ne!(error.code, ErrorCode::MethodNotAllowed, "{method} {path}");
                assert!(
                    !(error.code == ErrorCode::NotFound && error.message == "no such route"),
                    "{method} {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn shutdown_finishes_the_requests_in_flight() {
    let sandbox = sandbox_with(|c| c.faults.latency_ms = 1500).await;
    let (_sandbox, _setup, broker, browser, _) = signed_in(sandbox, 22).await;
    use connect_medicare_broker::SessionStore as _;
    let session = browser.session().unwrap().hash();
    let before = broker
        .store
        .get_session(&session, broker.state.now())
        .await
        .unwrap()
        .unwrap();
    // Past the interval at which the broker touches a session (it does not on every request).
    broker.advance(301);

    // A read that takes 1.5 s upstream...
    let mut reader = browser.clone();
    let read = tokio::spawn(async move { reader.get("/v1/fhir/medicare/Coverage").await });
    // ...is in flight once the broker has touched the session for it.
    loop {
        let now = broker
            .store
            .get_session(&session, broker.state.now())
            .await
            .unwrap()
            .unwrap();
        if now.last_seen_at > before.last_seen_at {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Shut down now: the read still completes.
    let base = broker.base.clone();
    broker.stop().await;
    let reply = read.await.unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["total"], 4);
    // And nothing is accepted any more.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}
