//! The HTTP application: the state every handler shares, and the router the binary serves.
//!
//! So far the router serves `GET /healthz` and, when configured, a static directory. The
//! `/v1` API routes are added by the flows, session and FHIR modules.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use connect_medicare_protocol::{Timestamp, contract::ErrorCode};
use tokio::net::TcpListener;
use tower_http::{services::ServeDir, trace::TraceLayer};

use crate::{clock::Clock, config::Config, crypto::KeyRing, error::ApiError, store::Store};

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl AppState {
    /// State from a validated configuration, an opened store and a clock.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            store,
            clock,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The token-encryption key ring.
    pub fn keys(&self) -> &KeyRing {
        self.config.key_ring()
    }

    /// The current time, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The router the binary serves; tests call it with `oneshot`.
///
/// Request spans carry the method and the path only — never the query string, which on the
/// app's callback page holds the authorization code and `state`.
pub fn app(state: AppState) -> Router {
    let router = Router::new().route("/healthz", get(healthz));
    let router = match state.config.static_dir() {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router.fallback(not_found),
    };
    router
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes the requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /healthz`: the process is up and serving.
async fn healthz() -> Response {
    let mut response = "ok\n".into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::{body::Body, http::StatusCode};
    use connect_medicare_protocol::contract::ErrorBody;
    use tower::ServiceExt;

    use super::*;
    use crate::{clock::ManualClock, config::Env, store::MemoryStore};

    fn state(static_dir: Option<&Path>) -> AppState {
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
"#
        );
        let env = Env::from_pairs([("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET", "s")]);
        let config = Config::parse(&text, Path::new("broker.toml"), env).unwrap();
        AppState::new(
            Arc::new(config),
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(Timestamp::from_unix_seconds(1_000))),
        )
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
        let response = get(app(state(None)), "/healthz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(text(response).await, "ok\n");
    }

    #[tokio::test]
    async fn unknown_routes_are_json_not_found() {
        let response = get(app(state(None)), "/v1/nothing-here").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: ErrorBody = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(body.code, ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn serves_the_static_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::create_dir(dir.path().join("callback")).unwrap();
        std::fs::write(dir.path().join("callback/index.html"), "callback page").unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "secret outside").unwrap();

        let app = app(state(Some(dir.path())));
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
        let name = outside.path().file_name().unwrap().to_str().unwrap();
        for traversal in [format!("/../{name}"), format!("/%2e%2e/{name}")] {
            let response = get(app.clone(), &traversal).await;
            assert_ne!(response.status(), StatusCode::OK, "{traversal}");
        }
    }

    #[test]
    fn state_exposes_the_key_ring_and_clock() {
        let state = state(None);
        assert_eq!(state.keys().current_key_id().as_str(), "k1");
        assert_eq!(state.now(), Timestamp::from_unix_seconds(1_000));
        assert!(!format!("{state:?}").contains("AAAAAAAA"));
    }
}
