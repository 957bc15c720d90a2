//! The whole flow at trace level, every crate's logs captured: not one secret, token, code,
//! verifier, state, cookie or beneficiary identifier appears in them.

mod common;

use common::*;
use connect_medicare_sandbox::driver::Consent;
use serde_json::json;

#[tokio::test]
async fn nothing_sensitive_is_logged_at_trace_level() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .json()
        .init();

    let (sandbox, _setup, broker, mut browser) = stack(sandbox().await).await;
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.to_owned()];

    let (flow, code) = authorize(&mut browser, &sandbox, 21, Consent::ALLOW).await;
    let reply = complete(&mut browser, &flow, &code).await;
    assert_eq!(reply.status, 200);
    secrets.extend([
        code,
        flow.verifier.expose_secret().to_owned(),
        flow.state.as_str().to_owned(),
        browser.cookies["__Host-cm-session"].clone(),
        browser.proof.clone().expect("a session proof"),
    ]);
    let (access, refresh, _) = stored_tokens(&broker, &browser).await;
    secrets.push(access);
    secrets.extend(refresh);

    assert_eq!(browser.get("/v1/fhir/medicare/Patient").await.status, 200);
    assert_eq!(browser.get("/v1/userinfo/medicare").await.status, 200);
    assert_eq!(
        browser
            .get("/v1/fhir/medicare/ExplanationOfBenefit?_count=5")
            .await
            .status,
        200
    );
    sandbox.clock().advance(3601);
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
    let (access, refresh, _) = stored_tokens(&broker, &browser).await;
    secrets.push(access);
    secrets.extend(refresh);
    assert_eq!(
        browser
            .post("/v1/session/disconnect", json!({}))
            .await
            .status,
        200
    );
    // The beneficiary: BBUser00021's patient id and name.
    secrets.extend([
        "-20140000008346".to_owned(),
        "Daniel".to_owned(),
        "Lee".to_owned(),
    ]);

    let log = capture.text();
    assert!(
        log.lines().count() > 50,
        "trace logging was captured ({} lines)",
        log.lines().count()
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret of {} chars is in the log",
            secret.len()
        );
    }
}
