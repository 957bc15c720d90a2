//! The rules of a sign-in in the browser, as pure functions of their input (no browser in
//! here: `browser.rs` does the I/O around them, and the native tests run them as they are):
//! [`start`] makes `state` and the verifier, [`finish`] validates the broker's authorize
//! request and writes the flow record, [`callback_state`] and [`complete`] read a callback
//! against that record.
//!
//! The record, kept in sessionStorage under its `state`, is one line:
//! `1|created|expires|state|provider|verifier|returnTo` — every field but the last is
//! base64url, `[a-z0-9-]` or digits, and `returnTo` comes last so it may hold `|`. Everything
//! read back is validated again. (The JS layer reads `expires` too, to sweep stale records.)

use crate::prelude::*;

use connect_medicare_protocol::{
    AuthorizeExpectations, AuthorizeRedirect, Callback, ClientId, Error as RuleError, FhirBase,
    OAuthErrorCode, PkceVerifier, RedirectUri, Scopes, State,
    contract::ProviderId,
    text::{cut, parse_uint},
};

use crate::out::{Refusal, code};

/// How long a flow lives when the broker does not say (seconds).
const DEFAULT_FLOW_TTL_S: u64 = 600;
/// A flow lives at most this long, whatever the broker says (milliseconds).
const MAX_TTL_MS: u64 = 60 * 60 * 1000;
/// A return path is at most this long.
const MAX_RETURN_TO: usize = 2048;
/// The record format.
const VERSION: &str = "1";

/// Whether `path` is a same-origin relative path: `/` then anything but a second `/` or a
/// `\` (which browsers read as `//`, another host), no control characters or spaces.
pub fn is_return_path(path: &str) -> bool {
    let mut bytes = path.bytes();
    bytes.next() == Some(b'/')
        && !matches!(bytes.next(), Some(b'/' | b'\\'))
        && path.len() <= MAX_RETURN_TO
        && !path
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_control() || b == b' ')
}

fn bad_return_to() -> Refusal {
    Refusal::new(
        code::INVALID_CONFIG,
        "returnTo must be a same-origin path such as /claims",
    )
}

/// Starts a connect from 64 random bytes (`getrandom`: the browser's
/// `crypto.getRandomValues`): `state` (the first 32) and the PKCE verifier (the last 32).
/// Checks `return_to` (a same-origin path).
pub fn start(random: &[u8; 64], return_to: Option<&str>) -> Result<(State, PkceVerifier), Refusal> {
    if return_to.is_some_and(|p| !is_return_path(p)) {
        return Err(bad_return_to());
    }
    let mut state = [0; 32];
    let mut verifier = [0; 32];
    state.copy_from_slice(&random[..32]);
    verifier.copy_from_slice(&random[32..]);
    Ok((
        State::from_random_bytes(state),
        PkceVerifier::from_random_bytes(verifier),
    ))
}

