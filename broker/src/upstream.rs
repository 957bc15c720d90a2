//! Talking to upstream servers: discovery, the token endpoint, revocation. One HTTP client,
//! built once, that never follows a redirect and never decompresses behind our back.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use connect_medicare_protocol::{
    ClientId, ClientSecret, OAuthError, Scopes, SmartConfiguration, TokenResponse,
};
use reqwest::{Client, Response, header};

use crate::{
    config::{ClientAuth, UpstreamTimeouts},
    metrics::{Metrics, UpstreamCall},
};

/// Token and discovery bodies larger than this are refused (they are a few hundred bytes).
const MAX_SMALL_BODY: usize = 64 * 1024;

/// Why an upstream call failed.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// The server answered with an OAuth (or Blue Button) error body.
    OAuth(OAuthError),
    /// No usable answer: connection refused, timeout, reset, a redirect, an oversized or
    /// unparseable body. The text never contains a token or a secret.
    Unavailable(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::OAuth(e) => write!(f, "{e}"),
            UpstreamError::Unavailable(why) => f.write_str(why),
        }
    }
}

/// The shared upstream client.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    client: Client,
    metrics: Arc<Metrics>,
}

/// Describes a transport failure without its URL's query or any header.
pub(crate) fn transport(error: &reqwest::Error) -> UpstreamError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response body failed"
    } else {
        "the request failed"
    };
    UpstreamError::Unavailable(what.to_owned())
}

