//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not part of the API).
//!
//! Each runs one of the broker's parsers on untrusted input the way a request or a start-up
//! would, and panics when a property that must hold for every input breaks — besides not
//! panicking at all. The properties are the security ones: a read or search the browser names
//! reaches only the allow-listed URL under the provider's FHIR base; a paging link the broker
//! did not seal never opens; a relayed Bundle's links all point back at the broker.

use std::{path::Path, sync::Arc};

use axum::http::{HeaderMap, HeaderValue, header};
use connect_medicare_protocol::{
    SmartConfiguration, Timestamp,
    contract::{FLOW_COOKIE, ProviderId, SESSION_COOKIE},
    resources::ResourceType,
};
use url::Url;

use crate::{
    Config, Env, FlowCookie, SessionHash, SessionId, cookies, fhir,
    pages::{self, Binding, PAGE_PARAM},
    state::ServedProvider,
};

/// A configuration with a Blue Button provider and a SMART one: what the targets run against.
const CONFIG: &str = r#"
public_base_url = "https://app.example.com"
database = "sqlite::memory:"

[[keys]]
id = "k1"
key = "Zm96ei1rZXktYnl0ZXMtMzItbG9uZy0wMTIzNDU2Nzg="

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "https://sandbox.bluebutton.cms.gov"
client_id = "c"
client_secret = "s"
redirect_uri = "https://app.example.com/callback"

[[providers]]
id = "ehr"
name = "Example EHR"
kind = "smart"
fhir_base_url = "https://ehr.example.com/fhir/r4"
client_id = "c"
client_secret = "s"
redirect_uri = "https://app.example.com/callback"
"#;

const DISCOVERY: &str = r#"{
    "issuer": "https://ehr.example.com",
    "authorization_endpoint": "https://ehr.example.com/auth/authorize",
    "token_endpoint": "https://ehr.example.com/auth/token",
    "scopes_supported": ["openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access"],
    "response_types_supported": ["code"],
    "capabilities": ["launch-standalone", "permission-v2"],
    "code_challenge_methods_supported": ["S256"]
}"#;

/// The patient every target's connection belongs to.
const PATIENT: &str = "-10000000000001";

/// Parses a configuration file's text, with no environment overrides.
pub fn config(text: &str) {
    let _ = Config::parse(text, Path::new("/etc/cm/broker.toml"), Env::empty());
}

/// Reads `value` as a session and a flow cookie, directly and inside a `Cookie` header: what
/// parses is exactly the value sent.
pub fn cookies(value: &str) {
    if let Some(id) = SessionId::parse(value) {
        assert_eq!(
            id.expose_secret(),
            value,
            "a session cookie changed when read"
        );
        let _ = id.hash();
    }
    if let Some(cookie) = FlowCookie::parse(value) {
        assert_eq!(
            cookie.expose_secret(),
            value,
            "a flow cookie changed when read"
        );
    }
    if let Ok(header) = HeaderValue::from_str(value) {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, header);
        // A cookie read from the header is a value the header sent, under its own name.
        if let Some(id) = cookies::SessionCookie::read(&headers).id() {
            assert!(
                value.contains(SESSION_COOKIE) && value.contains(id.expose_secret()),
                "a session id the header did not send"
            );
        }
        if let Some(flow) = cookies::flow_cookie(&headers) {
            assert!(
                value.contains(FLOW_COOKIE) && value.contains(flow.expose_secret()),
                "a flow cookie the header did not send"
            );
        }
    }
}

/// The broker's providers, a session and a key ring, for the proxy and paging targets.
#[derive(Debug)]
pub struct Proxy {
    providers: Vec<ServedProvider>,
    config: Arc<Config>,
    session: SessionHash,
}

impl Default for Proxy {
    fn default() -> Self {
        let config = Arc::new(
            Config::parse(CONFIG, Path::new("/etc/cm/broker.toml"), Env::empty())
                .expect("the fuzzing configuration is valid"),
        );
        let discovery =
            SmartConfiguration::from_json(DISCOVERY.as_bytes()).expect("the discovery parses");
        let providers = config
            .providers()
            .iter()
            .enumerate()
            .map(|(index, provider)| {
                let discovered = provider.discovery_url().map(|_| &discovery);
                ServedProvider::new(
                    config.clone(),
                    index,
                    provider.resolve(discovered).expect("the provider resolves"),
                )
            })
            .collect();
        Self {
            providers,
            config,
            session: SessionId::from_random_bytes([7; 32]).hash(),
        }
    }
}

