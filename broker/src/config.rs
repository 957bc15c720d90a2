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

use std::{
    collections::BTreeSet,
    ffi::OsString,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use connect_medicare_protocol::{
    ClientId, ClientSecret, DisconnectKind, FhirBase, Provider, ProviderKind, RedirectUri, Scopes,
    SmartConfiguration,
    contract::{ProviderId, ProviderInfo},
    resources::ResourceType,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::{
    crypto::{KeyId, KeyMaterial, KeyRing},
    error::{Error, Result},
    origin::Origin,
};

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "CM_BROKER_";
/// `CM_BROKER_*` variables read by the command line rather than the configuration.
const COMMAND_LINE_VARS: [&str; 3] = ["CONFIG", "LOG", "LOG_FORMAT"];

/// The 32 bytes of the example key in `broker.example.toml`: never for real use.
const EXAMPLE_KEY: &[u8; 32] = b"example-key-do-not-use-32-bytes!";

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Connections held open at once. Each costs a file descriptor: the systemd unit in
/// `broker/` raises the limit to 65536, far above this.
const DEFAULT_MAX_CONNECTIONS: u64 = 4_096;
const DEFAULT_HEADER_READ_TIMEOUT: u64 = 10;
const DEFAULT_FLOW_TTL: u64 = 600;
const DEFAULT_MAX_PENDING_FLOWS: u64 = 10_000;
const DEFAULT_SESSION_TTL: u64 = 30 * 24 * 3600;
const DEFAULT_REFRESH_SKEW: u64 = 60;
const DEFAULT_CONNECT_TIMEOUT: u64 = 5;
const DEFAULT_REQUEST_TIMEOUT: u64 = 30;
/// 64 MiB: far above the largest Blue Button page (a few MB at `_count=50`).
const DEFAULT_MAX_UPSTREAM_BODY: u64 = 64 * 1024 * 1024;

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

/// [`PostgresUrl::parse`]: the URL must parse as the store will parse it. Messages never
/// contain the URL (sqlx's are scrubbed of the password in case one quotes a value).
fn parse_postgres(raw: &str) -> Result<PostgresUrl, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE".into());
    }
    if url.fragment().is_some() {
        return Err("a PostgreSQL URL has no #fragment".into());
    }
    if url.host_str().is_none_or(str::is_empty) && !url.query_pairs().any(|(k, _)| k == "host") {
        return Err("a PostgreSQL URL needs a host (or ?host=/path/to/socket/dir)".into());
    }
    if let Err(e) = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(raw) {
        let mut message = e.to_string();
        for secret in url
            .password()
            .into_iter()
            .map(str::to_owned)
            .chain(url.query_pairs().map(|(_, v)| v.into_owned()))
            .filter(|s| !s.is_empty())
        {
            message = message.replace(&secret, "[redacted]");
        }
        return Err(format!("invalid PostgreSQL connection options: {message}"));
    }
    Ok(PostgresUrl(SecretString::from(raw.to_owned())))
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

/// How the broker authenticates to a provider's token and revocation endpoints
/// (`client_auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret form-encoded first, as RFC 6749 §2.3.1 says
    /// (Blue Button's django-oauth-toolkit decodes them). The default: it is the standard, and
    /// for ids and secrets of letters, digits and `-._` both Basic forms are the same bytes.
    #[default]
    ClientSecretBasic,
    /// HTTP Basic with the id and secret as they are, as SMART's client-confidential-symmetric
    /// page shows it and servers that do not form-decode expect (SMART's reference server).
    ClientSecretBasicUnencoded,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1's alternative).
    ClientSecretPost,
}

impl ClientAuth {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretBasicUnencoded => "client_secret_basic_unencoded",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// One `[[providers]]` entry.
#[derive(Debug)]
pub struct ProviderConfig {
    id: ProviderId,
    name: String,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect_uri: RedirectUri,
    scopes: Option<Scopes>,
    authorize_post: Option<bool>,
    sign_in_origins: Vec<Origin>,
    client_auth: ClientAuth,
    upstream: ProviderUpstream,
    resources: AllowLists,
    requests_per_second: Option<u32>,
}

/// Upstream requests per second per connection when `requests_per_second` is not set: Blue
/// Button throttles each access token at 10 in any second, so one user's paging gets just
/// under it — paced at exactly 10, a request a millisecond late puts 11 in a window and the
/// server answers 429 (seen: `broker/tests/security.rs`'s fifty concurrent reads failed so).
/// Other servers publish no limit: the broker allows 20.
pub(crate) const DEFAULT_REQUESTS_PER_SECOND_BLUE_BUTTON: u32 = 9;
/// See [`DEFAULT_REQUESTS_PER_SECOND_BLUE_BUTTON`].
pub(crate) const DEFAULT_REQUESTS_PER_SECOND_SMART: u32 = 20;

/// A provider's `read` and `search` allow-lists: the resource types the browser may read by
/// id and search. `None` (not configured) serves every type the broker can keep to the
/// patient ([`ResourceType::all`]; Blue Button: its three) that the connection's granted
/// scopes allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowLists {
    read: Option<Vec<&'static ResourceType>>,
    search: Option<Vec<&'static ResourceType>>,
}

/// Reading by id or searching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GET {type}/{id}`.
    Read,
    /// `GET {type}?…`.
    Search,
}

impl Access {
    /// The configuration key of its allow-list.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Search => "search",
        }
    }
}

impl AllowLists {
    /// The configured list for `access`, if one was configured.
    pub fn configured(&self, access: Access) -> Option<&[&'static ResourceType]> {
        match access {
            Access::Read => self.read.as_deref(),
            Access::Search => self.search.as_deref(),
        }
    }

    /// The SMART scopes that ask for what the lists name: `patient/<type>.r`, `.s` or `.rs` — or,
    /// for a server that lists only SMART v1 scopes (`v1`), `patient/<type>.read`, the one v1
    /// spelling that grants reading (it covers searching too).
    fn scopes(&self, v1: bool) -> Vec<String> {
        let mut names: Vec<&'static str> = Vec::new();
        for t in self.read.iter().chain(&self.search).flatten() {
            if !names.contains(&t.name()) {
                names.push(t.name());
            }
        }
        let has = |list: &Option<Vec<&'static ResourceType>>, name: &str| {
            list.as_ref()
                .is_some_and(|l| l.iter().any(|t| t.name() == name))
        };
        names
            .into_iter()
            .map(|name| {
                if v1 {
                    return format!("patient/{name}.read");
                }
                let r = if has(&self.read, name) { "r" } else { "" };
                let s = if has(&self.search, name) { "s" } else { "" };
                format!("patient/{name}.{r}{s}")
            })
            .collect()
    }
}

/// Where a provider's profile comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderUpstream {
    /// Blue Button 2.0 (`kind = "blue_button"`): the profile follows from `base_url` alone
    /// ([`Provider::blue_button_at`]), built and checked while loading.
    BlueButton {
        /// `base_url`, as configured.
        base_url: String,
        /// The profile.
        provider: Box<Provider>,
    },
    /// A SMART App Launch server (`kind = "smart"`): its profile comes from the discovery
    /// document at [`ProviderConfig::discovery_url`], fetched at startup and handed to
    /// [`ProviderConfig::resolve`].
    Smart {
        /// `fhir_base_url`, which is also the `aud`.
        fhir_base: FhirBase,
    },
}

/// A provider ready to serve: its profile, the scopes to ask for and the authorize method.
#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    id: ProviderId,
    name: String,
    client_id: ClientId,
    redirect_uri: RedirectUri,
    provider: Provider,
    scopes: Scopes,
    authorize_post: bool,
    sign_in_origins: Vec<Origin>,
    resources: AllowLists,
    requests_per_second: u32,
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

