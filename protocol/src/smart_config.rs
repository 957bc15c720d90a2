//! The SMART App Launch discovery document, `.well-known/smart-configuration`
//! ([SMART App Launch 2.2 §conformance](https://hl7.org/fhir/smart-app-launch/STU2.2/conformance.html)).

use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A `.well-known/smart-configuration` document, as published by a SMART server.
///
/// Unknown members are ignored; missing lists read as empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SmartConfiguration {
    /// `issuer` (required by SMART 2.2; Blue Button omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `revocation_endpoint` (RFC 7009), when offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// `introspection_endpoint` (RFC 7662), when offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// `userinfo_endpoint`, when offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `capabilities`, e.g. `authorize-post`, `permission-v2`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `code_challenge_methods_supported`: must contain `S256`.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// `grant_types_supported`.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): callbacks carry `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl SmartConfiguration {
    /// Parses a discovery document and checks that it is usable ([`Self::validate`]).
    #[cfg(feature = "json")]
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let config: Self =
            serde_json::from_slice(body).map_err(|e| Error::InvalidJson(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses a server this toolkit cannot use safely: one that does not list `S256` in
    /// `code_challenge_methods_supported` (SMART 2.2 requires it; without it PKCE may be
    /// silently ignored), or one without `code` in `response_types_supported` when it lists any.
    pub fn validate(&self) -> Result<()> {
        if !self
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            return Err(Error::InvalidSmartConfiguration(
                "code_challenge_methods_supported lacks S256",
            ));
        }
        if !self.response_types_supported.is_empty()
            && !self.response_types_supported.iter().any(|t| t == "code")
        {
            return Err(Error::InvalidSmartConfiguration(
                "response_types_supported lacks code",
            ));
        }
        Ok(())
    }

    /// Whether the server accepts the authorize request as a form POST (`authorize-post`).
    pub fn supports_authorize_post(&self) -> bool {
        self.capabilities.iter().any(|c| c == "authorize-post")
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    const GENERIC: &str = r#"{
        "issuer": "https://ehr.example.com",
        "authorization_endpoint": "https://ehr.example.com/auth/authorize",
        "token_endpoint": "https://ehr.example.com/auth/token",
        "revocation_endpoint": "https://ehr.example.com/auth/revoke",
        "scopes_supported": ["openid", "patient/*.rs", "offline_access"],
        "response_types_supported": ["code"],
        "capabilities": ["launch-standalone", "authorize-post", "permission-v2"],
        "code_challenge_methods_supported": ["S256"],
        "extra_member": {"ignored": true}
    }"#;

    #[test]
    fn parses_and_records_authorize_post() {
        let c = SmartConfiguration::from_json(GENERIC.as_bytes()).unwrap();
        assert!(c.supports_authorize_post());
        assert_eq!(c.issuer.as_deref(), Some("https://ehr.example.com"));
        assert_eq!(c.scopes_supported.len(), 3);
    }

    #[test]
    fn refuses_a_server_without_s256() {
        for methods in [r#"["plain"]"#, "[]"] {
            let body = GENERIC.replace(r#"["S256"]"#, methods);
            let err = SmartConfiguration::from_json(body.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidSmartConfiguration("code_challenge_methods_supported lacks S256")
            );
        }
        let missing = GENERIC.replace(r#""code_challenge_methods_supported": ["S256"],"#, "");
        assert!(SmartConfiguration::from_json(missing.as_bytes()).is_err());
    }

    #[test]
    fn refuses_garbage() {
        let err = SmartConfiguration::from_json(b"<html>").unwrap_err();
        assert_eq!(err.code(), "invalid_json");
        let no_token = r#"{"authorization_endpoint":"https://x/a","code_challenge_methods_supported":["S256"]}"#;
        assert!(SmartConfiguration::from_json(no_token.as_bytes()).is_err());
    }
}
