//! The FHIR proxy: `GET /v1/fhir/{provider}/{type}[/{id}]` and `GET /v1/userinfo/{provider}`.
//!
//! GET only. Resource types, ids and query parameters are allow-listed; path segments are
//! checked after percent-decoding and re-encoded; the patient is fixed to the connection's;
//! the upstream host comes from configuration; the bearer token is attached here and never
//! leaves; only allow-listed headers cross, both ways; the body is streamed, never buffered
//! whole (gzip passed through when the browser accepts it) — except a search Bundle of a
//! provider that is not Blue Button, whose opaque paging links are sealed for the session
//! (`pages.rs`) before it is relayed.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use connect_medicare_protocol::{
    OAuthError, Permissions, ProviderKind, Timestamp,
    contract::ErrorCode,
    resources::{ParamKind, ResourceType},
};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::{
    app::{AppState, ServedProvider},
    compartment,
    config::Access,
    error::ApiError,
    ids::SessionHash,
    pages,
    refresh::{self, Live},
    session,
};

/// Past this many connections in the pacing map, the ones whose slot has passed are forgotten
/// (not on every request: that would scan every connection each time).
const PRUNE_AT: usize = 4096;
/// The longest a request waits for its turn before the broker answers `rate_limited`.
const MAX_BUDGET_WAIT: Duration = Duration::from_secs(15);
/// The longest upstream `Retry-After` the broker waits out itself, once.
const MAX_HONOURED_RETRY_AFTER: u64 = 2;
/// Retries of a read after a 5xx or a transport failure.
const MAX_RETRIES: u32 = 2;
/// Upper bound for `_count` when the provider names none.
const DEFAULT_MAX_COUNT: u32 = 100;

/// The per-connection pacing of upstream requests: at most each provider's
/// `requests_per_second` in any [`WINDOW`] (a second and a margin) — the sliding log Blue
/// Button's throttle keeps per access token (Django REST framework's `SimpleRateThrottle`), so
/// a burst of pages goes out at once and only the requests past the limit wait for the window
/// to move.
///
/// Hand-written rather than `governor`: a GCRA limiter admits its burst *and* its rate within
/// one window (burst 9 at 9/s lets 17 through in a second), so to stay under a sliding log of
/// 10 it must halve one of them; and spacing requests evenly at 9/s would hold back a burst of
/// six planned pages by up to 0.67 s. With this window, `scripts/bench.sh paging` reads all 327
/// claims of one beneficiary at 200 ms latency in 0.65 s, near the floor of two round trips
/// (`BENCHMARKS.md`).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Per connection, the times of its last requests (the last `requests_per_second` at
    /// most), oldest first; a time may be in the future, a request waiting for it.
    sent: Mutex<HashMap<(SessionHash, String), VecDeque<Instant>>>,
}

/// The window a provider's `requests_per_second` counts over: a second, and a margin for the
/// network. The provider counts requests as they *arrive*: a burst sent exactly a second after
/// the previous one can reach it within the same second when the earlier burst was a little
/// slower on its way (seen as a rare 429 in `broker/tests/security.rs::
/// fifty_concurrent_requests_at_expiry_make_one_refresh`, bursts of 9 a second apart on
/// loopback). Paging stays one burst per round trip: 100 ms only delays a second burst.
const WINDOW: Duration = Duration::from_millis(1100);

