//! One `[[providers]]` entry checked into a [`ProviderConfig`]: its id, client, secret,
//! redirect URI, scopes, allow-lists and upstream, each problem named by its field
//! (`providers[i].…`) and added to the one list.

use connect_medicare_protocol::{
    ClientId, ClientSecret, FhirBase, Provider, RedirectUri, Scopes, contract::ProviderId,
    resources::ResourceType,
};
use secrecy::ExposeSecret;
use url::Url;

use super::{
    env::env_provider_id,
    parse::read_secret_file,
    provider::{Access, AllowLists, ProviderConfig, ProviderUpstream},
    raw::{RawKind, RawProvider},
};
use crate::{error::Error, origin::Origin};

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

    /// Checks entry `i`, or records every problem found in it.
    pub(super) fn validate(
        mut self,
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

        let secret = self.client_secret(&field, problems, warnings);

        let redirect_uri = self.redirect_uri(&field, public_origin, allowed_origins, problems);

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
        let resources = self.allow_lists(&field, problems);

        let upstream = self.upstream(&field, problems);

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

    /// The client secret: the environment's, else `client_secret_file`'s or `client_secret`
    /// (with a warning), never both; and not empty.
    fn client_secret(
        &mut self,
        field: &dyn Fn(&str) -> String,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Option<ClientSecret> {
        let secret = match (
            self.env_secret.take(),
            self.client_secret.take(),
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
        secret.and_then(|s| {
            if s.expose_secret().is_empty() {
                problems.push(format!("{}: is empty", field("client_secret")));
                None
            } else {
                Some(ClientSecret::new(s))
            }
        })
    }

    /// `redirect_uri`, which must be on the app's origin or one of `allowed_origins`.
    fn redirect_uri(
        &self,
        field: &dyn Fn(&str) -> String,
        public_origin: Option<&Origin>,
        allowed_origins: &[Origin],
        problems: &mut Vec<String>,
    ) -> Option<RedirectUri> {
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
        redirect_uri
    }

    /// The `read` and `search` allow-lists.
    fn allow_lists(
        &self,
        field: &dyn Fn(&str) -> String,
        problems: &mut Vec<String>,
    ) -> AllowLists {
        let blue_button = self.kind == RawKind::BlueButton;
        AllowLists {
            read: allow_list(
                self.read.as_deref(),
                Access::Read,
                blue_button,
                field,
                problems,
            ),
            search: allow_list(
                self.search.as_deref(),
                Access::Search,
                blue_button,
                field,
                problems,
            ),
        }
    }

    /// Where the profile comes from: `base_url` for Blue Button, `fhir_base_url` for SMART.
    fn upstream(
        &self,
        field: &dyn Fn(&str) -> String,
        problems: &mut Vec<String>,
    ) -> Option<ProviderUpstream> {
        match self.kind {
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
        }
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
