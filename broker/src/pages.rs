//! Paging through SMART servers' opaque links, without letting the browser name a URL.
//!
//! Many FHIR servers (HAPI FHIR, the SMART reference server's upstream, many EHRs) page with
//! links the client cannot rebuild: `{base}?_getpages=<search id>&_getpagesoffset=20&_count=10`.
//! Passing the browser "any URL under the FHIR base" would let it ask for
//! `{base}/Observation?patient=<someone else>`, and a `_getpages` id is a bearer secret for a
//! search that was someone's. So the broker follows only a paging link it relayed itself, to
//! this session, for this provider and resource, recently:
//!
//! - when it relays a search Bundle from a provider that is not Blue Button, it replaces the
//!   `next` and `previous` links with its own URL, `…/v1/fhir/{provider}/{type}?_page=<sealed>`,
//!   where `<sealed>` is the upstream URL, the resource type and an expiry, sealed with the
//!   broker's key ring (XChaCha20-Poly1305, `crypto.rs`) under associated data binding it to
//!   the session and the provider ([`Aad::page_link`]). A link that does not point under the
//!   provider's FHIR base (another host, another path) is dropped, not sealed;
//! - `?_page=<sealed>`, alone, opens only for the session and provider it was sealed for,
//!   before its expiry, on the resource type it was sealed for: anything else is refused with
//!   `invalid_request`, before any upstream request.
//!
//! Blue Button keeps re-sending its search with `startIndex` and `_count` (its links name the
//! backend's host, and its Bundles are streamed, never buffered).

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use connect_medicare_protocol::{FhirBase, Timestamp, contract::ErrorCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::{
    crypto::{Aad, Ciphertext, KeyRing},
    error::ApiError,
    ids::SessionHash,
};
use connect_medicare_protocol::contract::ProviderId;

/// The query parameter that carries a sealed paging link.
pub(crate) const PAGE_PARAM: &str = "_page";

/// How long a sealed link opens after it was relayed: servers keep a search's pages for
/// minutes to an hour (HAPI FHIR's default is an hour).
const LIFETIME_SECONDS: i64 = 30 * 60;

/// The longest sealed link read (base64url): an upstream URL of a few kilobytes at most.
const MAX_SEALED: usize = 8 * 1024;

/// What a sealed link is bound to: the session, the provider and the resource type.
pub(crate) struct Binding<'a> {
    pub(crate) keys: &'a KeyRing,
    pub(crate) session: &'a SessionHash,
    pub(crate) provider: &'a ProviderId,
    pub(crate) resource: &'a str,
    pub(crate) now: Timestamp,
}

fn refused(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

impl Binding<'_> {
    /// `url` sealed: base64url of the ciphertext of `expires\nresource\nurl`.
    fn seal(&self, url: &str) -> Option<String> {
        let expires = self.now.unix_seconds().saturating_add(LIFETIME_SECONDS);
        let plain = SecretString::from(format!("{expires}\n{}\n{url}", self.resource));
        let sealed = self
            .keys
            .encrypt(&plain, &Aad::page_link(self.session, self.provider))
            .ok()?;
        Some(URL_SAFE_NO_PAD.encode(sealed.as_bytes()))
    }

    /// The upstream URL a sealed link holds, when it opens for this binding, is unexpired, and
    /// names a URL under `base`.
    pub(crate) fn open(&self, sealed: &str, base: &FhirBase) -> Result<String, ApiError> {
        let unknown =
            || refused("this paging link is not one this broker gave this session, or it expired");
        if sealed.len() > MAX_SEALED {
            return Err(unknown());
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| unknown())?;
        let plain = self
            .keys
            .decrypt(
                &Ciphertext::from_bytes(bytes),
                &Aad::page_link(self.session, self.provider),
            )
            .map_err(|_| unknown())?;
        let mut parts = plain.expose_secret().splitn(3, '\n');
        let (Some(expires), Some(resource), Some(url)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(unknown());
        };
        let live = expires
            .parse::<i64>()
            .is_ok_and(|at| self.now.unix_seconds() < at);
        if !live || resource != self.resource || !under(url, base) {
            return Err(unknown());
        }
        Ok(url.to_owned())
    }
}

