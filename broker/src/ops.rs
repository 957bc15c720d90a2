//! The operational routes — `/healthz`, `/readyz`, `/metrics` (here or on a listener of its
//! own), `/openapi.json` — and housekeeping: the providers' health probes, the revocation
//! retries and the purge of expired flows and sessions.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    http::{no_store, not_found},
    ids::SessionId,
    metrics::Metrics,
    session,
    state::AppState,
};

/// The operational routes of the main listener: the probes (never cached), the OpenAPI
/// document, and `/metrics` unless the configuration gives it a listener of its own.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let router = Router::new()
        .route("/healthz", get(healthz).layer(no_store()))
        .route("/readyz", get(readyz).layer(no_store()))
        .route("/openapi.json", get(openapi));
    if state.config().metrics_listen().is_none() {
        router.route("/metrics", get(metrics_route))
    } else {
        router
    }
}

/// The router of the metrics listener (`metrics_listen`): `GET /metrics` and nothing else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_route))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /metrics`: the OpenMetrics text format, which Prometheus reads.
async fn metrics_route(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
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
    let probe = SessionId::from_random_bytes([0; 32]).hash();
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
