//! Provider profiles: what this toolkit knows about each upstream authorization server.

use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    ids::FhirBase,
    scope::{Scope, Scopes},
    smart_config::SmartConfiguration,
    text::cut,
    url::SplitUrl,
};

/// Blue Button 2.0 sandbox host.
pub const BLUE_BUTTON_SANDBOX: &str = "https://sandbox.bluebutton.cms.gov";
/// Blue Button 2.0 production host.
pub const BLUE_BUTTON_PRODUCTION: &str = "https://api.bluebutton.cms.gov";

/// The scopes Blue Button 2.0 advertises (`apps/wellknown/constants.py`). `offline_access` is
/// not among them: asking for it strands the user on an "Invalid scopes." page.
const BLUE_BUTTON_SCOPES: &str = "openid profile launch/patient patient/Patient.read \
    patient/ExplanationOfBenefit.read patient/Coverage.read patient/Patient.rs \
    patient/ExplanationOfBenefit.rs patient/Coverage.rs";

/// What a Blue Button app asks for by default: everything it can read, in SMART v2 form.
const BLUE_BUTTON_DEFAULT_SCOPES: &str = "openid profile launch/patient patient/Patient.rs \
    patient/Coverage.rs patient/ExplanationOfBenefit.rs";

/// Which family of server a [`Provider`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderKind {
    /// CMS Blue Button 2.0 (sandbox, production, or a local emulator of it).
    BlueButton,
    /// Any SMART App Launch 2.2 server, described by its discovery document.
    Smart,
}

/// How a provider disconnects a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectKind {
    /// Blue Button's `/v2/o/revoke/`: revokes the tokens **and** deletes the data-access grant.
    RevokeAndDeleteGrant,
    /// RFC 7009 token revocation, sent with the refresh token.
    Rfc7009,
    /// The server offers no revocation; only local deletion is possible.
    None,
}

/// A Blue Button ExplanationOfBenefit claim type, as accepted by the EOB `type` search
/// parameter (`https://bluebutton.cms.gov/resources/codesystem/eob-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EobType {
    /// Part B carrier (professional) claims.
    Carrier,
    /// Part D prescription drug events.
    Pde,
    /// Durable medical equipment.
    Dme,
    /// Home health agency.
    Hha,
    /// Hospice.
    Hospice,
    /// Inpatient.
    Inpatient,
    /// Outpatient.
    Outpatient,
    /// Skilled nursing facility.
    Snf,
}

impl EobType {
    /// Every claim type, in Blue Button's documented order.
    pub const ALL: [EobType; 8] = [
        EobType::Carrier,
        EobType::Pde,
        EobType::Dme,
        EobType::Hha,
        EobType::Hospice,
        EobType::Inpatient,
        EobType::Outpatient,
        EobType::Snf,
    ];

    /// The code system of claim types.
    pub const SYSTEM: &'static str = "https://bluebutton.cms.gov/resources/codesystem/eob-type";

    /// The short code (`carrier`, `pde`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EobType::Carrier => "carrier",
            EobType::Pde => "pde",
            EobType::Dme => "dme",
            EobType::Hha => "hha",
            EobType::Hospice => "hospice",
            EobType::Inpatient => "inpatient",
            EobType::Outpatient => "outpatient",
            EobType::Snf => "snf",
        }
    }

    /// Parses one `type` value: a short code (case-insensitive, as the server matches it) or
    /// `https://bluebutton.cms.gov/resources/codesystem/eob-type|<code>`.
    pub fn parse(raw: &str) -> Option<EobType> {
        let code = match cut(raw, b'|') {
            (system, Some(code)) if system == Self::SYSTEM => code,
            (_, Some(_)) => return None,
            (code, None) => code,
        };
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(code))
    }

    /// Parses the EOB `type` parameter: a comma list of claim types. Empty items or unknown
    /// types are refused (the server answers them with 400).
    pub fn parse_list(raw: &str) -> Option<Vec<EobType>> {
        let mut out = Vec::new();
        let mut rest = Some(raw);
        while let Some((item, next)) = rest.map(|r| cut(r, b',')) {
            out.push(Self::parse(item)?);
            rest = next;
        }
        Some(out)
    }
}

