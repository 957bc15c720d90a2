//! Shared helpers for the broker's whole-flow tests: a sandbox and a broker on ephemeral
//! loopback ports, a cookie-keeping client that speaks the `/v1` contract, and a sign-in
//! through the sandbox's real pages.

#![allow(dead_code, unreachable_pub)]

mod broker_toml;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use connect_medicare_broker::{
    AppState, Config, ConnectionStore, Env, ManualClock, SessionId, SqliteStore, serve,
};
use connect_medicare_protocol::{
    AuthorizeRedirect, Callback, PkceVerifier, State, Timestamp,
    contract::{
        CSRF_HEADER, CSRF_VALUE, CreateFlowResponse, ErrorBody, ErrorCode, SessionResponse,
    },
};
use connect_medicare_sandbox::{
    AppConfig, Clock as SandboxClock, Sandbox, SandboxConfig,
    driver::{Browser, Consent, Outcome},
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use self::broker_toml::{BrokerToml, smart_provider};

pub const CLIENT_ID: &str = "broker-test-client";
/// A canary: it must never appear in a response, a log or the browser.
pub const CLIENT_SECRET: &str = "canary-client-secret-4f1d";
pub const APP_ORIGIN: &str = "http://localhost:8080";
pub const REDIRECT_URI: &str = "http://localhost:8080/callback";
pub const KEY: &str = "ZXhhbXBsZS1rZXktZG8tbm90LXVzZS0zMi1ieXRlcyE=";

/// A sandbox with the broker's app registered.
pub async fn sandbox() -> Sandbox {
    sandbox_with(|_| {}).await
}

/// A sandbox with the broker's app registered and settings changed by `change`.
pub async fn sandbox_with(change: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let app = AppConfig::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI);
    let mut config = SandboxConfig::with_app(app);
    change(&mut config);
    Sandbox::start(config, SandboxClock::new())
        .await
        .expect("sandbox starts")
}

/// Broker settings for a test: its files' directory and its configuration.
pub struct BrokerSetup {
    pub dir: tempfile::TempDir,
    /// The configuration, its database the file [`BrokerSetup::database`].
    pub toml: BrokerToml,
}

impl BrokerSetup {
    pub fn new(sandbox: &Sandbox) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("broker.db").display());
        Self {
            toml: BrokerToml::new(sandbox.origin(), &database),
            dir,
        }
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("broker.db")
    }

    pub fn config(&self) -> Config {
        let mut secrets = vec![(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        )];
        if self.toml.more_providers.contains(r#"id = "ehr""#) {
            secrets.push(("CM_BROKER_PROVIDERS__EHR__CLIENT_SECRET", CLIENT_SECRET));
        }
        let env = Env::from_pairs(secrets);
        Config::parse(
            &self.toml.render(),
            &self.dir.path().join("broker.toml"),
            env,
        )
        .expect("valid config")
    }
}

/// Adds a generic SMART provider, `ehr`, served by the sandbox's SMART face.
pub fn with_ehr(setup: &mut BrokerSetup, sandbox: &Sandbox) {
    with_ehr_config(setup, sandbox, "");
}

/// Adds the SMART provider `ehr` with more of its settings (`read = [...]`, `scopes = ...`).
pub fn with_ehr_config(setup: &mut BrokerSetup, sandbox: &Sandbox, settings: &str) {
    setup.toml.more_providers = smart_provider(
        "ehr",
        "Example EHR",
        &sandbox.smart_fhir_base(),
        CLIENT_ID,
        settings,
    );
}

/// A broker in front of `sandbox` and a fresh browser of it: the sandbox, the broker's setup
/// (which holds its files: keep it as long as the broker), the broker and the browser.
pub async fn stack(sandbox: Sandbox) -> (Sandbox, BrokerSetup, Broker, Client) {
    stack_with(sandbox, |_, _| {}).await
}

