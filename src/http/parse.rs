//! Request head parsing: httparse plus the checks it leaves to the server.
//!
//! Pure: bytes in, [`Parsed`] out. httparse accepts a bare LF as a line ending and knows
//! nothing of Host, Content-Length or Transfer-Encoding semantics; those rules (RFC 9110 and
//! 9112) are applied here so that the connection code only sees a request it can answer
//! or a [`Reject`] that names the status to send.

use super::version::{self, LineVersion, RequestLine};
use crate::record::Method;

/// Default `--max-target`: RFC 9112 3 recommends request lines of at least 8,000 octets, and
/// trackers send long query strings.
pub const DEFAULT_MAX_TARGET: usize = 8192;
/// Default `--max-head-size`: the longest default target plus room for a browser's fields.
pub const DEFAULT_MAX_HEAD: usize = 16384;
/// What a request line adds to its target (method, two spaces, `HTTP/1.1`, CRLF), at most for
/// any method glint answers: `--max-target` plus this must fit in `--max-head-size`.
pub const REQUEST_LINE_OVERHEAD: usize = 64;

/// Size limits, from `glint serve` flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head (request line and headers), bytes.
    pub max_head: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Longest request target, bytes.
    pub max_target: usize,
    /// Largest request body, bytes.
    pub max_body: u64,
    /// Lower-case name of a CDN header holding the client IP (`--client-ip-header`), captured
    /// into [`RequestHead::named_ip`].
    pub named_ip_header: Option<&'static [u8]>,
}

impl Limits {
    /// Whether a request line carrying a target of `max_target` bytes fits in `max_head`; the
    /// error is one line naming both flags.
    pub fn check_target_fits(max_target: usize, max_head: usize) -> Result<(), String> {
        match max_target.checked_add(REQUEST_LINE_OVERHEAD) {
            Some(line) if line <= max_head => Ok(()),
            _ => Err(format!(
                "--max-target {max_target} does not fit in --max-head-size {max_head}: a request \
                 line adds up to {REQUEST_LINE_OVERHEAD} bytes to its target, so raise \
                 --max-head-size to at least {} or lower --max-target",
                max_target.saturating_add(REQUEST_LINE_OVERHEAD)
            )),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: DEFAULT_MAX_HEAD,
            max_headers: 64,
            max_target: DEFAULT_MAX_TARGET,
            max_body: 65_536,
            named_ip_header: None,
        }
    }
}

/// Upper bound on `max_headers` (the parser's header array lives on the stack).
pub const HEADERS_CAP: usize = 128;

crate::enum_table::indexed_enum! {
    /// Why a request is refused; each maps to one canned response and one counter.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Reject {
        /// Malformed request line or header syntax, bare LF, bad Host, bad framing headers.
        BadRequest,
        /// Request line or target longer than `max_target`.
        UriTooLong,
        /// Head larger than `max_head` or more than `max_headers` fields.
        HeaderTooLarge,
        /// Unknown HTTP version.
        VersionNotSupported,
        /// A transfer coding other than chunked.
        NotImplemented,
        /// Declared body larger than `max_body`.
        PayloadTooLarge,
    }
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::UriTooLong => 414,
            Reject::HeaderTooLarge => 431,
            Reject::VersionNotSupported => 505,
            Reject::NotImplemented => 501,
            Reject::PayloadTooLarge => 413,
        }
    }

    /// Label for counters and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Reject::BadRequest => "bad_request",
            Reject::UriTooLong => "uri_too_long",
            Reject::HeaderTooLarge => "header_too_large",
            Reject::VersionNotSupported => "version_not_supported",
            Reject::NotImplemented => "not_implemented",
            Reject::PayloadTooLarge => "payload_too_large",
        }
    }
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head, borrowing from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: Method,
    /// The method is not one of the RFC 9110 methods (answer 501, not 405).
    pub unknown_method: bool,
    pub target: &'a [u8],
    pub http_minor: u8,
    pub user_agent: &'a [u8],
    pub referer: &'a [u8],
    pub cookie: &'a [u8],
    pub content_type: &'a [u8],
    pub origin: Option<&'a [u8]>,
    pub x_forwarded_for: Option<&'a [u8]>,
    pub forwarded: Option<&'a [u8]>,
    /// Value of the configured CDN client-IP header, if present.
    pub named_ip: Option<&'a [u8]>,
    pub dnt: bool,
    pub gpc: bool,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub framing: Framing,
    /// Bytes of the head, including the final empty line.
    pub head_len: usize,
}

