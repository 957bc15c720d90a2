//! The configuration file as serde reads it: unknown fields refused, no value checked yet.
//! `env.rs` layers the environment onto it, then `validate.rs` checks it into a `Config`.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::provider::ClientAuth;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) metrics_listen: Option<String>,
    pub(super) max_connections: Option<u64>,
    pub(super) header_read_timeout_seconds: Option<u64>,
    pub(super) public_base_url: Option<String>,
    pub(super) allowed_origins: Option<Vec<String>>,
    pub(super) database: Option<String>,
    pub(super) static_dir: Option<PathBuf>,
    pub(super) keys: Option<Vec<RawKey>>,
    pub(super) keys_file: Option<PathBuf>,
    pub(super) flow_ttl_seconds: Option<u64>,
    pub(super) max_pending_flows: Option<u64>,
    pub(super) session_ttl_seconds: Option<u64>,
    pub(super) refresh_skew_seconds: Option<u64>,
    pub(super) connection_cache_ms: Option<u64>,
    #[serde(default)]
    pub(super) upstream: RawUpstream,
    #[serde(default)]
    pub(super) providers: Vec<RawProvider>,
    /// Set when `database` came from the file: relative SQLite paths are joined to it.
    #[serde(skip)]
    pub(super) database_base: Option<PathBuf>,
    /// Keys from `CM_BROKER_KEYS`, which replace every other source.
    #[serde(skip)]
    pub(super) env_keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) connect_timeout_seconds: Option<u64>,
    pub(super) request_timeout_seconds: Option<u64>,
    pub(super) max_body_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) id: String,
    pub(super) key: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeysFile {
    pub(super) keys: Vec<RawKey>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawKind {
    BlueButton,
    Smart,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) kind: RawKind,
    pub(super) base_url: Option<String>,
    pub(super) fhir_base_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<SecretString>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) redirect_uri: String,
    pub(super) scopes: Option<String>,
    pub(super) authorize_post: Option<bool>,
    pub(super) sign_in_origins: Option<Vec<String>>,
    #[serde(default)]
    pub(super) client_auth: ClientAuth,
    pub(super) read: Option<Vec<String>>,
    pub(super) search: Option<Vec<String>>,
    pub(super) requests_per_second: Option<u32>,
    /// Set when the secret came from the environment (replaces both file fields).
    #[serde(skip)]
    pub(super) env_secret: Option<SecretString>,
}

/// `path`, relative to `base` when it is relative.
pub(super) fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_owned()
    }
}

impl RawConfig {
    /// Makes the file's relative paths relative to its directory, `base`.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
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
}
