//! `connect-medicare-sandbox serve`: the Blue Button 2.0 emulator on a socket.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use connect_medicare_sandbox::{AppConfig, Clock, Sandbox, SandboxConfig};

/// An offline emulator of the CMS Blue Button 2.0 v2 sandbox (and a generic SMART server on
/// /smart/), for Connect Medicare's tests, demo and local development.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulator.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "CM_SANDBOX_LISTEN", default_value = "127.0.0.1:8123")]
        listen: SocketAddr,
        /// The origin clients reach it at, when not `http://{listen}`.
        #[arg(long, env = "CM_SANDBOX_PUBLIC_ORIGIN")]
        public_origin: Option<String>,
        /// A registered app: `client_id:client_secret:redirect_uri[,redirect_uri…][:grant_kind]`
        /// with grant_kind one of thirteen_month (default), one_time, research. Repeatable;
        /// the environment variable takes several separated by `;`.
        #[arg(
            long = "app",
            env = "CM_SANDBOX_APPS",
            value_delimiter = ';',
            required = true
        )]
        apps: Vec<AppConfig>,
        /// The origin written into Bundle links (Blue Button passes its backend's through).
        #[arg(long, env = "CM_SANDBOX_LINK_ORIGIN")]
        link_origin: Option<String>,
        /// Seed for tokens, codes and ids.
        #[arg(long, env = "CM_SANDBOX_SEED", default_value_t = 0)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve {
        listen,
        public_origin,
        apps,
        link_origin,
        seed,
    } = Cli::parse().command;
    let mut config = SandboxConfig {
        apps,
        seed,
        ..SandboxConfig::default()
    };
    if let Some(origin) = link_origin {
        config.link_origin = origin;
    }
    let sandbox = Sandbox::bind(listen, public_origin, config, Clock::new())
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        origin = sandbox.origin(),
        "Blue Button 2.0 sandbox emulator listening"
    );
    tracing::info!("sign in as BBUser00000 … BBUser00029 with PW00000! … PW00029!");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.stop().await.context("shutting down")?;
    Ok(())
}
