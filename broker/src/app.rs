//! The HTTP application: the state every handler shares, the router the binary serves, and
//! the middleware in front of `/v1` (origin check, CSRF header, CORS).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use connect_medicare_protocol::{
    Timestamp,
    contract::{CSRF_HEADER, CSRF_VALUE, ErrorCode, ProviderId},
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::{
    clock::Clock,
    config::{Config, ProviderConfig, ResolvedProvider},
    crypto::KeyRing,
    error::{ApiError, Error, Result},
    fhir, flows,
    metrics::Metrics,
    refresh::Locks,
    session,
    store::Store,
    upstream::Upstream,
};

/// One provider ready to serve: its configuration (which holds the client secret) and its
/// resolved profile.
#[derive(Debug)]
pub(crate) struct ServedProvider {
    config: Arc<Config>,
    index: usize,
    pub(crate) resolved: ResolvedProvider,
}

impl ServedProvider {
    /// `config`'s provider at `index`, resolved.
    pub(crate) fn new(config: Arc<Config>, index: usize, resolved: ResolvedProvider) -> Self {
        Self {
            config,
            index,
            resolved,
        }
    }

    /// The provider's configuration (which holds its client secret).
    pub(crate) fn config(&self) -> &ProviderConfig {
        &self.config.providers()[self.index]
    }

    /// The client credentials for its token and revocation endpoints.
    pub(crate) fn credentials(&self) -> crate::upstream::Credentials<'_> {
        crate::upstream::Credentials {
            id: self.resolved.client_id(),
            secret: self.config().client_secret(),
            auth: self.config().client_auth(),
        }
    }
}

struct Inner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    upstream: Upstream,
    providers: Vec<ServedProvider>,
    locks: Locks,
    budget: fhir::Budget,
    completions: flows::Completions,
    metrics: Arc<Metrics>,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    /// State from a validated configuration, an opened store and a clock. Builds the one
    /// upstream HTTP client and resolves every provider — fetching the discovery document of
    /// each SMART provider — so a broker that cannot reach a SMART server does not start.
    pub async fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let upstream = Upstream::new(config.upstream_timeouts(), metrics.clone()).map_err(|e| {
            Error::InvalidConfig {
                problems: vec![format!("cannot build the HTTP client: {e}")],
            }
        })?;
        let mut providers = Vec::new();
        for (index, provider) in config.providers().iter().enumerate() {
            let discovered = match provider.discovery_url() {
                Some(url) => {
                    Some(
                        upstream
                            .discover(&url)
                            .await
                            .map_err(|e| Error::InvalidConfig {
                                problems: vec![format!(
                                    "providers.{}: cannot use {url}: {e}",
                                    provider.id().as_str()
                                )],
                            })?,
                    )
                }
                None => None,
            };
            let resolved = provider.resolve(discovered.as_ref())?;
            // RFC 9207 §2.4: the `iss` check tells servers apart only if no two share an issuer.
            let issuer = resolved.provider().issuer();
            if let Some(other) = providers.iter().find(|p: &&ServedProvider| {
                issuer.is_some() && p.resolved.provider().issuer() == issuer
            }) {
                return Err(Error::InvalidConfig {
                    problems: vec![format!(
                        "providers.{} and providers.{} name the same issuer ({}): their \
                         sign-ins could not be told apart (RFC 9207)",
                        other.resolved.id().as_str(),
                        provider.id().as_str(),
                        issuer.unwrap_or_default()
                    )],
                });
            }
            providers.push(ServedProvider::new(config.clone(), index, resolved));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                clock,
                upstream,
                providers,
                locks: Locks::default(),
                budget: fhir::Budget::default(),
                completions: flows::Completions::default(),
                metrics,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The token-encryption key ring.
    pub fn keys(&self) -> &KeyRing {
        self.inner.config.key_ring()
    }

    /// The current time, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    pub(crate) fn providers(&self) -> &[ServedProvider] {
        &self.inner.providers
    }

    /// The served provider with this id, or `unknown_provider`.
    pub(crate) fn provider(
        &self,
        id: &ProviderId,
    ) -> std::result::Result<&ServedProvider, ApiError> {
        self.inner
            .providers
            .iter()
            .find(|p| p.resolved.id() == id)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownProvider, "no such provider"))
    }

    /// The served provider named by a raw path segment, or `unknown_provider`.
    pub(crate) fn provider_by_name(
        &self,
        raw: &str,
    ) -> std::result::Result<&ServedProvider, ApiError> {
        let id = ProviderId::new(raw)
            .map_err(|_| ApiError::new(ErrorCode::UnknownProvider, "no such provider"))?;
        self.provider(&id)
    }

    pub(crate) fn locks(&self) -> &Locks {
        &self.inner.locks
    }

    pub(crate) fn budget(&self) -> &fhir::Budget {
        &self.inner.budget
    }

    pub(crate) fn completions(&self) -> &flows::Completions {
        &self.inner.completions
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The largest request body accepted (the API's bodies are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The `/v1` API.
fn api(state: &AppState) -> Router<AppState> {
    let origins: Vec<HeaderValue> = state
        .config()
        .allowed_origins()
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    // Exact configured origins only, never a reflection of the request's.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::HeaderName::from_static(CSRF_HEADER),
        ])
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/config", get(config_route))
        .route("/flows", post(flows::create))
        .route("/flows/complete", post(flows::complete))
        .route("/session", get(session::get_session))
        .route("/session/disconnect", post(session::disconnect))
        .route("/fhir/{provider}/{resource}", get(fhir::search))
        .route("/fhir/{provider}/{resource}/{id}", get(fhir::read))
        .route("/userinfo/{provider}", get(fhir::userinfo))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(no_store())
        .layer(cors)
}