/// Everything this toolkit needs to know about one upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    kind: ProviderKind,
    issuer: Option<String>,
    /// The server says its authorization responses carry `iss` (RFC 9207).
    iss_in_callback: bool,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    disconnect: DisconnectKind,
    disconnect_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    fhir_base: FhirBase,
    scopes_supported: Option<Scopes>,
    default_scopes: Scopes,
    authorize_post: bool,
    max_page_size: Option<u32>,
}

impl Provider {
    /// The Blue Button 2.0 sandbox (`https://sandbox.bluebutton.cms.gov`).
    pub fn blue_button_sandbox() -> Self {
        Self::blue_button_at(BLUE_BUTTON_SANDBOX).expect("the sandbox host is a valid https URL")
    }

    /// Blue Button 2.0 production (`https://api.bluebutton.cms.gov`).
    pub fn blue_button_production() -> Self {
        Self::blue_button_at(BLUE_BUTTON_PRODUCTION)
            .expect("the production host is a valid https URL")
    }

    /// A Blue Button 2.0 server at `base` (scheme, host and optional port, e.g. a local
    /// emulator on `http://127.0.0.1:8123`).
    ///
    /// Endpoints are written **with** their trailing slash: Blue Button's discovery
    /// advertises `/v2/o/authorize` and `/v2/o/revoke_token` without it, and the server
    /// answers those with a 301 that turns a POST into a bodiless GET.
    pub fn blue_button_at(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/');
        let url = SplitUrl::parse(base).ok_or(Error::InvalidUrl {
            what: "Blue Button base URL",
            reason: "not an absolute http(s) URL",
        })?;
        if !url.path.is_empty() || url.query.is_some() || url.fragment.is_some() {
            return Err(Error::InvalidUrl {
                what: "Blue Button base URL",
                reason: "must be scheme, host and port only",
            });
        }
        let at = |path: &str| format!("{base}{path}");
        Ok(Self {
            kind: ProviderKind::BlueButton,
            issuer: None,
            iss_in_callback: false,
            authorization_endpoint: at("/v2/o/authorize/"),
            token_endpoint: at("/v2/o/token/"),
            revocation_endpoint: Some(at("/v2/o/revoke_token/")),
            disconnect: DisconnectKind::RevokeAndDeleteGrant,
            disconnect_endpoint: Some(at("/v2/o/revoke/")),
            introspection_endpoint: Some(at("/v2/o/introspect/")),
            userinfo_endpoint: Some(at("/v2/connect/userinfo")),
            fhir_base: FhirBase::parse(&at("/v2/fhir/"))?,
            scopes_supported: Some(Scopes::parse(BLUE_BUTTON_SCOPES)?),
            default_scopes: Scopes::parse(BLUE_BUTTON_DEFAULT_SCOPES)?,
            authorize_post: true,
            max_page_size: Some(50),
        })
    }

