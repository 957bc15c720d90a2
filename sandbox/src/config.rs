//! Registered apps and the sandbox's settings, the faults to inject among them.

use std::{fmt, str::FromStr};

use serde::Deserialize;

use crate::throttle::ThrottleRate;

/// The kind of data-access grant an app receives (Blue Button's `data_access_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// 13 months from consent; refresh allowed (the default).
    #[default]
    ThirteenMonth,
    /// One hour; refresh refused with 403 `invalid_client`.
    OneTime,
    /// No expiry; `access_grant_expiration` is `""`.
    Research,
}

impl FromStr for GrantKind {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "thirteen_month" | "13-month" | "13month" => Ok(Self::ThirteenMonth),
            "one_time" | "one-time" => Ok(Self::OneTime),
            "research" | "research_study" => Ok(Self::Research),
            other => Err(format!(
                "unknown grant kind {other:?} (thirteen_month, one_time, research)"
            )),
        }
    }
}

/// How `access_grant_expiration` is written: with `T` (the server's code) or with a space
/// (the published docs), which clients must read; or without a time zone, a form no client can
/// read as an instant, for testing that it costs nobody their sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirationFormat {
    /// `2027-12-22T10:11:42Z`.
    #[default]
    T,
    /// `2027-12-22 10:11:42Z`.
    Space,
    /// `2027-12-22T10:11:42`: no time zone.
    NoZone,
}

/// An app registered with the sandbox.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Display name shown on the consent page.
    #[serde(default = "default_app_name")]
    pub name: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The confidential client secret.
    pub client_secret: String,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// The grant kind.
    #[serde(default)]
    pub grant_kind: GrantKind,
    /// Whether the app asks for demographics (`profile`, `patient/Patient.*`). When false, the
    /// consent page has no choice and those scopes are never granted.
    #[serde(default = "yes")]
    pub require_demographics: bool,
    /// Scopes the app may have; `None` means every scope the profile lists.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// How `access_grant_expiration` is written.
    #[serde(default)]
    pub expiration_format: ExpirationFormat,
}

fn default_app_name() -> String {
    "Connect Medicare test app".to_owned()
}

fn yes() -> bool {
    true
}

impl AppConfig {
    /// An app with defaults: 13-month grants, demographics requested, every scope.
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            name: default_app_name(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            grant_kind: GrantKind::default(),
            require_demographics: true,
            scopes: None,
            expiration_format: ExpirationFormat::default(),
        }
    }

    /// Sets the grant kind.
    pub fn with_grant_kind(mut self, kind: GrantKind) -> Self {
        self.grant_kind = kind;
        self
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_kind", &self.grant_kind)
            .field("require_demographics", &self.require_demographics)
            .finish()
    }
}

/// `client_id:client_secret:redirect_uri[,redirect_uri…][:grant_kind]`, the command-line and
/// environment form of an app (`--app`, `CM_SANDBOX_APPS` separated by `;`).
impl FromStr for AppConfig {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        // Redirect URIs contain ':' themselves: split client id and secret off the front, and
        // an optional grant kind off the back.
        let (client_id, rest) = raw
            .split_once(':')
            .ok_or("expected client_id:client_secret:redirect_uri[:grant_kind]")?;
        let (client_secret, rest) = rest
            .split_once(':')
            .ok_or("expected client_id:client_secret:redirect_uri[:grant_kind]")?;
        let (uris, kind) = match rest.rsplit_once(':') {
            Some((uris, kind)) if kind.parse::<GrantKind>().is_ok() => (uris, Some(kind)),
            _ => (rest, None),
        };
        if client_id.is_empty() || client_secret.is_empty() || uris.is_empty() {
            return Err("client id, secret and redirect URI must not be empty".to_owned());
        }
        let mut app = AppConfig::new(client_id, client_secret, "");
        app.redirect_uris = uris.split(',').map(str::to_owned).collect();
        if let Some(kind) = kind {
            app.grant_kind = kind.parse()?;
        }
        Ok(app)
    }
}

