//! The router the binary serves: the `/v1` API assembled from each feature's routes, the
//! middleware in front of it (origin check, CSRF header, CORS, `no-store`), the operational
//! routes (`ops.rs`), the optional static site (`site.rs`), and the layers around everything
//! (request ids, the request span, metrics, the error log, panics answered 500).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use connect_medicare_protocol::contract::{
    CSRF_HEADER, CSRF_VALUE, ConfigResponse, ErrorCode, routes,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    config::Config,
    error::{ApiError, ApiJson, log_failures},
    fhir, flows,
    http::{method_not_allowed, no_store, not_found, under_v1},
    metrics::Metrics,
    ops, session, site,
    state::AppState,
};

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
        .route(under_v1(routes::CONFIG), get(config_route))
        .merge(flows::routes())
        .merge(session::routes())
        .merge(fhir::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(no_store())
        .layer(cors)
}

/// Every `/v1` request must carry the CSRF header (a custom header forces a CORS preflight,
/// which only configured origins pass), and a request that names an `Origin` must name a
/// configured one.
async fn guard(State(config): State<Arc<Config>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| {
            config
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
    ApiJson(ConfigResponse { providers }).into_response()
}

/// The router the binary serves; tests call it with `oneshot`.
///
/// Request spans carry the method and the path only — never the query string, which on the
/// app's callback page holds the authorization code and `state`.
///
/// `/metrics` is on this router only when the configuration gives it no listener of its own
/// (`metrics_listen`); otherwise [`metrics_app`] serves it there.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .merge(ops::routes(&state))
        .nest("/v1", api(&state));
    let router = match state.config().static_dir() {
        Some(dir) => router.fallback(site::static_site(&state, dir)),
        None => router.fallback(not_found),
    };
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(log_failures))
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
        HeaderValue::try_from(crate::ids::to_hex(&bytes))
            .ok()
            .map(RequestId::new)
    }
}

/// Counts every answered request by method, route template and status.
async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.request(method, route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::StatusCode};
    use connect_medicare_protocol::contract::ErrorBody;
    use tower::ServiceExt;

    use super::*;
    use crate::state::testing::{get, state, text};

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
}
