//! The `CM_BROKER_*` environment overrides: [`Env`] reads them once, and they are layered onto
//! the raw file before validation, so a deployment can keep secrets and per-host settings out
//! of the file.

use std::{
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use secrecy::SecretString;

use super::{
    parse::{parse_env_keys, read_secret_file},
    raw::RawConfig,
};

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "CM_BROKER_";
/// `CM_BROKER_*` variables read by the command line rather than the configuration.
const COMMAND_LINE_VARS: [&str; 3] = ["CONFIG", "LOG", "LOG_FORMAT"];

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

/// The environment's spelling of a provider id: uppercase, `-` as `_`.
pub(super) fn env_provider_id(id: &str) -> String {
    id.to_ascii_uppercase().replace('-', "_")
}

// Hand-written rather than figment's `Env::prefixed("CM_BROKER_").split("__")` merged over the
// TOML file, for three reasons: a provider's secret is addressed by the provider's id
// (`PROVIDERS__<ID>__CLIENT_SECRET`, the documented operator interface), while `providers` is an
// array, which figment's key paths can only index by position; every bad value is reported at
// once (`config/tests.rs::env_mistakes_are_refused`), where figment's extraction stops at
// serde's first error; and half the variables have a syntax of their own (the comma list of
// `ALLOWED_ORIGINS`, `KEYS`' `id:key` list, `*_FILE` variables read from disk), which would need
// this code after figment anyway. The match below is the whole mapping, one arm per variable.
impl RawConfig {
    /// Layers `env` onto the file, each variable replacing its field; what is wrong (an unknown
    /// variable, a value that does not parse) is added to `problems`.
    pub(super) fn apply_env(&mut self, env: Env, problems: &mut Vec<String>) {
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
                "CONNECTION_CACHE_MS" => self.connection_cache_ms = number(problems),
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
}