/// `Cache-Control: no-store` on every answer of the routes it wraps: the whole `/v1` API (what
/// it answers is about a session, and often personal data) and the health probes. The static
/// site is not wrapped: its files may be cached. ([`ApiError`] sets it too, wherever it is
/// answered.)
fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Every `/v1` request must carry the CSRF header (a custom header forces a CORS preflight,
/// which only configured origins pass), and a request that names an `Origin` must name a
/// configured one.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| {
            state
                .config()
                .allowed_origins()
                .iter()
                .any(|o| o.as_str() == origin)
        });
        if !allowed {
            return ApiError::new(
                ErrorCode::OriginNotAllowed,
                "this origin may not call the broker",
            )
            .into_response();
        }
    }
    if request
        .headers()
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        != Some(CSRF_VALUE.as_bytes())
    {
        return ApiError::new(
            ErrorCode::CsrfRequired,
            "every broker request needs the x-connect-medicare: 1 header",
        )
        .into_response();
    }
    next.run(request).await
}

/// `GET /v1/config`: the providers this broker serves. No secret is in it.
async fn config_route(State(state): State<AppState>) -> Response {
    let providers = state
        .providers()
        .iter()
        .map(|p| p.resolved.info())
        .collect();
    crate::error::ApiJson(connect_medicare_protocol::contract::ConfigResponse { providers })
        .into_response()
}

/// The router the binary serves; tests call it with `oneshot`.
///
/// Request spans carry the method and the path only — never the query string, which on the
/// app's callback page holds the authorization code and `state`.
///
/// `/metrics` is on this router only when the configuration gives it no listener of its own
/// (`metrics_listen`); otherwise [`metrics_app`] serves it there.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz).layer(no_store()))
        .route("/readyz", get(readyz).layer(no_store()))
        .route("/openapi.json", get(openapi))
        .nest("/v1", api(&state));
    if state.config().metrics_listen().is_none() {
        router = router.route("/metrics", get(metrics_route));
    }
    let router = match state.config().static_dir() {
        Some(dir) => router.fallback(static_site(&state, dir)),
        None => router.fallback(not_found),
    };
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .extensions()
                    .get::<RequestId>()
                    .and_then(|id| id.header_value().to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                tracing::info_span!(
                    "request",
                    id = %id,
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(NewRequestId))
        .with_state(state)
}