/// As [`stack`], the broker's settings changed by `change` first (such as [`with_ehr`]).
pub async fn stack_with(
    sandbox: Sandbox,
    change: impl FnOnce(&mut BrokerSetup, &Sandbox),
) -> (Sandbox, BrokerSetup, Broker, Client) {
    let mut setup = BrokerSetup::new(&sandbox);
    change(&mut setup, &sandbox);
    let broker = Broker::start(&setup).await;
    let browser = Client::new(&broker);
    (sandbox, setup, broker, browser)
}

/// As [`stack`], the browser [connected](connect) as `BBUser000NN`; and the session it got.
pub async fn signed_in(
    sandbox: Sandbox,
    user: usize,
) -> (Sandbox, BrokerSetup, Broker, Client, SessionResponse) {
    signed_in_with(sandbox, user, |_, _| {}).await
}

/// As [`signed_in`], the broker's settings changed by `change` first.
pub async fn signed_in_with(
    sandbox: Sandbox,
    user: usize,
    change: impl FnOnce(&mut BrokerSetup, &Sandbox),
) -> (Sandbox, BrokerSetup, Broker, Client, SessionResponse) {
    let (sandbox, setup, broker, mut browser) = stack_with(sandbox, change).await;
    let session = connect(&mut browser, &sandbox, user).await;
    (sandbox, setup, broker, browser, session)
}

