//! Session ids over real HTTP: every completed sign-in rotates the id; connections carry over
//! only with the session's proof (so a planted cookie never receives the victim's connection);
//! cookies known to be invalid are cleared, never because the store failed.

mod common;

use common::*;
use connect_medicare_protocol::contract::{ErrorCode, SessionResponse};
use connect_medicare_sandbox::driver::Consent;

const SESSION_COOKIE: &str = "__Host-cm-session";

fn providers(reply: &Reply) -> Vec<String> {
    let session: SessionResponse = serde_json::from_slice(&reply.body).unwrap();
    session
        .connections
        .iter()
        .map(|c| c.provider.as_str().to_owned())
        .collect()
}

fn patient(reply: &Reply) -> String {
    reply.json()["connections"][0]["patient"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn clears_the_session_cookie(reply: &Reply) -> bool {
    reply
        .set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) && c.contains("Max-Age=0"))
}

/// Connects `client` to the sandbox's SMART face as `user`.
async fn connect_ehr(client: &mut Client, sandbox: &connect_medicare_sandbox::Sandbox) -> Reply {
    let flow = start_flow_for(client, "ehr", "get").await;
    let callback = sign_in(sandbox, &flow, 16, Consent::ALLOW).await;
    complete_callback(client, &flow, &callback).await
}

#[tokio::test]
async fn a_planted_session_cookie_never_receives_the_victims_connection() {
    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let broker = Broker::start(&setup).await;

    // The attacker signs in as themselves and learns their own session id.
    let mut attacker = Client::new(&broker);
    let theirs = connect(&mut attacker, &sandbox, 1).await;
    let planted = attacker.cookies[SESSION_COOKIE].clone();

    // They plant it in the victim's browser (any port of the same host can write it); they
    // cannot plant the proof, which lives in the app origin's storage.
    let mut victim = Client::new(&broker);
    victim
        .cookies
        .insert(SESSION_COOKIE.to_owned(), planted.clone());
    let (flow, code) = authorize(&mut victim, &sandbox, 2, Consent::ALLOW).await;
    let reply = complete(&mut victim, &flow, &code).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    // The victim got a session of their own, holding only their own connection.
    assert_ne!(victim.cookies[SESSION_COOKIE], planted);
    let mine = patient(&reply);
    assert_ne!(
        Some(mine.as_str()),
        theirs.connections[0].patient.as_ref().map(|p| p.as_str())
    );
    let session = victim.get("/v1/session").await;
    assert_eq!(patient(&session), mine);

    // The planted id reaches nothing: not the victim's claims, not a session at all.
    for path in [
        "/v1/fhir/medicare/Patient",
        "/v1/fhir/medicare/ExplanationOfBenefit",
    ] {
        let reply = attacker.get(path).await;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.code(), ErrorCode::NotConnected);
    }
    assert!(providers(&attacker.get("/v1/session").await).is_empty());
}

#[tokio::test]
async fn a_sign_in_rotates_the_id_and_carries_connections_over_with_the_proof() {
    let (sandbox, _setup, broker, mut browser, _) =
        signed_in_with(sandbox().await, 16, with_ehr).await;
    let first_id = browser.cookies[SESSION_COOKIE].clone();
    let first_proof = browser.proof.clone().expect("a proof");
    // Another tab of the same browser, still holding the id from before the next sign-in.
    let mut other_tab = browser.clone();

    let reply = connect_ehr(&mut browser, &sandbox).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(providers(&reply), ["ehr", "medicare"], "carried over");
    assert_ne!(browser.cookies[SESSION_COOKIE], first_id, "a new id");
    assert_ne!(
        browser.proof.as_deref(),
        Some(first_proof.as_str()),
        "a new proof"
    );

    // The other tab's request, sent with the old id just after the rotation, still works
    // and does not clear the cookie: the tab is not left disconnected.
    let reply = other_tab.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 200);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(
        providers(&other_tab.get("/v1/session").await),
        ["ehr", "medicare"]
    );

    // Once the grace is over, the old id is refused — and cleared — while the new one works.
    broker.advance(61);
    let reply = other_tab.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.code(), ErrorCode::NotConnected);
    assert!(clears_the_session_cookie(&reply));
    assert_eq!(
        providers(&browser.get("/v1/session").await),
        ["ehr", "medicare"]
    );
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
}

