//! `connect-medicare-broker`: serve the broker, check a configuration, or make a key.

use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use connect_medicare_broker::{
    AppState, Clock as _, Config, KeyMaterial, SystemClock, new_key_id, open_store, serve,
    serve_metrics,
};
use secrecy::ExposeSecret as _;
use tracing_subscriber::EnvFilter;

/// The Connect Medicare token broker: holds the client secret, redeems codes, keeps tokens
/// encrypted server side, and serves the app's browser an HttpOnly session cookie.
#[derive(Parser)]
#[command(name = "connect-medicare-broker", version)]
struct Cli {
    /// Log format on stderr. The filter comes from CM_BROKER_LOG (e.g. "info",
    /// "connect_medicare_broker=debug"), else RUST_LOG, else "info".
    #[arg(
        long,
        global = true,
        env = "CM_BROKER_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the configuration comes from: the same for `serve` and `check-config`.
#[derive(clap::Args)]
struct ConfigArg {
    /// The configuration file (see broker.example.toml); CM_BROKER_* variables override it.
    #[arg(long, short, env = "CM_BROKER_CONFIG")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the broker: the /v1 API, GET /healthz, GET /readyz, GET /metrics (or on
    /// metrics_listen), and the static directory if configured.
    Serve(ConfigArg),
    /// Load and validate the configuration exactly as `serve` would (the file and the
    /// CM_BROKER_* overrides) and print its warnings; exits non-zero when it is invalid.
    CheckConfig(ConfigArg),
    /// Print a fresh token-encryption key as a [[keys]] entry to append to the configuration.
    GenKey {
        /// The key's id (default: today's date and a random suffix).
        #[arg(long)]
        id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    connect_medicare_broker::install_panic_hook();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the whole chain of causes on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(ConfigArg { config }) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(run_serve(config))
        }
        Command::CheckConfig(ConfigArg { config }) => check_config(config),
        Command::GenKey { id } => gen_key(id),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("CM_BROKER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run_serve(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let store = open_store(config.database())
        .await
        .with_context(|| format!("cannot open the store ({:?})", config.database()))?;
    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen()))?;
    tracing::info!(
        address = %listener.local_addr()?,
        public_base_url = %config.public_base_url(),
        "serving"
    );
    let metrics_listener = match config.metrics_listen() {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (metrics_listen)"))?,
        ),
        None => None,
    };
    let state = AppState::new(Arc::new(config), store, Arc::new(SystemClock)).await?;
    tracing::info!(
        form_action = %connect_medicare_broker::form_action_sources(&state).join(" "),
        "an app page of your own that starts a sign-in needs this in its CSP form-action"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let metrics = match metrics_listener {
        Some(listener) => {
            tracing::info!(metrics = %listener.local_addr()?, "serving /metrics on its own listener");
            let mut stopped = stopped.clone();
            Some(tokio::spawn(serve_metrics(
                listener,
                state.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };
    serve(listener, state, async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    })
    .await?;
    if let Some(metrics) = metrics {
        metrics.await.context("the metrics listener failed")??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn check_config(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let mut err = std::io::stderr().lock();
    for warning in config.warnings() {
        writeln!(err, "warning: {warning}")?;
    }
    let providers: Vec<_> = config.providers().iter().map(|p| p.id().as_str()).collect();
    writeln!(
        std::io::stdout().lock(),
        "{}: ok ({} provider(s): {}; {} warning(s))",
        path.display(),
        providers.len(),
        providers.join(", "),
        config.warnings().len()
    )?;
    Ok(())
}

fn gen_key(id: Option<String>) -> anyhow::Result<()> {
    let id = match id {
        Some(id) => connect_medicare_broker::KeyId::new(&id)?,
        None => new_key_id(SystemClock.now())?,
    };
    let key = KeyMaterial::generate()?;
    writeln!(
        std::io::stdout().lock(),
        "# Append to the broker's configuration (or its keys_file). The last [[keys]] entry\n\
         # seals new tokens; keep older entries until every token they sealed has been\n\
         # refreshed or has expired.\n\
         [[keys]]\n\
         id = \"{id}\"\n\
         key = \"{}\"",
        key.to_base64().expose_secret()
    )?;
    Ok(())
}
