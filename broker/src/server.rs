//! Serving on a socket with bounded resources: a deadline for each connection's
//! first request head counted from the moment it is accepted (so a socket that never sends a
//! byte is closed, as is one that trickles its first bytes), hyper's header-read timeout for
//! every later head, a cap on the connections held at once, a cap on header size (431), and
//! graceful shutdown that lets in-flight requests finish. (Body size is capped per route:
//! 413 `payload_too_large`.)

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt as _;

use crate::{
    app::app,
    ops::{housekeeping, metrics_app},
    state::AppState,
};

/// The largest request head (request line and headers) accepted; more is answered 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves the broker on `listener` until `shutdown` resolves, then stops accepting and lets
/// the requests in flight finish (up to [`SHUTDOWN_GRACE`]). Housekeeping runs beside it:
/// pending revocations are retried, expired flows and sessions purged, and the providers'
/// health probed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let result = serve_router(listener, app(state.clone()), &state, shutdown).await;
    housekeeping.abort();
    result
}

/// Serves `/metrics` alone on its own listener (`metrics_listen`), with the same connection
/// limits, until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, metrics_app(state.clone()), &state, shutdown).await
}

async fn serve_router(
    listener: TcpListener,
    router: Router,
    state: &AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config();
    let first_head_deadline = config.header_read_timeout();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(first_head_deadline)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    // At the cap, new connections wait in the kernel's backlog until one closes: a flood of
    // idle sockets is bounded by the deadline below, not by the file-descriptor limit.
    let slots = Arc::new(Semaphore::new(config.max_connections()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the rest.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // hyper's header-read timeout starts only once the first bytes are in (its protocol
        // detection reads them first, without a deadline), so the first head gets one of its
        // own, from accept: set when the first request reaches the router.
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                request.map(Body::new)
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = permit;
            tokio::pin!(connection);
            // Errors here are client-side: resets, timeouts, malformed requests.
            tokio::select! {
                _ = &mut connection => return,
                () = tokio::time::sleep(first_head_deadline) => {}
            }
            if started.load(Ordering::Relaxed) {
                let _ = connection.await;
            }
            // Otherwise the connection is dropped here, which closes the socket.
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    Ok(())
}