/// Outcome of parsing the start of a buffer.
#[derive(Debug)]
pub enum Parsed<'a> {
    Complete(RequestHead<'a>),
    /// Need more bytes.
    Partial,
    Error(Reject),
}

/// Parses one request head at the start of `buf`.
pub fn parse_request_head<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    // Uninitialised header slots: zeroing 128 of them cost more than parsing a beacon.
    let mut storage =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let headers = &mut storage[..limits.max_headers.min(HEADERS_CAP)];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(buf, limits),
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(Reject::HeaderTooLarge),
        Err(httparse::Error::Version) => return parse_higher_minor(buf, limits),
        Err(_) => return Parsed::Error(Reject::BadRequest),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Error(Reject::BadRequest);
    };
    let line = RequestLine {
        method,
        target,
        end: 0,
    };
    check_head(buf, line, version, req.headers, head_len, limits)
}

/// A request line httparse refused for its version: `HTTP/1.2` .. `HTTP/1.9` parsed as HTTP/1.1
/// (RFC 9110 2.5), other versions refused (see [`super::version`]).
fn parse_higher_minor<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let line = match version::classify(buf) {
        LineVersion::HigherMinor(line) => line,
        LineVersion::Incomplete => return partial(buf, limits),
        LineVersion::Refused(reject) => return Parsed::Error(reject),
    };
    let mut storage = [httparse::EMPTY_HEADER; HEADERS_CAP];
    let headers = &mut storage[..limits.max_headers.min(HEADERS_CAP)];
    match httparse::parse_headers(&buf[line.end..], headers) {
        Ok(httparse::Status::Complete((n, headers))) => {
            check_head(buf, line, 1, headers, line.end + n, limits)
        }
        Ok(httparse::Status::Partial) => partial(buf, limits),
        Err(httparse::Error::TooManyHeaders) => Parsed::Error(Reject::HeaderTooLarge),
        Err(_) => Parsed::Error(Reject::BadRequest),
    }
}

/// The checks httparse leaves to us, on a head it parsed whole (`head_len` bytes of `buf`).
fn check_head<'a>(
    buf: &'a [u8],
    line: RequestLine<'a>,
    http_minor: u8,
    headers: &[httparse::Header<'a>],
    head_len: usize,
    limits: &Limits,
) -> Parsed<'a> {
    let target = line.target.as_bytes();
    if target.len() > limits.max_target {
        return Parsed::Error(Reject::UriTooLong);
    }
    if head_len > limits.max_head {
        return Parsed::Error(Reject::HeaderTooLarge);
    }
    if has_bare_lf(&buf[..head_len]) {
        return Parsed::Error(Reject::BadRequest);
    }
    let method = Method::from_token(line.method);
    if !valid_target(method, target) {
        return Parsed::Error(Reject::BadRequest);
    }
    match read_headers(headers, http_minor, limits) {
        Ok(h) => Parsed::Complete(RequestHead {
            method,
            unknown_method: method == Method::Other,
            target,
            http_minor,
            user_agent: h.user_agent,
            referer: h.referer,
            cookie: h.cookie,
            content_type: h.content_type,
            origin: h.origin,
            x_forwarded_for: h.x_forwarded_for,
            forwarded: h.forwarded,
            named_ip: h.named_ip,
            dnt: h.dnt,
            gpc: h.gpc,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
            framing: h.framing,
            head_len,
        }),
        Err(reject) => Parsed::Error(reject),
    }
}

fn partial<'a>(buf: &[u8], limits: &Limits) -> Parsed<'a> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    // Request line still incomplete and already longer than any acceptable target.
    if line_end.is_none() && buf.len() > limits.max_target.saturating_add(REQUEST_LINE_OVERHEAD) {
        return Parsed::Error(Reject::UriTooLong);
    }
    if buf.len() >= limits.max_head {
        return Parsed::Error(Reject::HeaderTooLarge);
    }
    Parsed::Partial
}

