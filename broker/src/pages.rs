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
//!   where `<sealed>` is the upstream URL, the resource type, the connection's patient and an
//!   expiry, sealed with the broker's key ring (XChaCha20-Poly1305, `crypto.rs`) under
//!   associated data binding it to the session and the provider ([`Aad::page_link`]). Every
//!   other link (`self`, `first`, `last`…) is dropped: on such servers they can carry the
//!   search id too. A `previous` link that does not point under the provider's FHIR base is
//!   dropped; a `next` link that does not, or that points back at the page just fetched, fails
//!   the read (`upstream_error`) rather than ending the search early without a word;
//! - `?_page=<sealed>`, alone, opens only for the session and provider it was sealed for, before
//!   its expiry, on the resource type it was sealed for — refused with `invalid_request` before
//!   any upstream request (a token refresh included) — and then only while the connection is
//!   still to the same patient.
//!
//! Only the `link` array is rewritten: every other member of the Bundle is relayed byte for
//! byte (FHIR decimals such as `1.50` keep their precision). Such a Bundle is read whole, so at
//! most [`MAX_BUFFERED`] bytes of it and [`MAX_BUFFERED_RELAYS`] at once.
//!
//! Blue Button keeps re-sending its search with `startIndex` and `_count` (its links name the
//! backend's host, and its Bundles are streamed, never buffered).

use std::{borrow::Cow, fmt};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use connect_medicare_protocol::{FhirBase, Timestamp, contract::ErrorCode, contract::ProviderId};
use secrecy::{ExposeSecret, SecretString};
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};
use serde_json::{Value, value::RawValue};
use url::Url;

use connect_medicare_protocol::resources::ResourceType;

use crate::{
    compartment::Owner,
    crypto::{Aad, Ciphertext, KeyRing},
    error::ApiError,
    ids::SessionHash,
};

/// The query parameter that carries a sealed paging link.
pub(crate) const PAGE_PARAM: &str = "_page";

/// How long a sealed link opens after it was relayed: servers keep a search's pages for
/// minutes to an hour (HAPI FHIR's default is an hour).
const LIFETIME_SECONDS: i64 = 30 * 60;

/// The longest sealed link (base64url) the broker writes or reads: an upstream URL of a few
/// kilobytes at most. The SDK accepts the same.
const MAX_SEALED: usize = 8 * 1024;

/// The most bytes of a Bundle read whole to reseal its links (after inflating): a page of a
/// hundred resources is well under a megabyte.
pub(crate) const MAX_BUFFERED: u64 = 16 * 1024 * 1024;

/// How many Bundles are held in memory at once, from the first byte read to the last byte
/// sent, across every session; the others wait for [`BUFFERED_WAIT`].
pub(crate) const MAX_BUFFERED_RELAYS: usize = 16;

/// How long a read waits for a place among the buffered Bundles before it is turned away
/// (`rate_limited`, retry after a second).
pub(crate) const BUFFERED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long reading a buffered Bundle's body may take, whatever the per-read timeout.
pub(crate) const BUFFERED_READ: std::time::Duration = std::time::Duration::from_secs(60);

/// Limits the Bundles held in memory at once ([`MAX_BUFFERED_RELAYS`]).
pub(crate) static BUFFERED_RELAYS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_BUFFERED_RELAYS);

/// What a sealed link is bound to: the session, the provider and the resource type.
pub(crate) struct Binding<'a> {
    pub(crate) keys: &'a KeyRing,
    pub(crate) session: &'a SessionHash,
    pub(crate) provider: &'a ProviderId,
    pub(crate) resource: &'a str,
    pub(crate) now: Timestamp,
}

/// A sealed link opened: where to go, and for which patient it was relayed.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The upstream URL (under the provider's FHIR base).
    pub(crate) url: String,
    /// The connection's patient when the link was relayed.
    pub(crate) patient: String,
}

fn refused() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        "this paging link is not one this broker gave this session, or it expired",
    )
}

fn upstream(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::UpstreamError, message)
}

