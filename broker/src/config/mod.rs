//! The broker's configuration: a TOML file plus `CM_BROKER_*` environment overrides, parsed
//! and validated once at start. `broker/broker.example.toml` documents every field.
//!
//! # Environment overrides
//!
//! | variable | replaces |
//! |---|---|
//! | `CM_BROKER_LISTEN` | `listen` |
//! | `CM_BROKER_METRICS_LISTEN` | `metrics_listen` |
//! | `CM_BROKER_MAX_CONNECTIONS`, `CM_BROKER_HEADER_READ_TIMEOUT_SECONDS` | the same names |
//! | `CM_BROKER_PUBLIC_BASE_URL` | `public_base_url` |
//! | `CM_BROKER_ALLOWED_ORIGINS` | `allowed_origins` (comma-separated) |
//! | `CM_BROKER_DATABASE` | `database` |
//! | `CM_BROKER_STATIC_DIR` | `static_dir` |
//! | `CM_BROKER_KEYS` | the whole key ring: `id:base64key,id:base64key` (oldest first) |
//! | `CM_BROKER_KEYS_FILE` | the whole key ring, from a TOML file of `[[keys]]` |
//! | `CM_BROKER_FLOW_TTL_SECONDS`, `CM_BROKER_MAX_PENDING_FLOWS`, `CM_BROKER_SESSION_TTL_SECONDS`, `CM_BROKER_REFRESH_SKEW_SECONDS` | the same names |
//! | `CM_BROKER_UPSTREAM__CONNECT_TIMEOUT_SECONDS`, `CM_BROKER_UPSTREAM__REQUEST_TIMEOUT_SECONDS`, `CM_BROKER_UPSTREAM__MAX_BODY_BYTES` | `[upstream]` |
//! | `CM_BROKER_PROVIDERS__<ID>__CLIENT_SECRET` | that provider's secret (`<ID>`: its id uppercased, `-` as `_`) |
//! | `CM_BROKER_PROVIDERS__<ID>__CLIENT_SECRET_FILE` | the same, read from a file |
//! | `CM_BROKER_PROVIDERS__<ID>__CLIENT_ID` | that provider's client id |
//!
//! `CM_BROKER_CONFIG`, `CM_BROKER_LOG` and `CM_BROKER_LOG_FORMAT` belong to the command line;
//! any other `CM_BROKER_*` variable is refused, so a typo cannot go unnoticed.
//!
//! Relative paths in the file are relative to the file's directory; relative paths in the
//! environment are relative to the working directory.
//!
//! The files, each using only those listed before it: `provider.rs` (the providers and their
//! resolution against a discovery document), `raw.rs` (the file as serde reads it), `parse.rs`
//! (the small value parsers), `env.rs` (the `CM_BROKER_*` layering), `validate_provider.rs`
//! and `validate.rs` (the raw file checked into a [`Config`], every problem reported at once).

mod env;
mod parse;
mod provider;
mod raw;
#[cfg(test)]
mod tests;
mod validate;
mod validate_provider;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use connect_medicare_protocol::contract::ProviderId;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub(crate) use self::provider::Access;
pub use self::{
    env::{ENV_PREFIX, Env},
    provider::{ClientAuth, ProviderConfig, ProviderUpstream, ResolvedProvider},
};
use self::{
    parse::{parse_postgres, syntax_error},
    raw::RawConfig,
};
use crate::{
    crypto::KeyRing,
    error::{Error, Result},
    origin::Origin,
};

/// The broker's validated configuration. Its `Debug` shows no secret.
#[derive(Debug)]
pub struct Config {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    max_connections: usize,
    header_read_timeout: Duration,
    public_base_url: Url,
    public_origin: Origin,
    allowed_origins: Vec<Origin>,
    database: DatabaseConfig,
    static_dir: Option<PathBuf>,
    keys: KeyRing,
    flow_ttl_seconds: i64,
    max_pending_flows: usize,
    session_ttl_seconds: i64,
    refresh_skew_seconds: i64,
    connection_cache: Option<Duration>,
    upstream: UpstreamTimeouts,
    providers: Vec<ProviderConfig>,
    warnings: Vec<String>,
}

/// Where the broker keeps flows, sessions and encrypted tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseConfig {
    /// A SQLite file (created if missing), in WAL mode.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database: gone when the broker stops (tests, demos).
    SqliteMemory,
    /// A PostgreSQL database (`postgres://…`): the store for several replicas.
    Postgres(PostgresUrl),
}

/// A PostgreSQL connection URL, `postgres://user:password@host:port/database?sslmode=…`
/// (or `postgresql://`; a Unix socket with `?host=/run/postgresql`).
///
/// It may hold a password, so it is kept as a secret: its `Debug` shows the user, host, port
/// and database with the password and every `*pass*` query value `[redacted]`, and parse
/// errors never echo it.
#[derive(Clone)]
pub struct PostgresUrl(SecretString);

impl PostgresUrl {
    /// Checks `raw` as a PostgreSQL URL the store can connect with.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming what is wrong, without the URL.
    pub fn parse(raw: &str) -> Result<Self> {
        parse_postgres(raw.trim()).map_err(|problem| Error::InvalidConfig {
            problems: vec![format!("database: {problem}")],
        })
    }

