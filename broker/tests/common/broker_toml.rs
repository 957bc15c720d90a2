//! The broker's TOML configuration as every test writes it, for a broker in this process
//! ([`BrokerSetup`](super::BrokerSetup)) and for the binary (`binary.rs`, `replicas.rs`).

use std::path::{Path, PathBuf};

use super::{APP_ORIGIN, CLIENT_ID, KEY, REDIRECT_URI};

/// A test broker's configuration: the app at [`APP_ORIGIN`], the test key, Medicare at
/// `medicare` with the test client, and the few settings tests vary.
#[derive(Clone)]
pub struct BrokerToml {
    /// `listen`, for a broker process (none for a broker served in this process).
    pub listen: Option<String>,
    /// The `database` URL.
    pub database: String,
    /// Medicare's `base_url`: the sandbox, or a stand-in for it.
    pub medicare: String,
    /// Top-level settings and tables, before the keys.
    pub extra: String,
    /// More `[[providers]]` blocks, after Medicare's ([`smart_provider`]).
    pub more_providers: String,
}

impl BrokerToml {
    /// Medicare at `medicare`, the store at `database`, nothing else.
    pub fn new(medicare: &str, database: &str) -> Self {
        Self {
            listen: None,
            database: database.to_owned(),
            medicare: medicare.to_owned(),
            extra: String::new(),
            more_providers: String::new(),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let listen = self
            .listen
            .as_ref()
            .map(|listen| format!("listen = \"{listen}\"\n"))
            .unwrap_or_default();
        format!(
            r#"
{listen}public_base_url = "{APP_ORIGIN}"
database = "{database}"
{extra}
[[keys]]
id = "k1"
key = "{KEY}"

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "{medicare}"
client_id = "{CLIENT_ID}"
redirect_uri = "{REDIRECT_URI}"
{more}
"#,
            database = self.database,
            extra = self.extra,
            medicare = self.medicare,
            more = self.more_providers,
        )
    }

    /// Writes the file as `dir/broker.toml` (where a relative database path starts) and
    /// returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("broker.toml");
        std::fs::write(&path, self.render()).unwrap();
        path
    }
}

/// A `[[providers]]` block for the SMART server `id` at `fhir_base_url`, redirecting to the
/// test app, with `settings` (`client_secret = …`, `read = […]`, `scopes = …`) at its end.
pub fn smart_provider(
    id: &str,
    name: &str,
    fhir_base_url: &str,
    client_id: &str,
    settings: &str,
) -> String {
    format!(
        r#"
[[providers]]
id = "{id}"
name = "{name}"
kind = "smart"
fhir_base_url = "{fhir_base_url}"
client_id = "{client_id}"
redirect_uri = "{REDIRECT_URI}"
{settings}
"#
    )
}