/// The static site (an example app, the demo): files from `dir`, unknown paths answered
/// with `index.html` (a single-page app's routes, its callback route among them), and every
/// page under a strict Content-Security-Policy — scripts from the site only, WebAssembly
/// allowed (`'wasm-unsafe-eval'`), nothing else unsafe; forms may post only to the site and
/// to the providers' authorization endpoints — with `Referrer-Policy: no-referrer`, so the
/// callback URL's code never leaks in a `Referer`.
fn static_site(state: &AppState, dir: &std::path::Path) -> axum::routing::MethodRouter<AppState> {
    use tower_http::services::ServeFile;
    let csp = HeaderValue::from_str(&content_security_policy(state))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let index = ServeFile::new(dir.join("index.html"));
    let service = tower::ServiceBuilder::new()
        .map_response(same_origin_redirects_only)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .service(
            ServeDir::new(dir).fallback(tower::service_fn(move |request: Request| {
                let index = index.clone();
                async move {
                    // A path naming a file that is not there is a 404; any other path is one of
                    // the app's routes (its callback among them): the app's index.html.
                    let last = request.uri().path().rsplit('/').next().unwrap_or_default();
                    if last.contains('.') {
                        return Ok::<_, std::convert::Infallible>(
                            StatusCode::NOT_FOUND.into_response(),
                        );
                    }
                    Ok(tower::ServiceExt::oneshot(index, request)
                        .await?
                        .into_response())
                }
            })),
        );
    axum::routing::get_service(service)
}

/// The static site's redirects (a directory without its trailing slash) must stay on this
/// origin: a `Location` that a browser could read as another host — `//host/`, `/\\host/`
/// (browsers read a backslash as a slash), or anything not a plain absolute path — is answered
/// 404 instead. `GET //host` would otherwise redirect to `//host/`, a protocol-relative URL.
fn same_origin_redirects_only<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let Some(location) = response.headers().get(header::LOCATION) else {
        return response.map(axum::body::Body::new);
    };
    let same_origin = location.to_str().is_ok_and(|l| {
        let mut chars = l.chars();
        chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'))
    });
    if same_origin {
        response.map(axum::body::Body::new)
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The sources a page that starts a sign-in must allow in its CSP `form-action`: `'self'`,
/// each provider's authorization endpoint, and the origins its sign-in redirects a form POST
/// through (`sign_in_origins`) — browsers apply `form-action` to every hop of the redirects.
pub fn form_action_sources(state: &AppState) -> Vec<String> {
    let mut sources = vec!["'self'".to_owned()];
    for provider in state.providers() {
        let resolved = &provider.resolved;
        let endpoint = url::Url::parse(resolved.provider().authorization_endpoint())
            .ok()
            .map(|url| url.origin().ascii_serialization());
        let sign_in = resolved
            .sign_in_origins()
            .iter()
            .map(|o| o.as_str().to_owned());
        for origin in endpoint.into_iter().chain(sign_in) {
            if !sources.contains(&origin) {
                sources.push(origin);
            }
        }
    }
    sources
}

/// The static site's Content-Security-Policy, `form-action` from [`form_action_sources`].
pub fn content_security_policy(state: &AppState) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action {}; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'",
        form_action_sources(state).join(" ")
    )
}

/// A handler panicked: the client gets the usual `internal` error, the connection and the
/// process carry on. The panic's message is not read: it could hold anything the failing code
/// had at hand (the hook installed by [`install_panic_hook`] logs where it happened).
fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(ErrorCode::Internal, "internal error; it was logged").into_response()
}

/// Replaces the process's panic hook: a panic is logged as an error event with its location
/// (file, line) inside the current request's span, and never with its message, which could
/// hold a secret or a token. `serve` reports; this keeps the report clean.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            location,
            "panicked: the request in progress, if any, was answered 500; serving goes on"
        );
    }));
}

/// Request ids: 96 random bits, hex.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).ok()?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        HeaderValue::from_str(&hex).ok().map(RequestId::new)
    }
}

/// Counts every answered request by method, route template and status.
async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    state
        .metrics()
        .request(&method, &route, response.status().as_u16());
    response
}