    /// The whole URL, password included: for opening the connection, never for printing.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for PostgresUrl {}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "[redacted]";
        let Ok(url) = Url::parse(self.expose_secret()) else {
            // Validated at construction; never print what did not parse.
            return f.write_str("PostgresUrl([redacted])");
        };
        let mut shown = format!("{}://", url.scheme());
        if !url.username().is_empty() {
            shown.push_str(url.username());
            if url.password().is_some() {
                shown.push(':');
                shown.push_str(REDACTED);
            }
            shown.push('@');
        }
        if let Some(host) = url.host_str() {
            shown.push_str(host);
        }
        if let Some(port) = url.port() {
            shown.push_str(&format!(":{port}"));
        }
        shown.push_str(url.path());
        let query: Vec<String> = url
            .query_pairs()
            .map(|(key, value)| {
                if key.to_ascii_lowercase().contains("pass") {
                    format!("{key}={REDACTED}")
                } else {
                    format!("{key}={value}")
                }
            })
            .collect();
        if !query.is_empty() {
            shown.push('?');
            shown.push_str(&query.join("&"));
        }
        f.debug_tuple("PostgresUrl").field(&shown).finish()
    }
}

/// Timeouts and size limits of requests to upstream servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    connect: Duration,
    request: Duration,
    max_body_bytes: u64,
}

impl UpstreamTimeouts {
    /// Time allowed to open a connection.
    pub fn connect(&self) -> Duration {
        self.connect
    }

    /// Time allowed for a whole request, until the response headers arrive.
    pub fn request(&self) -> Duration {
        self.request
    }

    /// The largest FHIR response body the broker relays, counted as the browser will read it
    /// (inflated, for gzip). A search Bundle of a provider with opaque paging links is read
    /// whole to seal its links, within the smaller of this and `pages::MAX_BUFFERED`.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }
}

impl Config {
    /// Reads `path` and applies the process's `CM_BROKER_*` environment variables.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with_env(path, Env::from_process())
    }

    /// Reads `path` and applies `env`'s overrides.
    pub fn load_with_env(path: &Path, env: Env) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::ReadFile {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path, env)
    }

    /// Parses `text` as if read from `path` (used for error positions and to resolve
    /// relative paths) and applies `env`'s overrides.
    pub fn parse(text: &str, path: &Path, env: Env) -> Result<Self> {
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        raw.resolve_paths(base_dir);
        let mut problems = Vec::new();
        raw.apply_env(env, &mut problems);
        let config = raw.validate(&mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(Error::InvalidConfig { problems }),
        }
    }

    /// The address and port to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Where `/metrics` is served when it has a listener of its own; `None`: on the main
    /// listener, beside the API.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// The most client connections held open at once; more wait in the kernel's backlog.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// How long a new connection has to deliver its first request's head — from the moment
    /// it is accepted, so a socket that never sends a byte is closed too — and how long any
    /// later request head may take.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// The URL the app (and the broker under it) is served at.
    pub fn public_base_url(&self) -> &Url {
        &self.public_base_url
    }

    /// The origin of [`Self::public_base_url`].
    pub fn public_origin(&self) -> &Origin {
        &self.public_origin
    }

    /// The exact origins CORS allows (with credentials).
    pub fn allowed_origins(&self) -> &[Origin] {
        &self.allowed_origins
    }

    /// Where the store lives.
    pub fn database(&self) -> &DatabaseConfig {
        &self.database
    }

    /// A directory of static files to serve, if any.
    pub fn static_dir(&self) -> Option<&Path> {
        self.static_dir.as_deref()
    }

    /// The token-encryption key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }

    /// How long a registered flow may wait for its callback, in seconds.
    pub fn flow_ttl_seconds(&self) -> i64 {
        self.flow_ttl_seconds
    }

    /// The most unexpired flows kept at once.
    pub fn max_pending_flows(&self) -> usize {
        self.max_pending_flows
    }

    /// How long a session lives without use, in seconds.
    pub fn session_ttl_seconds(&self) -> i64 {
        self.session_ttl_seconds
    }

    /// How long before an access token's expiry it is refreshed, in seconds.
    pub fn refresh_skew_seconds(&self) -> i64 {
        self.refresh_skew_seconds
    }

    /// How long a proxied read's lookup (a session and its connection) is kept per replica
    /// (`connection_cache_ms`, 250 by default; `None` when set to 0, which keeps none). See
    /// `store/cached.rs` for what it keeps and what it costs the writes.
    pub fn connection_cache(&self) -> Option<Duration> {
        self.connection_cache
    }

    /// Timeouts of upstream requests.
    pub fn upstream_timeouts(&self) -> UpstreamTimeouts {
        self.upstream
    }

    /// The providers, in configuration order.
    pub fn providers(&self) -> &[ProviderConfig] {
        &self.providers
    }

    /// The provider with this id.
    pub fn provider(&self, id: &ProviderId) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| &p.id == id)
    }

    /// Things that work but are probably not what the operator wants (for example a broker
    /// that is cross-site to the app). `serve` logs them; `check-config` prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