impl Budget {
    /// Waits for this connection's next slot, or answers how many seconds to retry after
    /// when that would be longer than [`MAX_BUDGET_WAIT`]. `per_second` 0 paces nothing.
    async fn take(&self, key: (SessionHash, String), per_second: u32) -> Result<(), ApiError> {
        if per_second == 0 {
            return Ok(());
        }
        let limit = per_second as usize;
        let slot = {
            let mut map = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if map.len() > PRUNE_AT {
                map.retain(|_, sent| sent.back().is_some_and(|last| *last + WINDOW > now));
            }
            let sent = map.entry(key).or_default();
            // The request `limit` before this one must be a window ago.
            let slot = match sent.len().checked_sub(limit) {
                Some(i) => now.max(sent[i] + WINDOW),
                None => now,
            };
            if slot - now > MAX_BUDGET_WAIT {
                let seconds = (slot - now).as_secs().max(1);
                return Err(
                    ApiError::new(ErrorCode::RateLimited, "too many requests; slow down")
                        .with_retry_after(seconds),
                );
            }
            sent.push_back(slot);
            while sent.len() > limit {
                sent.pop_front();
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }
}

/// The resource type named in the path, if this provider serves it for `access` and the
/// connection's grant can allow it (see [`served`]).
fn resource_type(raw: &str) -> Result<&'static ResourceType, ApiError> {
    ResourceType::get(raw).ok_or_else(|| not_allowed("this resource type is not served"))
}

/// Whether `provider` serves `resource` for `access`: Blue Button its three types; any other
/// provider the types on its configured `read` / `search` list, or, when it has none, every
/// type the broker can keep to the patient that the granted scopes allow.
fn served(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    access: Access,
) -> Result<(), ApiError> {
    let lists = provider.resolved.resources();
    let blue_button = provider.resolved.provider().kind() == ProviderKind::BlueButton;
    let listed = match lists.configured(access) {
        Some(list) => list.contains(&resource),
        None if blue_button => ResourceType::BLUE_BUTTON.contains(&resource.name()),
        None => true,
    };
    if !listed {
        return Err(not_allowed(match access {
            Access::Read => "this resource type is not on this provider's read allow-list",
            Access::Search => "this resource type is not on this provider's search allow-list",
        }));
    }
    if access == Access::Search && !resource.searchable() {
        return Err(not_allowed(
            "this resource type is read by id only: it is not in the patient's compartment",
        ));
    }
    Ok(())
}

/// Whether the connection's granted scopes can allow `access` to `resource` at all. Blue
/// Button's grant is its own (demographics are checked apart), and so is the Patient of
/// every provider; a restricted scope (`…?category=…`) counts, the server enforcing it.
fn granted(
    provider: &ServedProvider,
    live: &Live,
    resource: &'static ResourceType,
    access: Access,
) -> Result<(), ApiError> {
    if provider.resolved.provider().kind() == ProviderKind::BlueButton || resource.is_patient() {
        return Ok(());
    }
    let permissions = match access {
        Access::Read => Permissions::READ,
        Access::Search => Permissions::SEARCH,
    };
    if live.connection.scopes.grants(resource.name(), permissions) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!(
                "the granted scopes do not allow {} {}: connect again asking for patient/{}.{}",
                match access {
                    Access::Read => "reading",
                    Access::Search => "searching",
                },
                resource.name(),
                resource.name(),
                match access {
                    Access::Read => "r",
                    Access::Search => "s",
                }
            ),
        ))
    }
}

fn not_allowed(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::NotAllowed, message)
}

