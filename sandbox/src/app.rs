//! The router: every route of both faces.

use std::sync::Arc;

use axum::{
    Router,
    extract::{OriginalUri, Request},
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use tower_http::compression::{CompressionLayer, predicate::SizeAbove};

use crate::{admin, authorize, discovery, fhir, login, network, state::Shared, token};

/// Blue Button compresses an answer only when it is larger than 1 KB.
const GZIP_ABOVE_BYTES: u16 = 1024;

/// Blue Button answers these paths without their trailing slash with a 301 to the slashed
/// path — for POST as well, which turns a POST into a bodiless GET in every client.
async fn append_slash(OriginalUri(uri): OriginalUri, _request: Request) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response = (
        StatusCode::MOVED_PERMANENTLY,
        [(header::CONTENT_TYPE, crate::errors::DJANGO_HTML)],
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Keeps only `gzip` in `Accept-Encoding` (the one coding Blue Button serves), so the
/// compression layer never picks another one whatever features the workspace enables; with
/// the `gzip_always` fault, asks for gzip whatever the client said.
async fn gzip_only(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    mut request: Request,
) -> Request {
    let wants_gzip = shared.faults.gzip_always()
        || request
            .headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
            });
    let headers = request.headers_mut();
    headers.remove(header::ACCEPT_ENCODING);
    if wants_gzip {
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    request
}

/// Blue Button's throttling middleware writes the `X-RateLimit-*` headers on every answer,
/// as the literal `None` where no rate limit was checked (all but the FHIR views that got
/// past authentication and permissions) — except Django's trailing-slash 301s, which are
/// answered before it runs.
async fn rate_limit_none(mut response: Response) -> Response {
    let redirect = response.status() == StatusCode::MOVED_PERMANENTLY;
    let headers = response.headers_mut();
    if !redirect && !headers.contains_key("x-ratelimit-limit") {
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            headers.insert(name, HeaderValue::from_static("None"));
        }
    }
    response
}

/// Blue Button's FHIR views (Django REST framework): every answer, errors included, is
/// `application/fhir+json` and carries the view's `Allow`.
async fn fhir_view(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
    }
    response
}

/// Blue Button's userinfo view (a Django REST framework view of its own): its `Allow`.
async fn userinfo_view(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, GET"));
    response
}

/// Builds the sandbox's router over its shared state.
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    // Blue Button's API routes: injected latency and dropped connections apply here.
    let network = || middleware::from_fn_with_state(shared.clone(), network::network);
    let bb2_fhir = Router::new()
        .route("/v2/fhir/{resource}", get(fhir::bb2_search))
        .route("/v2/fhir/{resource}/", get(fhir::bb2_search))
        .route("/v2/fhir/{resource}/{id}", get(fhir::bb2_read))
        .layer(middleware::map_response(fhir_view))
        .route_layer(network());
    let bb2_api = Router::new()
        .route("/v2/o/token", post(token::bb2_token))
        .route("/v2/o/token/", post(token::bb2_token))
        .route(
            "/v2/connect/userinfo",
            get(fhir::userinfo).layer(middleware::map_response(userinfo_view)),
        )
        .route_layer(network())
        .merge(bb2_fhir);
    // Blue Button 2.0, v2.
    let bb2 = Router::new()
        .route(
            "/v2/fhir/.well-known/smart-configuration",
            get(discovery::bb2_smart_configuration),
        )
        .route(
            "/v2/connect/.well-known/openid-configuration",
            get(discovery::bb2_openid_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::bb2_openid_configuration),
        )
        .route("/v2/o/authorize", any(append_slash))
        .route(
            "/v2/o/authorize/",
            get(authorize::bb2_get).post(authorize::bb2_post),
        )
        .route("/v2/o/authorize/{uuid}/", post(authorize::consent))
        .route("/mymedicare/login", get(login::bb2_login))
        .route("/mymedicare/sls-callback", get(login::sls_callback))
        .route("/v2/o/revoke_token", any(append_slash))
        .route("/v2/o/revoke_token/", post(token::revoke_token))
        .route("/v2/o/revoke", any(append_slash))
        .route("/v2/o/revoke/", post(token::revoke_grant))
        .route("/v2/o/introspect", any(append_slash))
        .route("/v2/o/introspect/", post(token::introspect))
        .route(
            "/v2/o/expire_authenticated_user/{patient}",
            any(append_slash),
        )
        .route(
            "/v2/o/expire_authenticated_user/{patient}/",
            post(token::expire_user),
        )
        .route("/v2/fhir/metadata", get(fhir::bb2_metadata))
        .merge(bb2_api)
        .layer(middleware::map_response(rate_limit_none));
    // A plain SMART App Launch 2.2 server.
    let mut smart = Router::new()
        .route(
            "/smart/fhir/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/smart/auth/authorize",
            get(authorize::smart_get).post(authorize::smart_post),
        )
        .route(
            "/smart/auth/login",
            get(login::smart_login_form).post(login::smart_login_submit),
        )
        .route("/smart/auth/consent/{uuid}", post(authorize::consent))
        .route("/smart/auth/introspect", post(token::introspect))
        .route("/smart/fhir/metadata", get(fhir::smart_metadata))
        .merge(
            Router::new()
                .route("/smart/auth/token", post(token::smart_token))
                .route("/smart/fhir", get(fhir::smart_pages))
                .route("/smart/fhir/{resource}", get(fhir::smart_search))
                .route("/smart/fhir/{resource}/{id}", get(fhir::smart_read))
                .route_layer(network()),
        );
    if shared.config.smart_revocation {
        smart = smart.route("/smart/auth/revoke", post(token::revoke_token));
    }
    let mut app = bb2.merge(smart);
    if shared.config.admin {
        app = app.merge(admin::routes());
    }
    app.with_state(shared.clone())
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(GZIP_ABOVE_BYTES + 1)))
        .layer(middleware::map_request_with_state(
            shared.clone(),
            gzip_only,
        ))
}
