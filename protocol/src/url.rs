//! A small, strict splitter for absolute http(s) URLs (RFC 3986 §3), and query helpers.
//!
//! The `url` crate is not used: it pulls IDNA tables into the wasm bundle, and the rules
//! here only need to split, compare and encode.

use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// An absolute `http` or `https` URL split into its parts. Scheme and host are lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitUrl<'a> {
    pub(crate) scheme: String,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) fragment: Option<&'a str>,
}

impl<'a> SplitUrl<'a> {
    /// Splits `raw`, or `None` when it is not an absolute http(s) URL with a host.
    pub(crate) fn parse(raw: &'a str) -> Option<Self> {
        if raw.bytes().any(|b| b.is_ascii_control() || b == b' ') || raw.contains('\\') {
            return None;
        }
        let (scheme, rest) = raw.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return None;
        }
        Some(Self {
            scheme,
            userinfo,
            host: host.to_ascii_lowercase(),
            port,
            path,
            query,
            fragment,
        })
    }

    /// Whether the host is a loopback name or address.
    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || (self.host.starts_with("127.")
                && self.host.split('.').count() == 4
                && self.host.split('.').all(|p| p.parse::<u8>().is_ok()))
    }

    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &hostport[..end + 2];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match hostport.split_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((hostport, None)),
    }
    .filter(|(host, _)| {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    })
}

/// Decodes an `application/x-www-form-urlencoded` query, refusing any name that appears twice
/// (a duplicated `state` or `code` is an attack, never a browser quirk).
pub(crate) fn unique_pairs(query: &str) -> Result<Vec<(String, String)>> {
    let mut seen = BTreeSet::new();
    let mut pairs = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(name.clone().into_owned()) {
            return Err(Error::DuplicateParameter(name.into_owned()));
        }
        pairs.push((name.into_owned(), value.into_owned()));
    }
    Ok(pairs)
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub(crate) fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let u = SplitUrl::parse("HTTPS://Example.COM:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.query, Some("x=1&y=2"));
        assert_eq!(u.fragment, Some("frag"));
        assert_eq!(u.origin(), "https://example.com:8443");
        let v6 = SplitUrl::parse("http://[::1]:9/cb").unwrap();
        assert!(v6.is_loopback());
        assert_eq!(v6.port, Some(9));
    }

    #[test]
    fn refuses_non_urls() {
        for bad in [
            "ftp://x/",
            "//host/path",
            "http://",
            "http://a b/",
            "http://host:99999/",
            "http://ho\\st/",
            "http://ho%2fst/",
            "javascript:alert(1)",
        ] {
            assert!(SplitUrl::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_exact() {
        for (url, loopback) in [
            ("http://localhost:1/", true),
            ("http://127.0.0.1/", true),
            ("http://127.9.9.9/", true),
            ("http://localhost.evil.com/", false),
            ("http://127.0.0.1.evil.com/", false),
            ("http://user@evil.com/", false),
        ] {
            assert_eq!(
                SplitUrl::parse(url).unwrap().is_loopback(),
                loopback,
                "{url}"
            );
        }
    }

    #[test]
    fn duplicate_query_names_are_refused() {
        assert!(unique_pairs("a=1&b=2").is_ok());
        assert_eq!(
            unique_pairs("state=a&state=b").unwrap_err(),
            Error::DuplicateParameter("state".into())
        );
    }
}
