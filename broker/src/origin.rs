//! Web origins (`scheme://host[:port]`) and the same-site rule the broker's cookies live by.

use std::fmt;

use url::{Host, Url};

/// A web origin, normalised as browsers send it in `Origin` (lowercase scheme and host,
/// default port omitted), so configured origins compare exactly with request headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: String,
    scheme: String,
    host: Host<String>,
}

impl Origin {
    /// Parses an origin written exactly as one: `scheme://host[:port]` with scheme `http` or
    /// `https`, and no path (not even `/`), query, fragment or credentials.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw == "*" || raw == "null" {
            return Err("must be an exact origin such as https://app.example.com, not * or null");
        }
        let after_scheme = raw.split_once("://").map_or("", |(_, rest)| rest);
        if after_scheme.contains(['/', '?', '#']) {
            return Err("an origin has no path, query or fragment (not even a trailing /)");
        }
        let url = Url::parse(raw).map_err(|_| "not an absolute http(s) origin")?;
        Self::of_url(&url)
    }

    /// The origin of an absolute http(s) URL without credentials.
    pub fn of_url(url: &Url) -> Result<Self, &'static str> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err("scheme must be http or https");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials");
        }
        let host = url.host().ok_or("has no host")?.to_owned();
        Ok(Self {
            serialized: url.origin().ascii_serialization(),
            scheme: url.scheme().to_owned(),
            host,
        })
    }

    /// The origin as browsers send it in the `Origin` header.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the host is `localhost`, an address in 127.0.0.0/8, or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Domain(name) => name == "localhost",
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::Ipv6(ip) => ip.is_loopback(),
        }
    }

    /// Whether browsers treat this origin as a secure context, where `Secure` and `__Host-`
    /// cookies work: `https`, or `http` on a loopback host.
    pub fn is_secure_context(&self) -> bool {
        self.scheme == "https" || self.is_loopback()
    }

    /// Whether `self` and `other` are the same *site*, as `SameSite` cookies see it: the same
    /// scheme and the same registrable domain (ports are ignored).
    ///
    /// The registrable domain is approximated by the **last two labels** of the host name
    /// (`app.example.com` and `cm.example.com` are same-site). This is exact for names under
    /// a single-label public suffix (`.com`, `.org`, ...) and too generous under multi-label
    /// ones (`a.co.uk` and `b.co.uk` count as same-site here, though browsers disagree), so it
    /// may miss a cross-site warning but never raises a false one. IP addresses and
    /// single-label names such as `localhost` must match exactly.
    pub fn is_same_site(&self, other: &Origin) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        match (&self.host, &other.host) {
            (Host::Domain(a), Host::Domain(b)) => site(a) == site(b),
            (a, b) => a == b,
        }
    }
}

/// The last two labels of a host name, or the whole name when it has fewer.
fn site(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    match host.rmatch_indices('.').nth(1) {
        Some((dot, _)) => &host[dot + 1..],
        None => host,
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(raw: &str) -> Origin {
        Origin::parse(raw).unwrap()
    }

    #[test]
    fn normalises_like_browsers() {
        assert_eq!(
            origin("https://App.Example.COM").as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("https://app.example.com:443").as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("http://localhost:8080").as_str(),
            "http://localhost:8080"
        );
        assert_eq!(origin("http://[::1]:5173").as_str(), "http://[::1]:5173");
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "*",
            "null",
            "https://app.example.com/",
            "https://app.example.com/app",
            "https://app.example.com?x",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "app.example.com",
            "",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn same_site_rule() {
        let app = origin("https://app.example.com");
        assert!(app.is_same_site(&origin("https://app.example.com:8443")));
        assert!(app.is_same_site(&origin("https://cm.example.com")));
        assert!(app.is_same_site(&origin("https://example.com")));
        assert!(!app.is_same_site(&origin("http://app.example.com")));
        assert!(!app.is_same_site(&origin("https://app.example.org")));
        assert!(!app.is_same_site(&origin("https://example-cm.com")));

        // Loopback: two localhost ports are same-site; localhost and 127.0.0.1 are not.
        let local = origin("http://localhost:8080");
        assert!(local.is_same_site(&origin("http://localhost:5173")));
        assert!(!local.is_same_site(&origin("http://127.0.0.1:8080")));
        let ip = origin("http://127.0.0.1:8080");
        assert!(ip.is_same_site(&origin("http://127.0.0.1:9000")));
        assert!(!ip.is_same_site(&origin("http://127.0.0.2:8080")));
    }

    #[test]
    fn secure_contexts() {
        assert!(origin("https://app.example.com").is_secure_context());
        assert!(origin("http://localhost:8080").is_secure_context());
        assert!(origin("http://127.0.0.1:8080").is_secure_context());
        assert!(origin("http://[::1]:8080").is_secure_context());
        assert!(!origin("http://app.example.com").is_secure_context());
    }
}