    /// A generic SMART App Launch server from its discovery document. Refuses one whose
    /// `code_challenge_methods_supported` lacks `S256`, and any endpoint that is not https
    /// (or http on loopback).
    pub fn from_smart_configuration(
        fhir_base: FhirBase,
        config: &SmartConfiguration,
    ) -> Result<Self> {
        config.validate()?;
        let scopes_supported: Vec<Scope> = config
            .scopes_supported
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect();
        let scopes_supported = (!scopes_supported.is_empty())
            .then(|| scopes_supported.into_iter().collect::<Scopes>());
        let mut default_scopes = Scopes::parse(
            "openid fhirUser launch/patient patient/Patient.rs patient/Coverage.rs \
             patient/ExplanationOfBenefit.rs offline_access",
        )?;
        if let Some(supported) = &scopes_supported {
            default_scopes.retain(|s| supported.covers(s));
        }
        let revocation_endpoint = config
            .revocation_endpoint
            .as_deref()
            .map(|e| endpoint("revocation_endpoint", e))
            .transpose()?;
        Ok(Self {
            kind: ProviderKind::Smart,
            issuer: config.issuer.clone(),
            iss_in_callback: config.authorization_response_iss_parameter_supported,
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &config.authorization_endpoint,
            )?,
            token_endpoint: endpoint("token_endpoint", &config.token_endpoint)?,
            disconnect: if revocation_endpoint.is_some() {
                DisconnectKind::Rfc7009
            } else {
                DisconnectKind::None
            },
            disconnect_endpoint: revocation_endpoint.clone(),
            revocation_endpoint,
            introspection_endpoint: config
                .introspection_endpoint
                .as_deref()
                .map(|e| endpoint("introspection_endpoint", e))
                .transpose()?,
            userinfo_endpoint: config
                .userinfo_endpoint
                .as_deref()
                .map(|e| endpoint("userinfo_endpoint", e))
                .transpose()?,
            fhir_base,
            scopes_supported,
            default_scopes,
            authorize_post: config.supports_authorize_post(),
            max_page_size: None,
        })
    }

    /// Which family of server this is.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The server's `issuer`, when its discovery names one (Blue Button's does not).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Checks a callback's `iss` (RFC 9207 §2.4, the mix-up defence of RFC 9700 §4.4): when
    /// the server advertises `authorization_response_iss_parameter_supported`, `iss` must be
    /// there; whenever it is there, it must equal the discovered `issuer` exactly.
    pub fn check_callback_issuer(&self, iss: Option<&str>) -> Result<()> {
        match iss {
            None if self.iss_in_callback => Err(Error::IssuerMismatch),
            None => Ok(()),
            Some(iss) if Some(iss) == self.issuer.as_deref() => Ok(()),
            Some(_) => Err(Error::IssuerMismatch),
        }
    }

    /// Where the browser goes to sign in and consent.
    pub fn authorization_endpoint(&self) -> &str {
        &self.authorization_endpoint
    }

    /// Where the broker redeems codes and refresh tokens.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The RFC 7009 revocation endpoint, if any.
    pub fn revocation_endpoint(&self) -> Option<&str> {
        self.revocation_endpoint.as_deref()
    }

    /// How "disconnect" is carried out, and where.
    pub fn disconnect(&self) -> (DisconnectKind, Option<&str>) {
        (self.disconnect, self.disconnect_endpoint.as_deref())
    }

    /// The RFC 7662 introspection endpoint, if any.
    pub fn introspection_endpoint(&self) -> Option<&str> {
        self.introspection_endpoint.as_deref()
    }

    /// The userinfo endpoint, if any.
    pub fn userinfo_endpoint(&self) -> Option<&str> {
        self.userinfo_endpoint.as_deref()
    }

    /// The FHIR base URL, which is also the exact `aud` value.
    pub fn fhir_base(&self) -> &FhirBase {
        &self.fhir_base
    }

    /// The scopes the server lists, if it lists any.
    pub fn scopes_supported(&self) -> Option<&Scopes> {
        self.scopes_supported.as_ref()
    }

    /// What to ask for when configuration names no scopes.
    pub fn default_scopes(&self) -> &Scopes {
        &self.default_scopes
    }

    /// Refuses scopes the server does not list (when it lists any). Blue Button ends the
    /// flow on an error page *after* sign-in for such scopes, so this runs before navigating.
    pub fn check_scopes(&self, requested: &Scopes) -> Result<()> {
        match &self.scopes_supported {
            Some(supported) => requested.check_supported(supported),
            None => Ok(()),
        }
    }

    /// Whether the authorize request may be sent as a form POST.
    pub fn supports_authorize_post(&self) -> bool {
        self.authorize_post
    }

    /// The largest `_count` the server accepts (Blue Button: 50), if it has a limit.
    pub fn max_page_size(&self) -> Option<u32> {
        self.max_page_size
    }

    /// The EOB claim types the server filters by (Blue Button's eight), or none.
    pub fn eob_types(&self) -> &'static [EobType] {
        match self.kind {
            ProviderKind::BlueButton => &EobType::ALL,
            ProviderKind::Smart => &[],
        }
    }
}