impl Proxy {
    /// `GET /v1/fhir/{provider}/{resource}/{id}?{query}`'s validation: when it passes, the
    /// upstream URL is exactly `{base}{Type}/{id, percent-encoded}`.
    pub fn read(&self, provider: usize, resource: &str, id: &str, query: Option<&str>) {
        let provider = &self.providers[provider % self.providers.len()];
        let Ok((resource, url)) = fhir::read_url(provider, resource, id, query) else {
            return;
        };
        let base = provider.resolved.provider().fhir_base();
        let rest = url
            .strip_prefix(&base.join(resource.name()))
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or_else(|| panic!("a read left its type's path: {url}"));
        assert!(
            !rest.contains(['/', '?', '#', '\\']) && rest != "." && rest != "..",
            "a read's id escaped its segment: {url}"
        );
        let decoded: String = form_urlencoded::parse(format!("x={rest}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(decoded, id, "a read's id changed on the way: {url}");
        assert!(
            Url::parse(&url).is_ok(),
            "a read's URL does not parse: {url}"
        );
    }

    /// `GET /v1/fhir/{provider}/{resource}?{query}`'s validation (a search that is not a sealed
    /// page): when it passes, the upstream URL is `{base}{Type}?…`, parses, is pinned to the
    /// connection's patient, and carries no sealed-page parameter.
    pub fn search(&self, provider: usize, resource: &str, query: Option<&str>) {
        let provider = &self.providers[provider % self.providers.len()];
        let Ok(url) = fhir::search_target(provider, resource, query, PATIENT) else {
            return;
        };
        let base = provider.resolved.provider().fhir_base();
        let (path, query) = url
            .split_once('?')
            .unwrap_or_else(|| panic!("a search without a query: {url}"));
        assert!(
            path.strip_prefix(base.as_str().trim_end_matches('/'))
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.is_empty() && !name.contains(['/', '.', '?', '#'])),
            "a search left the FHIR base: {url}"
        );
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let pins = pairs
            .iter()
            .filter(|(_, v)| v == PATIENT || v.ends_with(&format!("Patient/{PATIENT}")))
            .count();
        assert!(pins >= 1, "a search not pinned to the patient: {url}");
        assert!(
            !pairs.iter().any(|(k, _)| k == PAGE_PARAM),
            "a sealed-page parameter reached the provider: {url}"
        );
        assert!(
            Url::parse(&url).is_ok(),
            "a search's URL does not parse: {url}"
        );
    }

    fn binding<'a>(&'a self, provider: &'a ProviderId, resource: &'a str) -> Binding<'a> {
        Binding {
            keys: self.config.key_ring(),
            session: &self.session,
            provider,
            resource,
            now: Timestamp::from_unix_seconds(1_800_000_000),
        }
    }

    /// `?_page=<sealed>` on the SMART provider: input that the broker did not seal never opens.
    pub fn sealed_page(&self, sealed: &str) {
        let provider = &self.providers[1];
        let binding = self.binding(provider.resolved.id(), "Observation");
        if let Ok(opened) = binding.open(sealed, provider.resolved.provider().fhir_base()) {
            panic!("an unsealed paging link opened: {}", opened.url);
        }
    }

    /// A SMART provider's search Bundle relayed: every link the browser gets back is the
    /// broker's own `_page` link, and it opens to a URL under the FHIR base.
    pub fn opaque_bundle(&self, body: &[u8]) {
        let provider = &self.providers[1];
        let base = provider.resolved.provider().fhir_base();
        let binding = self.binding(provider.resolved.id(), "Observation");
        // As the proxy passes it (`relay_sealed`).
        let public = self.config.public_base_url().as_str();
        let fetched = base.join("Observation?patient=x");
        let page = pages::Page {
            fetched: &fetched,
            base,
            public,
            patient: PATIENT,
            resource: ResourceType::get("Observation").expect("a type"),
        };
        let Ok(out) = pages::reseal(body, &binding, &page) else {
            return;
        };
        let bundle: serde_json::Value =
            serde_json::from_slice(&out).expect("a relayed Bundle is JSON");
        for link in bundle["link"].as_array().into_iter().flatten() {
            let url = link["url"].as_str().expect("a link has a URL");
            let sealed = url
                .strip_prefix(&format!(
                    "{}/v1/fhir/ehr/Observation?{PAGE_PARAM}=",
                    public.trim_end_matches('/')
                ))
                .unwrap_or_else(|| panic!("a relayed link is not the broker's: {url}"));
            let opened = binding
                .open(sealed, base)
                .expect("the broker's own link opens");
            assert!(
                opened.url.starts_with(base.as_str().trim_end_matches('/')),
                "a sealed link leads off the FHIR base: {}",
                opened.url
            );
        }
    }
}
