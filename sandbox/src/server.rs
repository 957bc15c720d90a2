//! Running the sandbox on a socket.

use std::{io, net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{Clock, SandboxConfig, app::routes, state::Shared};

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
        let app = routes(shared);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
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