fn endpoint(what: &'static str, raw: &str) -> Result<String> {
    let url = SplitUrl::parse(raw).ok_or(Error::InvalidUrl {
        what,
        reason: "not an absolute http(s) URL",
    })?;
    if url.fragment.is_some() || url.userinfo.is_some() {
        return Err(Error::InvalidUrl {
            what,
            reason: "must not have a fragment or credentials",
        });
    }
    if !url.https && !url.is_loopback() {
        return Err(Error::InvalidUrl {
            what,
            reason: "must be https unless the host is loopback",
        });
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {

    #[test]
    fn callback_iss_is_required_when_advertised_and_must_be_the_issuer() {
        let bb2 = Provider::blue_button_at("http://127.0.0.1:8123/").unwrap();
        assert!(bb2.check_callback_issuer(None).is_ok());
        assert_eq!(
            bb2.check_callback_issuer(Some("https://x")).unwrap_err(),
            Error::IssuerMismatch,
            "an iss nobody can compare is refused"
        );
        let mut document: crate::SmartConfiguration = serde_json::from_str(
            r#"{"issuer":"https://ehr.example/smart",
                "authorization_endpoint":"https://ehr.example/auth",
                "token_endpoint":"https://ehr.example/token",
                "code_challenge_methods_supported":["S256"],
                "capabilities":["launch-standalone"]}"#,
        )
        .unwrap();
        let base = FhirBase::parse("https://ehr.example/fhir/").unwrap();
        let quiet = Provider::from_smart_configuration(base.clone(), &document).unwrap();
        assert!(quiet.check_callback_issuer(None).is_ok());
        document.authorization_response_iss_parameter_supported = true;
        let strict = Provider::from_smart_configuration(base, &document).unwrap();
        assert_eq!(
            strict.check_callback_issuer(None),
            Err(Error::IssuerMismatch)
        );
        assert_eq!(
            strict.check_callback_issuer(Some("https://ehr.example/smart/")),
            Err(Error::IssuerMismatch)
        );
        assert!(
            strict
                .check_callback_issuer(Some("https://ehr.example/smart"))
                .is_ok()
        );
    }
    use super::*;

    #[test]
    fn blue_button_endpoints_keep_their_trailing_slash() {
        let p = Provider::blue_button_sandbox();
        assert_eq!(
            p.authorization_endpoint(),
            "https://sandbox.bluebutton.cms.gov/v2/o/authorize/"
        );
        assert_eq!(
            p.token_endpoint(),
            "https://sandbox.bluebutton.cms.gov/v2/o/token/"
        );
        assert_eq!(
            p.revocation_endpoint(),
            Some("https://sandbox.bluebutton.cms.gov/v2/o/revoke_token/")
        );
        assert_eq!(
            p.disconnect(),
            (
                DisconnectKind::RevokeAndDeleteGrant,
                Some("https://sandbox.bluebutton.cms.gov/v2/o/revoke/")
            )
        );
        assert_eq!(
            p.fhir_base().as_str(),
            "https://sandbox.bluebutton.cms.gov/v2/fhir/"
        );
        assert_eq!(
            p.userinfo_endpoint(),
            Some("https://sandbox.bluebutton.cms.gov/v2/connect/userinfo")
        );
        assert_eq!(p.max_page_size(), Some(50));
        assert!(p.supports_authorize_post());
        let prod = Provider::blue_button_production();
        assert_eq!(
            prod.authorization_endpoint(),
            "https://api.bluebutton.cms.gov/v2/o/authorize/"
        );
    }

    #[test]
    fn local_emulator_profile() {
        let p = Provider::blue_button_at("http://127.0.0.1:8123/").unwrap();
        assert_eq!(p.token_endpoint(), "http://127.0.0.1:8123/v2/o/token/");
        assert!(Provider::blue_button_at("http://bluebutton.example.com").is_err());
        assert!(Provider::blue_button_at("https://x.example.com/v2").is_err());
    }

    #[test]
    fn blue_button_refuses_offline_access() {
        let p = Provider::blue_button_sandbox();
        let err = p
            .check_scopes(&Scopes::parse("openid offline_access").unwrap())
            .unwrap_err();
        assert_eq!(err, Error::UnsupportedScope("offline_access".into()));
        assert!(p.check_scopes(p.default_scopes()).is_ok());
        assert!(!p.default_scopes().to_string().contains("offline_access"));
        assert!(
            p.check_scopes(&Scopes::parse("patient/Coverage.r patient/Coverage.s").unwrap())
                .is_ok()
        );
        assert!(
            p.check_scopes(&Scopes::parse("patient/Observation.rs").unwrap())
                .is_err()
        );
    }

    #[test]
    fn eob_types() {
        assert_eq!(EobType::parse("carrier"), Some(EobType::Carrier));
        assert_eq!(EobType::parse("PDE"), Some(EobType::Pde));
        assert_eq!(
            EobType::parse("https://bluebutton.cms.gov/resources/codesystem/eob-type|snf"),
            Some(EobType::Snf)
        );
        assert_eq!(EobType::parse("http://evil.example/eob-type|snf"), None);
        assert_eq!(EobType::parse("claims"), None);
        assert_eq!(
            EobType::parse_list("carrier,pde"),
            Some(vec![EobType::Carrier, EobType::Pde])
        );
        assert_eq!(EobType::parse_list("carrier,"), None);
        assert_eq!(Provider::blue_button_sandbox().eob_types().len(), 8);
    }

    #[cfg(feature = "json")]
    #[test]
    fn generic_smart_provider_from_discovery() {
        let config = SmartConfiguration::from_json(
            br#"{
            "issuer": "https://ehr.example.com",
            "authorization_endpoint": "https://ehr.example.com/authorize",
            "token_endpoint": "https://ehr.example.com/token",
            "revocation_endpoint": "https://ehr.example.com/revoke",
            "scopes_supported": ["openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access"],
            "capabilities": ["authorize-post"],
            "code_challenge_methods_supported": ["S256"]
        }"#,
        )
        .unwrap();
        let base = FhirBase::parse("https://ehr.example.com/fhir").unwrap();
        let p = Provider::from_smart_configuration(base, &config).unwrap();
        assert_eq!(p.kind(), ProviderKind::Smart);
        assert!(p.supports_authorize_post());
        assert_eq!(
            p.disconnect(),
            (
                DisconnectKind::Rfc7009,
                Some("https://ehr.example.com/revoke")
            )
        );
        assert!(p.default_scopes().to_string().contains("offline_access"));
        assert!(p.check_scopes(p.default_scopes()).is_ok());
        assert_eq!(p.max_page_size(), None);
        assert!(p.eob_types().is_empty());
    }

    #[cfg(feature = "json")]
    #[test]
    fn generic_smart_refuses_insecure_endpoints() {
        let config = SmartConfiguration::from_json(
            br#"{
            "authorization_endpoint": "http://ehr.example.com/authorize",
            "token_endpoint": "https://ehr.example.com/token",
            "code_challenge_methods_supported": ["S256"]
        }"#,
        )
        .unwrap();
        let base = FhirBase::parse("https://ehr.example.com/fhir").unwrap();
        let err = Provider::from_smart_configuration(base, &config).unwrap_err();
        assert_eq!(err.code(), "invalid_url");
    }
}