/// What to fetch upstream.
struct Target {
    url: String,
    /// For a search of a provider with opaque paging links: the resource type and the
    /// connection's patient, under which the Bundle's `next` and `previous` links are sealed
    /// (`pages.rs`).
    seal: Option<(&'static ResourceType, String)>,
    /// For a read of a type in the patient compartment, from a provider that is not Blue
    /// Button: the type, id and patient the resource must match (`compartment.rs`).
    check: Option<(&'static ResourceType, String, String)>,
    /// Patient reads and userinfo answer 403 when demographics were withheld.
    demographic: bool,
    /// What to `Accept`: FHIR JSON for the FHIR API; plain JSON for userinfo, which is not a
    /// FHIR endpoint (Blue Button answers it 406 for `application/fhir+json`).
    accept: &'static str,
}

/// `GET /v1/fhir/{provider}/{type}` — a search (or `metadata`).
pub(crate) async fn search(
    State(state): State<AppState>,
    Path((provider, resource)): Path<(String, String)>,
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
        session::current_connection(&state, &headers, provider.resolved.id()).await?;
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
pub(crate) async fn read(
    State(state): State<AppState>,
    Path((provider, resource, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let provider = state.provider_by_name(&provider)?;
    let (resource, url) = read_url(provider, &resource, &id, query.as_deref())?;
    let live = connected(&state, &headers, provider).await?;
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

/// A read's resource type and upstream URL, from the path segments and query the browser sent
/// (`id` percent-decoded): the type served for reads, no query, and an id that is a FHIR id —
/// never a dot segment — sent percent-encoded.
pub(crate) fn read_url(
    provider: &ServedProvider,
    resource: &str,
    id: &str,
    query: Option<&str>,
) -> Result<(&'static ResourceType, String), ApiError> {
    let resource = resource_type(resource)?;
    served(provider, resource, Access::Read)?;
    if query.is_some() {
        return Err(not_allowed("a read takes no parameters"));
    }
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && id != "."
        && id != "..";
    if !valid {
        return Err(not_allowed("not a FHIR resource id"));
    }
    let encoded: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let url = provider
        .resolved
        .provider()
        .fhir_base()
        .join(&format!("{}/{encoded}", resource.name()));
    Ok((resource, url))
}

/// The sealed link of a query that is exactly `_page=<sealed>`.
fn sealed_page(query: Option<&str>) -> Option<String> {
    let mut pairs = form_urlencoded::parse(query?.as_bytes());
    match (pairs.next(), pairs.next()) {
        (Some((name, value)), None) if name == pages::PAGE_PARAM => Some(value.into_owned()),
        _ => None,
    }
}

/// `GET /v1/userinfo/{provider}`.
pub(crate) async fn userinfo(
    State(state): State<AppState>,
    Path(provider): Path<String>,
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
    let live = connected(&state, &headers, provider).await?;
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
    headers: &HeaderMap,
    provider: &ServedProvider,
) -> Result<Live, ApiError> {
    let (session, connection) =
        session::current_connection(state, headers, provider.resolved.id()).await?;
    let connection = connection.ok_or_else(refresh::not_connected)?;
    refresh::live(state, &session, provider, connection).await
}

/// What the search handler checks before it looks at the session, then [`search_url`]: for
/// the fuzz targets (`fuzzing.rs`).
#[cfg(feature = "fuzzing")]
pub(crate) fn search_target(
    provider: &ServedProvider,
    resource: &str,
    query: Option<&str>,
    patient: &str,
) -> Result<String, ApiError> {
    let resource = resource_type(resource)?;
    served(provider, resource, Access::Search)?;
    search_url(provider, resource, query, patient)
}

/// A search's upstream URL: the browser's query on the allow-list ([`allowed_query`]), pinned
/// to the connection's `patient`.
pub(crate) fn search_url(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    query: Option<&str>,
    patient: &str,
) -> Result<String, ApiError> {
    let profile = provider.resolved.provider();
    let mut pairs = allowed_query(provider, resource, query)?;
    // The search is always the connection's own patient's.
    let (name, value) = resource
        .pin_on(profile.kind(), patient)
        .ok_or_else(|| not_allowed("this resource type is read by id only"))?;
    pairs.push((name.to_owned(), value));
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        query.append_pair(k, v);
    }
    Ok(format!(
        "{}?{}",
        profile.fhir_base().join(resource.name()),
        query.finish()
    ))
}

/// The request's query, checked against the allow-list of `resource` on `provider`: paging
/// (`_count`, `startIndex`), the type's own parameters ([`ResourceType::param`]), `_sort` on
/// the type's dates and `_include` of what the type allows; each at most once, dates twice.
fn allowed_query(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    query: Option<&str>,
) -> Result<Vec<(String, String)>, ApiError> {
    let profile = provider.resolved.provider();
    let blue_button = profile.kind() == ProviderKind::BlueButton;
    let max_count = profile.max_page_size().unwrap_or(DEFAULT_MAX_COUNT);
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let kind = resource.param(&name);
        let repeatable = kind.is_some_and(ParamKind::repeatable);
        let seen = out.iter().filter(|(k, _)| *k == name).count();
        if seen > usize::from(repeatable) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a query parameter appears too many times",
            ));
        }
        let invalid = |why: &str| ApiError::new(ErrorCode::InvalidRequest, format!("{name} {why}"));
        match (name.as_ref(), kind) {
            ("_count", _) => {
                if !value.parse::<u32>().is_ok_and(|n| n <= max_count) {
                    return Err(invalid(&format!(
                        "must be an integer from 0 to {max_count}"
                    )));
                }
            }
            ("startIndex", _) => {
                if value.parse::<u32>().is_err() {
                    return Err(invalid("must be a non-negative integer"));
                }
            }
            ("_sort", _) if resource.sortable() => {
                resource.check_sort(&value).map_err(invalid)?;
            }
            ("_include", _) if !resource.includes().is_empty() => {
                if !resource.includes().contains(&value.as_ref()) {
                    return Err(invalid(&format!(
                        "may only be {}",
                        resource.includes().join(" or ")
                    )));
                }
            }
            (_, Some(kind)) => kind.check(&value, blue_button).map_err(invalid)?,
            (_, None) => {
                let mut allowed: Vec<&str> = resource.param_names().collect();
                if resource.sortable() {
                    allowed.push("_sort");
                }
                if !resource.includes().is_empty() {
                    allowed.push("_include");
                }
                allowed.push("_count");
                return Err(ApiError::new(
                    ErrorCode::NotAllowed,
                    format!(
                        "a query parameter is not on the allow-list: {} searches take {}",
                        resource.name(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.trim().split(';');
            parts
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        })
}

/// Response headers that may come back from upstream; everything else is dropped
/// (`Set-Cookie` above all).
const FORWARDED: [&str; 8] = [
    "content-type",
    "content-encoding",
    "content-length",
    "etag",
    "last-modified",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fn backoff(attempt: u32) -> Duration {
    let mut jitter = [0u8; 2];
    let _ = getrandom::fill(&mut jitter);
    let jitter = u64::from(u16::from_le_bytes(jitter) % 100);
    Duration::from_millis((200 << attempt.min(4)) + jitter)
}

/// `metadata`: no token, but the same header allow-list and streaming.
async fn proxy_public(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
) -> Result<Response, ApiError> {
    let mut request = state
        .upstream()
        .client()
        .get(url)
        .header(header::ACCEPT, "application/fhir+json");
    if accepts_gzip(headers) {
        request = request.header(header::ACCEPT_ENCODING, "gzip");
    }
    let response = request.send().await.map_err(|_| unavailable())?;
    if !response.status().is_success() {
        return Err(unavailable());
    }
    stream(
        response,
        state.config().upstream_timeouts().max_body_bytes(),
        accepts_gzip(headers),
    )
}

fn unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamUnavailable,
        "the provider could not be reached",
    )
}

/// Sends the request with the connection's token, refreshing once on 401, honouring a short
/// `Retry-After` once, and retrying 5xx / transport failures with jittered backoff.
async fn proxy(
    state: &AppState,
    headers: &HeaderMap,
    provider: &ServedProvider,
    session: &SessionHash,
    mut live: Live,
    target: &Target,
) -> Result<Response, ApiError> {
    // A Bundle whose links are sealed, or a resource checked for its patient, is read here
    // whole: asked for without gzip.
    let gzip = accepts_gzip(headers) && target.seal.is_none() && target.check.is_none();
    let key = (*session, provider.resolved.id().as_str().to_owned());
    let mut refreshed = false;
    let mut waited = false;
    let mut retries = 0;
    if target.demographic && !live.connection.demographics_shared {
        return Err(demographics_withheld());
    }
    loop {
        state
            .budget()
            .take(key.clone(), provider.resolved.requests_per_second())
            .await?;
        let mut request = state
            .upstream()
            .client()
            .get(&target.url)
            .bearer_auth(live.access.expose_secret())
            .header(header::ACCEPT, target.accept);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        let started = std::time::Instant::now();
        let sent = request.send().await;
        state
            .upstream()
            .observe(crate::metrics::UpstreamCall::Fhir, started);
        let response = match sent {
            Ok(response) => response,
            Err(e) if retries < MAX_RETRIES => {
                tracing::info!(timeout = e.is_timeout(), "upstream read failed; retrying");
                tokio::time::sleep(backoff(retries)).await;
                retries += 1;
                continue;
            }
            Err(_) => return Err(unavailable()),
        };
        let status = response.status();
        if status.is_success() {
            if let Some((resource, patient)) = &target.seal {
                let sealing = Sealing {
                    resource,
                    patient,
                    fetched: &target.url,
                };
                return relay_sealed(state, response, session, provider, &sealing).await;
            }
            if let Some((resource, id, patient)) = &target.check {
                let (status, body, permit) = read_whole(state, response).await?;
                let owner = compartment::Owner {
                    patient,
                    fhir_base: provider.resolved.provider().fhir_base().as_str(),
                };
                owner.check_read(&body, resource, id).inspect_err(|_| {
                    tracing::warn!(
                        provider = %provider.resolved.id().as_str(),
                        resource = resource.name(),
                        "a read answered a resource that is not the connection's patient's"
                    );
                })?;
                return Ok(pages::bundle_response(status, body, permit));
            }
            return stream(
                response,
                state.config().upstream_timeouts().max_body_bytes(),
                gzip,
            );
        }
        match status.as_u16() {
            401 if !refreshed => {
                // The token died upstream (revoked, rotated elsewhere, expired early):
                // refresh once and replay this request once.
                live =
                    refresh::refresh(state, session, provider, live.connection.generation).await?;
                refreshed = true;
            }
            401 => return Err(refresh::reconnect_required()),
            403 if target.demographic && !live.connection.demographics_shared => {
                return Err(demographics_withheld());
            }
            403 => {
                return Err(ApiError::new(
                    ErrorCode::InsufficientScope,
                    "the granted scopes do not cover this read",
                ));
            }
            404 => return Err(ApiError::new(ErrorCode::NotFound, "no such resource")),
            429 => {
                state.metrics().throttled();
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| retry_after_seconds(v, state.now()))
                    .unwrap_or(1);
                if !waited && retry_after <= MAX_HONOURED_RETRY_AFTER {
                    waited = true;
                    tokio::time::sleep(Duration::from_secs(retry_after)).await;
                    continue;
                }
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "the provider is throttling requests; retry later",
                )
                .with_retry_after(retry_after));
            }
            400 => {
                let content_type = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.bytes().await.unwrap_or_default();
                let error = OAuthError::from_response(400, content_type.as_deref(), &body);
                let detail: String = error
                    .description()
                    .unwrap_or("bad request")
                    .chars()
                    .take(200)
                    .collect();
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the provider refused the request: {detail}"),
                ));
            }
            500..=599 if retries < MAX_RETRIES => {
                tokio::time::sleep(backoff(retries)).await;
                retries += 1;
            }
            500..=599 => return Err(unavailable()),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::UpstreamError,
                    format!("the provider answered HTTP {}", status.as_u16()),
                ));
            }
        }
    }
}

