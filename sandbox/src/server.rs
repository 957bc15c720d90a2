//! Running the sandbox on a socket.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::{Clock, SandboxConfig, app::routes, faults::Tap, state::Shared};

/// A listener that keeps a second handle on each accepted socket, so an injected fault can
/// close a connection without answering.
pub(crate) struct TapListener(TcpListener);

impl axum::serve::Listener for TapListener {
    type Io = TcpStream;
    type Addr = Tap;

    async fn accept(&mut self) -> (TcpStream, Tap) {
        loop {
            let (stream, peer) = match self.0.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // As axum does: per-connection errors are the client's; others (too many
                    // open files) are waited out.
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) {
                        tracing::error!("accept error: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let split = stream.into_std().and_then(|std| {
                let handle = std.try_clone()?;
                Ok((TcpStream::from_std(std)?, handle))
            });
            match split {
                Ok((stream, handle)) => {
                    return (
                        stream,
                        Tap {
                            peer,
                            socket: Some(Arc::new(handle)),
                        },
                    );
                }
                Err(e) => tracing::warn!("cannot keep a handle on a connection: {e}"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Tap> {
        Ok(Tap {
            peer: self.0.local_addr()?,
            socket: None,
        })
    }
}

impl Connected<IncomingStream<'_, TapListener>> for Tap {
    fn connect_info(stream: IncomingStream<'_, TapListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    origin: String,
    clock: Clock,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Sandbox {
    /// Starts a sandbox on `127.0.0.1` on an ephemeral port.
    pub async fn start(config: SandboxConfig, clock: Clock) -> io::Result<Sandbox> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None, config, clock).await
    }

    /// Starts a sandbox on `addr`. `public_origin` is the origin written into discovery
    /// documents and redirects; by default `http://{addr}`.
    pub async fn bind(
        addr: SocketAddr,
        public_origin: Option<String>,
        config: SandboxConfig,
        clock: Clock,
    ) -> io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let origin = public_origin.unwrap_or_else(|| format!("http://{addr}"));
        let shared = Arc::new(Shared::new(config, clock.clone()));
        let _ = shared.origin.set(origin.trim_end_matches('/').to_owned());
        let app = routes(shared).into_make_service_with_connect_info::<Tap>();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(TapListener(listener), app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Sandbox {
            addr,
            origin,
            clock,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the Blue Button base URL (FHIR at `{origin}/v2/fhir/`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The generic SMART face's FHIR base URL (`{origin}/smart/fhir/`).
    pub fn smart_fhir_base(&self) -> String {
        format!("{}/smart/fhir/", self.origin)
    }

    /// The sandbox's clock: advance it to age tokens and grants.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stops the server and waits for it to finish in-flight requests.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
