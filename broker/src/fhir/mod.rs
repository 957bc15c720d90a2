//! The FHIR proxy: `GET /v1/fhir/{provider}/{type}[/{id}]` and `GET /v1/userinfo/{provider}`.
//!
//! GET only. Resource types, ids and query parameters are allow-listed; path segments are
//! checked after percent-decoding and re-encoded; the patient is fixed to the connection's;
//! the upstream host comes from configuration; the bearer token is attached here and never
//! leaves; only allow-listed headers cross, both ways; the body is streamed, never buffered
//! whole (gzip passed through when the browser accepts it) — except a search Bundle of a
//! provider that is not Blue Button, whose opaque paging links are sealed for the session
//! (`pages.rs`) before it is relayed.

mod allow;
pub(crate) mod pacing;
mod relay;
mod stream;

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::HeaderMap,
    response::Response,
    routing::get,
};
use connect_medicare_protocol::{
    ProviderKind,
    contract::{ErrorCode, routes},
};

#[cfg(feature = "fuzzing")]
pub(crate) use self::allow::search_target;
pub(crate) use self::allow::{read_url, search_url};
use self::{
    allow::{granted, not_allowed, resource_type, sealed_page, served},
    relay::{Target, proxy, proxy_public},
};
use crate::{
    config::Access,
    cookies::SessionCookie,
    error::ApiError,
    http::under_v1,
    pages,
    refresh::{self, Live},
    session,
    state::{AppState, ServedProvider},
};

/// The proxy's routes, under `/v1`.
pub(crate) fn routes() -> Router<AppState> {
    let (fhir, userinfo_) = (under_v1(routes::FHIR), under_v1(routes::USERINFO));
    Router::new()
        .route(&format!("{fhir}{{provider}}/{{resource}}"), get(search))
        .route(
            &format!("{fhir}{{provider}}/{{resource}}/{{id}}"),
            get(read),
        )
        .route(&format!("{userinfo_}{{provider}}"), get(userinfo))
}

/// `GET /v1/fhir/{provider}/{type}` — a search (or `metadata`).
async fn search(
    State(state): State<AppState>,
    Path((provider, resource)): Path<(String, String)>,
    cookie: SessionCookie,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let provider = state.provider_by_name(&provider)?;
    if resource == "metadata" {
        if query.is_some() {
            return Err(not_allowed("metadata takes no parameters"));
        }
        let url = provider.resolved.provider().fhir_base().join("metadata");
        return proxy_public(&state, &headers, &url).await;
    }
    let resource = resource_type(&resource)?;
    served(provider, resource, Access::Search)?;
    let (session, connection) =
        session::connection_to(&state, cookie, provider.resolved.id()).await?;
    let profile = provider.resolved.provider();
    // Blue Button's links are re-sent as searches (`startIndex`); every other provider's are
    // opaque, sealed for this session when relayed and opened here — or refused, before
    // anything reaches the provider (a token refresh included).
    let opaque = profile.kind() != ProviderKind::BlueButton;
    let opened = match sealed_page(query.as_deref()).filter(|_| opaque) {
        Some(sealed) => Some(
            pages::Binding {
                keys: state.keys(),
                session: &session,
                provider: provider.resolved.id(),
                resource: resource.name(),
                now: state.now(),
            }
            .open(&sealed, profile.fhir_base())?,
        ),
        None => None,
    };
    let connection = connection.ok_or_else(refresh::not_connected)?;
    let live = refresh::live(&state, &session, provider, connection).await?;
    granted(provider, &live, resource, Access::Search)?;
    let patient = live
        .connection
        .patient
        .clone()
        .ok_or_else(|| not_allowed("this connection has no patient"))?;
    let url = match opened {
        // Relayed while this session was connected to another patient (a disconnect and a
        // new sign-in since): not this connection's search.
        Some(opened) if opened.patient != patient.as_str() => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "this paging link belongs to an earlier connection: search again",
            ));
        }
        Some(opened) => opened.url,
        None => search_url(provider, resource, query.as_deref(), patient.as_str())?,
    };
    let target = Target {
        url,
        seal: opaque.then(|| (resource, patient.as_str().to_owned())),
        check: None,
        demographic: resource.is_patient(),
        accept: "application/fhir+json",
    };
    proxy(&state, &headers, provider, &session, live, &target).await
}

/// `GET /v1/fhir/{provider}/{type}/{id}` — a read.
async fn read(
    State(state): State<AppState>,
    Path((provider, resource, id)): Path<(String, String, String)>,
    cookie: SessionCookie,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let provider = state.provider_by_name(&provider)?;
    let (resource, url) = read_url(provider, &resource, &id, query.as_deref())?;
    let live = connected(&state, cookie, provider).await?;
    let session = live.connection.session_hash;
    granted(provider, &live, resource, Access::Read)?;
    let patient = live
        .connection
        .patient
        .as_ref()
        .map(|p| p.as_str().to_owned());
    if resource.is_patient() && patient.as_deref() != Some(id.as_str()) {
        return Err(ApiError::new(ErrorCode::NotFound, "no such resource"));
    }
    // Blue Button keeps its reads to the token's beneficiary itself; any other provider's
    // patient data is checked here before the browser sees it — and not read at all without a
    // patient to check it against (a token response that named none).
    let patient_data = resource.is_patient() || resource.patient_element().is_some();
    let check = match &patient {
        _ if provider.resolved.provider().kind() == ProviderKind::BlueButton || !patient_data => {
            None
        }
        Some(patient) => Some((resource, id.clone(), patient.clone())),
        None => return Err(not_allowed("this connection has no patient")),
    };
    let target = Target {
        url,
        seal: None,
        check,
        demographic: resource.is_patient(),
        accept: "application/fhir+json",
    };
    proxy(&state, &headers, provider, &session, live, &target).await
}

/// `GET /v1/userinfo/{provider}`.
async fn userinfo(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    cookie: SessionCookie,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let provider = state.provider_by_name(&provider)?;
    if query.is_some() {
        return Err(not_allowed("userinfo takes no parameters"));
    }
    let Some(url) = provider.resolved.provider().userinfo_endpoint() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this provider has no userinfo",
        ));
    };
    let live = connected(&state, cookie, provider).await?;
    let session = live.connection.session_hash;
    let target = Target {
        url: url.to_owned(),
        seal: None,
        check: None,
        demographic: true,
        accept: "application/json",
    };
    proxy(&state, &headers, provider, &session, live, &target).await
}

/// The request's session's connection to `provider`, with a live access token: one store
/// lookup, and a refresh first when the token is about to expire.
async fn connected(
    state: &AppState,
    cookie: SessionCookie,
    provider: &ServedProvider,
) -> Result<Live, ApiError> {
    let (session, connection) =
        session::connection_to(state, cookie, provider.resolved.id()).await?;
    let connection = connection.ok_or_else(refresh::not_connected)?;
    refresh::live(state, &session, provider, connection).await
}
