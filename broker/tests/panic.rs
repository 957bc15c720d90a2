//! A handler that panics, at trace level: the client gets the usual error shape, nothing of
//! the panic's message (which could hold a secret) reaches the logs or the client, and the
//! broker keeps serving.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use common::*;
use connect_medicare_broker::{AppState, Clock, SqliteStore, install_panic_hook, serve};
use connect_medicare_protocol::{Timestamp, contract::ErrorBody};

/// What a secret-holding value would look like in a panic message.
const CANARY: &str = "canary-panic-secret-7d2e";

/// A clock that panics, with a secret in its message, while armed: every handler that reads
/// the time (all the session routes) panics with it.
#[derive(Default)]
struct Tripwire(AtomicBool);

impl Clock for Tripwire {
    fn now(&self) -> Timestamp {
        if self.0.load(Ordering::SeqCst) {
            panic!("the token was {CANARY}");
        }
        Timestamp::from_unix_seconds(now())
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_500_leaks_nothing_and_the_broker_serves_on() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .init();
    install_panic_hook();

    let sandbox = sandbox().await;
    let setup = BrokerSetup::new(&sandbox);
    let clock = Arc::new(Tripwire::default());
    let store = Arc::new(SqliteStore::open(&setup.database()).await.unwrap());
    let state = AppState::new(Arc::new(setup.config()), store, clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    let http = reqwest::Client::new();
    let session = |http: &reqwest::Client| {
        http.get(format!("{base}/v1/session"))
            .header("x-connect-medicare", "1")
            .header("cookie", format!("__Host-cm-session={}", "A".repeat(43)))
            .send()
    };

    clock.0.store(true, Ordering::SeqCst);
    let answer = session(&http).await.unwrap();
    assert_eq!(answer.status(), 500);
    assert!(answer.headers().get("x-request-id").is_some());
    let body = answer.text().await.unwrap();
    assert!(!body.contains(CANARY), "{body}");
    let error: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.code.as_str(), "internal");

    // The same connection pool, the same process: it serves on.
    clock.0.store(false, Ordering::SeqCst);
    let answer = session(&http).await.unwrap();
    assert_eq!(answer.status(), 200);

    let log = capture.text();
    assert!(log.contains("panicked"), "the panic is reported: {log}");
    assert!(log.contains("broker/tests/panic.rs"), "with its location");
    assert!(!log.contains(CANARY), "but never its message");
    assert!(!log.contains(CLIENT_SECRET));
}
