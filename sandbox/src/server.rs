//! Running the sandbox on a socket.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use crate::{
    Clock, SandboxConfig, app::routes, login::medicare_login_routes, network::Tap, state::Shared,
};

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

/// Where one of the sandbox's listeners binds, and the origin clients reach it at.
#[derive(Debug, Clone)]
pub struct Listen {
    /// The socket address to bind.
    pub addr: SocketAddr,
    /// The origin written into discovery documents and redirects; by default `http://{addr}`.
    pub public_origin: Option<String>,
}

impl Listen {
    /// `addr`, reached at `http://{addr}`.
    pub fn at(addr: SocketAddr) -> Self {
        Self {
            addr,
            public_origin: None,
        }
    }

    /// `127.0.0.1` on an ephemeral port.
    pub fn loopback() -> Self {
        Self::at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    async fn bind(&self) -> io::Result<(TcpListener, String)> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let origin = self
            .public_origin
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        Ok((listener, origin.trim_end_matches('/').to_owned()))
    }
}

/// A running sandbox: Blue Button (and the SMART face) on one listener, the Medicare login
/// Blue Button sends beneficiaries to on another — another origin, as Medicare.gov's is.
/// Dropping it stops both.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    origin: String,
    login_origin: String,
    clock: Clock,
    shutdown: Option<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<io::Result<()>>>,
}

impl Sandbox {
    /// Starts a sandbox and its login on `127.0.0.1`, on ephemeral ports.
    pub async fn start(config: SandboxConfig, clock: Clock) -> io::Result<Sandbox> {
        Self::bind(Listen::loopback(), Listen::loopback(), config, clock).await
    }

    /// Starts a sandbox on `api` and the Medicare login on `login`.
    pub async fn bind(
        api: Listen,
        login: Listen,
        config: SandboxConfig,
        clock: Clock,
    ) -> io::Result<Sandbox> {
        let (listener, origin) = api.bind().await?;
        let addr = listener.local_addr()?;
        let (login_listener, login_origin) = login.bind().await?;
        let shared = Arc::new(Shared::new(config, clock.clone()));
        let _ = shared.origin.set(origin.clone());
        let _ = shared.login_origin.set(login_origin.clone());
        let (tx, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let app = routes(shared.clone()).into_make_service_with_connect_info::<Tap>();
        let api_task = tokio::spawn(
            axum::serve(TapListener(listener), app)
                .with_graceful_shutdown(stopped(rx.clone()))
                .into_future(),
        );
        let login_app = medicare_login_routes(shared);
        let login_task = tokio::spawn(
            axum::serve(login_listener, login_app)
                .with_graceful_shutdown(stopped(rx))
                .into_future(),
        );
        Ok(Sandbox {
            addr,
            origin,
            login_origin,
            clock,
            shutdown: Some(tx),
            tasks: vec![api_task, login_task],
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

    /// The Medicare login's origin: the origin an app's `form-action` must allow for a POST
    /// authorize request to reach the sign-in page.
    pub fn login_origin(&self) -> &str {
        &self.login_origin
    }

    /// The generic SMART face's FHIR base URL (`{origin}/smart/fhir/`).
    pub fn smart_fhir_base(&self) -> String {
        format!("{}/smart/fhir/", self.origin)
    }

    /// The sandbox's clock: advance it to age tokens and grants.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stops both servers and waits for them to finish in-flight requests.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for task in std::mem::take(&mut self.tasks) {
            task.await.map_err(io::Error::other)??;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}
