//! A small, strict splitter for absolute http(s) URLs (RFC 3986 §3), and query helpers.
//!
//! The `url` crate is not used: it pulls IDNA tables into the wasm bundle, and the rules
//! here only need to split, compare and encode.

use crate::prelude::*;

pub(crate) use crate::text::cut;
use crate::{
    codec::{form_encode, form_pairs},
    error::{Error, Result},
    text::parse_uint,
};

/// An absolute `http` or `https` URL split into its parts, borrowed from the input (the host
/// as written: compare it without regard to ASCII case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitUrl<'a> {
    /// `https` rather than `http` (in any case).
    pub(crate) https: bool,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) fragment: Option<&'a str>,
}

impl<'a> SplitUrl<'a> {
    /// Splits `raw`, or `None` when it is not an absolute http(s) URL with a host.
    pub(crate) fn parse(raw: &'a str) -> Option<Self> {
        if raw
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return None;
        }
        let at = raw.as_bytes().windows(3).position(|w| w == b"://")?;
        let (scheme, rest) = (raw.get(..at)?, raw.get(at + 3..)?);
        let https = scheme.eq_ignore_ascii_case("https");
        if !https && !scheme.eq_ignore_ascii_case("http") {
            return None;
        }
        let (rest, fragment) = cut(rest, b'#');
        let (rest, query) = cut(rest, b'?');
        let slash = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at_checked(slash)?;
        let (userinfo, hostport) = match authority.bytes().rposition(|b| b == b'@') {
            Some(i) => (authority.get(..i), authority.get(i + 1..)?),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return None;
        }
        Some(Self {
            https,
            userinfo,
            host,
            port,
            path,
            query,
            fragment,
        })
    }

    /// Whether the host is a loopback name or address: `localhost`, `[::1]` or `127.x.y.z`.
    pub(crate) fn is_loopback(&self) -> bool {
        let mut parts = 0;
        let mut rest = Some(self.host);
        while let Some((part, next)) = rest.map(|r| cut(r, b'.')) {
            if parse_uint(part, u8::MAX.into()).is_none() || (parts == 0 && part != "127") {
                parts = 9;
            }
            parts += 1;
            rest = next;
        }
        self.host.eq_ignore_ascii_case("localhost") || self.host == "[::1]" || parts == 4
    }

    /// `scheme://host[:port]`, lowercased.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = self.host.to_ascii_lowercase();
        match self.port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        }
    }
}

fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let port = |p: &str| parse_uint(p, u16::MAX.into()).map(|p| p as u16);
    if hostport.starts_with('[') {
        let end = hostport.bytes().position(|b| b == b']')?;
        let (host, after) = hostport.split_at_checked(end + 1)?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(port(p)?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match cut(hostport, b':') {
        (host, Some(p)) => Some((host, Some(port(p)?))),
        (host, None) => Some((host, None)),
    }
    .filter(|(host, _)| {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    })
}

/// Decodes an `application/x-www-form-urlencoded` query, refusing any name that appears twice
/// (a duplicated `state` or `code` is an attack, never a browser quirk).
pub(crate) fn unique_pairs(query: &str) -> Result<Vec<(String, String)>> {
    let pairs = form_pairs(query);
    check_unique(&pairs)?;
    Ok(pairs)
}

/// Refuses the first name that appears a second time.
pub(crate) fn check_unique(pairs: &[(String, String)]) -> Result<()> {
    for (i, (name, _)) in pairs.iter().enumerate() {
        let earlier = pairs.get(..i).unwrap_or_default();
        if earlier.iter().any(|(seen, _)| seen == name) {
            return Err(Error::DuplicateParameter(name.clone()));
        }
    }
    Ok(())
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub(crate) fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_encode(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let u = SplitUrl::parse("HTTPS://Example.COM:8443/a/b?x=1&y=2#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.host, "Example.COM");
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
            ("http://LocalHost/", true),
            ("http://127.0.0.01/", true),
            ("http://127.0.0/", false),
            ("http://127.0.0.256/", false),
            ("http://128.0.0.1/", false),
            ("http://0127.0.0.1/", false),
            ("http://127..0.1/", false),
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

/// The splitter as it was before it borrowed its parts, as the oracle of the one above.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod oracle {
    #![allow(dead_code, clippy::all)]
    /// An absolute `http` or `https` URL split into its parts. Scheme and host are lowercased.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct SplitUrl<'a> {
        scheme: String,
        userinfo: Option<&'a str>,
        host: String,
        port: Option<u16>,
        path: &'a str,
        query: Option<&'a str>,
        fragment: Option<&'a str>,
    }

    impl<'a> SplitUrl<'a> {
        /// Splits `raw`, or `None` when it is not an absolute http(s) URL with a host.
        fn parse(raw: &'a str) -> Option<Self> {
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
        fn is_loopback(&self) -> bool {
            self.host == "localhost"
                || self.host == "[::1]"
                || (self.host.starts_with("127.")
                    && self.host.split('.').count() == 4
                    && self.host.split('.').all(|p| p.parse::<u8>().is_ok()))
        }

        /// `scheme://host[:port]`.
        fn origin(&self) -> String {
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

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_url_is_unchanged(
            raw in "(https?|HTTPS?|HttP|ftp)?(://|:/)?[a-zA-Z0-9@:.\\[\\]_%+ -]{0,15}(/[a-z/]{0,5})?(\\?[a-z=&?]{0,5})?(#[a-z#]{0,3})?"
        ) {
            check(&raw)?;
        }

        #[test]
        fn loopback_is_unchanged(
            raw in "(http|HTTPS)://([a-z]{0,3}@)?(127|0127|1270|localhost|LocalHost|\\[::1\\]|\\[::2\\])(\\.[0-9]{0,4}){0,4}(:[0-9+]{0,6})?(/x)?"
        ) {
            check(&raw)?;
        }
    }

    fn check(raw: &str) -> Result<(), TestCaseError> {
        let (new, old) = (super::SplitUrl::parse(raw), SplitUrl::parse(raw));
        prop_assert_eq!(new.is_some(), old.is_some(), "{}", raw);
        if let (Some(new), Some(old)) = (new, old) {
            prop_assert_eq!(new.https, old.scheme == "https");
            prop_assert_eq!(new.host.to_ascii_lowercase(), old.host.clone());
            prop_assert_eq!(
                (new.userinfo, new.port, new.path, new.query, new.fragment),
                (old.userinfo, old.port, old.path, old.query, old.fragment)
            );
            prop_assert_eq!(new.is_loopback(), old.is_loopback(), "{}", raw);
            prop_assert_eq!(new.origin(), old.origin());
        }
        Ok(())
    }
}