/// Settings of one sandbox server.
///
/// Construct it with struct-update syntax so new settings keep their defaults:
/// `SandboxConfig { apps, ..SandboxConfig::default() }`.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Registered apps (shared by both profiles).
    pub apps: Vec<AppConfig>,
    /// The origin written into Bundle links. Blue Button passes its backend's links through
    /// unchanged, so by default they name a host that is not the sandbox's own.
    pub link_origin: String,
    /// Seed for tokens, codes and ids, and for the fault dice: the same seed and the same
    /// sequence of requests give the same values and the same faults.
    pub seed: u64,
    /// The per-access-token rate limit on the Blue Button FHIR views (Django REST framework's
    /// `SimpleRateThrottle`); `None` turns it off. Default: 10 requests per second, near
    /// the public sandbox's.
    pub throttle: Option<ThrottleRate>,
    /// Injected faults: latency, upstream 5xx, dropped connections, a forced 429 storm.
    /// Default: none.
    pub faults: FaultConfig,
    /// Serve the test-control endpoints under `/__admin/` (faults, clock). Off by default:
    /// those paths are then plain 404s.
    pub admin: bool,
    /// Seconds added to the clock when the server starts (negative moves it back).
    pub clock_offset_seconds: i64,
    /// Whether the SMART face offers token revocation (`revocation_endpoint` in its discovery
    /// document, `/smart/auth/revoke`). Default: yes. SMART servers need not offer it.
    pub smart_revocation: bool,
    /// Read HTTP Basic client credentials as they are, without form-decoding them first (as
    /// SMART's reference server does; RFC 6749 §2.3.1 and Blue Button decode). Default: off.
    pub basic_auth_unencoded: bool,
    /// Whether the SMART face puts `iss` in its redirects back to the app and advertises it
    /// (`authorization_response_iss_parameter_supported`, RFC 9207). Default: yes.
    pub smart_callback_iss: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            link_origin: "https://prod-sbx.bfd.cms.example".to_owned(),
            seed: 0,
            throttle: Some(ThrottleRate::default()),
            faults: FaultConfig::default(),
            admin: false,
            clock_offset_seconds: 0,
            smart_revocation: true,
            basic_auth_unencoded: false,
            smart_callback_iss: true,
        }
    }
}

impl SandboxConfig {
    /// A configuration with one app.
    pub fn with_app(app: AppConfig) -> Self {
        Self {
            apps: vec![app],
            ..Self::default()
        }
    }
}

/// Faults to inject (all off by default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Milliseconds added before every API request is answered.
    pub latency_ms: u64,
    /// Probability (0 to 1) that a FHIR request or a Blue Button refresh fails upstream
    /// (502).
    pub error_rate: f64,
    /// Probability (0 to 1) that an API request's connection is closed without an answer.
    pub drop_rate: f64,
    /// A forced 429 storm, starting when the server starts.
    pub storm: Option<Storm>,
    /// Compress answers over 1 KB with gzip even when the request did not ask for it.
    pub gzip_always: bool,
    /// A storm's 429 gives `Retry-After` as an HTTP-date (when the storm ends).
    pub retry_after_date: bool,
    /// Both revocation endpoints answer this status instead of revoking (a 5xx as Blue
    /// Button's upstream failure, a 4xx as an OAuth `invalid_request`).
    pub revoke_status: Option<u16>,
}

/// A forced 429 storm on the Blue Button FHIR views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storm {
    /// Every FHIR request answers 429 for this many seconds of the sandbox's clock.
    Seconds(u64),
    /// The next this-many FHIR requests answer 429.
    Requests(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_spec_parses_uris_with_colons() {
        let app: AppConfig = "cid:secret:http://localhost:8080/cb,http://127.0.0.1:9/cb:research"
            .parse()
            .unwrap();
        assert_eq!(app.client_id, "cid");
        assert_eq!(app.client_secret, "secret");
        assert_eq!(
            app.redirect_uris,
            vec!["http://localhost:8080/cb", "http://127.0.0.1:9/cb"]
        );
        assert_eq!(app.grant_kind, GrantKind::Research);
        let plain: AppConfig = "a:b:https://x.example/cb".parse().unwrap();
        assert_eq!(plain.grant_kind, GrantKind::ThirteenMonth);
        assert_eq!(plain.redirect_uris, vec!["https://x.example/cb"]);
        assert!("a:b".parse::<AppConfig>().is_err());
        assert!("a::https://x/cb".parse::<AppConfig>().is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let app = AppConfig::new("cid", "canary-secret", "https://x.example/cb");
        assert!(!format!("{app:?}").contains("canary"));
    }
}