/// RFC 9112 2.2 allows a bare LF as a line terminator; accepting it differently from a proxy in
/// front is a known smuggling vector, so every LF in the head must follow a CR. httparse has
/// already refused any CR not followed by LF, so a bare LF exists exactly when the head holds
/// more LFs than CRs: two counts the compiler vectorises, instead of a byte-by-byte walk.
fn has_bare_lf(head: &[u8]) -> bool {
    // u8 lanes per 255-byte chunk: 16 bytes per SSE2 instruction, no widening.
    let (mut lf, mut cr) = (0usize, 0usize);
    for chunk in head.chunks(255) {
        lf += usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n')));
        cr += usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\r')));
    }
    lf > cr
}

#[derive(Default)]
struct Headers<'a> {
    user_agent: &'a [u8],
    referer: &'a [u8],
    cookie: &'a [u8],
    content_type: &'a [u8],
    origin: Option<&'a [u8]>,
    x_forwarded_for: Option<&'a [u8]>,
    forwarded: Option<&'a [u8]>,
    named_ip: Option<&'a [u8]>,
    dnt: bool,
    gpc: bool,
    keep_alive: bool,
    expect_continue: bool,
    framing: Framing,
}

fn read_headers<'a>(
    headers: &[httparse::Header<'a>],
    http_minor: u8,
    limits: &Limits,
) -> Result<Headers<'a>, Reject> {
    let mut h = Headers::default();
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_last = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for header in headers {
        let name = header.name.as_bytes();
        let value = trim(header.value);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                if !valid_host(value) {
                    return Err(Reject::BadRequest);
                }
            }
            10 if name.eq_ignore_ascii_case(b"user-agent") => h.user_agent = value,
            7 if name.eq_ignore_ascii_case(b"referer") => h.referer = value,
            6 if name.eq_ignore_ascii_case(b"cookie") => h.cookie = value,
            6 if name.eq_ignore_ascii_case(b"origin") => h.origin = Some(value),
            6 if name.eq_ignore_ascii_case(b"expect") => {
                h.expect_continue |= value.eq_ignore_ascii_case(b"100-continue")
            }
            3 if name.eq_ignore_ascii_case(b"dnt") => h.dnt = value == b"1",
            7 if name.eq_ignore_ascii_case(b"sec-gpc") => h.gpc = value == b"1",
            9 if name.eq_ignore_ascii_case(b"forwarded") => h.forwarded = Some(value),
            12 if name.eq_ignore_ascii_case(b"content-type") => h.content_type = value,
            15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => h.x_forwarded_for = Some(value),
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',').map(trim) {
                    conn_close |= token.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                for item in value.split(|&b| b == b',').map(trim) {
                    let n = parse_content_length(item).ok_or(Reject::BadRequest)?;
                    if content_length.is_some_and(|seen| seen != n) {
                        return Err(Reject::BadRequest);
                    }
                    content_length = Some(n);
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                for coding in value.split(|&b| b == b',').map(trim) {
                    if coding.is_empty() {
                        return Err(Reject::BadRequest);
                    }
                    if chunked_last {
                        // chunked must be the final coding, applied once (RFC 9112 6.1).
                        return Err(Reject::BadRequest);
                    }
                    chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                    transfer_encoding = true;
                    if !chunked_last {
                        return Err(Reject::NotImplemented);
                    }
                }
                if value.is_empty() {
                    return Err(Reject::BadRequest);
                }
            }
            _ if limits
                .named_ip_header
                .is_some_and(|n| name.eq_ignore_ascii_case(n)) =>
            {
                h.named_ip = Some(value)
            }
            _ => {}
        }
    }
    if hosts > 1 || (http_minor == 1 && hosts == 0) {
        return Err(Reject::BadRequest);
    }
    h.framing = match (transfer_encoding, content_length) {
        // Both framings together, or TE in HTTP/1.0, can hide a second request: refuse.
        (true, Some(_)) => return Err(Reject::BadRequest),
        (true, None) if http_minor == 0 => return Err(Reject::BadRequest),
        (true, None) => Framing::Chunked,
        (false, Some(n)) if n > limits.max_body => return Err(Reject::PayloadTooLarge),
        (false, Some(0)) | (false, None) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
    };
    h.keep_alive = if http_minor == 0 {
        conn_keep_alive && !conn_close
    } else {
        !conn_close
    };
    Ok(h)
}