/// Whether `url` is on the FHIR base's origin and under its path (the base itself included,
/// where HAPI's `_getpages` links point), with no fragment and no `..` segment.
fn under(url: &str, base: &FhirBase) -> bool {
    let base = base.as_str();
    let bare = base.trim_end_matches('/');
    let rest = if let Some(rest) = url.strip_prefix(base) {
        rest
    } else if let Some(rest) = url.strip_prefix(bare) {
        // The base without its trailing slash: only a query may follow.
        if !(rest.is_empty() || rest.starts_with('?')) {
            return false;
        }
        rest
    } else {
        return false;
    };
    let path = rest.split('?').next().unwrap_or_default();
    !url.contains('#')
        && !path.split('/').any(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded == "." || decoded == ".."
        })
        && !path.contains('\\')
        && !path.to_ascii_lowercase().contains("%2f")
        && !path.to_ascii_lowercase().contains("%5c")
}

/// The broker's own URL for a sealed link: `{public}/v1/fhir/{provider}/{resource}?_page=…`.
fn own_link(public: &str, provider: &ProviderId, resource: &str, sealed: &str) -> String {
    format!(
        "{}/v1/fhir/{}/{resource}?{PAGE_PARAM}={sealed}",
        public.trim_end_matches('/'),
        provider.as_str(),
    )
}

/// Rewrites a search Bundle's paging links for the browser: `next` and `previous` (and
/// `prev`) become the broker's own sealed links, or are dropped when they point elsewhere than
/// under `base`. Other links and every other field are left as they came. `None` when the body
/// is not JSON.
pub(crate) fn reseal(
    body: &[u8],
    binding: &Binding<'_>,
    base: &FhirBase,
    public: &str,
) -> Option<Vec<u8>> {
    let mut bundle: Value = serde_json::from_slice(body).ok()?;
    if bundle.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && let Some(links) = bundle.get_mut("link").and_then(Value::as_array_mut)
    {
        links.retain_mut(|link| {
            let relation = link
                .get("relation")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !matches!(relation, "next" | "previous" | "prev") {
                return true;
            }
            let sealed = link
                .get("url")
                .and_then(Value::as_str)
                .filter(|url| under(url, base))
                .and_then(|url| binding.seal(url));
            match sealed {
                Some(sealed) => {
                    link["url"] = Value::String(own_link(
                        public,
                        binding.provider,
                        binding.resource,
                        &sealed,
                    ));
                    true
                }
                None => false,
            }
        });
    }
    serde_json::to_vec(&bundle).ok()
}

