//! The network faults around every API route: latency, and connections dropped unanswered.
//! Apart from `faults.rs` because it reads the faults through the shared state that owns them.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};

use crate::state::Shared;

/// The accepted connection a request came in on: its peer and a second handle on its
/// socket, so a fault can close it without answering.
#[derive(Debug, Clone)]
pub(crate) struct Tap {
    pub(crate) peer: SocketAddr,
    pub(crate) socket: Option<Arc<std::net::TcpStream>>,
}

impl Tap {
    /// Closes the connection in both directions: the client sees it end before any answer.
    fn cut(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Latency and dropped connections, around every API route.
pub(crate) async fn network(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let tap = request
        .extensions()
        .get::<ConnectInfo<Tap>>()
        .map(|ConnectInfo(tap)| tap.clone());
    let drops = shared.faults.connection_drops();
    // The request is processed either way: a dropped answer to a refresh has rotated the
    // tokens, which is the case clients must survive.
    let response = next.run(request).await;
    if !drops {
        return response;
    }
    tracing::debug!(peer = ?tap.as_ref().map(|t| t.peer), "fault: dropping the connection");
    if let Some(tap) = &tap {
        tap.cut();
    }
    // Without a socket handle (a router used in-process), fail the body instead: the
    // connection then ends mid-answer.
    Response::new(Body::new(Broken))
}

/// A body that fails at once.
struct Broken;

impl HttpBody for Broken {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection dropped by fault injection",
        ))))
    }
}
