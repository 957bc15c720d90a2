//! A replica that dies while holding a connection's refresh lease blocks the others only
//! until the lease expires: the waiting request then takes the lease over, refreshes once,
//! and is answered.

mod common;

use common::*;
use connect_medicare_broker::{ConnectionStore as _, LeaseHolder};
use connect_medicare_protocol::{Timestamp, contract::ProviderId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_lease_is_taken_over_once_it_expires() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter("connect_medicare_broker=debug")
        .with_writer(capture.clone())
        .with_ansi(false)
        .init();

    let (sandbox, _setup, broker, browser, _) = signed_in(sandbox().await, 19).await;
    let session = session_key(broker.store.as_ref(), &browser).await;
    let medicare = ProviderId::new("medicare").unwrap();
    let generation = stored_tokens(&broker, &browser).await.2;

    // The access token expires; another replica took the lease for 30 seconds to refresh
    // it, then died.
    broker.advance(3601);
    sandbox.clock().advance(3601);
    let now = broker.state.now();
    let dead = LeaseHolder::from_bytes([7; 16]);
    let until = Timestamp::from_unix_seconds(now.unix_seconds() + 30);
    assert!(
        broker
            .store
            .try_acquire_refresh_lease(&session, &medicare, &dead, now, until)
            .await
            .unwrap()
    );

    // A read must refresh, and waits for the lease.
    let read = tokio::spawn({
        let mut browser = browser.clone();
        async move { browser.get("/v1/fhir/medicare/Coverage").await }
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !capture.contains("another broker holds the refresh lease; waiting") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!read.is_finished(), "answered while the lease was held");
    assert_eq!(stored_tokens(&broker, &browser).await.2, generation);

    // The dead replica's lease expires (by the broker's clock): the read takes over.
    broker.advance(30);
    let reply = read.await.unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(stored_tokens(&broker, &browser).await.2, generation + 1);
    assert!(
        !broker
            .store
            .release_refresh_lease(&session, &medicare, &dead)
            .await
            .unwrap(),
        "the dead replica no longer holds it"
    );
}