impl Upstream {
    /// A client with the configured timeouts, no redirects, no automatic decompression.
    pub(crate) fn new(timeouts: UpstreamTimeouts, metrics: Arc<Metrics>) -> reqwest::Result<Self> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect())
            .read_timeout(timeouts.request())
            .pool_idle_timeout(Duration::from_secs(60))
            .no_gzip()
            .user_agent(concat!(
                "connect-medicare-broker/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self { client, metrics })
    }

    /// The client, for the FHIR proxy's streamed requests.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Records an upstream call's latency.
    pub(crate) fn observe(&self, call: UpstreamCall, started: Instant) {
        self.metrics.upstream(call, started.elapsed());
    }

    /// Fetches and checks a SMART discovery document.
    pub(crate) async fn discover(&self, url: &str) -> Result<SmartConfiguration, UpstreamError> {
        let started = Instant::now();
        let response = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let body = small_body(response).await?;
        self.observe(UpstreamCall::Discovery, started);
        if status != 200 {
            return Err(UpstreamError::Unavailable(format!(
                "discovery answered HTTP {status}"
            )));
        }
        SmartConfiguration::from_json(&body)
            .map_err(|e| UpstreamError::Unavailable(format!("unusable discovery document: {e}")))
    }

    /// A token request (authorization code or refresh), with the provider's client
    /// authentication. Never retried: a refresh token is single use.
    pub(crate) async fn token(
        &self,
        endpoint: &str,
        client: &Credentials<'_>,
        form: &[(&str, &str)],
        requested: &Scopes,
    ) -> Result<TokenResponse, UpstreamError> {
        let body = self
            .post_form(FormEndpoint::Token, endpoint, client, form)
            .await?;
        TokenResponse::from_json(&body, requested).map_err(|e| {
            UpstreamError::Unavailable(format!("unusable token response: {}", e.code()))
        })
    }

    /// A revocation: RFC 7009, or Blue Button's grant-deleting `/v2/o/revoke/` (same form).
    pub(crate) async fn revoke(
        &self,
        endpoint: &str,
        client: &Credentials<'_>,
        token: &str,
        hint: &str,
    ) -> Result<(), UpstreamError> {
        let form = [("token", token), ("token_type_hint", hint)];
        self.post_form(FormEndpoint::Revocation, endpoint, client, &form)
            .await
            .map(drop)
    }

    /// POSTs `form` to `url`, the provider's `endpoint`, with the client's authentication, and
    /// records the call's latency. A success gives the body; a redirect (never followed), or
    /// any other status with the OAuth error its body reads as, is an error.
    async fn post_form(
        &self,
        endpoint: FormEndpoint,
        url: &str,
        client: &Credentials<'_>,
        form: &[(&str, &str)],
    ) -> Result<Vec<u8>, UpstreamError> {
        let (call, name, ok): (_, _, &[u16]) = match endpoint {
            FormEndpoint::Token => (UpstreamCall::Token, "token", &[200]),
            FormEndpoint::Revocation => (UpstreamCall::Revoke, "revocation", &[200, 204]),
        };
        let started = Instant::now();
        let mut request = self.client.post(url);
        if let Some(authorization) = client.authorization() {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        request = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(client.encode(form));
        if let FormEndpoint::Token = endpoint {
            request = request.header(header::ACCEPT, "application/json");
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let body = small_body(response).await?;
        self.observe(call, started);
        if ok.contains(&status) {
            return Ok(body);
        }
        if (300..400).contains(&status) {
            return Err(UpstreamError::Unavailable(format!(
                "the {name} endpoint redirected (HTTP {status})"
            )));
        }
        Err(UpstreamError::OAuth(OAuthError::from_response(
            status,
            content_type.as_deref(),
            &body,
        )))
    }
}

/// The endpoints the broker POSTs a form to.
#[derive(Clone, Copy)]
enum FormEndpoint {
    /// The token endpoint: asked for JSON, it answers 200.
    Token,
    /// The revocation endpoint (RFC 7009, or Blue Button's): it answers 200 or 204.
    Revocation,
}

fn content_type(response: &Response) -> Option<String> {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads a small body, refusing more than [`MAX_SMALL_BODY`] bytes.
async fn small_body(mut response: Response) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
        if body.len() + chunk.len() > MAX_SMALL_BODY {
            return Err(UpstreamError::Unavailable(
                "the response body is too large".to_owned(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A provider's client credentials and how to present them: `Authorization: Basic` (the id and
/// secret form-encoded first, RFC 6749 §2.3.1, or as they are), or both in the form body.
pub(crate) struct Credentials<'a> {
    pub(crate) id: &'a ClientId,
    pub(crate) secret: &'a ClientSecret,
    pub(crate) auth: ClientAuth,
}

impl Credentials<'_> {
    /// The `Authorization: Basic` header's value, for the two Basic forms.
    fn authorization(&self) -> Option<String> {
        match self.auth {
            ClientAuth::ClientSecretBasic => Some(basic(self.id, self.secret, true)),
            ClientAuth::ClientSecretBasicUnencoded => Some(basic(self.id, self.secret, false)),
            ClientAuth::ClientSecretPost => None,
        }
    }

    /// `form` as an `application/x-www-form-urlencoded` body, with `client_id` and
    /// `client_secret` appended for `client_secret_post`.
    fn encode(&self, form: &[(&str, &str)]) -> String {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(form);
        if self.auth == ClientAuth::ClientSecretPost {
            body.append_pair("client_id", self.id.as_str());
            body.append_pair("client_secret", self.secret.expose_secret());
        }
        body.finish()
    }

    /// Logs a token endpoint's refusal for the operator, naming the provider: its code, status
    /// and description (at most 200 characters; never the body), and for `invalid_client` the
    /// likely cause. Should a server echo the secret — as is, form-encoded, or in either
    /// base64 Basic form — it is blanked.
    pub(crate) fn log_refusal(&self, call: &str, provider: &str, error: &OAuthError) {
        use base64::{Engine as _, engine::general_purpose::STANDARD};
        let secret = self.secret.expose_secret();
        let mut description: String = error
            .description()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let encoded = form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
        for form in [
            basic(self.id, self.secret, true),
            basic(self.id, self.secret, false),
            STANDARD.encode(secret),
            encoded,
            secret.to_owned(),
        ] {
            let form = form.trim_start_matches("Basic ");
            if !form.is_empty() {
                description = description.replace(form, "[redacted]");
            }
        }
        let description: String = description.chars().take(200).collect();
        if !error.is_invalid_client() {
            tracing::warn!(call, provider, error = %error.code(), status = ?error.status(), description, "the provider refused");
            return;
        }
        let hint = match self.auth {
            ClientAuth::ClientSecretBasic if self.basic_forms_differ() => {
                "the client id or secret has characters that HTTP Basic form-encodes first (RFC 6749 \
                 2.3.1); a server that does not decode them refuses it: try client_auth = \
                 \"client_secret_basic_unencoded\" or \"client_secret_post\" for this provider"
            }
            ClientAuth::ClientSecretPost => {
                "the credentials went in the form body (client_secret_post): check the server \
                 accepts that, else use client_secret_basic"
            }
            _ => "check this provider's client_id and client secret",
        };
        tracing::error!(
            call,
            provider,
            status = ?error.status(),
            description,
            client_auth = self.auth.as_str(),
            hint,
            "the provider refused the broker's client credentials (every user's sign-in and refresh fail)"
        );
    }

    /// Whether the two Basic forms differ for these credentials: the id or the secret has a
    /// character form-encoding changes (anything but letters, digits and `*-._`).
    pub(crate) fn basic_forms_differ(&self) -> bool {
        let changed = |s: &str| {
            s.bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')))
        };
        changed(self.id.as_str()) || changed(self.secret.expose_secret())
    }
}

/// `Basic base64(id:secret)`, the two form-encoded first (RFC 6749 §2.3.1) when `encoded`.
fn basic(client_id: &ClientId, secret: &ClientSecret, encoded: bool) -> String {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    let encode = |s: &str| {
        if encoded {
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        } else {
            s.to_owned()
        }
    };
    let pair = format!(
        "{}:{}",
        encode(client_id.as_str()),
        encode(secret.expose_secret())
    );
    format!("Basic {}", STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let id = ClientId::new("my+client").unwrap();
        let secret = ClientSecret::new(SecretString::from("p:ss/word"));
        let header = basic(&id, &secret, true);
        use base64::{Engine as _, engine::general_purpose::STANDARD};
        let decoded =
            String::from_utf8(STANDARD.decode(&header["Basic ".len()..]).unwrap()).unwrap();
        assert_eq!(decoded, "my%2Bclient:p%3Ass%2Fword");
    }
}
