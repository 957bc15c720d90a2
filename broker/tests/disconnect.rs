//! What a disconnect answers, per provider: `revoked` when the provider accepted the
//! revocation, `pending` when it is kept and retried, `failed` when the provider refused it
//! for good, `not_supported` when the provider offers none — and that a revocation retried
//! after the access token expired still deletes Blue Button's grant.

mod common;

use common::*;
use connect_medicare_protocol::contract::SessionResponse;
use serde_json::{Value, json};

const ACCESS_NOT_FOUND: &str = "User access cannot be found. To refresh Medicare data, end user \
     must re-authenticate and consent to share their data.";

/// Turns the sandbox's revocation fault on (`status`) or off (0).
async fn revocations_answer(sandbox: &connect_medicare_sandbox::Sandbox, status: u16) {
    let set = reqwest::Client::new()
        .post(format!("{}/__admin/faults", sandbox.origin()))
        .json(&json!({ "revoke_status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
}

fn answer(provider: &str, status: &str) -> Value {
    json!({"disconnected": [provider], "revocations": [{"provider": provider, "status": status}]})
}

#[tokio::test]
async fn an_accepted_revocation_is_revoked_and_the_grant_is_gone() {
    let (sandbox, _setup, broker, mut browser, _) = signed_in(sandbox().await, 20).await;
    let (_, refresh, _) = stored_tokens(&broker, &browser).await;
    let reply = browser
        .post("/v1/session/disconnect", json!({"provider": "medicare"}))
        .await;
    assert_eq!(reply.json(), answer("medicare", "revoked"));
    let (status, body) = sandbox_refresh(&sandbox, &refresh.unwrap()).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (403, Some(ACCESS_NOT_FOUND))
    );
    // Nothing is left to retry, even once any claim on it would have lapsed.
    broker.advance(86_400);
    assert_eq!(
        connect_medicare_broker::drain_revocations(&broker.state)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_revocation_retried_after_the_access_token_expired_still_deletes_the_grant() {
    let sandbox = sandbox_with(|c| {
        c.admin = true;
        c.faults.revoke_status = Some(502);
    })
    .await;
    let (sandbox, _setup, broker, mut browser, _) = signed_in(sandbox, 21).await;
    let (_, refresh, _) = stored_tokens(&broker, &browser).await;

    // Blue Button fails: the connection is gone here at once, the revocation is kept.
    let reply = browser
        .post("/v1/session/disconnect", json!({"provider": "medicare"}))
        .await;
    assert_eq!(reply.json(), answer("medicare", "pending"));
    let session: SessionResponse =
        serde_json::from_slice(&browser.get("/v1/session").await.body).unwrap();
    assert!(session.connections.is_empty());

    // Two hours on, the access token the broker kept has expired; Blue Button is back.
    sandbox.clock().advance(2 * 3600);
    broker.advance(2 * 3600);
    revocations_answer(&sandbox, 0).await;
    let done = connect_medicare_broker::drain_revocations(&broker.state)
        .await
        .unwrap();
    assert_eq!(done, 1);
    // The grant is gone: the pair's refresh token finds no access to refresh.
    let (status, body) = sandbox_refresh(&sandbox, &refresh.unwrap()).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (403, Some(ACCESS_NOT_FOUND))
    );
}

/// Only the revocation endpoint's own OAuth 400 is a refusal for good: it is `failed` and never
/// retried, even once the provider accepts revocations again. Any other 4xx (here a 404) may
/// be a proxy or a transient answer: `pending`, and retried.
#[tokio::test]
async fn a_refused_revocation_is_failed_and_not_retried_but_another_4xx_is_pending() {
    for (status, user, said, retried) in [(400, 22, "failed", 0), (404, 24, "pending", 1)] {
        let sandbox = sandbox_with(|c| {
            c.admin = true;
            c.faults.revoke_status = Some(status);
        })
        .await;
        let (sandbox, _setup, broker, mut browser, _) = signed_in(sandbox, user).await;
        let reply = browser
            .post("/v1/session/disconnect", json!({"provider": "medicare"}))
            .await;
        assert_eq!(reply.json(), answer("medicare", said), "{status}");
        revocations_answer(&sandbox, 0).await;
        broker.advance(86_400);
        let done = connect_medicare_broker::drain_revocations(&broker.state)
            .await
            .unwrap();
        assert_eq!(done, retried, "{status}");
    }
}

#[tokio::test]
async fn a_provider_without_revocation_is_not_supported() {
    let sandbox = sandbox_with(|c| c.smart_revocation = false).await;
    let (sandbox, _setup, _broker, mut browser) = stack_with(sandbox, with_ehr).await;
    // /v1/config says so before anyone disconnects.
    let config = browser.get("/v1/config").await.json();
    let supported: Vec<(&str, bool)> = config["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap();
            (id, p["revocation_supported"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(supported, [("medicare", true), ("ehr", false)]);
    connect(&mut browser, &sandbox, 23).await;
    connect_ehr(&mut browser, &sandbox, 23).await;
    // Both at once: each provider says what became of its side.
    let reply = browser.post("/v1/session/disconnect", json!({})).await;
    assert_eq!(
        reply.json(),
        json!({
            "disconnected": ["ehr", "medicare"],
            "revocations": [
                {"provider": "ehr", "status": "not_supported"},
                {"provider": "medicare", "status": "revoked"},
            ],
        })
    );
}