impl Binding<'_> {
    /// `url` sealed for `patient`: base64url of the ciphertext of
    /// `expires\nresource\npatient\nurl`.
    fn seal(&self, url: &str, patient: &str) -> Result<String, ApiError> {
        let expires = self.now.unix_seconds().saturating_add(LIFETIME_SECONDS);
        let plain = SecretString::from(format!("{expires}\n{}\n{patient}\n{url}", self.resource));
        let sealed = self
            .keys
            .encrypt(&plain, &Aad::page_link(self.session, self.provider))
            .map_err(|_| upstream("the broker could not seal the provider's paging link"))?;
        let sealed = URL_SAFE_NO_PAD.encode(sealed.as_bytes());
        if sealed.len() > MAX_SEALED {
            return Err(upstream(
                "the provider's paging link is longer than this broker relays",
            ));
        }
        Ok(sealed)
    }

    /// The upstream URL a sealed link holds, when it opens for this binding, is unexpired,
    /// and names a URL under `base`. The caller compares [`Opened::patient`] with the
    /// connection's.
    pub(crate) fn open(&self, sealed: &str, base: &FhirBase) -> Result<Opened, ApiError> {
        if sealed.len() > MAX_SEALED {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| refused())?;
        let plain = self
            .keys
            .decrypt(
                &Ciphertext::from_bytes(bytes),
                &Aad::page_link(self.session, self.provider),
            )
            .map_err(|_| refused())?;
        let mut parts = plain.expose_secret().splitn(4, '\n');
        let (Some(expires), Some(resource), Some(patient), Some(url)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let live = expires
            .parse::<i64>()
            .is_ok_and(|at| self.now.unix_seconds() < at);
        if !live || resource != self.resource {
            return Err(refused());
        }
        let url = under(url, base).ok_or_else(refused)?;
        Ok(Opened {
            url: url.into(),
            patient: patient.to_owned(),
        })
    }
}

/// `url`, normalised, when it is on the FHIR base's origin (same scheme, host and port, no
/// credentials) and under its path — the base itself included, where HAPI's `_getpages` links
/// point — with no fragment, no control character, space or NUL, and no segment a server could
/// read as something else: empty (`//`), dotted (`.`, `..;`, `%2e…`), with a `;` parameter, or
/// with an encoded separator.
fn under(url: &str, base: &FhirBase) -> Option<Url> {
    let lower = url.to_ascii_lowercase();
    if url
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        || lower.contains("%00")
    {
        return None;
    }
    let (link, base) = (Url::parse(url).ok()?, Url::parse(base.as_str()).ok()?);
    let same_origin = link.scheme() == base.scheme()
        && link.host_str().is_some()
        && link.host_str() == base.host_str()
        && link.port_or_known_default() == base.port_or_known_default();
    if !same_origin
        || !link.username().is_empty()
        || link.password().is_some()
        || link.fragment().is_some()
    {
        return None;
    }
    // The base's segments (a trailing slash ignored) must start the link's, exactly.
    let mut prefix: Vec<&str> = base.path_segments()?.collect();
    if prefix.last() == Some(&"") {
        prefix.pop();
    }
    let mut within: Vec<&str> = link.path_segments()?.collect();
    if within.last() == Some(&"") && within.len() > 1 {
        within.pop();
    }
    let unsafe_segment = |s: &&str| {
        let lower = s.to_ascii_lowercase();
        s.is_empty()
            || lower.starts_with('.')
            || lower.starts_with("%2e")
            || lower.contains(';')
            || lower.contains("%3b")
            || lower.contains("%2f")
            || lower.contains("%5c")
    };
    let bare_base = within.len() == 1 && within[0].is_empty() && prefix.is_empty();
    if !bare_base && within.iter().any(unsafe_segment) {
        return None;
    }
    (within.len() >= prefix.len() && within[..prefix.len()] == prefix[..]).then_some(link)
}

/// Whether two URLs name the same page: the same origin and path, and the same query pairs in
/// any order (decoded, so `+` and `%20`, or `%2F` and `/`, compare equal).
fn same_page(a: &Url, b: &Url) -> bool {
    let pairs = |u: &Url| {
        let mut pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        pairs.sort();
        pairs
    };
    a.origin() == b.origin()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        && pairs(a) == pairs(b)
}

