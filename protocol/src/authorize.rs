//! The authorization request (RFC 6749 §4.1.1 with PKCE, SMART App Launch 2.2 standalone
//! launch), as a GET URL or a form POST, and the one validation both halves run on it before
//! anyone navigates.

use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result, msg},
    ids::{ClientId, FhirBase, RedirectUri},
    pkce::{PkceChallenge, S256, check_method},
    provider::Provider,
    scope::Scopes,
    state::State,
    url::{SplitUrl, check_unique, cut, encode_pairs, unique_pairs},
};

/// The parameters of an authorize request, in the order they are written.
const PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
];

/// An authorization request built from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    endpoint: String,
    params: Vec<(&'static str, String)>,
}

impl AuthorizeRequest {
    /// Builds the request: `response_type=code`, `client_id`, `redirect_uri`, `scope`,
    /// `state`, `aud` (the FHIR base, exactly), `code_challenge`, `code_challenge_method=S256`.
    /// Refuses scopes the provider does not list.
    pub fn new(
        provider: &Provider,
        client_id: ClientId,
        redirect_uri: RedirectUri,
        scopes: Scopes,
        state: &State,
        challenge: &PkceChallenge,
    ) -> Result<Self> {
        provider.check_scopes(&scopes)?;
        let values = [
            "code".to_owned(),
            client_id.as_str().to_owned(),
            redirect_uri.as_str().to_owned(),
            scopes.to_string(),
            state.as_str().to_owned(),
            provider.fhir_base().as_str().to_owned(),
            challenge.as_str().to_owned(),
            S256.to_owned(),
        ];
        Ok(Self {
            endpoint: provider.authorization_endpoint().to_owned(),
            params: PARAMS.into_iter().zip(values).collect(),
        })
    }

    /// The authorization endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The parameters, as form fields for a POST.
    pub fn form_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The GET URL: the endpoint with the parameters form-encoded in its query.
    pub fn url(&self) -> String {
        let separator = if self.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}{}",
            self.endpoint,
            encode_pairs(self.form_fields())
        )
    }

    /// The request in the shape the broker returns and the SDK follows.
    pub fn to_redirect(&self, post: bool) -> AuthorizeRedirect {
        if post {
            AuthorizeRedirect::Post {
                action: self.endpoint.clone(),
                fields: self
                    .form_fields()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }
        } else {
            AuthorizeRedirect::Get { url: self.url() }
        }
    }
}

/// Where to send the browser: a GET navigation or an auto-submitted form POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum AuthorizeRedirect {
    /// Navigate to `url`.
    Get {
        /// The full authorize URL.
        url: String,
    },
    /// Submit a form with `fields` to `action`.
    Post {
        /// The authorization endpoint.
        action: String,
        /// The form fields, in order.
        fields: Vec<(String, String)>,
    },
}

/// What an authorize request must say, from configuration and from the values the caller
/// made itself. The SDK fills this from `GET /v1/config` and its own `state` and challenge;
/// the broker from its configuration.
#[derive(Debug)]
pub struct AuthorizeExpectations<'a> {
    /// The authorization endpoint, exactly (Blue Button's has a trailing slash).
    pub authorization_endpoint: &'a str,
    /// The registered client id.
    pub client_id: &'a ClientId,
    /// The registered redirect URI, exactly.
    pub redirect_uri: &'a RedirectUri,
    /// The FHIR base URL: `aud` must equal it exactly.
    pub aud: &'a FhirBase,
    /// The scopes the provider lists, if it lists any.
    pub scopes_supported: Option<&'a Scopes>,
    /// The `state` the caller made.
    pub state: &'a State,
    /// The challenge the caller made.
    pub challenge: &'a PkceChallenge,
    /// Whether the provider accepts a form POST.
    pub allow_post: bool,
}

