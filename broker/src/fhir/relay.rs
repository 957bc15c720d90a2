//! The exchange with the provider: the request with the connection's token, the retries,
//! the refresh after a 401, the answers turned into the API's errors, and the relay of what
//! comes back — streamed ([`stream`](super::stream)), or read whole when its paging links are
//! sealed or its patient is checked.

use std::time::Duration;

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use connect_medicare_protocol::{
    OAuthError, Timestamp, contract::ErrorCode, resources::ResourceType,
};
use secrecy::ExposeSecret;

use super::stream::{accepts_gzip, stream};
use crate::{
    compartment,
    error::ApiError,
    ids::SessionHash,
    pages,
    refresh::{self, Live},
    state::{AppState, ServedProvider},
};

/// The longest upstream `Retry-After` the broker waits out itself, once.
const MAX_HONOURED_RETRY_AFTER: u64 = 2;
/// Retries of a read after a 5xx or a transport failure.
const MAX_RETRIES: u32 = 2;

/// What to fetch upstream.
pub(super) struct Target {
    pub(super) url: String,
    /// For a search of a provider with opaque paging links: the resource type and the
    /// connection's patient, under which the Bundle's `next` and `previous` links are sealed
    /// (`pages.rs`).
    pub(super) seal: Option<(&'static ResourceType, String)>,
    /// For a read of a type in the patient compartment, from a provider that is not Blue
    /// Button: the type, id and patient the resource must match (`compartment.rs`).
    pub(super) check: Option<(&'static ResourceType, String, String)>,
    /// Patient reads and userinfo answer 403 when demographics were withheld.
    pub(super) demographic: bool,
    /// What to `Accept`: FHIR JSON for the FHIR API; plain JSON for userinfo, which is not a
    /// FHIR endpoint (Blue Button answers it 406 for `application/fhir+json`).
    pub(super) accept: &'static str,
}

fn backoff(attempt: u32) -> Duration {
    let mut jitter = [0u8; 2];
    let _ = getrandom::fill(&mut jitter);
    let jitter = u64::from(u16::from_le_bytes(jitter) % 100);
    Duration::from_millis((200 << attempt.min(4)) + jitter)
}

/// `metadata`: no token, but the same header allow-list and streaming.
pub(super) async fn proxy_public(
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
pub(super) async fn proxy(
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

#[cfg(test)]
mod tests {
    use super::*;

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