/// The search page a Bundle answers, for [`relay_sealed`].
struct Sealing<'a> {
    resource: &'static ResourceType,
    patient: &'a str,
    fetched: &'a str,
}

/// Relays a search Bundle with its paging links sealed for this session (`pages.rs`): read
/// whole, within [`pages::MAX_BUFFERED`] (and the relay limit) and at most
/// [`pages::MAX_BUFFERED_RELAYS`] at once; inflated first if the provider sent gzip unasked.
async fn relay_sealed(
    state: &AppState,
    response: reqwest::Response,
    session: &SessionHash,
    provider: &ServedProvider,
    sealing: &Sealing<'_>,
) -> Result<Response, ApiError> {
    let (status, body, permit) = read_whole(state, response).await?;
    let binding = pages::Binding {
        keys: state.keys(),
        session,
        provider: provider.resolved.id(),
        resource: sealing.resource.name(),
        now: state.now(),
    };
    let page = pages::Page {
        fetched: sealing.fetched,
        base: provider.resolved.provider().fhir_base(),
        public: state.config().public_base_url().as_str(),
        patient: sealing.patient,
        resource: sealing.resource,
    };
    let body = pages::reseal(&body, &binding, &page).inspect_err(|e| {
        tracing::warn!(
            provider = %provider.resolved.id().as_str(),
            resource = sealing.resource.name(),
            code = %e.code().as_str(),
            "a search page could not be relayed"
        );
    })?;
    Ok(pages::bundle_response(status, body, permit))
}

