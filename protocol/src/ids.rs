//! Newtypes for the protocol's nouns: each constructor validates, each accessor is `as_str`.

use crate::prelude::*;

use core::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::{
    error::{Error, Result, msg},
    newtype::string_newtype_serde,
    url::SplitUrl,
};

/// An OAuth `client_id` (RFC 6749 §2.2): 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Validates a client id.
    pub fn new(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty() && raw.len() <= 255 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::MissingParameter("client_id"))
        }
    }

    /// The client id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype_serde!(ClientId, ClientId::new);

/// A confidential client's secret. Never `Clone`, never printed.
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// Wraps a client secret.
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The secret, for the one place that sends it (HTTP Basic client authentication).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// A FHIR patient id (FHIR R4 `id`: 1–64 of `[A-Za-z0-9-.]`). Blue Button's synthetic
/// beneficiaries have negative ids such as `-20140000008325`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatientId(String);

impl PatientId {
    /// Validates a FHIR resource id.
    pub fn new(raw: &str) -> Result<Self> {
        if is_fhir_id(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::MissingParameter("patient"))
        }
    }

    /// The id as FHIR writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype_serde!(PatientId, PatientId::new);

/// Whether `raw` is a valid FHIR R4 resource id: 1–64 characters of `[A-Za-z0-9-.]`.
pub(crate) fn is_fhir_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// An OAuth redirect URI: absolute, no fragment, and either `https` or `http` on a loopback
/// host (`localhost`, `127.0.0.1`, `[::1]`) — RFC 8252 §7.3 and SMART's rule for web apps.
///
/// Compared as an exact string: the broker never derives one from request headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Validates a redirect URI.
    pub fn parse(raw: &str) -> Result<Self> {
        let err = |reason| Error::InvalidUrl {
            what: msg!("redirect_uri"),
            reason,
        };
        let url = SplitUrl::parse(raw).ok_or_else(|| err(msg!("not an absolute http(s) URL")))?;
        if url.fragment.is_some() {
            return Err(err(msg!("must not have a fragment")));
        }
        if url.userinfo.is_some() {
            return Err(err(msg!("must not carry credentials")));
        }
        if !url.https && !url.is_loopback() {
            return Err(err(msg!("must be https unless the host is loopback")));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URI exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The origin (`scheme://host[:port]`) of this URI.
    pub fn origin(&self) -> String {
        SplitUrl::parse(&self.0)
            .map(|u| u.origin())
            .unwrap_or_default()
    }
}
string_newtype_serde!(RedirectUri, RedirectUri::parse);

/// A FHIR server's base URL, which is also the SMART `aud` value. Kept exactly as
/// configured (the authorization server compares `aud` as a string), without query or
/// fragment, `https` or loopback `http`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FhirBase(String);

impl FhirBase {
    /// Validates a FHIR base URL.
    pub fn parse(raw: &str) -> Result<Self> {
        let err = |reason| Error::InvalidUrl {
            what: msg!("FHIR base URL"),
            reason,
        };
        let url = SplitUrl::parse(raw).ok_or_else(|| err(msg!("not an absolute http(s) URL")))?;
        if url.query.is_some() || url.fragment.is_some() || url.userinfo.is_some() {
            return Err(err(msg!("must not have a query, fragment or credentials")));
        }
        if !url.https && !url.is_loopback() {
            return Err(err(msg!("must be https unless the host is loopback")));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The base URL exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{base}/{path}` with exactly one slash between them.
    pub fn join(&self, path: &str) -> String {
        let base = self.0.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        format!("{base}/{path}")
    }
}
string_newtype_serde!(FhirBase, FhirBase::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_accepts_https_and_loopback_http_only() {
        assert!(RedirectUri::parse("https://app.example.com/callback").is_ok());
        assert!(RedirectUri::parse("http://localhost:5173/callback").is_ok());
        assert!(RedirectUri::parse("http://127.0.0.1:8080/cb?x=1").is_ok());
        assert!(RedirectUri::parse("http://[::1]:8080/cb").is_ok());
        for bad in [
            "http://app.example.com/callback",
            "http://localhost.evil.com/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "/callback",
            "",
        ] {
            let err = RedirectUri::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_url", "{bad}");
        }
    }

    #[test]
    fn fhir_base_join_has_one_slash() {
        let base = FhirBase::parse("https://sandbox.bluebutton.cms.gov/v2/fhir/").unwrap();
        assert_eq!(
            base.join("/Patient"),
            "https://sandbox.bluebutton.cms.gov/v2/fhir/Patient"
        );
        assert!(FhirBase::parse("http://fhir.example.com/r4").is_err());
        assert!(FhirBase::parse("https://fhir.example.com/r4?x=1").is_err());
    }

    #[test]
    fn patient_ids_follow_fhir_id_rules() {
        assert!(PatientId::new("-20140000008325").is_ok());
        assert!(PatientId::new("").is_err());
        assert!(PatientId::new("../etc").is_err());
        assert!(PatientId::new(&"a".repeat(65)).is_err());
    }

    #[test]
    fn client_secret_debug_is_redacted() {
        let secret = ClientSecret::new(SecretString::from("canary-client-secret-123"));
        let shown = format!("{secret:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(secret.expose_secret(), "canary-client-secret-123");
    }
}