#[tokio::test]
async fn a_sign_in_without_the_proof_starts_clean_and_ends_the_session_it_came_with() {
    let sandbox = sandbox().await;
    let mut setup = BrokerSetup::new(&sandbox);
    with_ehr(&mut setup, &sandbox);
    let broker = Broker::start(&setup).await;
    // No proof (storage cleared, an old SDK), or a well-formed wrong one (a guess): each time
    // against a session that holds a Medicare connection.
    for (user, proof) in [(16, None), (17, Some("A".repeat(43)))] {
        let mut browser = Client::new(&broker);
        connect(&mut browser, &sandbox, user).await;
        let (_, refresh, _) = stored_tokens(&broker, &browser).await;
        let mut old = browser.clone();
        browser.proof = proof.clone();
        let reply = connect_ehr(&mut browser, &sandbox).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(providers(&reply), ["ehr"], "started clean with {proof:?}");
        // The session the first cookie reached was ended like a disconnect: its id is
        // refused and cleared, and Medicare's tokens were revoked upstream.
        let reply = old.get("/v1/fhir/medicare/Coverage").await;
        assert_eq!(reply.status, 401, "{proof:?}");
        assert!(clears_the_session_cookie(&reply));
        let refresh = refresh.expect("a refresh token");
        let (status, body) = sandbox_refresh(&sandbox, &refresh).await;
        assert!((400..500).contains(&status), "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}

#[tokio::test]
async fn a_malformed_proof_is_a_clear_error_and_consumes_nothing() {
    let (sandbox, _setup, _broker, mut browser) = stack(sandbox().await).await;
    let (flow, code) = authorize(&mut browser, &sandbox, 3, Consent::ALLOW).await;
    browser.proof = Some("not a proof".to_owned());
    let reply = complete(&mut browser, &flow, &code).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), ErrorCode::InvalidRequest);
    assert!(
        reply.error().message.contains("session_proof"),
        "{:?}",
        reply.error()
    );
    // The flow and the code are intact: the same completion without the bad field works.
    browser.proof = None;
    let reply = complete(&mut browser, &flow, &code).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

#[tokio::test]
async fn cookies_known_to_be_invalid_are_cleared_but_never_for_a_failing_store() {
    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let broker = Broker::start(&setup).await;
    let unknown = connect_medicare_broker::SessionId::from_random_bytes([9; 32]);
    for value in [
        "tampered".to_owned(),
        "A".repeat(44),
        unknown.expose_secret().to_owned(),
    ] {
        let mut browser = Client::new(&broker);
        browser
            .cookies
            .insert(SESSION_COOKIE.to_owned(), value.clone());
        let reply = browser.get("/v1/fhir/medicare/Coverage").await;
        assert_eq!(reply.status, 401, "{value}");
        assert_eq!(reply.code(), ErrorCode::NotConnected);
        assert!(clears_the_session_cookie(&reply), "{value}");
        browser
            .cookies
            .insert(SESSION_COOKIE.to_owned(), value.clone());
        let reply = browser.get("/v1/session").await;
        assert_eq!(reply.status, 200, "{value}");
        assert!(providers(&reply).is_empty());
        assert!(clears_the_session_cookie(&reply), "{value}");
    }
    // No cookie: nothing to clear.
    let mut fresh = Client::new(&broker);
    let reply = fresh.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 401);
    assert!(reply.set_cookies().is_empty());

    // A live session while the store fails: an error, and the cookie stays.
    let mut browser = Client::new(&broker);
    connect(&mut browser, &sandbox, 5).await;
    broker.store.close().await;
    let reply = browser.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(reply.status, 500);
    assert!(reply.set_cookies().is_empty());
    let reply = browser.get("/v1/session").await;
    assert_eq!(reply.status, 500);
    assert!(reply.set_cookies().is_empty());
}

/// SQLite's count of commits made by other connections to the database (`PRAGMA data_version`).
async fn data_version(watcher: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(watcher)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_proxied_read_writes_nothing_to_the_store_and_the_session_still_slides() {
    use sqlx::Connection as _;
    let (_sandbox, setup, broker, mut browser, _) = signed_in(sandbox().await, 23).await;
    let mut watcher =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", setup.database().display()))
            .await
            .unwrap();
    let before = data_version(&mut watcher).await;
    for path in [
        "/v1/session",
        "/v1/fhir/medicare/Patient",
        "/v1/fhir/medicare/Coverage",
        "/v1/fhir/medicare/ExplanationOfBenefit?_count=5",
        "/v1/fhir/medicare/ExplanationOfBenefit?_count=5&startIndex=5",
    ] {
        assert_eq!(browser.get(path).await.status, 200, "{path}");
    }
    assert_eq!(
        data_version(&mut watcher).await,
        before,
        "a read committed to the store"
    );
    // Past the touch interval, the next request moves the session's expiry: one write.
    use connect_medicare_broker::SessionStore as _;
    let session = browser.session().unwrap().hash();
    let expires_at = || async {
        broker
            .store
            .get_session(&session, broker.state.now())
            .await
            .unwrap()
            .unwrap()
            .expires_at
    };
    let expires = expires_at().await;
    broker.advance(301);
    assert_eq!(browser.get("/v1/fhir/medicare/Coverage").await.status, 200);
    assert!(data_version(&mut watcher).await > before);
    let later = expires_at().await;
    assert_eq!(later.unix_seconds() - expires.unix_seconds(), 301);
}