/// An upstream answer read whole, within [`pages::MAX_BUFFERED`] (and the relay limit), holding
/// one of [`pages::MAX_BUFFERED_RELAYS`] places until the browser has the bytes; inflated first
/// if the provider sent gzip unasked.
async fn read_whole(
    state: &AppState,
    response: reqwest::Response,
) -> Result<(StatusCode, Vec<u8>, tokio::sync::SemaphorePermit<'static>), ApiError> {
    use std::io::Read as _;
    let max = state
        .config()
        .upstream_timeouts()
        .max_body_bytes()
        .min(pages::MAX_BUFFERED);
    let too_large = || {
        ApiError::new(
            ErrorCode::UpstreamError,
            "the provider's answer is larger than this broker relays",
        )
    };
    if response.content_length().is_some_and(|length| length > max) {
        return Err(too_large());
    }
    // A place among the Bundles held in memory, kept until the browser has the bytes; waited
    // for briefly, or the read is turned away.
    let permit = tokio::time::timeout(pages::BUFFERED_WAIT, pages::BUFFERED_RELAYS.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::RateLimited,
                "the broker is busy; try again shortly",
            )
            .with_retry_after(1)
        })?
        .map_err(|_| unavailable())?;
    let gzipped = match response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or_default().trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UpstreamError,
                "the provider answered in an encoding this broker does not relay",
            ));
        }
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    // The whole body within a deadline: a provider that trickles bytes does not hold a place.
    let read = async {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = futures_util::StreamExt::next(&mut chunks).await {
            body.extend_from_slice(&chunk.map_err(|_| unavailable())?);
            if body.len() as u64 > max {
                return Err(too_large());
            }
        }
        Ok(body)
    };
    let mut body = tokio::time::timeout(pages::BUFFERED_READ, read)
        .await
        .map_err(|_| unavailable())??;
    if gzipped {
        let mut inflated = Vec::new();
        flate2::read::MultiGzDecoder::new(body.as_slice())
            .take(max + 1)
            .read_to_end(&mut inflated)
            .map_err(|_| {
                ApiError::new(ErrorCode::UpstreamError, "the provider's gzip is broken")
            })?;
        if inflated.len() as u64 > max {
            return Err(too_large());
        }
        body = inflated;
    }
    Ok((status, body, permit))
}

