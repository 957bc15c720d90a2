//! The small parsers of single values: the public base URL, the database URL (PostgreSQL's
//! kept secret), the keys of `CM_BROKER_KEYS` and of a keys file, a secret from a file, and
//! TOML syntax errors told without the text they point at. Their messages never echo a secret.

use std::path::Path;

use secrecy::SecretString;
use url::Url;

use super::{
    DatabaseConfig, PostgresUrl,
    raw::{RawKey, RawKeysFile, join},
};
use crate::{error::Error, origin::Origin};

/// A TOML error without the source line it points at (which may hold a secret), and without
/// the values serde quotes in "invalid type" messages.
pub(super) fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> Error {
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

/// [`PostgresUrl::parse`]: the URL must parse as the store will parse it. Messages never
/// contain the URL (sqlx's are scrubbed of the password in case one quotes a value).
pub(super) fn parse_postgres(raw: &str) -> Result<PostgresUrl, String> {
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

pub(super) fn parse_public_base_url(raw: &str) -> Result<(Url, Origin), String> {
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

pub(super) fn parse_database(raw: &str, base: Option<&Path>) -> Result<DatabaseConfig, String> {
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
pub(super) fn parse_env_keys(name: &str, value: &str, problems: &mut Vec<String>) -> Vec<RawKey> {
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

pub(super) fn read_keys_file(path: &Path) -> Result<Vec<RawKey>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    match toml::from_str::<RawKeysFile>(&text) {
        Ok(file) => Ok(file.keys),
        Err(e) => Err(syntax_error(path, &text, &e).to_string()),
    }
}

/// A secret from a file: its contents without the trailing newline.
pub(super) fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned());
    drop(SecretString::from(text));
    Ok(secret)
}
