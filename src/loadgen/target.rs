//! The target URL: `http://host[:port][/path][?query]`, split into what a request needs.

use std::net::{SocketAddr, ToSocketAddrs};

/// Where requests go and what their request line and Host header say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given, for the report.
    pub url: String,
    /// Host as written (IPv6 keeps its brackets), for resolving.
    pub host: String,
    pub port: u16,
    /// `Host` header value: host, plus `:port` when the URL named one.
    pub authority: String,
    /// Origin-form request target, `/` at least.
    pub path_and_query: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("URL {url:?}: only http:// URLs are supported (no TLS in the load generator)")
        })?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("URL {url:?}: expected http://host[:port]/path"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("URL {url:?}: bad host or port in {authority:?}"))?;
        let path_and_query = match tail {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        let path_and_query = path_and_query.split('#').next().unwrap_or("/").to_string();
        if path_and_query.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "URL {url:?}: the path must not contain spaces or control characters"
            ));
        }
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path_and_query,
        })
    }

    /// Resolves the host; the first address is used for every connection.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}: no addresses", self.host))
    }
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (h, rest) = authority.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => 80,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port_and_target() {
        let t = Target::parse("http://127.0.0.1:8080/p.gif?e=open#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("127.0.0.1", 8080, "127.0.0.1:8080")
        );
        assert_eq!(t.path_and_query, "/p.gif?e=open");
        let t = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 9));
        assert_eq!(t.resolve().unwrap(), "[::1]:9".parse().unwrap());
        let t = Target::parse("http://example.com?x=1").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/?x=1"));
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "ftp://h/",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://u@h/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