/// The broker's own URL for a sealed link: `{public}/v1/fhir/{provider}/{resource}?_page=…`.
fn own_link(public: &str, provider: &ProviderId, resource: &str, sealed: &str) -> String {
    format!(
        "{}/v1/fhir/{}/{resource}?{PAGE_PARAM}={sealed}",
        public.trim_end_matches('/'),
        provider.as_str(),
    )
}

/// A JSON object's members in their order: keys and raw values borrowed from the body.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((key, value));
                }
                Ok(Members(out))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// What a relayed search page is, for [`reseal`].
pub(crate) struct Page<'a> {
    /// The URL the page was fetched from: a `next` link back to it would never end.
    pub(crate) fetched: &'a str,
    /// The provider's FHIR base.
    pub(crate) base: &'a FhirBase,
    /// The broker's public base URL.
    pub(crate) public: &'a str,
    /// The connection's patient.
    pub(crate) patient: &'a str,
    /// The type searched: its entries must be the patient's (`compartment.rs`).
    pub(crate) resource: &'a ResourceType,
}

/// Rewrites a search Bundle's links for the browser (see the module docs), after checking its
/// entries are the patient's (`compartment.rs`). Anything but a Bundle — another resource, an
/// object without a `resourceType`, what is not JSON — is refused: it could hold anyone's data.
pub(crate) fn reseal(
    body: &[u8],
    binding: &Binding<'_>,
    page: &Page<'_>,
) -> Result<Vec<u8>, ApiError> {
    let not_json = || upstream("the provider's answer is not a JSON object");
    let members: Members<'_> = serde_json::from_slice(body).map_err(|_| not_json())?;
    // Read as an owned string: an escaped "Bund\u006ce" is a Bundle too.
    let is_bundle = members.0.iter().any(|(key, value)| {
        key == "resourceType"
            && serde_json::from_str::<String>(value.get()).is_ok_and(|t| t == "Bundle")
    });
    if !is_bundle {
        return Err(upstream(
            "the provider answered a search with something other than a Bundle",
        ));
    }
    let fetched = Url::parse(page.fetched).ok();
    let mut replaced: Vec<Option<Box<RawValue>>> = Vec::with_capacity(members.0.len());
    let owner = Owner {
        patient: page.patient,
        fhir_base: page.base.as_str(),
    };
    for (key, value) in &members.0 {
        if key == "entry" {
            owner.check_entries(value, page.resource)?;
        }
        if key != "link" {
            replaced.push(None);
            continue;
        }
        let links: Vec<Value> = serde_json::from_str(value.get()).map_err(|_| not_json())?;
        let mut kept = Vec::new();
        for link in links {
            let relation = link
                .get("relation")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let raw = link.get("url").and_then(Value::as_str);
            let target = raw.and_then(|u| under(u, page.base));
            match (relation, target) {
                ("next", None) => {
                    let seen = raw.and_then(|u| Url::parse(u).ok());
                    tracing::warn!(
                        provider = binding.provider.as_str(),
                        scheme = seen.as_ref().map(Url::scheme),
                        host = seen.as_ref().and_then(Url::host_str),
                        port = seen.as_ref().and_then(Url::port_or_known_default),
                        path_prefix_expected = page.base.as_str(),
                        "a next page link is missing or outside the provider's FHIR base"
                    );
                    return Err(upstream(if raw.is_none() {
                        "the provider's next page link has no URL"
                    } else {
                        "the provider's next page link points outside its FHIR base"
                    }));
                }
                ("next", Some(url)) if fetched.as_ref().is_some_and(|f| same_page(&url, f)) => {
                    return Err(upstream(
                        "the provider's next page link points back at the same page",
                    ));
                }
                ("next" | "previous" | "prev", Some(url)) => {
                    let sealed = binding.seal(url.as_str(), page.patient)?;
                    kept.push(serde_json::json!({
                        "relation": relation,
                        "url": own_link(page.public, binding.provider, binding.resource, &sealed),
                    }));
                }
                // A `previous` elsewhere, and every other relation: dropped.
                _ => {}
            }
        }
        let raw = serde_json::to_string(&kept).map_err(|_| not_json())?;
        replaced.push(Some(RawValue::from_string(raw).map_err(|_| not_json())?));
    }
    serde_json::to_vec(&Rewritten {
        members: &members,
        replaced: &replaced,
    })
    .map_err(|_| not_json())
}

