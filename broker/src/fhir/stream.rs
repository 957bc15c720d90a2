//! Streaming an upstream body to the browser: allow-listed headers only, gzip passed through
//! to a browser that accepts it (or inflated for one that does not), and never more bytes
//! than the relay limit as the browser will read them.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use connect_medicare_protocol::contract::ErrorCode;

use crate::error::ApiError;

pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
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
pub(super) fn stream(
    response: reqwest::Response,
    max: u64,
    accepts_gzip: bool,
) -> Result<Response, ApiError> {
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