impl ProviderConfig {
    /// The provider's id in this broker.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registered client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The client secret, for HTTP Basic client authentication only.
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }

    /// The registered redirect URI, exactly.
    pub fn redirect_uri(&self) -> &RedirectUri {
        &self.redirect_uri
    }

    /// The scopes configured, if any (else the provider's defaults apply).
    pub fn configured_scopes(&self) -> Option<&Scopes> {
        self.scopes.as_ref()
    }

    /// How the broker authenticates to the provider (`client_auth`).
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// `authorize_post` as configured: `None` follows the provider's support.
    pub fn authorize_post_preference(&self) -> Option<bool> {
        self.authorize_post
    }

    /// Where the profile comes from.
    pub fn upstream(&self) -> &ProviderUpstream {
        &self.upstream
    }

    /// Blue Button or SMART.
    pub fn kind(&self) -> ProviderKind {
        match self.upstream {
            ProviderUpstream::BlueButton { .. } => ProviderKind::BlueButton,
            ProviderUpstream::Smart { .. } => ProviderKind::Smart,
        }
    }

    /// For a SMART provider, the discovery document to fetch:
    /// `{fhir_base_url}/.well-known/smart-configuration`. `None` for Blue Button.
    pub fn discovery_url(&self) -> Option<String> {
        match &self.upstream {
            ProviderUpstream::BlueButton { .. } => None,
            ProviderUpstream::Smart { fhir_base } => {
                Some(fhir_base.join(".well-known/smart-configuration"))
            }
        }
    }

    /// The provider ready to serve. Blue Button takes no discovery document (`None`); a
    /// SMART provider takes the one fetched from [`Self::discovery_url`]. The configured
    /// scopes (or the provider's defaults) are checked against what the provider lists, and
    /// `authorize_post = true` against what it supports.
    pub fn resolve(&self, discovered: Option<&SmartConfiguration>) -> Result<ResolvedProvider> {
        let field = |name: &str| format!("providers.{}.{name}", self.id.as_str());
        let problem = |name: &str, message: String| Error::InvalidConfig {
            problems: vec![format!("{}: {message}", field(name))],
        };
        let provider = match (&self.upstream, discovered) {
            (ProviderUpstream::BlueButton { provider, .. }, None) => Provider::clone(provider),
            (ProviderUpstream::BlueButton { .. }, Some(_)) => {
                return Err(problem(
                    "kind",
                    "a blue_button provider takes no discovery document".into(),
                ));
            }
            (ProviderUpstream::Smart { .. }, None) => {
                return Err(problem(
                    "fhir_base_url",
                    "a smart provider needs its discovery document".into(),
                ));
            }
            (ProviderUpstream::Smart { fhir_base }, Some(document)) => {
                Provider::from_smart_configuration(fhir_base.clone(), document).map_err(|e| {
                    problem("fhir_base_url", format!("unusable discovery document: {e}"))
                })?
            }
        };
        let scopes = match &self.scopes {
            Some(scopes) => scopes.clone(),
            // A SMART provider with allow-lists asks for what they name, plus the sign-in's
            // own scopes from the defaults.
            None if provider.kind() == ProviderKind::Smart
                && (self.resources.read.is_some() || self.resources.search.is_some()) =>
            {
                let mut scopes: Scopes = provider
                    .default_scopes()
                    .iter()
                    .filter(|s| !s.is_resource())
                    .cloned()
                    .collect();
                // In the server's own spelling: SMART v1 when it lists resource scopes and none
                // of them is v2. Checked below against what it supports, like configured scopes.
                let v1 = provider.scopes_supported().is_some_and(|supported| {
                    let mut resource = supported.iter().filter(|s| s.is_resource()).peekable();
                    resource.peek().is_some()
                        && resource.all(connect_medicare_protocol::Scope::is_v1)
                });
                for raw in self.resources.scopes(v1) {
                    let scope = connect_medicare_protocol::Scope::parse(&raw)
                        .map_err(|e| problem("read", e.to_string()))?;
                    scopes.insert(scope);
                }
                scopes
            }
            None => provider.default_scopes().clone(),
        };
        provider
            .check_scopes(&scopes)
            .map_err(|e| problem("scopes", e.to_string()))?;
        let authorize_post = match self.authorize_post {
            Some(true) if !provider.supports_authorize_post() => {
                return Err(problem(
                    "authorize_post",
                    "the provider does not support POST authorize requests".into(),
                ));
            }
            Some(preference) => preference,
            None => provider.supports_authorize_post(),
        };
        Ok(ResolvedProvider {
            id: self.id.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            provider,
            scopes,
            authorize_post,
            sign_in_origins: self.sign_in_origins.clone(),
            resources: self.resources.clone(),
            requests_per_second: self.requests_per_second.unwrap_or(match self.kind() {
                ProviderKind::BlueButton => DEFAULT_REQUESTS_PER_SECOND_BLUE_BUTTON,
                _ => DEFAULT_REQUESTS_PER_SECOND_SMART,
            }),
        })
    }
}

impl ResolvedProvider {
    /// The provider's id in this broker.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The upstream profile.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The scopes to ask for (checked against the provider's list).
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// Whether authorize requests may be form POSTs.
    pub fn authorize_post(&self) -> bool {
        self.authorize_post
    }

    /// The origins a form POST authorize request is redirected through on its way to the
    /// sign-in page (Blue Button's goes on to Medicare.gov's login). A page's `form-action`
    /// CSP applies to every hop, so it must list them with the authorization endpoint.
    pub fn sign_in_origins(&self) -> &[Origin] {
        &self.sign_in_origins
    }

    /// The registered client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The registered redirect URI.
    pub fn redirect_uri(&self) -> &RedirectUri {
        &self.redirect_uri
    }

    /// The `read` and `search` allow-lists.
    pub fn resources(&self) -> &AllowLists {
        &self.resources
    }

    /// Upstream requests per second per connection (`requests_per_second`); 0 paces nothing.
    pub fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    /// The provider as `GET /v1/config` shows it to the browser (no secret).
    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.provider.kind(),
            client_id: self.client_id.clone(),
            authorization_endpoint: self.provider.authorization_endpoint().to_owned(),
            aud: self.provider.fhir_base().clone(),
            scopes: self.scopes.clone(),
            scopes_supported: self.provider.scopes_supported().cloned(),
            redirect_uri: self.redirect_uri.clone(),
            authorize_post: self.authorize_post,
            max_page_size: self.provider.max_page_size(),
            eob_types: self.provider.eob_types().to_vec(),
            revocation_supported: matches!(
                self.provider.disconnect(),
                (kind, Some(_)) if kind != DisconnectKind::None
            ),
        }
    }
}

/// The `CM_BROKER_*` environment variables, read once. `Debug` shows names only.
#[derive(Default)]
pub struct Env {
    vars: Vec<(String, Option<String>)>,
}

impl Env {
    /// No overrides.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The process's `CM_BROKER_*` variables.
    pub fn from_process() -> Self {
        Self::from_os_pairs(std::env::vars_os())
    }

    /// The `CM_BROKER_*` variables among `pairs` (for tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), Some(v.into())))
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self { vars }
    }

    fn from_os_pairs(pairs: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let vars = pairs
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with(ENV_PREFIX).then(|| (k, v.into_string().ok()))
            })
            .collect();
        Self { vars }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

/// A TOML error without the source line it points at (which may hold a secret), and without
/// the values serde quotes in "invalid type" messages.
fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> Error {
    let (line, column) = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    Error::ConfigSyntax {
        path: path.to_owned(),
        line,
        column,
        message: scrub(error.message()),
    }
}

/// Removes the quoted value from serde's "invalid type/value: <value>, expected ..." messages.
fn scrub(message: &str) -> String {
    let message = message.trim();
    for prefix in ["invalid type:", "invalid value:", "invalid length"] {
        if message.starts_with(prefix) {
            return match message.rsplit_once(", expected ") {
                Some((_, expected)) => format!("invalid type or value, expected {expected}"),
                None => "invalid type or value".to_owned(),
            };
        }
    }
    message.to_owned()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    metrics_listen: Option<String>,
    max_connections: Option<u64>,
    header_read_timeout_seconds: Option<u64>,
    public_base_url: Option<String>,
    allowed_origins: Option<Vec<String>>,
    database: Option<String>,
    static_dir: Option<PathBuf>,
    keys: Option<Vec<RawKey>>,
    keys_file: Option<PathBuf>,
    flow_ttl_seconds: Option<u64>,
    max_pending_flows: Option<u64>,
    session_ttl_seconds: Option<u64>,
    refresh_skew_seconds: Option<u64>,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    providers: Vec<RawProvider>,
    /// Set when `database` came from the file: relative SQLite paths are joined to it.
    #[serde(skip)]
    database_base: Option<PathBuf>,
    /// Keys from `CM_BROKER_KEYS`, which replace every other source.
    #[serde(skip)]
    env_keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    connect_timeout_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    max_body_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    key: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeysFile {
    keys: Vec<RawKey>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    BlueButton,
    Smart,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: String,
    name: String,
    kind: RawKind,
    base_url: Option<String>,
    fhir_base_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    client_secret_file: Option<PathBuf>,
    redirect_uri: String,
    scopes: Option<String>,
    authorize_post: Option<bool>,
    sign_in_origins: Option<Vec<String>>,
    #[serde(default)]
    client_auth: ClientAuth,
    read: Option<Vec<String>>,
    search: Option<Vec<String>>,
    requests_per_second: Option<u32>,
    /// Set when the secret came from the environment (replaces both file fields).
    #[serde(skip)]
    env_secret: Option<SecretString>,
}

fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_owned()
    }
}

/// The environment's spelling of a provider id: uppercase, `-` as `_`.
fn env_provider_id(id: &str) -> String {
    id.to_ascii_uppercase().replace('-', "_")
}

impl RawConfig {
    fn resolve_paths(&mut self, base: &Path) {
        self.static_dir = self.static_dir.take().map(|p| join(base, &p));
        self.keys_file = self.keys_file.take().map(|p| join(base, &p));
        for provider in &mut self.providers {
            provider.client_secret_file =
                provider.client_secret_file.take().map(|p| join(base, &p));
        }
        if self.database.is_some() {
            self.database_base = Some(base.to_owned());
        }
    }

