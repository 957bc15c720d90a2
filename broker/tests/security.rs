//! The security invariants of `docs/architecture.md` that the broker touches, one test each,
//! over real HTTP against the sandbox.

mod common;

use common::*;
use connect_medicare_protocol::contract::{ConnectionStatus, ErrorCode, SessionResponse};
use connect_medicare_sandbox::driver::Consent;
use reqwest::{Method, header};
use serde_json::json;

#[tokio::test]
async fn cookies_are_host_prefixed_secure_httponly_and_strict() {
    let (sandbox, setup, broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(&mut browser, &sandbox, 2, Consent::ALLOW).await;
    let reply = complete(&mut browser, &flow, &code).await;
    let cookies = reply.set_cookies();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-cm-session="))
        .unwrap();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Domain"));
    // The cookie holds a 256-bit random id, and the store keeps only its hash.
    let value = browser.cookies["__Host-cm-session"].clone();
    assert_eq!(value.len(), 43);
    let db = std::fs::read(setup.database()).unwrap();
    let wal = std::fs::read(setup.database().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()));
    }
    // The flow cookie is Lax (it must survive the navigation back from the provider).
    let mut other = Client::new(&broker);
    let reply = other
        .post("/v1/flows", json!({
            "provider": "medicare",
            "state": connect_medicare_protocol::State::from_random_bytes(random32()).as_str(),
            "code_challenge": connect_medicare_protocol::PkceVerifier::from_random_bytes(random32()).challenge().as_str(),
            "redirect_uri": REDIRECT_URI,
        }))
        .await;
    let flow_cookie = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-cm-flow="))
        .unwrap();
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(flow_cookie.contains(attribute), "{flow_cookie}");
    }
}

#[tokio::test]
async fn tokens_are_encrypted_at_rest() {
    let (_sandbox, setup, broker, browser, _) = signed_in(sandbox().await, 3).await;
    let (access, refresh, _) = stored_tokens(&broker, &browser).await;
    let db = std::fs::read(setup.database()).unwrap();
    let wal = std::fs::read(setup.database().with_extension("db-wal")).unwrap_or_default();
    for token in [access, refresh.unwrap()] {
        for bytes in [&db, &wal] {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "plaintext token on disk"
            );
        }
    }
}

#[tokio::test]
async fn a_replayed_completion_returns_the_same_session_without_a_second_redemption() {
    let (sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(&mut browser, &sandbox, 4, Consent::ALLOW).await;
    // React StrictMode: two completions at once, same flow, same cookie.
    let (mut a, mut b) = (browser.clone(), browser.clone());
    let (first, second) = tokio::join!(
        complete(&mut a, &flow, &code),
        complete(&mut b, &flow, &code)
    );
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    assert_eq!(first.json()["connections"], second.json()["connections"]);
    // Only the completion that made the session hands out its proof.
    let proofs = [&first, &second]
        .iter()
        .filter(|reply| reply.json().get("session_proof").is_some())
        .count();
    assert_eq!(proofs, 1);
    // Later, again with the flow cookie: still the same session (the sandbox would refuse a
    // second redemption of the code, so a 200 here proves there was none).
    let mut late = if first
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("__Host-cm-session="))
    {
        a
    } else {
        b
    };
    late.cookies.insert(
        "__Host-cm-flow".into(),
        browser.cookies["__Host-cm-flow"].clone(),
    );
    let third = complete(&mut late, &flow, &code).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.json()["connections"], first.json()["connections"]);
    assert!(
        third.json().get("session_proof").is_none(),
        "a replay hands out no proof"
    );
    let (_, _, generation) = stored_tokens(&broker, &late).await;
    assert_eq!(generation, 1, "one redemption, one connection write");
}