impl AuthorizeRedirect {
    /// Checks the request against `expect` — the one validation the broker and the SDK both
    /// run before anyone navigates, because Blue Button shows authorize-time errors to the
    /// *user*, never to the app. Every parameter must be present exactly once and nothing
    /// else may be: `response_type=code`, the configured `client_id` and `redirect_uri`,
    /// scopes within what the provider lists, our `state` (16+ characters), `aud` equal to the
    /// FHIR base, our challenge, and `code_challenge_method=S256`. A GET URL must hold no `#`,
    /// space or control character, which the browser would drop or keep to itself.
    pub fn validate(&self, expect: &AuthorizeExpectations<'_>) -> Result<()> {
        let owned;
        let (endpoint, pairs) = match self {
            AuthorizeRedirect::Get { url } => {
                // What is checked must be what the browser sends: it keeps a fragment to
                // itself and drops tabs and line breaks, so `#` (which would hide every
                // parameter after it) and raw spaces or controls are refused. A request built
                // correctly has none of them: its values are percent-encoded.
                if url.bytes().any(|b| b == b'#' || b <= b' ' || b == 0x7f) {
                    return Err(Error::InvalidUrl {
                        what: msg!("authorize URL"),
                        reason: msg!("must not hold `#`, spaces or control characters"),
                    });
                }
                let (endpoint, query) = cut(url, b'?');
                owned = unique_pairs(query.unwrap_or_default())?;
                (endpoint, &owned)
            }
            AuthorizeRedirect::Post { action, fields } => {
                if !expect.allow_post {
                    return Err(Error::ParameterMismatch(msg!("method")));
                }
                check_unique(fields)?;
                (action.as_str(), fields)
            }
        };
        check_endpoint(endpoint, expect.authorization_endpoint)?;
        // Each parameter's value, in `PARAMS` order; names outside `PARAMS` are unexpected.
        let mut values = [None; PARAMS.len()];
        let mut unexpected = false;
        for (name, value) in pairs {
            let mut known = false;
            for (param, slot) in PARAMS.iter().zip(&mut values) {
                if name == param {
                    *slot = Some(value.as_str());
                    known = true;
                }
            }
            unexpected |= !known;
        }
        // A missing name is reported as missing; otherwise an unknown one is present.
        for (param, value) in PARAMS.iter().zip(values) {
            if value.is_none() {
                return Err(Error::MissingParameter(param));
            }
        }
        let [
            Some(response_type),
            Some(client_id),
            Some(redirect_uri),
            Some(scope),
            Some(state),
            Some(aud),
            Some(challenge),
            Some(method),
        ] = values
        else {
            return Err(Error::ParameterMismatch(msg!("unexpected parameter")));
        };
        if unexpected {
            return Err(Error::ParameterMismatch(msg!("unexpected parameter")));
        }
        if response_type != "code" {
            return Err(Error::ParameterMismatch(msg!("response_type")));
        }
        if client_id != expect.client_id.as_str() {
            return Err(Error::ParameterMismatch(msg!("client_id")));
        }
        RedirectUri::parse(redirect_uri)?;
        if redirect_uri != expect.redirect_uri.as_str() {
            return Err(Error::ParameterMismatch(msg!("redirect_uri")));
        }
        let scopes = Scopes::parse(scope)?;
        if let Some(supported) = expect.scopes_supported {
            scopes.check_supported(supported)?;
        }
        State::parse(state)?;
        if !expect.state.matches_str(state) {
            return Err(Error::StateMismatch);
        }
        if aud != expect.aud.as_str() {
            return Err(Error::AudienceMismatch);
        }
        check_method(method)?;
        PkceChallenge::parse(challenge)?;
        if challenge != expect.challenge.as_str() {
            return Err(Error::ParameterMismatch(msg!("code_challenge")));
        }
        Ok(())
    }
}