    fn apply_env(&mut self, env: Env, problems: &mut Vec<String>) {
        for (name, value) in env.vars {
            let Some(value) = value else {
                problems.push(format!("{name}: not valid UTF-8"));
                continue;
            };
            let key = &name[ENV_PREFIX.len()..];
            let number = |problems: &mut Vec<String>| match value.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(format!("{name}: must be a whole number"));
                    None
                }
            };
            match key {
                "LISTEN" => self.listen = Some(value),
                "METRICS_LISTEN" => self.metrics_listen = Some(value),
                "MAX_CONNECTIONS" => self.max_connections = number(problems),
                "HEADER_READ_TIMEOUT_SECONDS" => {
                    self.header_read_timeout_seconds = number(problems);
                }
                "PUBLIC_BASE_URL" => self.public_base_url = Some(value),
                "ALLOWED_ORIGINS" => {
                    self.allowed_origins = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                "DATABASE" => {
                    self.database = Some(value);
                    self.database_base = None;
                }
                "STATIC_DIR" => self.static_dir = Some(PathBuf::from(value)),
                "KEYS" => self.env_keys = Some(parse_env_keys(&name, &value, problems)),
                "KEYS_FILE" => {
                    self.keys_file = Some(PathBuf::from(value));
                    self.keys = None;
                }
                "FLOW_TTL_SECONDS" => self.flow_ttl_seconds = number(problems),
                "MAX_PENDING_FLOWS" => self.max_pending_flows = number(problems),
                "SESSION_TTL_SECONDS" => self.session_ttl_seconds = number(problems),
                "REFRESH_SKEW_SECONDS" => self.refresh_skew_seconds = number(problems),
                "UPSTREAM__CONNECT_TIMEOUT_SECONDS" => {
                    self.upstream.connect_timeout_seconds = number(problems);
                }
                "UPSTREAM__REQUEST_TIMEOUT_SECONDS" => {
                    self.upstream.request_timeout_seconds = number(problems);
                }
                "UPSTREAM__MAX_BODY_BYTES" => {
                    self.upstream.max_body_bytes = number(problems);
                }
                _ if COMMAND_LINE_VARS.contains(&key) => {}
                _ => match key
                    .strip_prefix("PROVIDERS__")
                    .and_then(|rest| rest.split_once("__"))
                {
                    Some((id, field)) => {
                        let provider = self
                            .providers
                            .iter_mut()
                            .find(|p| env_provider_id(&p.id) == id);
                        match (provider, field) {
                            (None, _) => problems
                                .push(format!("{name}: no provider with this id is configured")),
                            (Some(p), "CLIENT_SECRET") => {
                                p.env_secret = Some(SecretString::from(value));
                            }
                            (Some(p), "CLIENT_SECRET_FILE") => {
                                match read_secret_file(Path::new(&value)) {
                                    Ok(secret) => p.env_secret = Some(secret),
                                    Err(message) => problems.push(format!("{name}: {message}")),
                                }
                            }
                            (Some(p), "CLIENT_ID") => p.client_id = Some(value),
                            (Some(_), _) => {
                                problems.push(format!("{name}: unknown environment variable"));
                            }
                        }
                    }
                    None => problems.push(format!("{name}: unknown environment variable")),
                },
            }
        }
    }

    /// Builds the configuration, or records every problem found.
    fn validate(self, problems: &mut Vec<String>) -> Option<Config> {
        let mut warnings = Vec::new();
        let listen = self
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse::<SocketAddr>()
            .map_err(|_| problems.push("listen: must be IP:port, e.g. 127.0.0.1:8080".into()))
            .ok();
        let metrics_listen = match self.metrics_listen.as_deref().map(str::parse::<SocketAddr>) {
            None => Some(None),
            Some(Ok(address)) if Some(address) == listen && address.port() != 0 => {
                problems.push(
                    "metrics_listen: must differ from listen (leave it out to serve /metrics \
                     beside the API)"
                        .into(),
                );
                None
            }
            Some(Ok(address)) => Some(Some(address)),
            Some(Err(_)) => {
                problems.push("metrics_listen: must be IP:port, e.g. 127.0.0.1:9090".into());
                None
            }
        };

        let public = match self.public_base_url.as_deref() {
            None => {
                problems.push(
                    "public_base_url: required (the URL the app and broker are served at, \
                     e.g. https://app.example.com)"
                        .into(),
                );
                None
            }
            Some(raw) => parse_public_base_url(raw)
                .map_err(|m| problems.push(format!("public_base_url: {m}")))
                .ok(),
        };

        let allowed_origins = match (&self.allowed_origins, &public) {
            (Some(list), _) => {
                let mut origins: Vec<Origin> = Vec::new();
                for (i, raw) in list.iter().enumerate() {
                    match Origin::parse(raw) {
                        Ok(o) if origins.contains(&o) => {
                            problems.push(format!("allowed_origins[{i}]: {o} is listed twice"));
                        }
                        Ok(o) if !o.is_secure_context() => problems.push(format!(
                            "allowed_origins[{i}]: {o} is not a secure context: the session \
                             cookie is Secure, so use https (or http on localhost)"
                        )),
                        Ok(o) => origins.push(o),
                        Err(m) => problems.push(format!("allowed_origins[{i}]: {m}")),
                    }
                }
                if list.is_empty() {
                    problems.push("allowed_origins: must not be empty".into());
                }
                origins
            }
            (None, Some((_, origin))) => vec![origin.clone()],
            (None, None) => Vec::new(),
        };
        if let Some((_, public_origin)) = &public {
            for origin in &allowed_origins {
                if !origin.is_same_site(public_origin) {
                    warnings.push(format!(
                        "the broker is cross-site to the app at {origin}: its session cookie is \
                         SameSite=Strict and browsers block third-party cookies, so that app \
                         cannot use it; serve the broker under the app's origin or a sibling \
                         subdomain of the same site ({public_origin})"
                    ));
                }
            }
            if public_origin.scheme() == "http" {
                warnings.push(format!(
                    "public_base_url is plain http ({public_origin}): fine on localhost for \
                     development, use https in production"
                ));
            }
        }

        let database = match self.database.as_deref() {
            None => {
                problems.push(
                    "database: required, e.g. \"sqlite://connect-medicare-broker.db\" or \
                     \"sqlite::memory:\""
                        .into(),
                );
                None
            }
            Some(raw) => parse_database(raw, self.database_base.as_deref())
                .map_err(|m| problems.push(format!("database: {m}")))
                .ok(),
        };

        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            problems.push(format!("static_dir: {} is not a directory", dir.display()));
        }

        let keys = self.key_ring(problems, &mut warnings);

        let mut bounded = |name: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
            let value = value.unwrap_or(default);
            if (min..=max).contains(&value) {
                Some(value)
            } else {
                problems.push(format!("{name}: must be between {min} and {max}"));
                None
            }
        };
        let flow_ttl = bounded(
            "flow_ttl_seconds",
            self.flow_ttl_seconds,
            DEFAULT_FLOW_TTL,
            30,
            86_400,
        );
        let max_pending_flows = bounded(
            "max_pending_flows",
            self.max_pending_flows,
            DEFAULT_MAX_PENDING_FLOWS,
            1,
            100_000_000,
        );
        let session_ttl = bounded(
            "session_ttl_seconds",
            self.session_ttl_seconds,
            DEFAULT_SESSION_TTL,
            60,
            400 * 86_400,
        );
        let refresh_skew = bounded(
            "refresh_skew_seconds",
            self.refresh_skew_seconds,
            DEFAULT_REFRESH_SKEW,
            0,
            3_600,
        );
        let max_connections = bounded(
            "max_connections",
            self.max_connections,
            DEFAULT_MAX_CONNECTIONS,
            8,
            1_000_000,
        );
        let header_read_timeout = bounded(
            "header_read_timeout_seconds",
            self.header_read_timeout_seconds,
            DEFAULT_HEADER_READ_TIMEOUT,
            1,
            300,
        );
        let connect_timeout = bounded(
            "upstream.connect_timeout_seconds",
            self.upstream.connect_timeout_seconds,
            DEFAULT_CONNECT_TIMEOUT,
            1,
            120,
        );
        let request_timeout = bounded(
            "upstream.request_timeout_seconds",
            self.upstream.request_timeout_seconds,
            DEFAULT_REQUEST_TIMEOUT,
            1,
            600,
        );
        let max_body = bounded(
            "upstream.max_body_bytes",
            self.upstream.max_body_bytes,
            DEFAULT_MAX_UPSTREAM_BODY,
            64 * 1024,
            1 << 30,
        );

        let mut providers = Vec::new();
        let mut seen = BTreeSet::new();
        if self.providers.is_empty() {
            problems.push("providers: at least one [[providers]] entry is required".into());
        }
        for (i, raw) in self.providers.into_iter().enumerate() {
            if !seen.insert(raw.id.clone()) {
                problems.push(format!("providers[{i}].id: {:?} is used twice", raw.id));
                continue;
            }
            if let Some(provider) = raw.validate(
                i,
                public.as_ref().map(|(_, o)| o),
                &allowed_origins,
                problems,
                &mut warnings,
            ) {
                providers.push(provider);
            }
        }

        let (public_base_url, public_origin) = public?;
        Some(Config {
            listen: listen?,
            metrics_listen: metrics_listen?,
            max_connections: usize::try_from(max_connections?).ok()?,
            header_read_timeout: Duration::from_secs(header_read_timeout?),
            public_base_url,
            public_origin,
            allowed_origins,
            database: database?,
            static_dir: self.static_dir,
            keys: keys?,
            flow_ttl_seconds: i64::try_from(flow_ttl?).ok()?,
            max_pending_flows: usize::try_from(max_pending_flows?).ok()?,
            session_ttl_seconds: i64::try_from(session_ttl?).ok()?,
            refresh_skew_seconds: i64::try_from(refresh_skew?).ok()?,
            upstream: UpstreamTimeouts {
                connect: Duration::from_secs(connect_timeout?),
                request: Duration::from_secs(request_timeout?),
                max_body_bytes: max_body?,
            },
            providers,
            warnings,
        })
    }

    /// The key ring from `CM_BROKER_KEYS`, else `keys_file`, else inline `[[keys]]`.
    fn key_ring(&self, problems: &mut Vec<String>, warnings: &mut Vec<String>) -> Option<KeyRing> {
        let from_file;
        let (entries, field): (&[RawKey], String) = if let Some(keys) = &self.env_keys {
            (keys, "CM_BROKER_KEYS".into())
        } else if let Some(path) = &self.keys_file {
            if self.keys.is_some() {
                problems.push("keys_file: set either keys_file or [[keys]], not both".into());
                return None;
            }
            from_file = match read_keys_file(path) {
                Ok(keys) => keys,
                Err(message) => {
                    problems.push(format!("keys_file: {message}"));
                    return None;
                }
            };
            (&from_file, format!("keys_file {}: keys", path.display()))
        } else if let Some(keys) = &self.keys {
            (keys, "keys".into())
        } else {
            problems.push(
                "keys: no token-encryption key; add a [[keys]] entry (make one with \
                 `connect-medicare-broker gen-key`), set keys_file, or CM_BROKER_KEYS"
                    .into(),
            );
            return None;
        };
        if entries.is_empty() {
            problems.push(format!("{field}: at least one key is required"));
            return None;
        }
        let mut ring = Vec::new();
        let mut ok = true;
        for (i, entry) in entries.iter().enumerate() {
            let id = KeyId::new(&entry.id);
            let material = KeyMaterial::from_base64(entry.key.expose_secret());
            match (id, material) {
                (Ok(id), Ok(material)) => {
                    if ring
                        .iter()
                        .any(|(seen, _): &(KeyId, KeyMaterial)| seen == &id)
                    {
                        problems.push(format!("{field}[{i}].id: \"{id}\" is used twice"));
                        ok = false;
                    } else {
                        if is_example_key(&material) {
                            warnings.push(format!(
                                "{field}[{i}] is the example key from broker.example.toml: \
                                 anyone can read tokens sealed with it; generate your own \
                                 with `connect-medicare-broker gen-key`"
                            ));
                        }
                        ring.push((id, material));
                    }
                }
                (Err(e), _) => {
                    problems.push(format!("{field}[{i}].id: {e}"));
                    ok = false;
                }
                (_, Err(e)) => {
                    problems.push(format!("{field}[{i}].key: {e}"));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        KeyRing::new(ring)
            .map_err(|e| problems.push(format!("{field}: {e}")))
            .ok()
    }
}

/// Whether `key` is the example key of `broker.example.toml`.
fn is_example_key(key: &KeyMaterial) -> bool {
    key.to_base64().expose_secret()
        == base64::Engine::encode(&base64::engine::general_purpose::STANDARD, EXAMPLE_KEY)
}

/// Blue Button's sandbox sends beneficiaries to this origin to sign in (the default of
/// `MEDICARE_SLSX_LOGIN_URI` in CMS's `bluebutton-web-server` settings).
const BLUE_BUTTON_SANDBOX_LOGIN: &str = "https://test.medicare.gov";

impl RawProvider {
    /// `sign_in_origins`, checked; for Blue Button's sandbox, Medicare.gov's test login by
    /// default.
    fn sign_in_origins(
        &self,
        field: &dyn Fn(&str) -> String,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Option<Vec<Origin>> {
        let start = problems.len();
        let mut origins: Vec<Origin> = Vec::new();
        for (i, raw) in self.sign_in_origins.iter().flatten().enumerate() {
            let name = field(&format!("sign_in_origins[{i}]"));
            match Origin::parse(raw) {
                Ok(o) if !o.is_secure_context() => problems.push(format!(
                    "{name}: {o} must be https (or http on a loopback host)"
                )),
                Ok(o) if origins.contains(&o) => {
                    problems.push(format!("{name}: {o} is listed twice"));
                }
                Ok(o) => origins.push(o),
                Err(m) => problems.push(format!("{name}: {m}")),
            }
        }
        if problems.len() > start {
            return None;
        }
        let blue_button = matches!(self.kind, RawKind::BlueButton);
        if self.sign_in_origins.is_none() && blue_button {
            let base = self.base_url.as_deref().unwrap_or_default();
            if base.trim_end_matches('/') == connect_medicare_protocol::BLUE_BUTTON_SANDBOX {
                origins.extend(Origin::parse(BLUE_BUTTON_SANDBOX_LOGIN).ok());
            } else if self.authorize_post != Some(false) && base.starts_with("https://") {
                warnings.push(format!(
                    "{}: not set: a form POST sign-in is redirected on to the Medicare.gov \
                     login, and a page whose CSP form-action does not list that origin stops \
                     it (GET sign-in is not affected); list the login's origin, or set \
                     authorize_post = false",
                    field("sign_in_origins")
                ));
            }
        }
        Some(origins)
    }

    fn validate(
        self,
        i: usize,
        public_origin: Option<&Origin>,
        allowed_origins: &[Origin],
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Option<ProviderConfig> {
        let start = problems.len();
        let field = |name: &str| format!("providers[{i}].{name}");
        let sign_in_origins = self.sign_in_origins(&field, problems, warnings);
        let id = ProviderId::new(&self.id)
            .map_err(|_| {
                problems.push(format!(
                    "{}: must be 1-32 characters of a-z 0-9 -",
                    field("id")
                ));
            })
            .ok();
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            problems.push(format!("{}: must be 1-100 characters", field("name")));
        }
        let client_id = match &self.client_id {
            None => {
                problems.push(format!("{}: required", field("client_id")));
                None
            }
            Some(raw) => ClientId::new(raw)
                .map_err(|_| {
                    problems.push(format!(
                        "{}: must be 1-255 visible ASCII characters",
                        field("client_id")
                    ));
                })
                .ok(),
        };

        let secret = match (
            self.env_secret,
            self.client_secret,
            &self.client_secret_file,
        ) {
            (Some(secret), _, _) => Some(secret),
            (None, Some(_), Some(_)) => {
                problems.push(format!(
                    "{}: set client_secret or client_secret_file, not both",
                    field("client_secret")
                ));
                None
            }
            (None, Some(secret), None) => {
                warnings.push(format!(
                    "{} is written in the configuration file: prefer client_secret_file or \
                     CM_BROKER_PROVIDERS__{}__CLIENT_SECRET",
                    field("client_secret"),
                    env_provider_id(&self.id)
                ));
                Some(secret)
            }
            (None, None, Some(path)) => read_secret_file(path)
                .map_err(|m| problems.push(format!("{}: {m}", field("client_secret_file"))))
                .ok(),
            (None, None, None) => {
                problems.push(format!(
                    "{}: required (client_secret_file, or CM_BROKER_PROVIDERS__{}__CLIENT_SECRET)",
                    field("client_secret"),
                    env_provider_id(&self.id)
                ));
                None
            }
        };
        let secret = secret.and_then(|s| {
            if s.expose_secret().is_empty() {
                problems.push(format!("{}: is empty", field("client_secret")));
                None
            } else {
                Some(ClientSecret::new(s))
            }
        });

        let redirect_uri = RedirectUri::parse(&self.redirect_uri)
            .map_err(|e| problems.push(format!("{}: {e}", field("redirect_uri"))))
            .ok();
        if let (Some(uri), Some(public_origin)) = (&redirect_uri, public_origin) {
            let origin = Url::parse(uri.as_str())
                .ok()
                .and_then(|u| Origin::of_url(&u).ok());
            let served_by_app = origin
                .as_ref()
                .is_some_and(|o| o == public_origin || allowed_origins.contains(o));
            if !served_by_app {
                problems.push(format!(
                    "{}: {} must be on the app's origin ({public_origin}, or one of \
                     allowed_origins): the callback page is served by the app",
                    field("redirect_uri"),
                    uri.as_str()
                ));
            }
        }

        let scopes = self.scopes.as_deref().and_then(|raw| {
            Scopes::parse(raw)
                .map_err(|e| problems.push(format!("{}: {e}", field("scopes"))))
                .ok()
        });
        if self.requests_per_second.is_some_and(|n| n > 1000) {
            problems.push(format!(
                "{}: must be 0 (no pacing) to 1000",
                field("requests_per_second")
            ));
        }
        let blue_button = self.kind == RawKind::BlueButton;
        let resources = AllowLists {
            read: allow_list(
                self.read.as_deref(),
                Access::Read,
                blue_button,
                &field,
                problems,
            ),
            search: allow_list(
                self.search.as_deref(),
                Access::Search,
                blue_button,
                &field,
                problems,
            ),
        };

        let upstream = match self.kind {
            RawKind::BlueButton => {
                if self.fhir_base_url.is_some() {
                    problems.push(format!(
                        "{}: is for kind = \"smart\"; a blue_button provider takes base_url",
                        field("fhir_base_url")
                    ));
                }
                match &self.base_url {
                    None => {
                        problems.push(format!(
                            "{}: required for kind = \"blue_button\", e.g. {}",
                            field("base_url"),
                            connect_medicare_protocol::BLUE_BUTTON_SANDBOX
                        ));
                        None
                    }
                    Some(base_url) => match Provider::blue_button_at(base_url) {
                        Ok(provider) => Some(ProviderUpstream::BlueButton {
                            base_url: base_url.clone(),
                            provider: Box::new(provider),
                        }),
                        Err(e) => {
                            problems.push(format!("{}: {e}", field("base_url")));
                            None
                        }
                    },
                }
            }
            RawKind::Smart => {
                if self.base_url.is_some() {
                    problems.push(format!(
                        "{}: is for kind = \"blue_button\"; a smart provider takes fhir_base_url",
                        field("base_url")
                    ));
                }
                match &self.fhir_base_url {
                    None => {
                        problems.push(format!(
                            "{}: required for kind = \"smart\"",
                            field("fhir_base_url")
                        ));
                        None
                    }
                    Some(raw) => FhirBase::parse(raw)
                        .map(|fhir_base| ProviderUpstream::Smart { fhir_base })
                        .map_err(|e| problems.push(format!("{}: {e}", field("fhir_base_url"))))
                        .ok(),
                }
            }
        };

        if problems.len() > start {
            return None;
        }
        let config = ProviderConfig {
            id: id?,
            name,
            client_id: client_id?,
            client_secret: secret?,
            redirect_uri: redirect_uri?,
            scopes,
            authorize_post: self.authorize_post,
            sign_in_origins: sign_in_origins?,
            client_auth: self.client_auth,
            upstream: upstream?,
            resources,
            requests_per_second: self.requests_per_second,
        };
        // Blue Button needs no discovery: check its scopes and POST preference now.
        if let ProviderUpstream::BlueButton { .. } = config.upstream
            && let Err(Error::InvalidConfig { problems: found }) = config.resolve(None)
        {
            problems.extend(found);
            return None;
        }
        Some(config)
    }
}

/// Checks a `read` or `search` list: types the broker knows (Blue Button: its three), each
/// once; shared types (Medication…) are read by id only.
fn allow_list(
    raw: Option<&[String]>,
    access: Access,
    blue_button: bool,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<String>,
) -> Option<Vec<&'static ResourceType>> {
    let raw = raw?;
    let key = field(access.as_str());
    let mut out: Vec<&'static ResourceType> = Vec::new();
    for name in raw {
        let known = ResourceType::get(name)
            .filter(|t| !blue_button || ResourceType::BLUE_BUTTON.contains(&t.name()));
        match known {
            None if blue_button => problems.push(format!(
                "{key}: Blue Button serves only {}; not {name:?}",
                ResourceType::BLUE_BUTTON.join(", ")
            )),
            None => problems.push(format!(
                "{key}: {name:?} is not a type the broker can keep to one patient; it knows {}",
                ResourceType::all()
                    .iter()
                    .map(ResourceType::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(t) if access == Access::Search && !t.searchable() => problems.push(format!(
                "{key}: {name} is outside the patient compartment: it can be read by id, not searched"
            )),
            Some(t) if out.contains(&t) => {
                problems.push(format!("{key}: lists {name} twice"));
            }
            Some(t) => out.push(t),
        }
    }
    Some(out)
}

fn parse_public_base_url(raw: &str) -> Result<(Url, Origin), String> {
    let url = Url::parse(raw).map_err(|_| "not an absolute http(s) URL".to_owned())?;
    let origin = Origin::of_url(&url).map_err(str::to_owned)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if !origin.is_secure_context() {
        return Err(format!(
            "{origin} is not a secure context: the broker's cookies are Secure and __Host-, so \
             use https (or http on localhost / 127.0.0.1 for development)"
        ));
    }
    Ok((url, origin))
}

fn parse_database(raw: &str, base: Option<&Path>) -> Result<DatabaseConfig, String> {
    let raw = raw.trim();
    if raw == "sqlite::memory:" || raw == "sqlite://:memory:" {
        return Ok(DatabaseConfig::SqliteMemory);
    }
    let scheme = raw.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        // Never echo the URL: it may hold a password.
        return parse_postgres(raw).map(DatabaseConfig::Postgres);
    }
    let path = if let Some(rest) = raw.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = raw.strip_prefix("sqlite:") {
        rest
    } else if raw.contains("://") {
        return Err(
            "unknown database URL scheme; use sqlite://PATH, sqlite::memory: or \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                .into(),
        );
    } else {
        raw
    };
    if path.is_empty() || path.contains('?') {
        return Err("expected sqlite://PATH (no query options) or sqlite::memory:".into());
    }
    let path = Path::new(path);
    Ok(DatabaseConfig::SqliteFile(match base {
        Some(base) => join(base, path),
        None => path.to_owned(),
    }))
}

/// `id:key,id:key`: the key ring from `CM_BROKER_KEYS`.
fn parse_env_keys(name: &str, value: &str, problems: &mut Vec<String>) -> Vec<RawKey> {
    let mut keys = Vec::new();
    for (i, item) in value.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        match item.split_once(':') {
            Some((id, key)) => keys.push(RawKey {
                id: id.trim().to_owned(),
                key: SecretString::from(key.trim().to_owned()),
            }),
            None => problems.push(format!("{name}[{i}]: expected id:base64key")),
        }
    }
    keys
}

fn read_keys_file(path: &Path) -> Result<Vec<RawKey>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    match toml::from_str::<RawKeysFile>(&text) {
        Ok(file) => Ok(file.keys),
        Err(e) => Err(syntax_error(path, &text, &e).to_string()),
    }
}

/// A secret from a file: its contents without the trailing newline.
fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned());
    drop(SecretString::from(text));
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const CANARY_SECRET: &str = "canary-client-secret-4f1d";
    /// base64 of the 32 bytes `canary-key-bytes-32-long-0123456`.
    const CANARY_KEY: &str = "Y2FuYXJ5LWtleS1ieXRlcy0zMi1sb25nLTAxMjM0NTY=";

    fn minimal() -> String {
        format!(
            r#"
public_base_url = "http://localhost:8080"
database = "sqlite::memory:"

[[keys]]
id = "k1"
key = "{CANARY_KEY}"

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:8123"
client_id = "client-1"
redirect_uri = "http://localhost:8080/callback"
"#
        )
    }

    fn secret_env<'a>() -> Vec<(&'a str, &'a str)> {
        vec![(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CANARY_SECRET,
        )]
    }

    fn parse_with(text: &str, env: Vec<(&str, &str)>) -> Result<Config> {
        Config::parse(text, Path::new("/etc/cm/broker.toml"), Env::from_pairs(env))
    }

    fn parse(text: &str) -> Result<Config> {
        parse_with(text, secret_env())
    }

    fn problems(result: Result<Config>) -> Vec<String> {
        match result {
            Err(Error::InvalidConfig { problems }) => problems,
            Err(other) => panic!("expected InvalidConfig, got {other}"),
            Ok(config) => panic!("expected problems, got {config:?}"),
        }
    }

    fn assert_problem(result: Result<Config>, needle: &str) {
        let found = problems(result);
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}: {found:#?}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(&minimal()).unwrap();
        assert_eq!(config.listen().to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics_listen(), None);
        assert_eq!(config.max_connections(), 4_096);
        assert_eq!(config.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(config.public_origin().as_str(), "http://localhost:8080");
        assert_eq!(
            config
                .allowed_origins()
                .iter()
                .map(Origin::as_str)
                .collect::<Vec<_>>(),
            ["http://localhost:8080"]
        );
        assert_eq!(config.database(), &DatabaseConfig::SqliteMemory);
        assert_eq!(config.flow_ttl_seconds(), 600);
        assert_eq!(config.max_pending_flows(), 10_000);
        assert_eq!(config.session_ttl_seconds(), 30 * 24 * 3600);
        assert_eq!(config.refresh_skew_seconds(), 60);
        assert_eq!(config.upstream_timeouts().connect(), Duration::from_secs(5));
        assert_eq!(
            config.upstream_timeouts().request(),
            Duration::from_secs(30)
        );
        assert_eq!(config.key_ring().current_key_id().as_str(), "k1");
        let provider = &config.providers()[0];
        assert_eq!(provider.id().as_str(), "medicare");
        assert_eq!(provider.client_secret().expose_secret(), CANARY_SECRET);
        assert_eq!(provider.kind(), ProviderKind::BlueButton);
        assert_eq!(provider.discovery_url(), None);
        let resolved = provider.resolve(None).unwrap();
        assert_eq!(
            resolved.scopes(),
            resolved.provider().default_scopes(),
            "no scopes configured: the provider's defaults"
        );
        assert!(resolved.authorize_post());
        let info = resolved.info();
        assert_eq!(
            info.authorization_endpoint,
            "http://127.0.0.1:8123/v2/o/authorize/"
        );
        assert_eq!(info.aud.as_str(), "http://127.0.0.1:8123/v2/fhir/");
        assert_eq!(info.eob_types.len(), 8);
        assert!(config.provider(provider.id()).is_some());
    }

    #[test]
    fn sign_in_origins_are_exact_secure_origins_with_a_default_for_the_bb2_sandbox() {
        let origins = |config: &Config| -> Vec<String> {
            config.providers()[0]
                .resolve(None)
                .unwrap()
                .sign_in_origins()
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect()
        };
        // The emulator without the setting: none.
        let config = parse(&minimal()).unwrap();
        assert!(origins(&config).is_empty());
        // Production without it: none, and a warning naming it.
        let production =
            minimal().replace("http://127.0.0.1:8123", "https://api.bluebutton.cms.gov");
        let config = parse(&production).unwrap();
        assert!(origins(&config).is_empty());
        assert!(
            config
                .warnings()
                .iter()
                .any(|w| w.contains("sign_in_origins")),
            "{:?}",
            config.warnings()
        );
        // Blue Button's sandbox: Medicare.gov's test login, and no warning.
        let sandbox = minimal().replace(
            "http://127.0.0.1:8123",
            "https://sandbox.bluebutton.cms.gov",
        );
        let config = parse(&sandbox).unwrap();
        assert_eq!(origins(&config), ["https://test.medicare.gov"]);
        assert!(
            !config
                .warnings()
                .iter()
                .any(|w| w.contains("sign_in_origins"))
        );
        // Set: kept as origins (normalised); an explicit empty list means none.
        let set = format!(
            "{}sign_in_origins = [\"HTTP://127.0.0.1:8124\"]\n",
            minimal()
        );
        let config = parse(&set).unwrap();
        assert_eq!(origins(&config), ["http://127.0.0.1:8124"]);
        assert!(
            !config
                .warnings()
                .iter()
                .any(|w| w.contains("sign_in_origins"))
        );
        let none = format!("{sandbox}sign_in_origins = []\n");
        assert!(origins(&parse(&none).unwrap()).is_empty());
        for (bad, needle) in [
            ("\"*\"", "not * or null"),
            ("\"https:\"", "not an absolute"),
            ("\"https://login.example/sso\"", "no path"),
            ("\"http://login.example\"", "must be https"),
            (
                "\"https://a.example\", \"https://A.example\"",
                "listed twice",
            ),
        ] {
            let text = format!("{}sign_in_origins = [{bad}]\n", minimal());
            assert_problem(parse(&text), needle);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = parse(&minimal()).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(CANARY_SECRET), "{shown}");
        assert!(!shown.contains(CANARY_KEY), "{shown}");
        assert!(!shown.contains("canary-key-bytes"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let env = Env::from_pairs(secret_env());
        assert!(!format!("{env:?}").contains(CANARY_SECRET));
    }

    #[test]
    fn errors_show_no_secret() {
        // A syntax error on the secret's own line.
        let text = minimal().replace(
            "client_id = \"client-1\"",
            &format!("client_id = \"client-1\"\nclient_secret = {CANARY_SECRET}"),
        );
        let err = parse_with(&text, vec![]).unwrap_err().to_string();
        assert!(!err.contains(CANARY_SECRET), "{err}");
        assert!(err.starts_with("/etc/cm/broker.toml:"), "{err}");
        // A secret where a number belongs.
        let text = format!("flow_ttl_seconds = \"{CANARY_SECRET}\"\n{}", minimal());
        let err = parse(&text).unwrap_err().to_string();
        assert!(!err.contains(CANARY_SECRET), "{err}");
        assert!(err.contains("broker.toml:1:"), "{err}");
        // A malformed key.
        let text = minimal().replace(CANARY_KEY, "canary-not-a-key");
        let err = parse(&text).unwrap_err().to_string();
        assert!(!err.contains("canary-not-a-key"), "{err}");
        assert!(err.contains("keys[0].key"), "{err}");
        // A postgres URL with a password: a bad option, a bad port, a bad scheme spelling.
        for url in [
            "postgres://cm:canary-db-password@db/cm?sslmode=canary-db-password",
            "postgres://cm:canary-db-password@db:99999/cm",
            "postgres://cm:canary-db-password@/cm",
        ] {
            let text = minimal().replace("sqlite::memory:", url);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("database"), "{err}");
            assert!(!err.contains("canary-db-password"), "{err}");
        }
        // A valid one: accepted, and neither the config's Debug nor the URL's shows it.
        let text = minimal().replace(
            "sqlite::memory:",
            "postgres://cm:canary-db-password@db:5433/cm?sslmode=require&password=canary-db-password",
        );
        let config = parse(&text).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("canary-db-password"), "{shown}");
        assert!(
            shown.contains(
                "PostgresUrl(\"postgres://cm:[redacted]@db:5433/cm?sslmode=require&password=[redacted]\")"
            ),
            "{shown}"
        );
    }

    #[test]
    fn postgres_urls_are_accepted_and_redacted() {
        for raw in [
            "postgres://cm:pw@db.internal:5432/broker",
            "postgresql://cm@127.0.0.1/broker?sslmode=verify-full",
            "postgres:///broker?host=/run/postgresql",
        ] {
            let text = minimal().replace("sqlite::memory:", raw);
            let config = parse(&text).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let DatabaseConfig::Postgres(url) = config.database() else {
                panic!("{raw}: {:?}", config.database());
            };
            assert_eq!(url.expose_secret(), raw);
            assert_eq!(url, &PostgresUrl::parse(raw).unwrap());
        }
        let url = PostgresUrl::parse("postgres://cm:s3cret@db/broker").unwrap();
        assert_eq!(
            format!("{url:?}"),
            "PostgresUrl(\"postgres://cm:[redacted]@db/broker\")"
        );
        let err = PostgresUrl::parse("mysql://cm:s3cret@db/broker").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        // From the environment too.
        let config = parse_with(
            &minimal(),
            vec![
                ("CM_BROKER_DATABASE", "postgres://cm:s3cret@db/broker"),
                ("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET", "x"),
            ],
        )
        .unwrap();
        assert!(matches!(config.database(), DatabaseConfig::Postgres(_)));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = parse(&format!("lisen = \"0.0.0.0:1\"\n{}", minimal())).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = parse(&minimal().replace("kind = ", "colour = \"red\"\nkind = ")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = parse(&format!("{}\n[upstream]\ntimeout = 3\n", minimal())).unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }

    #[test]
    fn missing_secret_is_named() {
        assert_problem(parse_with(&minimal(), vec![]), "providers[0].client_secret");
        assert_problem(
            parse_with(&minimal(), vec![]),
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
        );
    }

    #[test]
    fn secret_from_file_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let secret_path = dir.path().join("secret");
        let mut file = std::fs::File::create(&secret_path).unwrap();
        writeln!(file, "from-file-secret").unwrap();
        let config_path = dir.path().join("broker.toml");
        let text = minimal().replace(
            "client_id = \"client-1\"",
            "client_id = \"client-1\"\nclient_secret_file = \"secret\"",
        );
        // Relative to the config file's directory; trailing newline dropped.
        let config = Config::parse(&text, &config_path, Env::empty()).unwrap();
        assert_eq!(
            config.providers()[0].client_secret().expose_secret(),
            "from-file-secret"
        );
        // The environment wins over the file.
        let config = Config::parse(&text, &config_path, Env::from_pairs(secret_env())).unwrap();
        assert_eq!(
            config.providers()[0].client_secret().expose_secret(),
            CANARY_SECRET
        );
        // Or a file named by the environment.
        let config = Config::parse(
            &minimal(),
            &config_path,
            Env::from_pairs([(
                "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET_FILE",
                secret_path.to_str().unwrap(),
            )]),
        )
        .unwrap();
        assert_eq!(
            config.providers()[0].client_secret().expose_secret(),
            "from-file-secret"
        );
        // A missing file is named.
        let text = text.replace("\"secret\"", "\"missing\"");
        let err = Config::parse(&text, &config_path, Env::empty()).unwrap_err();
        assert!(err.to_string().contains("client_secret_file"), "{err}");
        // Both in the file: refused.
        let both = minimal().replace(
            "client_id = \"client-1\"",
            "client_id = \"client-1\"\nclient_secret = \"x\"\nclient_secret_file = \"secret\"",
        );
        assert_problem(Config::parse(&both, &config_path, Env::empty()), "not both");
    }

    #[test]
    fn inline_secret_is_a_warning() {
        let text = minimal().replace(
            "client_id = \"client-1\"",
            "client_id = \"client-1\"\nclient_secret = \"inline\"",
        );
        let config = parse_with(&text, vec![]).unwrap();
        assert!(
            config
                .warnings()
                .iter()
                .any(|w| w.contains("providers[0].client_secret"))
        );
    }

    #[test]
    fn connection_limits_and_the_metrics_listener() {
        let text = format!(
            "metrics_listen = \"127.0.0.1:9090\"\nmax_connections = 100\n\
             header_read_timeout_seconds = 3\n{}",
            minimal()
        );
        let config = parse(&text).unwrap();
        assert_eq!(
            config.metrics_listen(),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(config.max_connections(), 100);
        assert_eq!(config.header_read_timeout(), Duration::from_secs(3));
        let mut env = secret_env();
        env.push(("CM_BROKER_METRICS_LISTEN", "127.0.0.1:9191"));
        env.push(("CM_BROKER_MAX_CONNECTIONS", "64"));
        let config = parse_with(&minimal(), env).unwrap();
        assert_eq!(
            config.metrics_listen(),
            Some("127.0.0.1:9191".parse().unwrap())
        );
        assert_eq!(config.max_connections(), 64);

        assert_problem(
            parse(&format!("metrics_listen = \"localhost\"\n{}", minimal())),
            "metrics_listen: must be IP:port",
        );
        assert_problem(
            parse(&format!(
                "listen = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"\n{}",
                minimal()
            )),
            "metrics_listen: must differ from listen",
        );
        assert_problem(
            parse(&format!("max_connections = 0\n{}", minimal())),
            "max_connections: must be between",
        );
        assert_problem(
            parse(&format!("header_read_timeout_seconds = 0\n{}", minimal())),
            "header_read_timeout_seconds: must be between",
        );
    }

    #[test]
    fn env_overrides() {
        let mut env = secret_env();
        env.extend([
            ("CM_BROKER_LISTEN", "0.0.0.0:9000"),
            ("CM_BROKER_PUBLIC_BASE_URL", "https://app.example.com/cm"),
            (
                "CM_BROKER_ALLOWED_ORIGINS",
                "https://app.example.com, https://admin.example.com",
            ),
            ("CM_BROKER_DATABASE", "sqlite://relative.db"),
            ("CM_BROKER_FLOW_TTL_SECONDS", "300"),
            ("CM_BROKER_MAX_PENDING_FLOWS", "5"),
            ("CM_BROKER_SESSION_TTL_SECONDS", "3600"),
            ("CM_BROKER_REFRESH_SKEW_SECONDS", "0"),
            ("CM_BROKER_UPSTREAM__CONNECT_TIMEOUT_SECONDS", "2"),
            ("CM_BROKER_UPSTREAM__REQUEST_TIMEOUT_SECONDS", "9"),
            ("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_ID", "client-2"),
            ("CM_BROKER_CONFIG", "ignored"),
            ("CM_BROKER_LOG", "debug"),
            ("OTHER_VARIABLE", "ignored"),
        ]);
        let text = minimal().replace(
            "http://localhost:8080/callback",
            "https://app.example.com/callback",
        );
        let config = parse_with(&text, env).unwrap();
        assert_eq!(config.listen().to_string(), "0.0.0.0:9000");
        assert_eq!(
            config.public_base_url().as_str(),
            "https://app.example.com/cm"
        );
        assert_eq!(config.allowed_origins().len(), 2);
        // Relative to the working directory when it comes from the environment.
        assert_eq!(
            config.database(),
            &DatabaseConfig::SqliteFile(PathBuf::from("relative.db"))
        );
        assert_eq!(config.flow_ttl_seconds(), 300);
        assert_eq!(config.max_pending_flows(), 5);
        assert_eq!(config.session_ttl_seconds(), 3600);
        assert_eq!(config.refresh_skew_seconds(), 0);
        assert_eq!(config.upstream_timeouts().connect(), Duration::from_secs(2));
        assert_eq!(config.upstream_timeouts().request(), Duration::from_secs(9));
        assert_eq!(config.providers()[0].client_id().as_str(), "client-2");
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    }

    #[test]
    fn env_mistakes_are_refused() {
        let mut env = secret_env();
        env.push(("CM_BROKER_LISTN", "0.0.0.0:1"));
        assert_problem(parse_with(&minimal(), env), "CM_BROKER_LISTN: unknown");
        let mut env = secret_env();
        env.push(("CM_BROKER_PROVIDERS__EPIC__CLIENT_SECRET", "x"));
        assert_problem(parse_with(&minimal(), env), "no provider with this id");
        let mut env = secret_env();
        env.push(("CM_BROKER_FLOW_TTL_SECONDS", "ten"));
        assert_problem(parse_with(&minimal(), env), "whole number");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let text = minimal().replace("sqlite::memory:", "sqlite://data/broker.db");
        let config = parse(&text).unwrap();
        assert_eq!(
            config.database(),
            &DatabaseConfig::SqliteFile(PathBuf::from("/etc/cm/data/broker.db"))
        );
        let text = minimal().replace("sqlite::memory:", "/var/lib/cm.db");
        let config = parse(&text).unwrap();
        assert_eq!(
            config.database(),
            &DatabaseConfig::SqliteFile(PathBuf::from("/var/lib/cm.db"))
        );
        assert_problem(
            parse(&minimal().replace("sqlite::memory:", "mysql://x")),
            "database",
        );
    }

    #[test]
    fn key_ring_sources() {
        // CM_BROKER_KEYS replaces the file's keys; the last key seals.
        let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let keys = format!("old:{CANARY_KEY}, new:{other}");
        let mut env = secret_env();
        env.push(("CM_BROKER_KEYS", &keys));
        let config = parse_with(&minimal(), env).unwrap();
        let ids: Vec<_> = config.key_ring().key_ids().map(KeyId::as_str).collect();
        assert_eq!(ids, ["old", "new"]);
        assert_eq!(config.key_ring().current_key_id().as_str(), "new");

        // A keys file.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keys.toml"),
            format!("[[keys]]\nid = \"f1\"\nkey = \"{other}\"\n"),
        )
        .unwrap();
        let no_keys = minimal().replace(
            &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n"),
            "",
        );
        let text = format!("keys_file = \"keys.toml\"\n{no_keys}");
        let config = Config::parse(
            &text,
            &dir.path().join("broker.toml"),
            Env::from_pairs(secret_env()),
        )
        .unwrap();
        assert_eq!(config.key_ring().current_key_id().as_str(), "f1");
    }

    #[test]
    fn key_ring_problems() {
        let no_keys = minimal().replace(
            &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n"),
            "",
        );
        assert_problem(parse(&no_keys), "gen-key");
        let short = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 16]);
        assert_problem(
            parse(&minimal().replace(CANARY_KEY, &short)),
            "keys[0].key: invalid encryption key: key must decode to exactly 32 bytes",
        );
        let dup = minimal().replace(
            "[[providers]]",
            &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n\n[[providers]]"),
        );
        assert_problem(parse(&dup), "keys[1].id: \"k1\" is used twice");
        assert_problem(
            parse(&minimal().replace("id = \"k1\"", "id = \"a.b\"")),
            "keys[0].id",
        );
        let mut env = secret_env();
        env.push(("CM_BROKER_KEYS", "no-colon"));
        assert_problem(parse_with(&minimal(), env), "CM_BROKER_KEYS[0]");
    }

    #[test]
    fn provider_problems_name_their_field() {
        let dup = format!(
            "{}\n{}",
            minimal(),
            minimal()
                .split_once("[[providers]]")
                .map(|(_, p)| format!("[[providers]]{p}"))
                .unwrap()
        );
        assert_problem(parse(&dup), "providers[1].id: \"medicare\" is used twice");
        assert_problem(
            parse(&minimal().replace("id = \"medicare\"", "id = \"Medicare\"")),
            "providers[0].id",
        );
        assert_problem(
            parse(&minimal().replace(
                "http://localhost:8080/callback",
                "http://localhost:9999/callback",
            )),
            "providers[0].redirect_uri: http://localhost:9999/callback must be on the app's origin",
        );
        assert_problem(
            parse(&minimal().replace(
                "http://localhost:8080/callback",
                "http://example.com/callback",
            )),
            "providers[0].redirect_uri: invalid redirect_uri",
        );
        assert_problem(
            parse(&minimal().replace("http://127.0.0.1:8123", "http://bluebutton.example.com")),
            "providers[0].base_url",
        );
        assert_problem(
            parse(&minimal().replace(
                "kind = \"blue_button\"",
                "kind = \"blue_button\"\nscopes = \"openid offline_access\"",
            )),
            "providers.medicare.scopes: scope \"offline_access\" is not supported",
        );
        assert_problem(
            parse(&minimal().replace(
                "kind = \"blue_button\"",
                "kind = \"blue_button\"\nscopes = \"patient/Patient.sr\"",
            )),
            "providers[0].scopes",
        );
        assert_problem(
            parse(&minimal().replace("kind = \"blue_button\"", "kind = \"smart\"")),
            "providers[0].fhir_base_url: required",
        );
        assert_problem(
            parse(&minimal().replace("client_id = \"client-1\"\n", "")),
            "providers[0].client_id: required",
        );
        let no_providers = minimal().split_once("[[providers]]").unwrap().0.to_owned();
        assert_problem(parse(&no_providers), "providers: at least one");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = minimal()
            .replace("http://localhost:8080\"", "http://app.example.com\"")
            .replace("sqlite::memory:", "postgres://x:99999")
            .replace("id = \"medicare\"", "id = \"Medicare\"");
        let found = problems(parse(&text));
        for needle in ["public_base_url", "database", "providers[0].id"] {
            assert!(found.iter().any(|p| p.starts_with(needle)), "{found:#?}");
        }
    }

    #[test]
    fn public_base_url_and_origins() {
        assert_problem(
            parse(&minimal().replace("http://localhost:8080\"", "http://app.example.com\"")),
            "public_base_url: http://app.example.com is not a secure context",
        );
        assert_problem(
            parse(&format!(
                "allowed_origins = [\"http://localhost:8080/\"]\n{}",
                minimal()
            )),
            "allowed_origins[0]: an origin has no path",
        );
        assert_problem(
            parse(&format!("allowed_origins = [\"*\"]\n{}", minimal())),
            "allowed_origins[0]",
        );
        assert_problem(
            parse(&format!("allowed_origins = []\n{}", minimal())),
            "allowed_origins: must not be empty",
        );
        assert_problem(
            parse(&format!("listen = \"localhost:80\"\n{}", minimal())),
            "listen",
        );
        // A redirect URI on an allowed origin (a sibling-subdomain broker) is accepted.
        let text = format!(
            "allowed_origins = [\"https://app.example.com\"]\n{}",
            minimal()
                .replace("http://localhost:8080\"", "https://cm.example.com\"")
                .replace(
                    "http://localhost:8080/callback",
                    "https://app.example.com/callback"
                )
        );
        let config = parse(&text).unwrap();
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    }

    #[test]
    fn cross_site_broker_is_a_warning() {
        // The demo's shape: app and broker on localhost ports — same-site, no warning
        // beyond plain http.
        let config = parse(&format!(
            "allowed_origins = [\"http://localhost:5173\", \"http://localhost:8080\"]\n{}",
            minimal()
        ))
        .unwrap();
        assert!(
            !config.warnings().iter().any(|w| w.contains("cross-site")),
            "{:?}",
            config.warnings()
        );
        assert!(config.warnings().iter().any(|w| w.contains("plain http")));

        let config = parse(&format!(
            "allowed_origins = [\"http://localhost:8080\", \"http://127.0.0.1:5173\"]\n{}",
            minimal()
        ))
        .unwrap();
        let cross: Vec<_> = config
            .warnings()
            .iter()
            .filter(|w| w.contains("the broker is cross-site to the app"))
            .collect();
        assert_eq!(cross.len(), 1, "{:?}", config.warnings());
        assert!(cross[0].contains("http://127.0.0.1:5173"));

        let config = parse_with(
            &minimal().replace(
                "http://localhost:8080/callback",
                "https://app.example.org/callback",
            ),
            {
                let mut env = secret_env();
                env.extend([
                    ("CM_BROKER_PUBLIC_BASE_URL", "https://broker.example.com"),
                    ("CM_BROKER_ALLOWED_ORIGINS", "https://app.example.org"),
                ]);
                env
            },
        )
        .unwrap();
        assert!(
            config
                .warnings()
                .iter()
                .any(|w| w.contains("cross-site") && w.contains("https://app.example.org"))
        );
    }

    #[test]
    fn bounds_are_checked() {
        for (field, value) in [
            ("flow_ttl_seconds", "0"),
            ("session_ttl_seconds", "1"),
            ("refresh_skew_seconds", "999999"),
            ("max_pending_flows", "0"),
        ] {
            assert_problem(
                parse(&format!("{field} = {value}\n{}", minimal())),
                &format!("{field}: must be between"),
            );
        }
    }

    fn smart_config() -> SmartConfiguration {
        serde_json::from_str(
            r#"{
                "issuer": "https://ehr.example.com",
                "authorization_endpoint": "https://ehr.example.com/authorize",
                "token_endpoint": "https://ehr.example.com/token",
                "revocation_endpoint": "https://ehr.example.com/revoke",
                "scopes_supported": ["openid", "fhirUser", "launch/patient",
                    "patient/Patient.rs", "patient/Coverage.rs", "offline_access"],
                "response_types_supported": ["code"],
                "capabilities": ["launch-standalone", "permission-v2"],
                "code_challenge_methods_supported": ["S256"]
            }"#,
        )
        .unwrap()
    }

    fn smart_text(extra: &str) -> String {
        format!(
            "{}\n[[providers]]\nid = \"ehr\"\nname = \"Example EHR\"\nkind = \"smart\"\n\
             fhir_base_url = \"https://ehr.example.com/fhir/r4\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nredirect_uri = \"http://localhost:8080/callback\"\n{extra}",
            minimal()
        )
    }

    #[test]
    fn smart_providers_resolve_from_discovery() {
        let config = parse(&smart_text("")).unwrap();
        let ehr = &config.providers()[1];
        assert_eq!(ehr.kind(), ProviderKind::Smart);
        assert_eq!(
            ehr.discovery_url().as_deref(),
            Some("https://ehr.example.com/fhir/r4/.well-known/smart-configuration")
        );
        assert!(ehr.resolve(None).is_err());
        let resolved = ehr.resolve(Some(&smart_config())).unwrap();
        assert_eq!(
            resolved.scopes().to_string(),
            "openid fhirUser launch/patient patient/Patient.rs patient/Coverage.rs offline_access"
        );
        assert!(!resolved.authorize_post());
        assert_eq!(
            resolved.info().aud.as_str(),
            "https://ehr.example.com/fhir/r4"
        );
        // Blue Button takes no discovery document.
        assert!(
            config.providers()[0]
                .resolve(Some(&smart_config()))
                .is_err()
        );

        let config = parse(&smart_text("scopes = \"openid patient/Observation.rs\"")).unwrap();
        let err = config.providers()[1]
            .resolve(Some(&smart_config()))
            .unwrap_err();
        assert!(err.to_string().contains("providers.ehr.scopes"), "{err}");

        let config = parse(&smart_text("authorize_post = true")).unwrap();
        let err = config.providers()[1]
            .resolve(Some(&smart_config()))
            .unwrap_err();
        assert!(err.to_string().contains("authorize_post"), "{err}");
    }

    #[test]
    fn pacing_is_per_provider_with_defaults_at_the_upstream_limit() {
        let config = parse(&smart_text("")).unwrap();
        let medicare = config.providers()[0].resolve(None).unwrap();
        let ehr = config.providers()[1]
            .resolve(Some(&smart_config()))
            .unwrap();
        assert_eq!(
            medicare.requests_per_second(),
            9,
            "just under Blue Button's limit of 10"
        );
        assert_eq!(ehr.requests_per_second(), 20);
        let config = parse(&smart_text("requests_per_second = 0")).unwrap();
        let ehr = config.providers()[1]
            .resolve(Some(&smart_config()))
            .unwrap();
        assert_eq!(ehr.requests_per_second(), 0, "no pacing");
        assert_problem(
            parse(&smart_text("requests_per_second = 5000")),
            "providers[1].requests_per_second: must be 0 (no pacing) to 1000",
        );
    }

    #[test]
    fn read_and_search_allow_lists_are_checked_and_ask_for_their_scopes() {
        let config = parse(&smart_text(
            "read = [\"Patient\", \"Coverage\"]\nsearch = [\"Coverage\"]",
        ))
        .unwrap();
        let ehr = &config.providers()[1];
        let lists = ehr.resolve(Some(&smart_config())).unwrap();
        assert_eq!(
            lists.scopes().to_string(),
            "openid fhirUser launch/patient offline_access patient/Patient.r patient/Coverage.rs"
        );
        // A server that lists only SMART v1 scopes is asked in its own spelling.
        let mut v1 = smart_config();
        v1.scopes_supported = vec![
            "openid".into(),
            "launch/patient".into(),
            "patient/*.read".into(),
            "offline_access".into(),
        ];
        let in_v1 = ehr.resolve(Some(&v1)).unwrap();
        assert_eq!(
            in_v1.scopes().to_string(),
            "openid launch/patient offline_access patient/Patient.read patient/Coverage.read"
        );
        let read: Vec<&str> = lists
            .resources()
            .configured(Access::Read)
            .unwrap()
            .iter()
            .map(|t| t.name())
            .collect();
        assert_eq!(read, ["Patient", "Coverage"]);
        assert!(
            config.providers()[0]
                .resources
                .configured(Access::Read)
                .is_none()
        );
        // A list naming what the server does not support fails as configured scopes do.
        let config = parse(&smart_text("search = [\"Observation\"]")).unwrap();
        let err = config.providers()[1]
            .resolve(Some(&smart_config()))
            .unwrap_err();
        assert!(err.to_string().contains("patient/Observation.s"), "{err}");
        // Every problem at once, each naming its field.
        let text = format!(
            "{}\nread = [\"Observation\"]\n{}",
            minimal().trim_end(),
            "\n[[providers]]\nid = \"ehr\"\nname = \"E\"\nkind = \"smart\"\n\
             fhir_base_url = \"https://ehr.example.com/fhir\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nredirect_uri = \"http://localhost:8080/callback\"\n\
             read = [\"Binary\", \"observation\"]\n\
             search = [\"Medication\", \"Condition\", \"Condition\"]\n"
        );
        let found = problems(parse(&text));
        for needle in [
            "providers[0].read: Blue Button serves only Patient, Coverage, ExplanationOfBenefit; not \"Observation\"",
            "providers[1].read: \"Binary\" is not a type the broker can keep to one patient",
            "providers[1].read: \"observation\" is not a type",
            "providers[1].search: Medication is outside the patient compartment",
            "providers[1].search: lists Condition twice",
        ] {
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "{needle} in {found:#?}"
            );
        }
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path, Env::from_pairs(secret_env())).unwrap();
        assert_eq!(config.providers().len(), 1);
        assert!(
            config
                .warnings()
                .iter()
                .any(|w| w.contains("the example key")),
            "{:?}",
            config.warnings()
        );

        // Every commented-out setting parses too, once uncommented, and the paths it names
        // exist (keys_file names a deployment path, /etc/...: left out).
        let (before, smart) = text.split_once("# --- SMART provider example ---").unwrap();
        let settings: String = before
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting)
                    if setting.contains(" = ")
                        && setting.starts_with(|c: char| c.is_ascii_lowercase())
                        && !setting.starts_with("keys_file") =>
                {
                    setting
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::parse(&settings, &path, Env::from_pairs(secret_env())).unwrap();
        let static_dir = config.static_dir().expect("static_dir is uncommented");
        assert!(static_dir.join("index.html").is_file(), "{static_dir:?}");
        assert!(config.metrics_listen().is_some());

        // The commented-out SMART provider parses too, once uncommented.
        let uncommented: String = smart
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        let mut env = secret_env();
        env.push(("CM_BROKER_PROVIDERS__EPIC_SANDBOX__CLIENT_SECRET", "s"));
        let config = Config::parse(
            &format!("{before}{uncommented}"),
            &path,
            Env::from_pairs(env),
        )
        .unwrap();
        assert_eq!(config.providers().len(), 2);
        assert_eq!(config.providers()[1].kind(), ProviderKind::Smart);
    }
}
