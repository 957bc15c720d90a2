//! Helpers shared by the sandbox's HTTP tests: a sandbox on an ephemeral port, a client that
//! never follows redirects, and a full sign-in + consent through the real HTML pages.

#![allow(dead_code, unreachable_pub)]

use connect_medicare_protocol::{
    AuthorizeRedirect, AuthorizeRequest, ClientId, PkceVerifier, Provider, RedirectUri, Scopes,
    State,
};
use connect_medicare_sandbox::{
    AppConfig, Clock, GrantKind, Sandbox, SandboxConfig,
    driver::{Browser, Consent, Outcome},
};
use reqwest::{Client, Response, header};
use serde_json::Value;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret-0123456789";
pub const REDIRECT_URI: &str = "http://localhost:8080/callback";
pub const ONE_TIME_ID: &str = "one-time-client";
pub const RESEARCH_ID: &str = "research-client";

/// The three test apps: 13-month (default), one-time and research.
pub fn apps() -> Vec<AppConfig> {
    vec![
        AppConfig::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI),
        AppConfig::new(ONE_TIME_ID, CLIENT_SECRET, REDIRECT_URI)
            .with_grant_kind(GrantKind::OneTime),
        AppConfig::new(RESEARCH_ID, CLIENT_SECRET, REDIRECT_URI)
            .with_grant_kind(GrantKind::Research),
    ]
}

/// A sandbox with three apps: 13-month (default), one-time and research.
pub async fn sandbox() -> Sandbox {
    sandbox_with(|_| {}, Clock::new()).await
}

/// A sandbox with the three apps and settings changed by `configure`.
pub async fn sandbox_with(configure: impl FnOnce(&mut SandboxConfig), clock: Clock) -> Sandbox {
    let mut config = SandboxConfig {
        apps: apps(),
        ..SandboxConfig::default()
    };
    configure(&mut config);
    Sandbox::start(config, clock).await.expect("sandbox starts")
}

/// An access token with every scope for `BBUser000NN`.
pub async fn token_for(sandbox: &Sandbox, user: usize) -> String {
    tokens(sandbox, CLIENT_ID, ALL_SCOPES, user).await["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A bundle from a search that must succeed.
pub async fn bundle(sandbox: &Sandbox, path: &str, token: &str) -> Value {
    let response = get(sandbox, path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    json(response).await
}

/// The value of a response header, as text.
pub fn header_value(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The ids of a bundle's entries.
pub fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A client that never follows redirects (as the broker's never does).
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// One authorization flow's client-side secrets.
pub struct Flow {
    pub state: State,
    pub verifier: PkceVerifier,
    pub request: AuthorizeRequest,
}

/// Builds an authorize request for the Blue Button face with `scopes`.
pub fn flow(sandbox: &Sandbox, client_id: &str, scopes: &str, seed: u8) -> Flow {
    let provider = Provider::blue_button_at(sandbox.origin()).unwrap();
    let state = State::from_random_bytes([seed; 32]);
    let verifier = PkceVerifier::from_random_bytes([seed.wrapping_add(1); 32]);
    let request = AuthorizeRequest::new(
        &provider,
        ClientId::new(client_id).unwrap(),
        RedirectUri::parse(REDIRECT_URI).unwrap(),
        Scopes::parse(scopes).unwrap(),
        &state,
        &verifier.challenge(),
    )
    .unwrap();
    Flow {
        state,
        verifier,
        request,
    }
}

/// Signs in as `BBUser000NN` and answers the consent page; returns where it ended.
pub async fn consent(
    sandbox: &Sandbox,
    start: &AuthorizeRedirect,
    user: usize,
    answer: Consent,
) -> Outcome {
    Browser::new(sandbox.origin())
        .unwrap()
        .authorize(
            start,
            &format!("BBUser{user:05}"),
            &format!("PW{user:05}!"),
            answer,
        )
        .await
        .expect("the pages can be driven")
}

/// The query parameters of a redirect.
pub fn params(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Runs the whole flow for `user` and returns the authorization code.
pub async fn code_for(sandbox: &Sandbox, flow: &Flow, user: usize) -> String {
    match consent(
        sandbox,
        &flow.request.to_redirect(false),
        user,
        Consent::ALLOW,
    )
    .await
    {
        Outcome::Redirected(url) => {
            assert!(url.starts_with(REDIRECT_URI), "{url}");
            assert_eq!(param(&url, "state").as_deref(), Some(flow.state.as_str()));
            param(&url, "code").expect("a code")
        }
        other => panic!("expected a redirect with a code, got {other:?}"),
    }
}

/// `POST /v2/o/token/` with HTTP Basic client authentication.
pub async fn token_request(sandbox: &Sandbox, client_id: &str, form: &[(&str, &str)]) -> Response {
    client()
        .post(format!("{}/v2/o/token/", sandbox.origin()))
        .basic_auth(client_id, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn redeem(sandbox: &Sandbox, client_id: &str, flow: &Flow, code: &str) -> Response {
    token_request(
        sandbox,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", flow.verifier.expose_secret()),
        ],
    )
    .await
}

/// A full flow to a token response body, for `user` with `scopes`.
pub async fn tokens(sandbox: &Sandbox, client_id: &str, scopes: &str, user: usize) -> Value {
    let flow = flow(sandbox, client_id, scopes, 40 + user as u8);
    let code = code_for(sandbox, &flow, user).await;
    let response = redeem(sandbox, client_id, &flow, &code).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

pub async fn refresh(sandbox: &Sandbox, client_id: &str, refresh_token: &str) -> Response {
    token_request(
        sandbox,
        client_id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// `GET {origin}{path}` with a bearer token.
pub async fn get(sandbox: &Sandbox, path: &str, access_token: &str) -> Response {
    client()
        .get(format!("{}{path}", sandbox.origin()))
        .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
        .send()
        .await
        .unwrap()
}

pub const ALL_SCOPES: &str = "openid profile launch/patient patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs";