/// Connects `client` to the SMART face as `BBUser000NN`.
pub async fn connect_ehr(client: &mut Client, sandbox: &Sandbox, user: usize) {
    let flow = start_flow_for(client, "ehr", "get").await;
    let callback = sign_in(sandbox, &flow, user, Consent::ALLOW).await;
    let reply = complete_callback(client, &flow, &callback).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// Sets the sandbox's faults (`POST /__admin/faults`).
pub async fn set_faults(sandbox: &Sandbox, faults: Value) {
    let set = reqwest::Client::new()
        .post(format!("{}/__admin/faults", sandbox.origin()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
}

/// A running broker.
pub struct Broker {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub store: Arc<SqliteStore>,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Broker {
    pub async fn start(setup: &BrokerSetup) -> Broker {
        Self::start_at(setup, Timestamp::from_unix_seconds(now())).await
    }

    pub async fn start_at(setup: &BrokerSetup, at: Timestamp) -> Broker {
        let config = setup.config();
        let store = Arc::new(SqliteStore::open(&setup.database()).await.unwrap());
        let clock = Arc::new(ManualClock::new(at));
        let state = AppState::new(Arc::new(config), store.clone(), clock.clone())
            .await
            .expect("broker state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Broker {
            base,
            clock,
            store,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and closes the store (so the same file can be reopened).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.store.close().await;
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A browser as the broker sees it: it keeps the broker's cookies (which are `Secure` and
/// `__Host-`, so a plain cookie store over http would refuse them) and sends the CSRF header.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// The session proof the last completion gave, as the SDK keeps it in the app origin's
    /// storage; [`complete`] sends it.
    pub proof: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON (HTTP {}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not an error body (HTTP {}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn code(&self) -> ErrorCode {
        self.error().code
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl Client {
    pub fn new(broker: &Broker) -> Self {
        Self::for_base(&broker.base)
    }

    /// A fresh browser of the broker at `base` (`http://host:port`), one this process may
    /// not have started.
    pub fn for_base(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            proof: None,
        }
    }

    /// The same cookie jar against another broker process (a restart, a replica).
    pub fn at(&self, broker: &Broker) -> Self {
        Self {
            base: broker.base.clone(),
            ..self.clone()
        }
    }

    pub async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send_with(method, path, body, &[]).await
    }

    pub async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        self.try_send_with(method, path, body, extra)
            .await
            .expect("the broker answers")
    }

    /// As [`Client::send_with`], `None` when the broker does not answer (it was killed).
    pub async fn try_send_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Option<Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(CSRF_HEADER, CSRF_VALUE);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.ok()?.to_vec(),
        };
        for cookie in reply.set_cookies() {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((&cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Some(reply)
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// The session cookie's id, as the store knows it (hashed).
    pub fn session(&self) -> Option<SessionId> {
        self.cookies
            .get("__Host-cm-session")
            .and_then(|v| SessionId::parse(v))
    }
}

/// One flow's browser-side secrets.
pub struct Flow {
    pub state: State,
    pub verifier: PkceVerifier,
    pub authorize: AuthorizeRedirect,
}

pub fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// `POST /v1/flows` with fresh PKCE and state.
pub async fn start_flow(client: &mut Client, method: &str) -> Flow {
    start_flow_for(client, "medicare", method).await
}

/// `POST /v1/flows` for `provider`.
pub async fn start_flow_for(client: &mut Client, provider: &str, method: &str) -> Flow {
    let state = State::from_random_bytes(random32());
    let verifier = PkceVerifier::from_random_bytes(random32());
    let reply = client
        .post(
            "/v1/flows",
            json!({
                "provider": provider,
                "state": state.as_str(),
                "code_challenge": verifier.challenge().as_str(),
                "redirect_uri": REDIRECT_URI,
                "method": method,
            }),
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let created: CreateFlowResponse = serde_json::from_slice(&reply.body).unwrap();
    Flow {
        state,
        verifier,
        authorize: created.authorize,
    }
}

/// Signs in at the sandbox as `BBUser000NN` and returns the callback URL.
pub async fn sign_in(sandbox: &Sandbox, flow: &Flow, user: usize, consent: Consent) -> String {
    let outcome = Browser::new(sandbox.origin())
        .unwrap()
        .authorize(
            &flow.authorize,
            &format!("BBUser{user:05}"),
            &format!("PW{user:05}!"),
            consent,
        )
        .await
        .unwrap();
    match outcome {
        Outcome::Redirected(url) => url,
        other => panic!("expected the redirect back to the app, got {other:?}"),
    }
}

/// The code from a callback URL, with `state` checked as the SDK does.
pub fn code_from(callback: &str, flow: &Flow) -> String {
    Callback::parse(callback)
        .unwrap()
        .expect("a callback")
        .verify(&flow.state)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// Completes `flow` with `code` as the SDK does: with the session proof the client holds, and
/// keeping the new one the broker answers with.
pub async fn complete(client: &mut Client, flow: &Flow, code: &str) -> Reply {
    complete_with(client, flow, code, None).await
}

/// Completes with everything the SDK sends from `callback`: its code and its `iss` (RFC 9207),
/// when it has one.
pub async fn complete_callback(client: &mut Client, flow: &Flow, callback: &str) -> Reply {
    let iss = url_param(callback, "iss");
    complete_with(client, flow, &code_from(callback, flow), iss.as_deref()).await
}

/// A query parameter of `url`, decoded.
pub fn url_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `POST /v1/flows/complete` with `code` and, when given, `iss`.
pub async fn complete_with(
    client: &mut Client,
    flow: &Flow,
    code: &str,
    iss: Option<&str>,
) -> Reply {
    let mut body = json!({
        "state": flow.state.as_str(),
        "code": code,
        "code_verifier": flow.verifier.expose_secret(),
    });
    if let Some(iss) = iss {
        body["iss"] = json!(iss);
    }
    if let Some(proof) = &client.proof {
        body["session_proof"] = json!(proof);
    }
    let reply = client.post("/v1/flows/complete", body).await;
    if reply.status == 200
        && let Some(proof) = reply.json()["session_proof"].as_str()
    {
        client.proof = Some(proof.to_owned());
    }
    reply
}

/// Starts a Medicare flow (`GET` authorize) and signs in at the sandbox as `BBUser000NN`
/// with `consent`: the flow and the code its callback brought, not yet completed.
pub async fn authorize(
    client: &mut Client,
    sandbox: &Sandbox,
    user: usize,
    consent: Consent,
) -> (Flow, String) {
    let flow = start_flow(client, "get").await;
    let callback = sign_in(sandbox, &flow, user, consent).await;
    let code = code_from(&callback, &flow);
    (flow, code)
}

/// Connects `client` as `BBUser000NN` all the way to a session.
pub async fn connect(client: &mut Client, sandbox: &Sandbox, user: usize) -> SessionResponse {
    let (flow, code) = authorize(client, sandbox, user, Consent::ALLOW).await;
    let reply = complete(client, &flow, &code).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).unwrap()
}

/// Reads the stored tokens of a session's connection, decrypted with the test key ring.
pub async fn stored_tokens(broker: &Broker, client: &Client) -> (String, Option<String>, i64) {
    use connect_medicare_broker::{Aad, TokenKind};
    use connect_medicare_protocol::contract::ProviderId;
    use secrecy::ExposeSecret;
    let session = session_key(broker.store.as_ref(), client).await;
    let provider = ProviderId::new("medicare").unwrap();
    let record = broker
        .store
        .get_connection(&session, &provider)
        .await
        .unwrap()
        .expect("a connection");
    let keys = broker.state.keys();
    let access = keys
        .decrypt(
            &record.access_token_ct,
            &Aad::new(&session, &provider, TokenKind::AccessToken),
        )
        .unwrap();
    let refresh = record.refresh_token_ct.as_ref().map(|ct| {
        keys.decrypt(ct, &Aad::new(&session, &provider, TokenKind::RefreshToken))
            .unwrap()
            .expose_secret()
            .to_owned()
    });
    (
        access.expose_secret().to_owned(),
        refresh,
        record.generation,
    )
}

/// Refreshes directly at the sandbox with `refresh_token` (what an attacker holding a spent
/// or revoked token could try), returning the status and body.
pub async fn sandbox_refresh(sandbox: &Sandbox, refresh_token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v2/o/token/", sandbox.origin()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Log lines captured in memory: a `tracing_subscriber` writer.
#[derive(Clone, Default)]
pub struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Whether the capture holds `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }
}

/// The key of the session `client`'s cookie reaches: what its connections and tokens are
/// filed under (the hash of the session's *first* id, which a sign-in's rotation keeps).
pub async fn session_key(
    store: &dyn connect_medicare_broker::Store,
    client: &Client,
) -> connect_medicare_broker::SessionHash {
    let cookie = client.session().expect("a session cookie").hash();
    store
        .get_session(&cookie, Timestamp::from_unix_seconds(0))
        .await
        .unwrap()
        .expect("a live session")
        .session_hash
}

/// A GET over a raw socket, for paths a URL library would normalise (`%2e%2e`).
pub async fn raw_get(base: &str, path: &str, client: &Client) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookies = client
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nx-connect-medicare: 1\r\nCookie: {cookies}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

/// The broker's `/metrics` exposition.
pub async fn metrics_text(broker: &Broker) -> String {
    reqwest::get(format!("{}/metrics", broker.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the metric sample named exactly `sample` (with its labels), 0 when absent.
pub async fn metric(broker: &Broker, sample: &str) -> f64 {
    metrics_text(broker)
        .await
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Reads `path` as `browser` again and again until `stop` is set or the broker stops
/// answering (it was killed); every answer before that must be a 200. Returns how many.
pub async fn read_until_stopped(
    browser: Client,
    path: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> u32 {
    let mut answered = 0;
    let cookie = format!("__Host-cm-session={}", browser.cookies["__Host-cm-session"]);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let sent = browser
            .http
            .get(format!("{}{path}", browser.base))
            .header(CSRF_HEADER, CSRF_VALUE)
            .header(header::COOKIE, &cookie)
            .send()
            .await;
        let Ok(response) = sent else { break };
        assert_eq!(response.status(), 200, "a read before the kill");
        answered += 1;
    }
    answered
}

/// Whether `browser`'s session is still signed in and connected, read through `base`.
pub async fn still_connected(browser: &Client, base: &str) -> bool {
    let mut browser = browser.clone();
    browser.base = base.to_owned();
    let reply = browser.get("/v1/session").await;
    let connected = reply.status == 200
        && reply.json()["connections"]
            .as_array()
            .is_some_and(|c| c.len() == 1);
    connected && browser.get("/v1/fhir/medicare/Coverage").await.status == 200
}