/// A provider's entry in `/v1/config`, as far as an authorize request is checked against it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderEntry<'a> {
    /// `id`.
    pub id: &'a str,
    /// `authorization_endpoint`, exactly.
    pub authorization_endpoint: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri`, exactly.
    pub redirect_uri: &'a str,
    /// `aud`: the FHIR base.
    pub aud: &'a str,
    /// `scopes_supported` joined by spaces; `None` when the provider lists none.
    pub scopes_supported: Option<&'a str>,
    /// `authorize_post`: whether the provider accepts a form POST.
    pub authorize_post: bool,
}

/// A connect between [`start`] and [`finish`].
#[derive(Debug, Clone, Copy)]
pub struct Started<'a> {
    /// The `state` [`start`] made.
    pub state: &'a State,
    /// The verifier [`start`] made.
    pub verifier: &'a PkceVerifier,
    /// Whether the app asked for a form POST.
    pub post: bool,
    /// Where the app wants to go afterwards (checked again).
    pub return_to: Option<&'a str>,
}

/// The broker's answer to `POST /v1/flows`.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// `authorize.method`: `"get"` or `"post"`.
    pub method: &'a str,
    /// `authorize.url` (GET) or `authorize.action` (POST).
    pub target: &'a str,
    /// `authorize.fields`, the form's name–value pairs in order (POST).
    pub fields: Vec<(String, String)>,
    /// `expires_in`: how long the broker keeps the flow (seconds); 0 when it does not say.
    pub expires_in: u64,
}

/// Finishes a connect with the broker's answer: validates the authorize request against the
/// provider's configuration and this flow's `state` and challenge. Answers the request to
/// follow — built from exactly the values validated — and the record to keep under `state`
/// (created `now`, in ms since the epoch; living `expires_in` seconds — 600 when 0, at most an
/// hour).
pub fn finish(
    provider: &ProviderEntry<'_>,
    started: &Started<'_>,
    answer: Answer<'_>,
    now: u64,
) -> Result<(AuthorizeRedirect, String), Refusal> {
    let (Ok(id), Ok(client_id), Ok(redirect_uri), Ok(aud)) = (
        ProviderId::new(provider.id),
        ClientId::new(provider.client_id),
        RedirectUri::parse(provider.redirect_uri),
        FhirBase::parse(provider.aud),
    ) else {
        return Err(unusable_provider());
    };
    let scopes_supported = match provider.scopes_supported.map(Scopes::parse) {
        None => None,
        Some(Ok(scopes)) => Some(scopes),
        Some(Err(_)) => return Err(unusable_provider()),
    };
    let (state, verifier) = (started.state, started.verifier);
    if started.return_to.is_some_and(|p| !is_return_path(p)) {
        return Err(bad_return_to());
    }
    let redirect = match answer.method {
        "get" => AuthorizeRedirect::Get {
            url: answer.target.to_owned(),
        },
        "post" => AuthorizeRedirect::Post {
            action: answer.target.to_owned(),
            fields: answer.fields,
        },
        _ => return Err(mismatch()),
    };
    if matches!(redirect, AuthorizeRedirect::Post { .. }) != started.post {
        return Err(mismatch());
    }
    let challenge = verifier.challenge();
    let expect = AuthorizeExpectations {
        authorization_endpoint: provider.authorization_endpoint,
        client_id: &client_id,
        redirect_uri: &redirect_uri,
        aud: &aud,
        scopes_supported: scopes_supported.as_ref(),
        state,
        challenge: &challenge,
        allow_post: provider.authorize_post,
    };
    if let Err(_rule) = redirect.validate(&expect) {
        return Err(mismatch());
    }
    let ttl_s = match answer.expires_in {
        0 => DEFAULT_FLOW_TTL_S,
        s => s,
    };
    // At most an hour: no product can overflow.
    let expires = now.saturating_add(ttl_s.min(MAX_TTL_MS / 1000) * 1000);
    let record = [
        VERSION,
        "|",
        &decimal(now),
        "|",
        &decimal(expires),
        "|",
        state.as_str(),
        "|",
        id.as_str(),
        "|",
        verifier.expose_secret(),
        "|",
        started.return_to.unwrap_or(""),
    ]
    .concat();
    Ok((redirect, record))
}

fn unusable_provider() -> Refusal {
    Refusal::new(
        code::INVALID_CONFIG,
        "The broker's /v1/config lists an unusable provider",
    )
}

/// `n` in decimal.
fn decimal(n: u64) -> String {
    let mut out = if n >= 10 {
        decimal(n / 10)
    } else {
        String::new()
    };
    out.push(char::from(b'0' + (n % 10) as u8));
    out
}

/// A flow record read back.
struct Record<'a> {
    expires: u64,
    state: State,
    provider: &'a str,
    verifier: PkceVerifier,
    return_to: &'a str,
}

impl<'a> Record<'a> {
    fn decode(raw: &'a str) -> Option<Self> {
        // Six `|`-terminated fields, then `returnTo` (which may hold `|`).
        let mut rest = raw;
        let mut field = || {
            let (head, tail) = cut(rest, b'|');
            rest = tail?;
            Some(head)
        };
        if field()? != VERSION {
            return None;
        }
        let created = parse_uint(field()?, u64::MAX)?;
        let expires = parse_uint(field()?, u64::MAX)?;
        if expires.saturating_sub(created) > MAX_TTL_MS {
            return None;
        }
        let state = State::parse(field()?).ok()?;
        let provider = field()?;
        ProviderId::new(provider).ok()?;
        let verifier = PkceVerifier::parse(field()?).ok()?;
        (rest.is_empty() || is_return_path(rest)).then_some(Self {
            expires,
            state,
            provider,
            verifier,
            return_to: rest,
        })
    }
}

/// The `state` a callback URL names (not yet trusted: it is the key of the flow record), or
/// `None` when `url` is not a callback at all.
pub fn callback_state(url: &str) -> Result<Option<String>, Refusal> {
    match Callback::parse(url) {
        Ok(callback) => Ok(callback.map(|c| c.state().as_str().to_owned())),
        Err(_rule) => Err(malformed()),
    }
}

/// The broker's authorize request broke a rule (which one is not said: see `out::Refusal`).
fn mismatch() -> Refusal {
    Refusal::new(
        code::INVALID_CONFIG,
        "The broker's authorize request does not match its configuration",
    )
}

fn malformed() -> Refusal {
    Refusal::new(code::INVALID_REQUEST, "The callback URL is malformed")
}

/// A callback read against its flow: what `POST /v1/flows/complete` needs, and where the app
/// goes afterwards.
#[derive(Debug)]
pub struct Completed {
    /// The flow's `state`.
    pub state: String,
    /// The authorization code.
    pub code: String,
    /// The flow's PKCE verifier.
    pub verifier: String,
    /// The provider's id.
    pub provider: String,
    /// The same-origin path the app asked to return to, if any.
    pub return_to: Option<String>,
    /// The callback's `iss` (RFC 9207), decoded, for the broker to check.
    pub iss: Option<String>,
}

/// Reads the callback `url` against `record`, the flow kept under its `state` (already
/// removed from storage: a record is read once), at `now`: `state` first — a readable,
/// unexpired record whose `state` matches — then the callback's `error`, then its code.
pub fn complete(url: &str, record: Option<&str>, now: u64) -> Result<Completed, Refusal> {
    let callback = match Callback::parse(url) {
        Ok(Some(callback)) => callback,
        Ok(None) => {
            return Err(Refusal::new(
                code::INVALID_REQUEST,
                "The URL is not a callback",
            ));
        }
        Err(_rule) => return Err(malformed()),
    };
    let Some(flow) = record.and_then(Record::decode).filter(|r| now < r.expires) else {
        return Err(Refusal::new(
            code::FLOW_NOT_FOUND,
            "No sign-in started in this tab matches this callback (expired or already used)",
        ));
    };
    let iss = callback.iss().map(str::to_owned);
    match callback.verify(&flow.state) {
        Ok(code) => Ok(Completed {
            state: flow.state.as_str().to_owned(),
            code: code.expose_secret().to_owned(),
            verifier: flow.verifier.expose_secret().to_owned(),
            provider: flow.provider.to_owned(),
            return_to: (!flow.return_to.is_empty()).then(|| flow.return_to.to_owned()),
            iss,
        }),
        // The error a callback carried, once its `state` matched. The server's
        // `error_description` is not shown: anyone can put text in a URL.
        Err(RuleError::Authorization(error)) if *error.code() == OAuthErrorCode::AccessDenied => {
            Err(Refusal::new(
                code::ACCESS_DENIED,
                "The user did not allow access to their data",
            ))
        }
        Err(RuleError::Authorization(error)) => Err(Refusal {
            code: code::UPSTREAM_ERROR,
            message: [
                "The authorization server refused the request (",
                error.code().as_str(),
                ")",
            ]
            .concat(),
        }),
        Err(_rule) => Err(Refusal::new(
            code::INVALID_REQUEST,
            "The callback does not match this sign-in",
        )),
    }
}
