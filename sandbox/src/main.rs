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
        #[arg(long = "app", env = "CM_SANDBOX_APPS", value_delimiter = ';')]
        apps: Vec<AppConfig>,
        /// A TOML file of apps, for every setting: `[[apps]]` with `client_id`,
        /// `client_secret`, `redirect_uris`, and optionally `name`, `grant_kind`,
        /// `require_demographics`, `scopes`, `expiration_format` (`t` or `space`).
        #[arg(long, env = "CM_SANDBOX_APPS_FILE")]
        apps_file: Option<std::path::PathBuf>,
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
        mut apps,
        apps_file,
        link_origin,
        seed,
    } = Cli::parse().command;
    if let Some(path) = apps_file {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct AppsFile {
            apps: Vec<AppConfig>,
        }
        let raw = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: AppsFile = toml::from_str(&raw)
            .with_context(|| format!("invalid apps file {}", path.display()))?;
        apps.extend(file.apps);
    }
    anyhow::ensure!(
        !apps.is_empty(),
        "register at least one app with --app, CM_SANDBOX_APPS or --apps-file"
    );
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
        "Blue Button 2.0 sandbox emulator listening on {} (generic SMART at {})",
        sandbox.origin(),
        sandbox.smart_fhir_base()
    );
    tracing::info!("sign in as BBUser00000 … BBUser00029 with PW00000! … PW00029!");
    shutdown_signal().await;
    sandbox.stop().await.context("shutting down")?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