/// The router of the metrics listener (`metrics_listen`): `GET /metrics` and nothing else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_route))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /metrics`: Prometheus text format.
async fn metrics_route(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// The OpenAPI description of `/v1`, checked in beside the code.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /readyz`: the broker's own readiness — its configuration is loaded (it is serving)
/// and its store answers: 200, else 503. Upstream providers are not part of it: when CMS is
/// slow every replica would leave the load balancer at once, and none could serve what does
/// not need CMS (sessions, disconnect). Their health is the `cm_broker_upstream_up` metric
/// and a log line ([`probe_upstreams`]).
async fn readyz(State(state): State<AppState>) -> Response {
    let probe = crate::ids::SessionId::from_random_bytes([0; 32]).hash();
    let (status, store) = match state.store().get_session(&probe, state.now()).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the store failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = serde_json::json!({"config": "loaded", "store": store});
    (status, axum::Json(body)).into_response()
}

/// How often housekeeping runs.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(30);
/// How long a health probe of a provider may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches every provider's discovery document once and records whether it answered in
/// `cm_broker_upstream_up`, logging each change (down: a warning; back up: info).
/// Housekeeping calls it periodically; so may tests.
pub async fn probe_upstreams(state: &AppState) {
    for provider in state.providers() {
        let id = provider.resolved.id().as_str();
        let url = provider
            .resolved
            .provider()
            .fhir_base()
            .join(".well-known/smart-configuration");
        let request = state.upstream().client().get(&url).send();
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, request).await {
            Err(_) => Err("timed out".to_owned()),
            Ok(Err(e)) => Err(crate::upstream::transport(&e).to_string()),
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(format!("HTTP {}", r.status().as_u16())),
        };
        let before = state.metrics().upstream_up(id, outcome.is_ok());
        match (before, outcome) {
            (Some(false), Ok(())) => tracing::info!(provider = id, "the provider answers again"),
            (Some(false), Err(_)) | (_, Ok(())) => {}
            (_, Err(why)) => tracing::warn!(provider = id, why, "the provider does not answer"),
        }
    }
}

/// Retries pending revocations and purges expired flows and sessions, forever: the providers
/// are probed at once (so `cm_broker_upstream_up` has a value from the first scrape), the rest
/// begins a period after start — a restarted broker does not race its operator's own
/// `drain_revocations` (or a test's) for the revocations it finds on start.
pub(crate) async fn housekeeping(state: AppState) {
    probe_upstreams(&state).await;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + HOUSEKEEPING_PERIOD,
        HOUSEKEEPING_PERIOD,
    );
    loop {
        tick.tick().await;
        probe_upstreams(&state).await;
        if let Err(e) = session::drain_revocations(&state).await {
            tracing::warn!(error = %e, "retrying pending revocations failed");
        }
        let now = state.now();
        if let Err(e) = state.store().delete_expired_flows(now).await {
            tracing::warn!(error = %e, "purging expired flows failed");
        }
        if let Err(e) = state.store().delete_expired_sessions(now).await {
            tracing::warn!(error = %e, "purging expired sessions failed");
        }
    }
}

