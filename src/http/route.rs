//! Per-path behaviour (what to answer, whether to record), click redirects with a domain
//! allowlist, and CORS. Pure functions over request bytes; the answer's varying headers are
//! written into a buffer the connection owns, never allocated per request.

use super::policy::ResponseKind;

/// What a path answers to GET and HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAction {
    /// 200 with the transparent GIF.
    Gif,
    /// 204 No Content.
    #[serde(rename = "204")]
    NoContent,
    /// 302 to the URL in the `u` query parameter, if its host is allowed.
    Redirect,
}

/// One configured path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact path, or a prefix when it ends with `*`.
    pub path: String,
    pub response: RouteAction,
    /// Whether hits on this path become records.
    #[serde(default = "yes")]
    pub record: bool,
}

fn yes() -> bool {
    true
}

/// The route table: configured routes first, then the built-in tracker shapes, then the default.
#[derive(Debug, Clone)]
pub struct Routes {
    /// Each route and whether it is built in (built-in pixels follow `--response`).
    routes: Vec<(Route, bool)>,
    default: RouteAction,
}

impl Routes {
    /// Built-in routes for tracker shapes people already have, after any configured ones.
    pub fn new(configured: Vec<Route>, default: ResponseKind) -> Result<Routes, String> {
        for r in &configured {
            if !r.path.starts_with('/') {
                return Err(format!("route path {:?} must start with /", r.path));
            }
        }
        let builtin = [
            ("/i", RouteAction::Gif), // Snowplow pixel
            (
                "/com.snowplowanalytics.snowplow/tp2",
                RouteAction::NoContent,
            ), // Snowplow POST
            ("/matomo.php", RouteAction::Gif), // Matomo
            ("/piwik.php", RouteAction::Gif), // Matomo, old name
            ("/p.gif", RouteAction::Gif),
            ("/r", RouteAction::Redirect), // click redirect
        ];
        let mut routes: Vec<(Route, bool)> = configured.into_iter().map(|r| (r, false)).collect();
        routes.extend(builtin.iter().map(|(p, a)| {
            (
                Route {
                    path: (*p).into(),
                    response: *a,
                    record: true,
                },
                true,
            )
        }));
        let default = match default {
            ResponseKind::Gif => RouteAction::Gif,
            ResponseKind::NoContent => RouteAction::NoContent,
        };
        Ok(Routes { routes, default })
    }

    /// The action and record flag for a request path (query already removed).
    #[inline]
    pub fn lookup(&self, path: &[u8]) -> (RouteAction, bool) {
        for (r, builtin) in &self.routes {
            let p = r.path.as_bytes();
            let hit = match p.strip_suffix(b"*") {
                Some(prefix) => path.starts_with(prefix),
                None => path == p,
            };
            if hit {
                let action = match (r.response, self.default) {
                    // `--response 204` applies to the built-in pixel routes too.
                    (RouteAction::Gif, RouteAction::NoContent) if *builtin => {
                        RouteAction::NoContent
                    }
                    (a, _) => a,
                };
                return (action, r.record);
            }
        }
        (self.default, true)
    }
}

/// Finds the `u` query parameter, percent-decodes it into `scratch` and returns it if it is an
/// absolute http(s) URL whose host is in `allow` (exactly or as a subdomain). Refuses anything
/// that could inject a header (controls, spaces, non-ASCII) or hide the host (userinfo).
pub fn redirect_target<'s>(
    query: &[u8],
    allow: &[String],
    scratch: &'s mut Vec<u8>,
) -> Option<&'s [u8]> {
    let value = query
        .split(|&b| b == b'&')
        .find_map(|kv| kv.strip_prefix(b"u="))?;
    scratch.clear();
    uri_percent_decode_into(value, scratch)?;
    let url: &[u8] = scratch;
    if !url.iter().all(|b| (0x21..0x7f).contains(b)) {
        return None;
    }
    let rest = url
        .strip_prefix(b"https://")
        .or_else(|| url.strip_prefix(b"http://"))?;
    let authority_end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#' | b'\\'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains(&b'@') {
        return None;
    }
    let host = match authority.iter().rposition(|&b| b == b':') {
        Some(i) if authority[i + 1..].iter().all(u8::is_ascii_digit) => &authority[..i],
        _ => authority,
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    let allowed = allow.iter().any(|d| {
        let d = d.as_bytes();
        host.eq_ignore_ascii_case(d)
            || (host.len() > d.len()
                && host[host.len() - d.len() - 1] == b'.'
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d))
    });
    allowed.then_some(&scratch[..])
}

/// RFC 3986 percent-decoding: `%XX` escapes only; `+` stays `+` (a literal in a URL, so a
/// redirect target passes through unchanged, where a space would be refused). `None` on a bad
/// escape.
pub fn uri_percent_decode_into(src: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' {
            let hex = src.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
    Some(())
}

/// Allowed browser origins for CORS: a list, or `*` for any.
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins {
    any: bool,
    list: Vec<String>,
    /// Preflight cache lifetime sent as Access-Control-Max-Age, seconds.
    pub max_age_secs: u64,
}