/// The members of a Bundle with the rewritten `link` values in place of theirs.
struct Rewritten<'a> {
    members: &'a Members<'a>,
    replaced: &'a [Option<Box<RawValue>>],
}

impl Serialize for Rewritten<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.0.len()))?;
        for ((key, value), replaced) in self.members.0.iter().zip(self.replaced) {
            match replaced {
                Some(link) => map.serialize_entry(key, link)?,
                None => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// The Bundle as the browser gets it: FHIR JSON, never cached; `permit` is let go once the
/// body has been handed over.
pub(crate) fn bundle_response(
    status: StatusCode,
    body: Vec<u8>,
    permit: tokio::sync::SemaphorePermit<'static>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    let once = futures_util::stream::once(async move {
        let _held = permit;
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(body))
    });
    let mut out = Response::new(Body::from_stream(once));
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
        for base in [
            "https://ehr.example/fhir/r4/",
            "https://ehr.example/fhir/r4",
        ] {
            let base = FhirBase::parse(base).unwrap();
            for ok in [
                "https://ehr.example/fhir/r4?_getpages=abc&_getpagesoffset=20&_count=10",
                "https://ehr.example/fhir/r4/?_getpages=abc",
                "https://ehr.example/fhir/r4/Observation?page=2",
                "https://ehr.example:443/fhir/r4/Observation",
                "HTTPS://EHR.EXAMPLE/fhir/r4/Observation",
            ] {
                assert!(under(ok, &base).is_some(), "{ok} under {base:?}");
            }
            for bad in [
                "https://evil.example/fhir/r4?_getpages=abc",
                "https://ehr.example/fhir/r4x?_getpages=abc",
                "https://ehr.example/fhir/r4-admin/x",
                "https://ehr.example/fhir/r4/../admin",
                "https://ehr.example/fhir/r4/%2e%2E/admin",
                "https://ehr.example/fhir/r4/.\t./admin",
                "https://ehr.example/fhir/r4/a%2Fb",
                "https://ehr.example/fhir/r4/a%5cb",
                "https://ehr.example/fhir/r4/..;/admin/x",
                "https://ehr.example/fhir/r4/%2e%2e;/admin",
                "https://ehr.example/fhir/r4/Patient;jsessionid=1",
                "https://ehr.example/fhir/r4/Patient%3Bx",
                "https://ehr.example/fhir/r4/Pat%00ient",
                "https://ehr.example//fhir/r4/Patient",
                "https://ehr.example/fhir//r4/Patient",
                "https://ehr.example/fhir/r4/.well-known/x",
                "https://ehr.example/fhir/r4/a\\b",
                "https://ehr.example/fhir/r4/Patient#x",
                "https://ehr.example/fhir/r4/Patient\nHost: x",
                "http://ehr.example/fhir/r4/Patient",
                "https://ehr.example:8443/fhir/r4/Patient",
                "https://ehr.example.evil.example/fhir/r4/",
                "https://ehr.example@evil.example/fhir/r4/",
                "https://user:pw@ehr.example/fhir/r4/",
                "/fhir/r4/Patient",
            ] {
                assert!(under(bad, &base).is_none(), "{bad:?} under {base:?}");
            }
        }
        // A host-only base, as SMART's own R4 server is configured.
        let host = FhirBase::parse("https://r4.smarthealthit.org").unwrap();
        assert!(under("https://r4.smarthealthit.org?_getpages=a", &host).is_some());
        assert!(under("https://r4.smarthealthit.org/Patient?page=2", &host).is_some());
        assert!(under("https://r4.smarthealthit.org.evil.com/", &host).is_none());
        assert!(under("https://r4.smarthealthit.org@evil.com/", &host).is_none());
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
        let sealed = binding(&a, &ehr, "Observation", now)
            .seal(url, "p1")
            .unwrap();
        assert!(
            !sealed.contains("getpages"),
            "the URL is not readable in the link"
        );
        let opened = binding(&a, &ehr, "Observation", now)
            .open(&sealed, &base)
            .unwrap();
        assert_eq!((opened.url.as_str(), opened.patient.as_str()), (url, "p1"));
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
        // A link too long to be given back is not given out.
        let long = format!("{url}&x={}", "y".repeat(MAX_SEALED));
        assert_eq!(
            binding(&a, &ehr, "Observation", now)
                .seal(&long, "p1")
                .unwrap_err()
                .code(),
            ErrorCode::UpstreamError
        );
    }

    #[test]
    fn relayed_bundles_keep_every_byte_but_their_links() {
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
        let page = Page {
            fetched: "https://ehr.example/fhir/Observation?patient=p1",
            base: &base,
            public: "https://app.example/cm/",
            patient: "p1",
            resource: ResourceType::get("Observation").unwrap(),
        };
        let entry = r#"[{"resource":{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50,"unit":"mmol/L"},"big":123456789012345678901234567890}}]"#;
        let body = format!(
            r#"{{"resourceType":"Bundle","total":30,"link":[{{"relation":"self","url":"https://ehr.example/fhir?_getpages=abc&_getpagesoffset=0"}},{{"relation":"next","url":"https://ehr.example/fhir?_getpages=abc&_getpagesoffset=10&_count=10"}},{{"relation":"previous","url":"https://evil.example/steal"}}],"entry":{entry}}}"#
        );
        let out = String::from_utf8(reseal(body.as_bytes(), &binding, &page).unwrap()).unwrap();
        // Every member but `link` byte for byte, in order: FHIR decimals keep their precision.
        assert!(
            out.starts_with(r#"{"resourceType":"Bundle","total":30,"link":["#),
            "{out}"
        );
        assert!(out.ends_with(&format!(r#"],"entry":{entry}}}"#)), "{out}");
        assert!(!out.contains("getpages") && !out.contains("evil"), "{out}");
        let links: Value = serde_json::from_str(&out).unwrap();
        let links = links["link"].as_array().unwrap();
        assert_eq!(
            links.len(),
            1,
            "self and the foreign previous link are dropped: {links:?}"
        );
        let sealed = links[0]["url"]
            .as_str()
            .unwrap()
            .strip_prefix("https://app.example/cm/v1/fhir/ehr/Observation?_page=")
            .unwrap();
        assert_eq!(
            binding.open(sealed, &base).unwrap().url,
            "https://ehr.example/fhir?_getpages=abc&_getpagesoffset=10&_count=10"
        );
        // A next link elsewhere, or back at the same page (its query written another way),
        // fails the read instead of ending it or looping.
        let again = "https://ehr.example/fhir/Observation/?patient=p1";
        for next in [
            "https://evil.example/fhir?_getpages=abc",
            page.fetched,
            again,
        ] {
            let body = format!(
                r#"{{"resourceType":"Bundle","link":[{{"relation":"next","url":"{next}"}}]}}"#
            );
            let error = reseal(body.as_bytes(), &binding, &page).unwrap_err();
            assert_eq!(error.code(), ErrorCode::UpstreamError, "{next}");
        }
        // An escaped resourceType is still a Bundle: its links are resealed.
        let escaped = br#"{"resourceType":"Bund\u006ce","link":[{"relation":"self","url":"https://ehr.example/fhir?_getpages=abc"}]}"#;
        let out = String::from_utf8(reseal(escaped, &binding, &page).unwrap()).unwrap();
        assert!(!out.contains("getpages"), "{out}");
        // Anything but a Bundle is refused: a bare resource, entries without a resourceType,
        // what is not a JSON object.
        for bad in [
            &br#"{"resourceType":"OperationOutcome","issue":[]}"#[..],
            br#"{"resourceType":"Observation","subject":{"reference":"Patient/p2"}}"#,
            br#"{"entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/p2"}}}]}"#,
            b"<html>",
            b"[]",
        ] {
            let error = reseal(bad, &binding, &page).unwrap_err();
            assert_eq!(error.code(), ErrorCode::UpstreamError);
        }
    }
}
