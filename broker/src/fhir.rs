//! The FHIR proxy: `GET /v1/fhir/{provider}/{type}[/{id}]` and `GET /v1/userinfo/{provider}`.
//!
//! GET only. Resource types, ids and query parameters are allow-listed; path segments are
//! checked after percent-decoding and re-encoded; the patient is fixed to the connection's;
//! the upstream host comes from configuration; the bearer token is attached here and never
//! leaves; only allow-listed headers cross, both ways; the body is streamed, never buffered
//! whole (gzip passed through when the browser accepts it).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use connect_medicare_protocol::{EobType, OAuthError, ProviderKind, contract::ErrorCode};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::{
    app::{AppState, ServedProvider},
    error::ApiError,
    ids::SessionHash,
    refresh::{self, Live},
    session,
};

/// Upstream requests per second per connection (Blue Button throttles per access token at
/// roughly 10 per second): paced here so users rarely see a 429 at all.
const REQUESTS_PER_SECOND: u32 = 8;
/// The longest a request waits for its turn before the broker answers `rate_limited`.
const MAX_BUDGET_WAIT: Duration = Duration::from_secs(15);
/// The longest upstream `Retry-After` the broker waits out itself, once.
const MAX_HONOURED_RETRY_AFTER: u64 = 2;
/// Retries of a read after a 5xx or a transport failure.
const MAX_RETRIES: u32 = 2;
/// Upper bound for `_count` when the provider names none.
const DEFAULT_MAX_COUNT: u32 = 100;

/// The per-connection pacing of upstream requests.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    next_slot: Mutex<HashMap<(SessionHash, String), Instant>>,
}

impl Budget {
    /// Waits for this connection's next slot, or answers how many seconds to retry after
    /// when that would be longer than [`MAX_BUDGET_WAIT`].
    async fn take(&self, key: (SessionHash, String)) -> Result<(), ApiError> {
        let interval = Duration::from_secs(1) / REQUESTS_PER_SECOND;
        let slot = {
            let mut map = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            map.retain(|_, next| *next > now);
            let next = map.entry(key).or_insert(now);
            let slot = (*next).max(now);
            if slot - now > MAX_BUDGET_WAIT {
                let seconds = (slot - now).as_secs().max(1);
                return Err(
                    ApiError::new(ErrorCode::RateLimited, "too many requests; slow down")
                        .with_retry_after(seconds),
                );
            }
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }
}

/// The three resource types the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Patient,
    Coverage,
    ExplanationOfBenefit,
}

impl Resource {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "Patient" => Ok(Self::Patient),
            "Coverage" => Ok(Self::Coverage),
            "ExplanationOfBenefit" => Ok(Self::ExplanationOfBenefit),
            _ => Err(not_allowed("this resource type is not served")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Coverage => "Coverage",
            Self::ExplanationOfBenefit => "ExplanationOfBenefit",
        }
    }
}

fn not_allowed(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::NotAllowed, message)
}

/// What to fetch upstream.
struct Target {
    url: String,
    /// Patient reads and userinfo answer 403 when demographics were withheld.
    demographic: bool,
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
    let resource = Resource::parse(&resource)?;
    let session = session_of(&state, &headers).await?;
    let live = refresh::live(&state, &session, provider).await?;
    let patient = live
        .connection
        .patient
        .clone()
        .ok_or_else(|| not_allowed("this connection has no patient"))?;
    let mut pairs = allowed_query(provider, resource, query.as_deref())?;
    // The search is always the connection's own patient's.
    let forced = match resource {
        Resource::Patient => ("_id", patient.as_str().to_owned()),
        Resource::Coverage => ("beneficiary", format!("Patient/{}", patient.as_str())),
        Resource::ExplanationOfBenefit => ("patient", patient.as_str().to_owned()),
    };
    pairs.push((forced.0.to_owned(), forced.1));
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        query.finish()
    };
    let url = format!(
        "{}?{query}",
        provider
            .resolved
            .provider()
            .fhir_base()
            .join(resource.name()),
    );
    let target = Target {
        url,
        demographic: resource == Resource::Patient,
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
    let resource = Resource::parse(&resource)?;
    if query.is_some() {
        return Err(not_allowed("a read takes no parameters"));
    }
    // `id` arrives percent-decoded: it must be a FHIR id, and never a dot segment.
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
    let session = session_of(&state, &headers).await?;
    let live = refresh::live(&state, &session, provider).await?;
    if resource == Resource::Patient
        && live.connection.patient.as_ref().map(|p| p.as_str()) != Some(id.as_str())
    {
        return Err(ApiError::new(ErrorCode::NotFound, "no such resource"));
    }
    let encoded: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let url = provider
        .resolved
        .provider()
        .fhir_base()
        .join(&format!("{}/{encoded}", resource.name()));
    let target = Target {
        url,
        demographic: resource == Resource::Patient,
    };
    proxy(&state, &headers, provider, &session, live, &target).await
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
    let session = session_of(&state, &headers).await?;
    let live = refresh::live(&state, &session, provider).await?;
    let target = Target {
        url: url.to_owned(),
        demographic: true,
    };
    proxy(&state, &headers, provider, &session, live, &target).await
}

