//! The raw file, environment applied, checked into a [`Config`]: each value parsed and
//! bounded, every problem added to one list so that an operator sees them all at once, and
//! warnings for what works but is probably not meant. Each provider is checked in
//! `validate_provider.rs`.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use secrecy::ExposeSecret;
use url::Url;

use super::{
    Config, DatabaseConfig, ProviderConfig, UpstreamTimeouts,
    parse::{parse_database, parse_public_base_url, read_keys_file},
    raw::{RawConfig, RawKey, RawProvider},
};
use crate::{
    crypto::{KeyId, KeyMaterial, KeyRing},
    origin::Origin,
};

/// The 32 bytes of the example key in `broker.example.toml`: never for real use.
const EXAMPLE_KEY: &[u8; 32] = b"example-key-do-not-use-32-bytes!";

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Connections held open at once. Each costs a file descriptor: the systemd unit in
/// `broker/` raises the limit to 65536, far above this.
const DEFAULT_MAX_CONNECTIONS: u64 = 4_096;
const DEFAULT_HEADER_READ_TIMEOUT: u64 = 10;
const DEFAULT_FLOW_TTL: u64 = 600;
/// How long each replica keeps a proxied read's lookup by default (`store/cached.rs`): long
/// enough that a page's burst of reads costs one lookup, short enough that no one waits on a
/// disconnect. Every write that changes a connection waits at least this long.
const DEFAULT_CONNECTION_CACHE_MS: u64 = crate::store::DEFAULT_CONNECTION_CACHE.as_millis() as u64;
/// The longest `connection_cache_ms` (every disconnect and refresh would then wait as long).
const MAX_CONNECTION_CACHE_MS: u64 = 5_000;
const DEFAULT_MAX_PENDING_FLOWS: u64 = 10_000;
const DEFAULT_SESSION_TTL: u64 = 30 * 24 * 3600;
const DEFAULT_REFRESH_SKEW: u64 = 60;
const DEFAULT_CONNECT_TIMEOUT: u64 = 5;
const DEFAULT_REQUEST_TIMEOUT: u64 = 30;
/// 64 MiB: far above the largest Blue Button page (a few MB at `_count=50`).
const DEFAULT_MAX_UPSTREAM_BODY: u64 = 64 * 1024 * 1024;

impl RawConfig {
    /// Builds the configuration, or records every problem found.
    pub(super) fn validate(self, problems: &mut Vec<String>) -> Option<Config> {
        let mut warnings = Vec::new();
        let (listen, metrics_listen) = self.listeners(problems);
        let public = self.public_base_url(problems);
        let allowed_origins = self.allowed_origins(public.as_ref(), problems);
        if let Some((_, public_origin)) = &public {
            site_warnings(public_origin, &allowed_origins, &mut warnings);
        }
        let database = self.database(problems);

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
        let connection_cache = bounded(
            "connection_cache_ms",
            self.connection_cache_ms,
            DEFAULT_CONNECTION_CACHE_MS,
            0,
            MAX_CONNECTION_CACHE_MS,
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

        let providers = validate_providers(
            self.providers,
            public.as_ref().map(|(_, o)| o),
            &allowed_origins,
            problems,
            &mut warnings,
        );

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
            connection_cache: Some(Duration::from_millis(connection_cache?))
                .filter(|window| !window.is_zero()),
            upstream: UpstreamTimeouts {
                connect: Duration::from_secs(connect_timeout?),
                request: Duration::from_secs(request_timeout?),
                max_body_bytes: max_body?,
            },
            providers,
            warnings,
        })
    }

    /// `listen` and `metrics_listen`, which must differ. `None` where there is a problem (for
    /// `metrics_listen`, `Some(None)` when it is not set).
    fn listeners(
        &self,
        problems: &mut Vec<String>,
    ) -> (Option<SocketAddr>, Option<Option<SocketAddr>>) {
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
        (listen, metrics_listen)
    }

    /// `public_base_url` and its origin.
    fn public_base_url(&self, problems: &mut Vec<String>) -> Option<(Url, Origin)> {
        match self.public_base_url.as_deref() {
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
        }
    }

    /// `allowed_origins`: exact secure origins, each once; by default the public origin alone.
    fn allowed_origins(
        &self,
        public: Option<&(Url, Origin)>,
        problems: &mut Vec<String>,
    ) -> Vec<Origin> {
        match (&self.allowed_origins, public) {
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
        }
    }

    /// `database`: required.
    fn database(&self, problems: &mut Vec<String>) -> Option<DatabaseConfig> {
        match self.database.as_deref() {
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
        }
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

/// Warns of origins from which the app cannot use the broker's cookie (cross-site), and of a
/// plain-http public base URL.
fn site_warnings(public_origin: &Origin, allowed_origins: &[Origin], warnings: &mut Vec<String>) {
    for origin in allowed_origins {
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

/// The `[[providers]]` entries: at least one, each id once, each checked.
fn validate_providers(
    entries: Vec<RawProvider>,
    public_origin: Option<&Origin>,
    allowed_origins: &[Origin],
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<ProviderConfig> {
    let mut providers = Vec::new();
    let mut seen = BTreeSet::new();
    if entries.is_empty() {
        problems.push("providers: at least one [[providers]] entry is required".into());
    }
    for (i, raw) in entries.into_iter().enumerate() {
        if !seen.insert(raw.id.clone()) {
            problems.push(format!("providers[{i}].id: {:?} is used twice", raw.id));
            continue;
        }
        if let Some(provider) = raw.validate(i, public_origin, allowed_origins, problems, warnings)
        {
            providers.push(provider);
        }
    }
    providers
}