#[tokio::test]
async fn other_reuse_of_a_state_is_refused_without_a_token_call() {
    let (sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(&mut browser, &sandbox, 5, Consent::ALLOW).await;

    // Another tab or browser without this flow's cookie.
    let mut stranger = Client::new(&broker);
    assert_eq!(
        complete(&mut stranger, &flow, &code).await.code(),
        ErrorCode::FlowNotFound
    );
    let _ = start_flow(&mut stranger, "get").await; // a cookie of its own, for another flow
    assert_eq!(
        complete(&mut stranger, &flow, &code).await.code(),
        ErrorCode::FlowNotFound
    );

    // A tampered state never registered.
    let tampered = Flow {
        state: connect_medicare_protocol::State::from_random_bytes(random32()),
        verifier: connect_medicare_protocol::PkceVerifier::parse(flow.verifier.expose_secret())
            .unwrap(),
        authorize: flow.authorize.clone(),
    };
    assert_eq!(
        complete(&mut browser, &tampered, &code).await.code(),
        ErrorCode::FlowNotFound
    );

    // The right flow with the wrong verifier: refused before any token call — the code is
    // still good at the sandbox afterwards, so the broker never spent it.
    let wrong = Flow {
        state: connect_medicare_protocol::State::parse(flow.state.as_str()).unwrap(),
        verifier: connect_medicare_protocol::PkceVerifier::from_random_bytes(random32()),
        authorize: flow.authorize.clone(),
    };
    assert_eq!(
        complete(&mut browser, &wrong, &code).await.code(),
        ErrorCode::PkceMismatch
    );
    let direct = reqwest::Client::new()
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
        .unwrap();
    assert_eq!(direct.status(), 200, "the code was not spent by the broker");
    // And the flow is used up now: the right verifier is refused too.
    assert_eq!(
        complete(&mut browser, &flow, &code).await.code(),
        ErrorCode::StateUsed
    );
}

#[tokio::test]
async fn expired_flows_are_not_found() {
    let (sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(&mut browser, &sandbox, 6, Consent::ALLOW).await;
    broker.advance(601);
    assert_eq!(
        complete(&mut browser, &flow, &code).await.code(),
        ErrorCode::FlowNotFound
    );
}

#[tokio::test]
async fn flows_check_provider_redirect_uri_and_are_capped() {
    let (_sandbox, _setup, broker, mut browser) = stack_with(sandbox().await, |setup, _| {
        setup.toml.extra = "max_pending_flows = 3".into();
    })
    .await;
    let body = |provider: &str, redirect: &str| {
        json!({
            "provider": provider,
            "state": connect_medicare_protocol::State::from_random_bytes(random32()).as_str(),
            "code_challenge": connect_medicare_protocol::PkceVerifier::from_random_bytes(random32()).challenge().as_str(),
            "redirect_uri": redirect,
        })
    };
    assert_eq!(
        browser
            .post("/v1/flows", body("epic", REDIRECT_URI))
            .await
            .code(),
        ErrorCode::UnknownProvider
    );
    for redirect in [
        "http://localhost:8080/callback/",
        "http://localhost:8081/callback",
        "http://127.0.0.1:8080/callback",
    ] {
        assert_eq!(
            browser
                .post("/v1/flows", body("medicare", redirect))
                .await
                .code(),
            ErrorCode::RedirectUriMismatch,
            "{redirect}"
        );
    }
    let short_state = json!({"provider": "medicare", "state": "too-short", "code_challenge": "x", "redirect_uri": REDIRECT_URI});
    assert_eq!(
        browser.post("/v1/flows", short_state).await.code(),
        ErrorCode::InvalidRequest
    );
    let garbage = browser
        .send_with(
            Method::POST,
            "/v1/flows",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(garbage.code(), ErrorCode::InvalidRequest);
    for _ in 0..3 {
        assert_eq!(
            browser
                .post("/v1/flows", body("medicare", REDIRECT_URI))
                .await
                .status,
            200
        );
    }
    let capped = browser
        .post("/v1/flows", body("medicare", REDIRECT_URI))
        .await;
    assert_eq!(capped.code(), ErrorCode::TooManyFlows);
    // Expired flows stop counting.
    broker.advance(601);
    assert_eq!(
        browser
            .post("/v1/flows", body("medicare", REDIRECT_URI))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn origins_and_cors_are_exact() {
    let (_sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let evil = browser
        .send_with(
            Method::GET,
            "/v1/config",
            None,
            &[("origin", "http://localhost.evil.example")],
        )
        .await;
    assert_eq!(evil.code(), ErrorCode::OriginNotAllowed);
    let ok = browser
        .send_with(Method::GET, "/v1/config", None, &[("origin", APP_ORIGIN)])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP_ORIGIN);
    assert_eq!(ok.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    // A preflight from an unknown origin gets no allow-origin: the browser blocks the call.
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(Method::OPTIONS, format!("{}/v1/session", broker.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-connect-medicare")
            .send()
    };
    let good = preflight(APP_ORIGIN).await.unwrap();
    assert_eq!(
        good.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        APP_ORIGIN
    );
    let bad = preflight("https://evil.example").await.unwrap();
    assert!(
        bad.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn the_proxy_serves_only_the_allow_list() {
    let (_sandbox, _setup, broker, mut browser, session) = signed_in(sandbox().await, 7).await;
    let me = session.connections[0].patient.clone().unwrap();
    for (path, code) in [
        ("/v1/fhir/medicare/Observation", ErrorCode::NotAllowed),
        ("/v1/fhir/medicare/Coverage/a%2Fb", ErrorCode::NotAllowed),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?_elements=id",
            ErrorCode::NotAllowed,
        ),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?patient=-20140000008325",
            ErrorCode::NotAllowed,
        ),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?_count=51",
            ErrorCode::InvalidRequest,
        ),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?type=claims",
            ErrorCode::InvalidRequest,
        ),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?service-date=2020-01-01",
            ErrorCode::InvalidRequest,
        ),
        (
            "/v1/fhir/medicare/ExplanationOfBenefit?startIndex=0&startIndex=10",
            ErrorCode::InvalidRequest,
        ),
        (
            "/v1/fhir/medicare/Patient/-20140000008325",
            ErrorCode::NotFound,
        ),
        ("/v1/fhir/nowhere/Patient", ErrorCode::UnknownProvider),
    ] {
        let reply = browser.get(path).await;
        assert_eq!(reply.code(), code, "{path}");
    }
    // Dot segments, even percent-encoded (which URL libraries normalise away, so these go
    // over a raw socket), are refused after decoding.
    for path in [
        "/v1/fhir/medicare/Patient/%2e%2e",
        "/v1/fhir/medicare/Patient/%2E",
        "/v1/fhir/medicare/Coverage/..%2F..%2Fx",
    ] {
        let (status, body) = raw_get(&broker.base, path, &browser).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("\"not_allowed\""), "{path}: {body}");
    }
    assert_eq!(
        browser
            .send(Method::POST, "/v1/fhir/medicare/Patient", Some(json!({})))
            .await
            .code(),
        ErrorCode::MethodNotAllowed
    );
    assert_eq!(
        browser
            .send(
                Method::DELETE,
                &format!("/v1/fhir/medicare/Patient/{}", me.as_str()),
                None
            )
            .await
            .code(),
        ErrorCode::MethodNotAllowed
    );
    // The browser's own Authorization header never reaches upstream: the broker's token does.
    let reply = browser
        .send_with(
            Method::GET,
            &format!("/v1/fhir/medicare/Patient/{}", me.as_str()),
            None,
            &[("authorization", "Bearer stolen")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    // A search with allow-listed parameters passes, forced to the patient.
    let reply = browser
        .get("/v1/fhir/medicare/ExplanationOfBenefit?type=pde,carrier&_count=5&startIndex=5")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["entry"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn withheld_demographics_are_not_a_disconnect() {
    let (sandbox, _setup, _broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(
        &mut browser,
        &sandbox,
        10,
        Consent::ALLOW_WITHOUT_DEMOGRAPHICS,
    )
    .await;
    let session: SessionResponse =
        serde_json::from_slice(&complete(&mut browser, &flow, &code).await.body).unwrap();
    assert!(!session.connections[0].demographics_shared);
    assert_eq!(
        browser.get("/v1/fhir/medicare/Patient").await.code(),
        ErrorCode::DemographicsWithheld
    );
    assert_eq!(
        browser.get("/v1/userinfo/medicare").await.code(),
        ErrorCode::DemographicsWithheld
    );
    assert_eq!(
        browser
            .get("/v1/fhir/medicare/ExplanationOfBenefit")
            .await
            .status,
        200
    );
    let now: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert_eq!(now.connections[0].status, ConnectionStatus::Connected);
}

#[tokio::test]
async fn userinfo_is_proxied() {
    let (_sandbox, _setup, _broker, mut browser, _) = signed_in(sandbox().await, 11).await;
    let info = browser.get("/v1/userinfo/medicare").await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["patient"], "-20140000008336");
}

#[tokio::test]
async fn a_revoked_grant_becomes_reconnect_required() {
    let (sandbox, _setup, _broker, mut browser, session) = signed_in(sandbox().await, 12).await;
    let patient = session.connections[0].patient.clone().unwrap();
    // The beneficiary's grant is deleted at the provider.
    let deleted = reqwest::Client::new()
        .post(format!(
            "{}/v2/o/expire_authenticated_user/{}/",
            sandbox.origin(),
            patient.as_str()
        ))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    // Upstream 401 → one refresh → 403 invalid_grant → reconnect_required, and it sticks.
    assert_eq!(
        browser.get("/v1/fhir/medicare/Coverage").await.code(),
        ErrorCode::ReconnectRequired
    );
    let now: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert_eq!(
        now.connections[0].status,
        ConnectionStatus::ReconnectRequired
    );
    assert_eq!(
        browser.get("/v1/fhir/medicare/Coverage").await.code(),
        ErrorCode::ReconnectRequired
    );
    // Connecting again restores access.
    connect(&mut browser, &sandbox, 12).await;
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
}

#[tokio::test]
async fn a_second_sign_in_elsewhere_ends_the_first_connection_with_its_reason() {
    let (sandbox, _setup, broker, mut first, _) = signed_in(sandbox().await, 22).await;
    // The same beneficiary connects the app again from another browser: Blue Button keeps
    // one token pair per beneficiary and app, so the first browser's pair is gone.
    let mut second = Client::new(&broker);
    connect(&mut second, &sandbox, 22).await;
    // Upstream 401 → one refresh → 400 "Refresh token not found." → over, and it says why.
    let reply = first.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.code(), ErrorCode::ReconnectRequired);
    assert!(
        reply
            .error()
            .message
            .contains("connected this app again elsewhere"),
        "{:?}",
        reply.error()
    );
    let now: SessionResponse =
        serde_json::from_slice(&first.get("/v1/session").await.body).unwrap();
    assert_eq!(
        now.connections[0].status,
        ConnectionStatus::ReconnectRequired
    );
    // No refresh is tried again: the answer comes from the store.
    let refreshes = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("cm_broker_refresh_failures_total "))
            .map(str::to_owned)
    };
    let before = refreshes(&metrics_text(&broker).await);
    assert_eq!(
        first.get("/v1/fhir/medicare/Coverage").await.code(),
        ErrorCode::ReconnectRequired
    );
    assert_eq!(refreshes(&metrics_text(&broker).await), before);
    // The second browser is unaffected.
    assert_eq!(second.get("/v1/fhir/medicare/Coverage").await.status, 200);
}

#[tokio::test]
async fn a_provider_failing_after_rotating_the_tokens_ends_the_connection_with_its_reason() {
    let sandbox = sandbox_with(|c| c.admin = true).await;
    let (sandbox, _setup, broker, mut browser, _) = signed_in(sandbox, 23).await;
    // From now on the backend fails: a refresh rotates the tokens, then answers 502.
    let faults = reqwest::Client::new()
        .post(format!("{}/__admin/faults", sandbox.origin()))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 200);
    broker.advance(3601);
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.code(), ErrorCode::ReconnectRequired);
    assert!(
        reply.error().message.contains("already replaced"),
        "{:?}",
        reply.error()
    );
}

#[tokio::test]
async fn an_unreadable_grant_expiration_keeps_the_sign_in_with_the_end_unknown() {
    // The grant's end written without a time zone: not an instant anyone can read.
    let sandbox = sandbox_with(|c| {
        c.apps[0].expiration_format = connect_medicare_sandbox::ExpirationFormat::NoZone;
    })
    .await;
    let (_sandbox, _setup, _broker, mut browser, session) = signed_in(sandbox, 24).await;
    assert_eq!(session.connections[0].status, ConnectionStatus::Connected);
    assert_eq!(session.connections[0].grant_expires_at, None);
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
}

#[tokio::test]
async fn fifty_concurrent_requests_at_expiry_make_one_refresh() {
    let (sandbox, _setup, broker, browser, _) = signed_in(sandbox().await, 13).await;
    broker.advance(3601);
    sandbox.clock().advance(3601);
    let requests = (0..50).map(|i| {
        let mut client = browser.clone();
        async move {
            client
                .get(&format!(
                    "/v1/fhir/medicare/ExplanationOfBenefit?_count=1&startIndex={i}"
                ))
                .await
        }
    });
    let replies = futures_util::future::join_all(requests).await;
    for reply in &replies {
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // A second refresh would have spent the rotated token and ended the connection.
    let (_, _, generation) = stored_tokens(&broker, &browser).await;
    assert_eq!(generation, 2, "exactly one upstream refresh");
}

#[tokio::test]
async fn sessions_survive_a_broker_restart() {
    let (_sandbox, setup, broker, browser, _) = signed_in(sandbox().await, 14).await;
    broker.stop().await;
    let restarted = Broker::start(&setup).await;
    let mut same = browser.at(&restarted);
    assert_eq!(same.get("/v1/fhir/medicare/Coverage").await.status, 200);
}

#[tokio::test]
async fn disconnect_deletes_locally_when_upstream_is_down_and_retries_later() {
    let (sandbox, setup, broker, mut browser, _) = signed_in(sandbox().await, 15).await;
    let (_, refresh, _) = stored_tokens(&broker, &browser).await;
    let addr = sandbox.addr();
    sandbox.stop().await.unwrap();

    let reply = browser
        .post("/v1/session/disconnect", json!({"provider": "medicare"}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"disconnected": ["medicare"], "revocations": [{"provider": "medicare", "status": "pending"}]})
    );
    let now: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert!(
        now.connections.is_empty(),
        "local deletion did not wait for the provider"
    );

    // The pending revocation survives a restart of the broker...
    broker.stop().await;
    let restarted = Broker::start(&setup).await;
    use connect_medicare_broker::RevocationStore as _;
    let far = connect_medicare_protocol::Timestamp::from_unix_seconds(now_plus(86_400 * 30));
    let pending = restarted.store.due_revocations(far, 10).await.unwrap();
    assert_eq!(pending.len(), 1);

    // ...and is carried out once the provider is back.
    let back = connect_medicare_sandbox::Sandbox::bind(
        connect_medicare_sandbox::Listen::at(addr),
        connect_medicare_sandbox::Listen::loopback(),
        connect_medicare_sandbox::SandboxConfig::with_app(
            connect_medicare_sandbox::AppConfig::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI),
        ),
        connect_medicare_sandbox::Clock::new(),
    )
    .await
    .unwrap();
    restarted.advance(86_400);
    let done = connect_medicare_broker::drain_revocations(&restarted.state)
        .await
        .unwrap();
    assert_eq!(done, 1);
    assert!(
        restarted
            .store
            .due_revocations(far, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(refresh.is_some());
    drop(back);
}

fn now_plus(seconds: i64) -> i64 {
    now() + seconds
}
