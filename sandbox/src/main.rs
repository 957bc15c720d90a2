//! `connect-medicare-sandbox serve`: the Blue Button 2.0 emulator on a socket.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use connect_medicare_sandbox::{
    AppConfig, Clock, FaultConfig, Listen, Sandbox, SandboxConfig, Storm, ThrottleRate,
};

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
        /// Address of the Medicare login Blue Button sends beneficiaries to: its own listener,
        /// so another origin, as Medicare.gov is. Default: `--listen`'s address with the next
        /// port (8124 beside 8123), or a free port when `--listen`'s port is 0.
        #[arg(long, env = "CM_SANDBOX_LOGIN_LISTEN")]
        login_listen: Option<SocketAddr>,
        /// The origin clients reach the login at, when not `http://{login_listen}`.
        #[arg(long, env = "CM_SANDBOX_LOGIN_PUBLIC_ORIGIN")]
        login_public_origin: Option<String>,
        /// A registered app: `client_id:client_secret:redirect_uri[,redirect_uri…][:grant_kind]`
        /// with grant_kind one of thirteen_month (default), one_time, research. Repeatable;
        /// the environment variable takes several separated by `;`.
        #[arg(long = "app", env = "CM_SANDBOX_APPS", value_delimiter = ';')]
        apps: Vec<AppConfig>,
        /// A TOML file of apps, for every setting: `[[apps]]` with `client_id`,
        /// `client_secret`, `redirect_uris`, and optionally `name`, `grant_kind`,
        /// `require_demographics`, `scopes`, `expiration_format` (`t`, `space` or `no_zone`).
        #[arg(long, env = "CM_SANDBOX_APPS_FILE")]
        apps_file: Option<std::path::PathBuf>,
        /// The origin written into Bundle links (Blue Button passes its backend's through).
        #[arg(long, env = "CM_SANDBOX_LINK_ORIGIN")]
        link_origin: Option<String>,
        /// Seed for tokens, codes and ids, and for the fault dice (the same seed and the same
        /// requests give the same faults).
        #[arg(long, env = "CM_SANDBOX_SEED", default_value_t = 0)]
        seed: u64,
        /// The per-access-token rate limit on the FHIR views, as Django REST framework writes
        /// it (`10/second`, `600/minute`), or `off`.
        #[arg(long, env = "CM_SANDBOX_THROTTLE", default_value = "10/second")]
        throttle: String,
        /// Seconds added to the clock at start (negative moves it back), to age grants and
        /// tokens.
        #[arg(
            long,
            env = "CM_SANDBOX_CLOCK_OFFSET",
            default_value_t = 0,
            allow_hyphen_values = true
        )]
        clock_offset: i64,
        /// Milliseconds of latency added to every API request (FHIR, userinfo, token).
        #[arg(long, env = "CM_SANDBOX_LATENCY_MS", default_value_t = 0)]
        latency_ms: u64,
        /// Probability (0 to 1) that a FHIR request answers 502 "An error occurred contacting
        /// the upstream server", and that a refresh answers 502 after rotating the tokens.
        #[arg(long, env = "CM_SANDBOX_ERROR_RATE", default_value_t = 0.0, value_parser = rate)]
        error_rate: f64,
        /// Probability (0 to 1) that an API request's connection is closed without an
        /// answer (after the request was processed).
        #[arg(long, env = "CM_SANDBOX_DROP_RATE", default_value_t = 0.0, value_parser = rate)]
        drop_rate: f64,
        /// A forced 429 storm: every Blue Button FHIR request answers 429 for this many
        /// seconds after start.
        #[arg(
            long,
            env = "CM_SANDBOX_STORM_SECONDS",
            conflicts_with = "storm_requests"
        )]
        storm_seconds: Option<u64>,
        /// A forced 429 storm: the first this-many Blue Button FHIR requests answer 429.
        #[arg(long, env = "CM_SANDBOX_STORM_REQUESTS")]
        storm_requests: Option<u64>,
        /// Serve the test controls: `GET`/`POST /__admin/faults` and `/__admin/clock` (no
        /// credentials: keep the sandbox on loopback). Without it those paths are 404s. The
        /// environment variable takes `1`/`true` (and `0`, `false`, `no`, `off`).
        #[arg(
            long,
            env = "CM_SANDBOX_ADMIN",
            value_parser = clap::builder::FalseyValueParser::new()
        )]
        admin: bool,
    },
}

/// A probability between 0 and 1.
fn rate(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 1".to_owned())
    }
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
        login_listen,
        login_public_origin,
        mut apps,
        apps_file,
        link_origin,
        seed,
        throttle,
        clock_offset,
        latency_ms,
        error_rate,
        drop_rate,
        storm_seconds,
        storm_requests,
        admin,
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
    let throttle = match throttle.as_str() {
        "off" | "none" => None,
        raw => Some(
            raw.parse::<ThrottleRate>()
                .map_err(|e| anyhow::anyhow!("--throttle: {e}"))?,
        ),
    };
    let storm = match (storm_seconds, storm_requests) {
        (Some(seconds), _) => Some(Storm::Seconds(seconds)),
        (None, Some(requests)) => Some(Storm::Requests(requests)),
        (None, None) => None,
    };
    let mut config = SandboxConfig {
        apps,
        seed,
        throttle,
        faults: FaultConfig {
            latency_ms,
            error_rate,
            drop_rate,
            storm,
            gzip_always: false,
            retry_after_date: false,
            revoke_status: None,
        },
        admin,
        clock_offset_seconds: clock_offset,
        ..SandboxConfig::default()
    };
    if let Some(origin) = link_origin {
        config.link_origin = origin;
    }
    let login_listen = match (login_listen, listen.port()) {
        (Some(addr), _) => addr,
        (None, 0) => SocketAddr::new(listen.ip(), 0),
        (None, port) => SocketAddr::new(
            listen.ip(),
            port.checked_add(1)
                .context("--listen's port has no next port: set --login-listen")?,
        ),
    };
    let api = Listen {
        addr: listen,
        public_origin,
    };
    let login = Listen {
        addr: login_listen,
        public_origin: login_public_origin,
    };
    let sandbox = Sandbox::bind(api, login, config, Clock::new())
        .await
        .with_context(|| format!("cannot listen on {listen} and {login_listen}"))?;
    tracing::info!(
        "Blue Button 2.0 sandbox emulator listening on {} (generic SMART at {}); its \
         Medicare login at {} (another origin, as Medicare.gov's is)",
        sandbox.origin(),
        sandbox.smart_fhir_base(),
        sandbox.login_origin()
    );
    tracing::info!("sign in as BBUser00000 … BBUser00029 with PW00000! … PW00029!");
    if admin {
        tracing::info!(
            "test controls at {}/__admin/faults and /__admin/clock",
            sandbox.origin()
        );
    }
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