/// Content-Length is 1*DIGIT; anything else, or a value that overflows u64, is invalid.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// RFC 9112 3.2: origin-form, absolute-form (http or https, no userinfo), authority-form for
/// CONNECT, asterisk-form for OPTIONS; only visible ASCII (no raw UTF-8, controls or DEL).
fn valid_target(method: Method, target: &[u8]) -> bool {
    if !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return false;
    }
    match target {
        [b'/', ..] => true,
        b"*" => method == Method::Options,
        _ if method == Method::Connect => valid_host(target),
        _ => absolute_form_authority(target).is_some_and(valid_host),
    }
}

/// The authority of an `http://` or `https://` absolute-form target, if it is one.
fn absolute_form_authority(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let rest = target[colon..].strip_prefix(b"://")?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then_some(authority)
}

/// Host = uri-host [ ":" port ] (RFC 9110 7.2): no userinfo, path, whitespace or controls.
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..end];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        (&b"x"[..], &rest[end + 1..])
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, &b""[..]),
        }
    };
    let host_ok = host.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
            )
    });
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            digits.is_empty()
                || (digits.len() <= 5
                    && digits.iter().all(u8::is_ascii_digit)
                    && parse_content_length(digits).is_some_and(|p| p <= 65_535))
        }
        _ => false,
    };
    host_ok && port_ok
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<RequestHead<'_>, Option<Reject>> {
        match parse_request_head(raw, &Limits::default()) {
            Parsed::Complete(h) => Ok(h),
            Parsed::Partial => Err(None),
            Parsed::Error(r) => Err(Some(r)),
        }
    }

    #[test]
    fn browser_beacon_fields() {
        let raw = b"GET /p.gif?e=open&cid=42 HTTP/1.1\r\nHost: t.example.com\r\nUser-Agent: Mozilla/5.0\r\nReferer: https://shop.example/\r\nCookie: a=b\r\nDNT: 1\r\nSec-GPC: 1\r\n\r\nGET";
        let h = parse(raw).unwrap();
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.target, b"/p.gif?e=open&cid=42");
        assert_eq!(
            (h.http_minor, h.keep_alive, h.dnt, h.gpc),
            (1, true, true, true)
        );
        assert_eq!(h.user_agent, b"Mozilla/5.0");
        assert_eq!(h.referer, b"https://shop.example/");
        assert_eq!(h.cookie, b"a=b");
        assert_eq!(h.head_len, raw.len() - 3);
        assert_eq!(h.framing, Framing::None);
    }

    #[test]
    fn connection_tokens_and_versions() {
        let h = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap_err(), None);
    }

    #[test]
    fn rejects_map_to_statuses() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 400),                             // no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),       // two Hosts
            (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),                // userinfo
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),                // path in Host
            (b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400),            // bad port
            (b"GET / HTTP/1.1\nHost: a\n\n", 400),                        // bare LF
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),                 // space before colon
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n", 400), // obs-fold
            (b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", 400),            // bare CR
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 200), // higher minor: as 1.1
            (b"GET / HTTP/1.2\r\n\r\n", 400),                 // ... so Host is required
            (b"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n", 413),
        ];
        for (raw, status) in cases {
            let got = parse(raw)
                .map(|_| 200)
                .unwrap_or_else(|r| r.map_or(0, Reject::status));
            assert_eq!(got, *status, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn request_targets_are_checked() {
        let status = |raw: &[u8]| {
            parse(raw)
                .map(|_| 200)
                .unwrap_or_else(|r| r.map_or(0, Reject::status))
        };
        let cases: &[(&[u8], u16)] = &[
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400), // raw UTF-8
            (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),      // DEL
            (b"GET p.gif HTTP/1.1\r\nHost: a\r\n\r\n", 400),        // no form at all
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),            // asterisk, not OPTIONS
            (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200),
            (b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400), // userinfo
            (b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400),   // empty authority
            (b"GET ftp://a/p HTTP/1.1\r\nHost: a\r\n\r\n", 400),   // not http(s)
            (
                b"GET HTTP://a.example:8080?x=1 HTTP/1.1\r\nHost: b\r\n\r\n",
                200,
            ),
            (b"GET https://a/p.gif HTTP/1.1\r\nHost: a\r\n\r\n", 200),
            (b"CONNECT a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", 200), // answered 405 later
            (b"GET /p.gif?x=%20&y=a|b HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        ];
        for (raw, want) in cases {
            assert_eq!(status(raw), *want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn only_a_well_formed_request_line_gets_505() {
        let status = |raw: &[u8]| match parse(raw) {
            Err(Some(r)) => r.status(),
            other => panic!("{other:?}"),
        };
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status(b"\r\nGET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status(b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status(b" / HTTP/2.0\r\nHost: a\r\n\r\n"), 400);
    }

    #[test]
    fn higher_minor_version_is_parsed_as_one_one() {
        let raw = b"\r\nPOST /p.gif?a=1 HTTP/1.2\r\nHost: a\r\nUser-Agent: u\r\nContent-Length: 3\r\n\r\nabcGET";
        let h = parse(raw).unwrap();
        assert_eq!((h.method, h.target), (Method::Post, &b"/p.gif?a=1"[..]));
        assert_eq!((h.http_minor, h.keep_alive), (1, true));
        assert_eq!((h.user_agent, h.framing), (&b"u"[..], Framing::Length(3)));
        assert_eq!(h.head_len, raw.len() - b"abcGET".len());
        let h = parse(b"GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        assert_eq!(parse(b"GET / HTTP/1.2\r\nHost: a\r\n").unwrap_err(), None);
        assert_eq!(parse(b"GET / HTTP/1.2").unwrap_err(), None);
        let bad: &[(&[u8], Reject)] = &[
            (
                b"GET / HTTP/1.2\r\nHost: a\nX: 1\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                b"GET / HTTP/1.2\r\nHost: a\r\nX : 1\r\n\r\n",
                Reject::BadRequest,
            ),
            (
                b"GET / HTTP/1.2\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                Reject::NotImplemented,
            ),
            (
                b"GET /caf\xc3\xa9 HTTP/1.2\r\nHost: a\r\n\r\n",
                Reject::BadRequest,
            ),
        ];
        for (raw, want) in bad {
            assert_eq!(
                parse(raw).unwrap_err(),
                Some(*want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let limits = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        let raw = b"GET / HTTP/1.3\r\nHost: a\r\nX: 1\r\n\r\n";
        assert!(matches!(
            parse_request_head(raw, &limits),
            Parsed::Error(Reject::HeaderTooLarge)
        ));
    }

    #[test]
    fn content_length_up_to_u64_max_is_a_number() {
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(parse_content_length(b"000000000000000000000005"), Some(5));
        assert_eq!(parse_content_length(b"18446744073709551616"), None);
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err(), Some(Reject::PayloadTooLarge));
    }

    #[test]
    fn identical_content_lengths_merge() {
        let h = parse(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
    }

    #[test]
    fn size_limits() {
        let limits = Limits {
            max_head: 64,
            max_headers: 2,
            max_target: 16,
            max_body: 10,
            named_ip_header: None,
        };
        let long_target = [b"GET /".as_slice(), &[b'a'; 100]].concat();
        assert!(matches!(
            parse_request_head(&long_target, &limits),
            Parsed::Error(Reject::UriTooLong)
        ));
        let raw = b"GET /0123456789abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(
            parse_request_head(raw, &limits),
            Parsed::Error(Reject::UriTooLong)
        ));
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert!(matches!(
            parse_request_head(raw, &limits),
            Parsed::Error(Reject::HeaderTooLarge)
        ));
        let raw = [b"GET / HTTP/1.1\r\nHost: a\r\nX: ".as_slice(), &[b'v'; 80]].concat();
        assert!(matches!(
            parse_request_head(&raw, &limits),
            Parsed::Error(Reject::HeaderTooLarge)
        ));
    }
}