fn check_endpoint(actual: &str, expected: &str) -> Result<()> {
    let url = SplitUrl::parse(actual).ok_or(Error::InvalidUrl {
        what: msg!("authorization_endpoint"),
        reason: msg!("not an absolute http(s) URL"),
    })?;
    if !url.https && !url.is_loopback() {
        return Err(Error::InvalidUrl {
            what: msg!("authorization_endpoint"),
            reason: msg!("must be https unless the host is loopback"),
        });
    }
    if actual != expected {
        return Err(Error::ParameterMismatch(msg!("authorization_endpoint")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkce::PkceVerifier;

    struct Fixture {
        provider: Provider,
        client_id: ClientId,
        redirect_uri: RedirectUri,
        state: State,
        challenge: PkceChallenge,
    }

    fn fixture() -> Fixture {
        Fixture {
            provider: Provider::blue_button_sandbox(),
            client_id: ClientId::new("client-123").unwrap(),
            redirect_uri: RedirectUri::parse("https://app.example.com/callback?from=cm&x=1")
                .unwrap(),
            state: State::from_random_bytes([3; 32]),
            challenge: PkceVerifier::from_random_bytes([4; 32]).challenge(),
        }
    }

    fn request(f: &Fixture) -> AuthorizeRequest {
        AuthorizeRequest::new(
            &f.provider,
            f.client_id.clone(),
            f.redirect_uri.clone(),
            f.provider.default_scopes().clone(),
            &f.state,
            &f.challenge,
        )
        .unwrap()
    }

    fn expect(f: &Fixture) -> AuthorizeExpectations<'_> {
        AuthorizeExpectations {
            authorization_endpoint: f.provider.authorization_endpoint(),
            client_id: &f.client_id,
            redirect_uri: &f.redirect_uri,
            aud: f.provider.fhir_base(),
            scopes_supported: f.provider.scopes_supported(),
            state: &f.state,
            challenge: &f.challenge,
            allow_post: f.provider.supports_authorize_post(),
        }
    }

    #[test]
    fn get_url_is_encoded_in_order() {
        let f = fixture();
        let url = request(&f).url();
        let expected = format!(
            "https://sandbox.bluebutton.cms.gov/v2/o/authorize/?response_type=code&client_id=client-123\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback%3Ffrom%3Dcm%26x%3D1\
             &scope=openid+profile+launch%2Fpatient+patient%2FPatient.rs+patient%2FCoverage.rs+patient%2FExplanationOfBenefit.rs\
             &state={}&aud=https%3A%2F%2Fsandbox.bluebutton.cms.gov%2Fv2%2Ffhir%2F\
             &code_challenge={}&code_challenge_method=S256",
            f.state.as_str(),
            f.challenge.as_str()
        );
        assert_eq!(url, expected);
    }

    #[test]
    fn built_requests_validate_both_ways() {
        let f = fixture();
        let r = request(&f);
        r.to_redirect(false).validate(&expect(&f)).unwrap();
        r.to_redirect(true).validate(&expect(&f)).unwrap();
        match r.to_redirect(true) {
            AuthorizeRedirect::Post { action, fields } => {
                assert_eq!(action, "https://sandbox.bluebutton.cms.gov/v2/o/authorize/");
                assert_eq!(fields.len(), 8);
                assert_eq!(fields[0], ("response_type".into(), "code".into()));
                assert_eq!(fields[7], ("code_challenge_method".into(), "S256".into()));
            }
            other => panic!("expected a POST, got {other:?}"),
        }
    }

    #[test]
    fn unsupported_scopes_are_refused_before_building() {
        let f = fixture();
        let err = AuthorizeRequest::new(
            &f.provider,
            f.client_id.clone(),
            f.redirect_uri.clone(),
            Scopes::parse("openid offline_access").unwrap(),
            &f.state,
            &f.challenge,
        )
        .unwrap_err();
        assert_eq!(err, Error::UnsupportedScope("offline_access".into()));
    }

    /// Rewrites one parameter of a valid GET request and returns the validation result.
    fn tampered(name: &str, value: Option<&str>) -> Result<()> {
        let f = fixture();
        let url = request(&f).url();
        let (endpoint, query) = url.split_once('?').unwrap();
        let mut pairs: Vec<(String, String)> = unique_pairs(query).unwrap();
        match value {
            Some(v) => pairs
                .iter_mut()
                .filter(|(k, _)| k == name)
                .for_each(|(_, old)| *old = v.to_owned()),
            None => pairs.retain(|(k, _)| k != name),
        }
        let query = encode_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        AuthorizeRedirect::Get {
            url: format!("{endpoint}?{query}"),
        }
        .validate(&expect(&f))
    }

    #[test]
    fn every_parameter_is_checked() {
        assert_eq!(
            tampered("response_type", Some("token")),
            Err(Error::ParameterMismatch("response_type"))
        );
        assert_eq!(
            tampered("client_id", Some("other")),
            Err(Error::ParameterMismatch("client_id"))
        );
        assert_eq!(
            tampered("redirect_uri", Some("https://evil.example.com/callback")),
            Err(Error::ParameterMismatch("redirect_uri"))
        );
        assert_eq!(
            tampered("redirect_uri", Some("http://app.example.com/callback"))
                .unwrap_err()
                .code(),
            "invalid_url"
        );
        assert_eq!(
            tampered("scope", Some("openid offline_access")),
            Err(Error::UnsupportedScope("offline_access".into()))
        );
        assert_eq!(
            tampered("scope", Some("")).unwrap_err().code(),
            "invalid_scope"
        );
        assert_eq!(tampered("state", Some("short")), Err(Error::InvalidState));
        assert_eq!(
            tampered("state", Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
            Err(Error::StateMismatch)
        );
        // `aud` must match exactly: without the trailing slash is a different audience.
        assert_eq!(
            tampered("aud", Some("https://sandbox.bluebutton.cms.gov/v2/fhir")),
            Err(Error::AudienceMismatch)
        );
        assert_eq!(
            tampered("code_challenge_method", Some("plain")),
            Err(Error::UnsupportedChallengeMethod)
        );
        let other = PkceVerifier::from_random_bytes([5; 32]).challenge();
        assert_eq!(
            tampered("code_challenge", Some(other.as_str())),
            Err(Error::ParameterMismatch("code_challenge"))
        );
        for name in PARAMS {
            assert_eq!(
                tampered(name, None),
                Err(Error::MissingParameter(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn duplicates_extras_and_endpoints_are_refused() {
        let f = fixture();
        let url = request(&f).url();
        let dup = format!("{url}&state={}", f.state.as_str());
        assert_eq!(
            AuthorizeRedirect::Get { url: dup }.validate(&expect(&f)),
            Err(Error::DuplicateParameter("state".into()))
        );
        let extra = format!("{url}&prompt=none");
        assert_eq!(
            AuthorizeRedirect::Get { url: extra }.validate(&expect(&f)),
            Err(Error::ParameterMismatch("unexpected parameter"))
        );
        // The unslashed endpoint Blue Button advertises answers 301: refuse it.
        let unslashed = url.replacen("/v2/o/authorize/?", "/v2/o/authorize?", 1);
        assert_eq!(
            AuthorizeRedirect::Get { url: unslashed }.validate(&expect(&f)),
            Err(Error::ParameterMismatch("authorization_endpoint"))
        );
        // A `#` would keep every parameter after it in the browser; tabs and line breaks are
        // dropped by it: what is checked would not be what is sent.
        let (head, tail) = url.split_once("&state=").unwrap();
        for hiding in [
            format!("{head}#&state={tail}"),
            format!("{head}&st\tate={tail}"),
            format!("{url}\n"),
            format!("{head}&state= {tail}"),
        ] {
            assert_eq!(
                AuthorizeRedirect::Get {
                    url: hiding.clone()
                }
                .validate(&expect(&f))
                .unwrap_err()
                .code(),
                "invalid_url",
                "{hiding}"
            );
        }
        let http = url.replacen("https://", "http://", 1);
        assert_eq!(
            AuthorizeRedirect::Get { url: http }
                .validate(&expect(&f))
                .unwrap_err()
                .code(),
            "invalid_url"
        );
    }

    #[test]
    fn post_only_where_supported() {
        let f = fixture();
        let post = request(&f).to_redirect(true);
        let mut e = expect(&f);
        e.allow_post = false;
        assert_eq!(post.validate(&e), Err(Error::ParameterMismatch("method")));
        if let AuthorizeRedirect::Post { action, mut fields } = post {
            fields.push(("state".into(), f.state.as_str().into()));
            assert_eq!(
                AuthorizeRedirect::Post { action, fields }.validate(&expect(&f)),
                Err(Error::DuplicateParameter("state".into()))
            );
        }
    }

    #[test]
    fn redirect_serializes_for_the_contract() {
        let r = AuthorizeRedirect::Get {
            url: "https://x/".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"method":"get","url":"https://x/"}"#
        );
        let p: AuthorizeRedirect =
            serde_json::from_str(r#"{"method":"post","action":"https://x/","fields":[["a","b"]]}"#)
                .unwrap();
        assert_eq!(
            p,
            AuthorizeRedirect::Post {
                action: "https://x/".into(),
                fields: vec![("a".into(), "b".into())]
            }
        );
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod oracle {
    #![allow(clippy::all)]
    use proptest::prelude::*;

    use super::*;
    use crate::pkce::PkceVerifier;

    /// `validate` as it was before it read the parameters into an array (with the later rule
    /// on what a GET URL may hold).
    fn old_validate(this: &AuthorizeRedirect, expect: &AuthorizeExpectations<'_>) -> Result<()> {
        let (endpoint, pairs) = match this {
            AuthorizeRedirect::Get { url } => {
                if url.contains(['#', '\x7f']) || url.chars().any(|c| c <= ' ') {
                    return Err(Error::InvalidUrl {
                        what: "authorize URL",
                        reason: "must not hold `#`, spaces or control characters",
                    });
                }
                let (endpoint, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
                (endpoint, unique_pairs(query)?)
            }
            AuthorizeRedirect::Post { action, fields } => {
                if !expect.allow_post {
                    return Err(Error::ParameterMismatch("method"));
                }
                let mut seen = std::collections::BTreeSet::new();
                if let Some((dup, _)) = fields.iter().find(|(k, _)| !seen.insert(k.as_str())) {
                    return Err(Error::DuplicateParameter(dup.clone()));
                }
                (action.as_str(), fields.clone())
            }
        };
        check_endpoint(endpoint, expect.authorization_endpoint)?;
        let get = |name: &'static str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or(Error::MissingParameter(name))
        };
        if pairs.len() != PARAMS.len() || pairs.iter().any(|(k, _)| !PARAMS.contains(&k.as_str())) {
            // A missing name is reported as missing; otherwise an unknown one is present.
            for name in PARAMS {
                get(name)?;
            }
            return Err(Error::ParameterMismatch("unexpected parameter"));
        }
        if get("response_type")? != "code" {
            return Err(Error::ParameterMismatch("response_type"));
        }
        if get("client_id")? != expect.client_id.as_str() {
            return Err(Error::ParameterMismatch("client_id"));
        }
        let redirect_uri = RedirectUri::parse(get("redirect_uri")?)?;
        if &redirect_uri != expect.redirect_uri {
            return Err(Error::ParameterMismatch("redirect_uri"));
        }
        let scopes = Scopes::parse(get("scope")?)?;
        if let Some(supported) = expect.scopes_supported {
            scopes.check_supported(supported)?;
        }
        let state = State::parse(get("state")?)?;
        if !state.matches(expect.state) {
            return Err(Error::StateMismatch);
        }
        if get("aud")? != expect.aud.as_str() {
            return Err(Error::AudienceMismatch);
        }
        check_method(get("code_challenge_method")?)?;
        let challenge = PkceChallenge::parse(get("code_challenge")?)?;
        if &challenge != expect.challenge {
            return Err(Error::ParameterMismatch("code_challenge"));
        }
        Ok(())
    }

    fn fixture() -> (Provider, ClientId, RedirectUri, State, PkceChallenge) {
        (
            Provider::blue_button_sandbox(),
            ClientId::new("client-123").unwrap(),
            RedirectUri::parse("http://localhost:8080/callback").unwrap(),
            State::from_random_bytes([3; 32]),
            PkceVerifier::from_random_bytes([4; 32]).challenge(),
        )
    }

    /// Replacement values: valid ones, near misses and garbage.
    const VALUES: &[&str] = &[
        "code",
        "token",
        "client-123",
        "client-1234",
        "",
        "http://localhost:8080/callback",
        "http://localhost:8080/callback?x=1",
        "https://evil.example/cb",
        "javascript:x",
        "openid",
        "openid profile",
        "offline_access",
        "patient/Patient.rs patient/Patient.sr",
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM",
        "short",
        "https://sandbox.bluebutton.cms.gov/v2/fhir/",
        "https://sandbox.bluebutton.cms.gov/v2/fhir",
        "S256",
        "plain",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "x y",
    ];

    proptest! {
        #[test]
        fn validate_is_unchanged(
            post in any::<bool>(),
            allow_post in any::<bool>(),
            supported in any::<bool>(),
            edits in proptest::collection::vec((0usize..10, 0usize..4, 0usize..VALUES.len()), 0..4),
            endpoint in prop_oneof![
                Just("https://sandbox.bluebutton.cms.gov/v2/o/authorize/"),
                Just("https://sandbox.bluebutton.cms.gov/v2/o/authorize"),
                Just("http://sandbox.bluebutton.cms.gov/v2/o/authorize/"),
                Just("http://127.0.0.1/v2/o/authorize/"),
                Just("not a url"),
            ],
        ) {
            let (provider, client_id, redirect_uri, state, challenge) = fixture();
            let request = AuthorizeRequest::new(
                &provider, client_id.clone(), redirect_uri.clone(),
                provider.default_scopes().clone(), &state, &challenge,
            ).unwrap();
            let mut fields: Vec<(String, String)> =
                request.form_fields().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            for (at, how, value) in edits {
                let name = PARAMS.get(at).copied().unwrap_or("prompt").to_owned();
                let value = VALUES[value].to_owned();
                match how {
                    0 => fields.retain(|(k, _)| *k != name),
                    1 => fields.push((name, value)),
                    _ => match fields.iter_mut().find(|(k, _)| *k == name) {
                        Some(field) => field.1 = value,
                        None => fields.push((name, value)),
                    },
                }
            }
            let redirect = if post {
                AuthorizeRedirect::Post { action: endpoint.to_owned(), fields }
            } else {
                let query = encode_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                AuthorizeRedirect::Get { url: format!("{endpoint}?{query}") }
            };
            let expect = AuthorizeExpectations {
                authorization_endpoint: provider.authorization_endpoint(),
                client_id: &client_id,
                redirect_uri: &redirect_uri,
                aud: provider.fhir_base(),
                scopes_supported: if supported { provider.scopes_supported() } else { None },
                state: &state,
                challenge: &challenge,
                allow_post,
            };
            prop_assert_eq!(redirect.validate(&expect), old_validate(&redirect, &expect));
        }
    }
}