async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<SessionHash, ApiError> {
    session::current(state, headers).await
}

/// The request's query, checked against the allow-list of `resource` on `provider`.
fn allowed_query(
    provider: &ServedProvider,
    resource: Resource,
    query: Option<&str>,
) -> Result<Vec<(String, String)>, ApiError> {
    let profile = provider.resolved.provider();
    let max_count = profile.max_page_size().unwrap_or(DEFAULT_MAX_COUNT);
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let repeatable = matches!(name.as_ref(), "service-date" | "_lastUpdated");
        let seen = out.iter().filter(|(k, _)| *k == name).count();
        if seen > usize::from(repeatable) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a query parameter appears too many times",
            ));
        }
        match name.as_ref() {
            "_count" => {
                let ok = value.parse::<u32>().is_ok_and(|n| n <= max_count);
                if !ok {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("_count must be an integer from 0 to {max_count}"),
                    ));
                }
            }
            "startIndex" => {
                if value.parse::<u32>().is_err() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "startIndex must be a non-negative integer",
                    ));
                }
            }
            "_lastUpdated" => date_param(&value)?,
            "service-date" if resource == Resource::ExplanationOfBenefit => date_param(&value)?,
            "type" if resource == Resource::ExplanationOfBenefit => {
                let ok = match profile.kind() {
                    ProviderKind::BlueButton => EobType::parse_list(&value).is_some(),
                    _ => value.len() <= 512 && value.bytes().all(|b| b.is_ascii_graphic()),
                };
                if !ok {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "type must be a comma list of claim types",
                    ));
                }
            }
            _ => return Err(not_allowed("a query parameter is not on the allow-list")),
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// `lt|le|gt|ge` then a FHIR date or dateTime.
fn date_param(value: &str) -> Result<(), ApiError> {
    let ok = ["lt", "le", "gt", "ge"]
        .iter()
        .any(|op| value.starts_with(op))
        && value.len() <= 40
        && value[2..].len() >= 4
        && value[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T' | b'.' | b'+' | b'Z'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "dates need an lt, le, gt or ge prefix and a FHIR date",
        ))
    }
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
    let gzip = accepts_gzip(headers);
    let key = (*session, provider.resolved.id().as_str().to_owned());
    let mut refreshed = false;
    let mut waited = false;
    let mut retries = 0;
    if target.demographic && !live.connection.demographics_shared {
        return Err(demographics_withheld());
    }
    loop {
        state.budget().take(key.clone()).await?;
        let mut request = state
            .upstream()
            .client()
            .get(&target.url)
            .bearer_auth(live.access.expose_secret())
            .header(header::ACCEPT, "application/fhir+json");
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
            return stream(
                response,
                state.config().upstream_timeouts().max_body_bytes(),
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
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
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

fn demographics_withheld() -> ApiError {
    ApiError::new(
        ErrorCode::DemographicsWithheld,
        "the beneficiary chose not to share personal information",
    )
}

/// Streams an upstream response to the browser with allow-listed headers only, never more
/// than `max` bytes: a body announced larger is refused (`upstream_error`), and one that grows
/// past it while streaming is cut off (the browser sees a failed transfer, never a truncated
/// document that parses).
fn stream(response: reqwest::Response, max: u64) -> Result<Response, ApiError> {
    if response.content_length().is_some_and(|length| length > max) {
        return Err(ApiError::new(
            ErrorCode::UpstreamError,
            "the provider's answer is larger than this broker relays",
        ));
    }
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        if let Some(value) = response.headers().get(name)
            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
        {
            headers.insert(name, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let mut relayed: u64 = 0;
    let body = futures_util::StreamExt::map(response.bytes_stream(), move |chunk| {
        let chunk = chunk?;
        relayed += chunk.len() as u64;
        if relayed > max {
            return Err(std::io::Error::other("the upstream body exceeds the relay limit").into());
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(chunk)
    });
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