/// The seconds an upstream `Retry-After` asks for: delay-seconds, or an HTTP-date (RFC 9110
/// §10.2.3) counted from `now` (a date already past is 0). `None` when it is neither.
fn retry_after_seconds(value: &HeaderValue, now: Timestamp) -> Option<u64> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    let now = u64::try_from(now.unix_seconds()).ok()?;
    Some(at.as_secs().saturating_sub(now))
}

fn demographics_withheld() -> ApiError {
    ApiError::new(
        ErrorCode::DemographicsWithheld,
        "the beneficiary chose not to share personal information",
    )
}

/// How an upstream body reaches the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Not encoded: the bytes as they come.
    Plain,
    /// gzip, to a browser that accepts it: passed through as it came, while a decoder beside
    /// it counts what the browser will inflate.
    Gzip,
    /// gzip the browser did not ask for: inflated here.
    Inflate,
}

/// Streams an upstream response to the browser with allow-listed headers only, never more
/// than `max` bytes as the browser will read them — decompressed bytes, for gzip: a body
/// announced larger is refused (`upstream_error`), and one that grows past it while streaming
/// is cut off (the browser sees a failed transfer, never a truncated document that parses).
///
/// gzip reaches only a browser that accepts it (`accepts_gzip`); a provider that compresses
/// unasked is inflated here. Counting a passed-through body's inflated size means inflating
/// it on the side: safety before the pass-through's speed. Other encodings are refused.
fn stream(response: reqwest::Response, max: u64, accepts_gzip: bool) -> Result<Response, ApiError> {
    let relay = match response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or_default().trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => Relay::Plain,
        Some("gzip" | "x-gzip") if accepts_gzip => Relay::Gzip,
        Some("gzip" | "x-gzip") => Relay::Inflate,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UpstreamError,
                "the provider answered in an encoding this broker does not relay",
            ));
        }
    };
    if response.content_length().is_some_and(|length| length > max) {
        return Err(ApiError::new(
            ErrorCode::UpstreamError,
            "the provider's answer is larger than this broker relays",
        ));
    }
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        let encoded = matches!(name, "content-encoding" | "content-length" | "etag");
        if relay == Relay::Inflate && encoded {
            // Those describe the compressed body the browser will not see.
            continue;
        }
        if let Some(value) = response.headers().get(name)
            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
        {
            headers.insert(name, value);
        }
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let state = Relaying {
        upstream: Box::pin(response.bytes_stream()),
        inflater: (relay != Relay::Plain)
            .then(|| flate2::write::MultiGzDecoder::new(Capped::new(max, relay == Relay::Inflate))),
        relayed: 0,
        max,
        done: false,
    };
    let body = futures_util::stream::unfold(state, Relaying::next);
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A relayed body in progress.
struct Relaying {
    upstream: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>,
    >,
    /// For gzip: the decoder that counts (and, to inflate, keeps) what the body inflates to.
    inflater: Option<flate2::write::MultiGzDecoder<Capped>>,
    /// Bytes received from upstream.
    relayed: u64,
    max: u64,
    done: bool,
}