impl CorsOrigins {
    /// From `--cors-origin` values; each may itself be a comma-separated list.
    pub fn new(values: &[String], max_age_secs: u64) -> CorsOrigins {
        let mut list = Vec::new();
        let mut any = false;
        for v in values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            if v == "*" {
                any = true;
            } else {
                list.push(v.trim_end_matches('/').to_ascii_lowercase());
            }
        }
        CorsOrigins {
            any,
            list,
            max_age_secs,
        }
    }

    pub fn enabled(&self) -> bool {
        self.any || !self.list.is_empty()
    }

    /// Whether a request's `Origin` value is allowed.
    pub fn allows(&self, origin: &[u8]) -> bool {
        if origin.is_empty()
            || origin == b"null"
            || !origin.iter().all(|b| (0x21..0x7f).contains(b))
        {
            return false;
        }
        self.any
            || self
                .list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    }

    /// Appends the CORS headers for an allowed origin: the origin echoed (credentials are
    /// allowed, so `*` is never sent), and for a preflight the methods, headers and max age.
    pub fn write_headers(&self, out: &mut Vec<u8>, origin: &[u8], preflight: bool) {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        out.extend_from_slice(origin);
        out.extend_from_slice(b"\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
        if preflight {
            out.extend_from_slice(b"Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\nAccess-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: ");
            let mut digits = [0u8; 20];
            let mut n = self.max_age_secs;
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[i..]);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_decoding_keeps_plus_and_refuses_bad_escapes() {
        let mut out = Vec::new();
        assert_eq!(uri_percent_decode_into(b"a+b%20c%2B", &mut out), Some(()));
        assert_eq!(out, b"a+b c+");
        assert_eq!(uri_percent_decode_into(b"%G1", &mut Vec::new()), None);
        assert_eq!(uri_percent_decode_into(b"%2", &mut Vec::new()), None);
    }

    #[test]
    fn builtin_and_configured_routes() {
        let cfg = vec![
            Route {
                path: "/quiet".into(),
                response: RouteAction::NoContent,
                record: false,
            },
            Route {
                path: "/ads/*".into(),
                response: RouteAction::Gif,
                record: true,
            },
        ];
        let r = Routes::new(cfg, ResponseKind::Gif).unwrap();
        assert_eq!(r.lookup(b"/quiet"), (RouteAction::NoContent, false));
        assert_eq!(r.lookup(b"/ads/x/y.gif"), (RouteAction::Gif, true));
        assert_eq!(r.lookup(b"/i"), (RouteAction::Gif, true));
        assert_eq!(
            r.lookup(b"/com.snowplowanalytics.snowplow/tp2"),
            (RouteAction::NoContent, true)
        );
        assert_eq!(r.lookup(b"/r"), (RouteAction::Redirect, true));
        assert_eq!(r.lookup(b"/anything"), (RouteAction::Gif, true));
        let r204 = Routes::new(vec![], ResponseKind::NoContent).unwrap();
        assert_eq!(r204.lookup(b"/p.gif"), (RouteAction::NoContent, true));
        assert_eq!(r204.lookup(b"/r"), (RouteAction::Redirect, true));
        assert!(Routes::new(
            vec![Route {
                path: "x".into(),
                response: RouteAction::Gif,
                record: true
            }],
            ResponseKind::Gif
        )
        .is_err());
    }

    #[test]
    fn redirects_only_to_allowed_hosts() {
        let allow = vec!["shop.example".to_string()];
        let mut s = Vec::new();
        let ok = |q: &str, s: &mut Vec<u8>| {
            redirect_target(q.as_bytes(), &allow, s).map(|u| String::from_utf8(u.to_vec()).unwrap())
        };
        assert_eq!(
            ok("cid=1&u=https%3A%2F%2Fshop.example%2Fsale%3Fa%3D1", &mut s).as_deref(),
            Some("https://shop.example/sale?a=1")
        );
        assert_eq!(
            ok("u=http://www.shop.example:8443/x", &mut s).as_deref(),
            Some("http://www.shop.example:8443/x")
        );
        for bad in [
            "u=https://evil.example/",
            "u=https://shop.example.evil.example/",
            "u=https://evilshop.example/",
            "u=https://shop.example@evil.example/",
            "u=javascript:alert(1)",
            "u=//shop.example/",
            "u=https://shop.example/%0d%0aSet-Cookie:%20x",
            "u=https://shop.example/%zz",
            "u=https://evil.example\\@shop.example/",
            "x=1",
        ] {
            assert_eq!(ok(bad, &mut s), None, "{bad}");
        }
    }

    #[test]
    fn cors_origins_and_headers() {
        let c = CorsOrigins::new(&["https://a.example, https://b.example/".into()], 600);
        assert!(c.allows(b"https://a.example") && c.allows(b"https://B.example"));
        assert!(
            !c.allows(b"https://c.example")
                && !c.allows(b"null")
                && !c.allows(b"https://a.example\r\nX: y")
        );
        let mut out = Vec::new();
        c.write_headers(&mut out, b"https://a.example", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Access-Control-Allow-Origin: https://a.example\r\n"));
        assert!(text.contains("Access-Control-Max-Age: 600\r\n") && text.ends_with("\r\n"));
        assert!(CorsOrigins::new(&["*".into()], 0).allows(b"https://any.example"));
        assert!(!CorsOrigins::new(&[], 0).enabled());
    }
}