/// The Bundle as the browser gets it: FHIR JSON, never cached.
pub(crate) fn bundle_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyId, KeyMaterial};

    fn hash(n: u8) -> SessionHash {
        SessionHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
    }

    fn keys() -> KeyRing {
        KeyRing::new([(KeyId::new("k1").unwrap(), KeyMaterial::from_bytes([7; 32]))]).unwrap()
    }

    #[test]
    fn only_urls_under_the_fhir_base_are_followed() {
        let base = FhirBase::parse("https://ehr.example/fhir/r4/").unwrap();
        for ok in [
            "https://ehr.example/fhir/r4?_getpages=abc&_getpagesoffset=20&_count=10",
            "https://ehr.example/fhir/r4/?_getpages=abc",
            "https://ehr.example/fhir/r4/Observation?page=2",
        ] {
            assert!(under(ok, &base), "{ok}");
        }
        for bad in [
            "https://evil.example/fhir/r4?_getpages=abc",
            "https://ehr.example/fhir/r4x?_getpages=abc",
            "https://ehr.example/fhir/r4-other/Patient",
            "https://ehr.example/fhir/r4/../admin",
            "https://ehr.example/fhir/r4/%2e%2E/admin",
            "https://ehr.example/fhir/r4/a%2Fb",
            "https://ehr.example/fhir/r4/a%5cb",
            "https://ehr.example/fhir/r4/Patient#x",
            "http://ehr.example/fhir/r4/Patient",
            "https://ehr.example.evil.example/fhir/r4/",
            "/fhir/r4/Patient",
        ] {
            assert!(!under(bad, &base), "{bad}");
        }
    }

    #[test]
    fn a_sealed_link_opens_only_for_its_session_provider_resource_and_time() {
        let keys = keys();
        let base = FhirBase::parse("https://ehr.example/fhir/").unwrap();
        let (a, b) = (hash(1), hash(2));
        let (ehr, other) = (
            ProviderId::new("ehr").unwrap(),
            ProviderId::new("other").unwrap(),
        );
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let binding = |session, provider, resource, now| Binding {
            keys: &keys,
            session,
            provider,
            resource,
            now,
        };
        let url = "https://ehr.example/fhir?_getpages=abc&_getpagesoffset=10&_count=10";
        let sealed = binding(&a, &ehr, "Observation", now).seal(url).unwrap();
        assert!(
            !sealed.contains("getpages"),
            "the URL is not readable in the link"
        );
        assert_eq!(
            binding(&a, &ehr, "Observation", now)
                .open(&sealed, &base)
                .unwrap(),
            url
        );
        let later = Timestamp::from_unix_seconds(now.unix_seconds() + LIFETIME_SECONDS);
        for refused in [
            binding(&b, &ehr, "Observation", now),
            binding(&a, &other, "Observation", now),
            binding(&a, &ehr, "Condition", now),
            binding(&a, &ehr, "Observation", later),
        ] {
            let error = refused.open(&sealed, &base).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest);
        }
        // Tampered, truncated, not base64url, oversized.
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        for bad in [
            String::from_utf8(tampered).unwrap(),
            sealed[..sealed.len() - 4].to_owned(),
            "not base64!".to_owned(),
            "A".repeat(MAX_SEALED + 1),
        ] {
            assert!(
                binding(&a, &ehr, "Observation", now)
                    .open(&bad, &base)
                    .is_err()
            );
        }
    }

    #[test]
    fn relayed_bundles_get_sealed_next_links_and_lose_foreign_ones() {
        let keys = keys();
        let base = FhirBase::parse("https://ehr.example/fhir/").unwrap();
        let session = hash(3);
        let ehr = ProviderId::new("ehr").unwrap();
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let binding = Binding {
            keys: &keys,
            session: &session,
            provider: &ehr,
            resource: "Observation",
            now,
        };
        let body = serde_json::json!({
            "resourceType": "Bundle",
            "total": 30,
            "link": [
                {"relation": "self", "url": "https://ehr.example/fhir/Observation?patient=1"},
                {"relation": "next", "url": "https://ehr.example/fhir?_getpages=abc&_getpagesoffset=10&_count=10"},
                {"relation": "previous", "url": "https://evil.example/steal"},
            ],
            "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}}],
        });
        let out = reseal(
            &serde_json::to_vec(&body).unwrap(),
            &binding,
            &base,
            "https://app.example/cm/",
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        let links = out["link"].as_array().unwrap();
        assert_eq!(
            links.len(),
            2,
            "the foreign previous link is dropped: {links:?}"
        );
        assert_eq!(links[0], body["link"][0]);
        let next = links[1]["url"].as_str().unwrap();
        let sealed = next
            .strip_prefix("https://app.example/cm/v1/fhir/ehr/Observation?_page=")
            .unwrap();
        assert_eq!(
            binding.open(sealed, &base).unwrap(),
            "https://ehr.example/fhir?_getpages=abc&_getpagesoffset=10&_count=10"
        );
        assert_eq!(out["entry"], body["entry"]);
        assert!(reseal(b"<html>", &binding, &base, "https://app.example").is_none());
    }
}