impl Relaying {
    /// The next chunk for the browser; an error ends the transfer.
    async fn next(mut self) -> Option<(Result<axum::body::Bytes, BoxError>, Self)> {
        use std::io::Write as _;
        if self.done {
            return None;
        }
        let over = || -> BoxError {
            std::io::Error::other("the upstream body exceeds the relay limit").into()
        };
        let chunk = match futures_util::StreamExt::next(&mut self.upstream).await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                self.done = true;
                return Some((Err(e.into()), self));
            }
            None => {
                self.done = true;
                let inflater = self.inflater.take()?;
                // The end of the stream: the decoder checks the gzip trailer and gives up
                // what it still holds.
                let out = match inflater.finish() {
                    Ok(capped) => Ok(axum::body::Bytes::from(capped.kept)),
                    Err(e) => Err(e.into()),
                };
                return Some((out, self));
            }
        };
        self.relayed += chunk.len() as u64;
        if self.relayed > self.max {
            self.done = true;
            return Some((Err(over()), self));
        }
        let Some(inflater) = self.inflater.as_mut() else {
            return Some((Ok(chunk), self));
        };
        if let Err(e) = inflater.write_all(&chunk) {
            self.done = true;
            return Some((Err(e.into()), self));
        }
        let out = if inflater.get_ref().keep {
            axum::body::Bytes::from(std::mem::take(&mut inflater.get_mut().kept))
        } else {
            chunk
        };
        Some((Ok(out), self))
    }
}

/// Where a gzip decoder writes: counts every inflated byte and refuses to go past `max`;
/// keeps the bytes only when the broker inflates for the browser.
struct Capped {
    written: u64,
    max: u64,
    keep: bool,
    kept: Vec<u8>,
}

impl Capped {
    fn new(max: u64, keep: bool) -> Self {
        Self {
            written: 0,
            max,
            keep,
            kept: Vec::new(),
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > self.max {
            return Err(std::io::Error::other(
                "the upstream body inflates past the relay limit",
            ));
        }
        if self.keep {
            self.kept.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacing_keeps_each_connection_within_its_providers_rate_in_any_second() {
        let budget = Budget::default();
        let key = |n: u8| {
            let hash = SessionHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap();
            (hash, "ehr".to_owned())
        };
        let start = Instant::now();
        // Four per second: a burst of ten goes out four at once, then four a window (a second
        // and the network's margin) later, each a window after the one four before it, then two.
        let mut at = Vec::new();
        for _ in 0..10 {
            budget.take(key(1), 4).await.unwrap();
            at.push((Instant::now() - start).as_millis());
        }
        assert_eq!(at, [0, 0, 0, 0, 1100, 1100, 1100, 1100, 2200, 2200]);
        // Requests spread out are not held: one every 300 ms never puts five in a second.
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..6 {
            budget.take(key(1), 4).await.unwrap();
            at.push((Instant::now() - start).as_millis());
            tokio::time::advance(Duration::from_millis(300)).await;
        }
        assert_eq!(at, [0, 300, 600, 900, 1200, 1500]);
        // Another connection has a budget of its own; 0 paces nothing.
        let other = Instant::now();
        budget.take(key(2), 4).await.unwrap();
        for _ in 0..100 {
            budget.take(key(3), 0).await.unwrap();
        }
        assert_eq!(Instant::now(), other);
        // A slot further than MAX_BUDGET_WAIT away is not waited for: rate_limited, with
        // the seconds to wait.
        // (Sixteen requests take the slots of the next fifteen seconds, one every 1.1 s; the
        // next slot, 15.4 s away, is refused.)
        for _ in 0..16 {
            let key = key(4);
            let budget = &budget;
            let _ = tokio::time::timeout(Duration::ZERO, budget.take(key, 1)).await;
        }
        let refused = budget.take(key(4), 1).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert_eq!(refused.retry_after(), Some(15));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = Timestamp::from_unix_seconds(1_784_000_000);
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert_eq!(retry_after_seconds(&header("7"), now), Some(7));
        assert_eq!(retry_after_seconds(&header(" 120 "), now), Some(120));
        let ahead = std::time::UNIX_EPOCH + Duration::from_secs(1_784_000_120);
        let date = httpdate::fmt_http_date(ahead);
        assert_eq!(retry_after_seconds(&header(&date), now), Some(120));
        // RFC 9110 asks recipients to accept the obsolete forms too.
        assert_eq!(
            retry_after_seconds(&header("Tuesday, 14-Jul-26 04:55:20 GMT"), now),
            retry_after_seconds(&header("Tue, 14 Jul 2026 04:55:20 GMT"), now)
        );
        let past = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(retry_after_seconds(&header(&past), now), Some(0));
        for junk in ["-1", "soon", "1.5", ""] {
            assert_eq!(retry_after_seconds(&header(junk), now), None, "{junk:?}");
        }
    }
}