/// `GET /healthz`: the process is up and serving.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed here",
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::{body::Body, http::StatusCode};
    use connect_medicare_protocol::contract::ErrorBody;
    use tower::ServiceExt;

    use super::*;
    use crate::{clock::ManualClock, config::Env, store::MemoryStore};

    async fn state(static_dir: Option<&Path>) -> AppState {
        let static_line = static_dir
            .map(|d| format!("static_dir = {:?}\n", d.display().to_string()))
            .unwrap_or_default();
        let text = format!(
            r#"{static_line}
public_base_url = "http://localhost:8080"
database = "sqlite::memory:"
[[keys]]
id = "k1"
key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:8123"
client_id = "client"
redirect_uri = "http://localhost:8080/callback"
sign_in_origins = ["http://127.0.0.1:8124"]
"#
        );
        let env = Env::from_pairs([("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET", "s")]);
        let config = Config::parse(&text, Path::new("broker.toml"), env).unwrap();
        AppState::new(
            Arc::new(config),
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(Timestamp::from_unix_seconds(1_000))),
        )
        .await
        .unwrap()
    }

    async fn get(app: Router, uri: &str) -> Response {
        app.oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn healthz_answers() {
        let response = get(app(state(None).await), "/healthz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(text(response).await, "ok\n");
    }

    #[tokio::test]
    async fn unknown_routes_are_json_not_found() {
        let app = app(state(None).await);
        for (uri, csrf) in [("/v1/nothing-here", true), ("/nothing-here", false)] {
            let mut request = Request::get(uri);
            if csrf {
                request = request.header(CSRF_HEADER, CSRF_VALUE);
            }
            let response = app
                .clone()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            let body: ErrorBody = serde_json::from_str(&text(response).await).unwrap();
            assert_eq!(body.code, ErrorCode::NotFound);
        }
    }

    #[tokio::test]
    async fn every_api_route_requires_the_csrf_header() {
        let app = app(state(None).await);
        for (method, uri) in [
            ("GET", "/v1/config"),
            ("POST", "/v1/flows"),
            ("POST", "/v1/flows/complete"),
            ("GET", "/v1/session"),
            ("POST", "/v1/session/disconnect"),
            ("GET", "/v1/fhir/medicare/Patient"),
            ("GET", "/v1/fhir/medicare/Patient/-1"),
            ("GET", "/v1/userinfo/medicare"),
        ] {
            for value in [None, Some("0"), Some("true")] {
                let mut request = Request::builder().method(method).uri(uri);
                if let Some(value) = value {
                    request = request.header(CSRF_HEADER, value);
                }
                let response = app
                    .clone()
                    .oneshot(request.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{method} {uri} {value:?}"
                );
                let body: ErrorBody = serde_json::from_str(&text(response).await).unwrap();
                assert_eq!(body.code, ErrorCode::CsrfRequired);
            }
        }
    }

    #[tokio::test]
    async fn serves_the_static_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::create_dir(dir.path().join("callback")).unwrap();
        std::fs::write(dir.path().join("callback/index.html"), "callback page").unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "secret outside").unwrap();

        let app = app(state(Some(dir.path())).await);
        let response = get(app.clone(), "/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "<h1>demo</h1>");
        let response = get(app.clone(), "/callback/?code=abc&state=xyz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "callback page");
        assert_eq!(get(app.clone(), "/healthz").await.status(), StatusCode::OK);
        assert_eq!(
            get(app.clone(), "/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
        // An app route (no file extension) is the app's index.html.
        let response = get(app.clone(), "/claims/2024?tab=pde").await;
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(text(response).await, "<h1>demo</h1>");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
            "{csp}"
        );
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:8123 http://127.0.0.1:8124;"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"),
            "{csp}"
        );
        let name = outside.path().file_name().unwrap().to_str().unwrap();
        for traversal in [format!("/../{name}"), format!("/%2e%2e/{name}")] {
            let response = get(app.clone(), &traversal).await;
            assert_ne!(response.status(), StatusCode::OK, "{traversal}");
        }
    }

    #[tokio::test]
    async fn the_static_site_never_redirects_off_site() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::create_dir(dir.path().join("connect-medicare")).unwrap();
        std::fs::write(dir.path().join("connect-medicare/index.html"), "pkg").unwrap();
        let app = app(state(Some(dir.path())).await);
        // A directory without its slash is still redirected, on this origin.
        let response = get(app.clone(), "/connect-medicare").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(response.headers()[header::LOCATION], "/connect-medicare/");
        // The same directory named so that the redirect would leave the site is not.
        for uri in [
            "//connect-medicare",
            "//connect-medicare?x=1",
            "///connect-medicare",
        ] {
            let response = get(app.clone(), uri).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            assert!(response.headers().get(header::LOCATION).is_none(), "{uri}");
        }
        for location in [
            "//evil.example/",
            "/\\evil.example/",
            "https://evil.example/",
            "",
        ] {
            let response = axum::http::Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .unwrap();
            assert_eq!(
                same_origin_redirects_only(response).status(),
                StatusCode::NOT_FOUND,
                "{location:?}"
            );
        }
    }

    #[tokio::test]
    async fn state_exposes_the_key_ring_and_clock() {
        let state = state(None).await;
        assert_eq!(state.keys().current_key_id().as_str(), "k1");
        assert_eq!(state.now(), Timestamp::from_unix_seconds(1_000));
        assert!(!format!("{state:?}").contains("AAAAAAAA"));
    }
}
