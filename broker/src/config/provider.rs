//! The providers: a [`ProviderConfig`] as configured, and [`ResolvedProvider`], the one
//! ready to serve once its profile is known — Blue Button's from its base URL, a SMART
//! server's from its discovery document — with the scopes to ask for and the allow-lists.

use connect_medicare_protocol::{
    ClientId, ClientSecret, DisconnectKind, FhirBase, Provider, ProviderKind, RedirectUri, Scopes,
    SmartConfiguration,
    contract::{ProviderId, ProviderInfo},
    resources::ResourceType,
};
use serde::Deserialize;

use crate::{
    error::{Error, Result},
    origin::Origin,
};

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
    pub(super) id: ProviderId,
    pub(super) name: String,
    pub(super) client_id: ClientId,
    pub(super) client_secret: ClientSecret,
    pub(super) redirect_uri: RedirectUri,
    pub(super) scopes: Option<Scopes>,
    pub(super) authorize_post: Option<bool>,
    pub(super) sign_in_origins: Vec<Origin>,
    pub(super) client_auth: ClientAuth,
    pub(super) upstream: ProviderUpstream,
    pub(super) resources: AllowLists,
    pub(super) requests_per_second: Option<u32>,
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
    pub(super) read: Option<Vec<&'static ResourceType>>,
    pub(super) search: Option<Vec<&'static ResourceType>>,
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
