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
    if !head_ends_in_crlf(buf, line.method, head_len) {
        return Parsed::Error(Reject::BadRequest);
    }
    let method = Method::from_token(line.method);
    if !valid_target(method, target) {
        return Parsed::Error(Reject::BadRequest);
    }
    match read_headers(buf, headers, http_minor, limits) {
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
/// front is a known smuggling vector, so every line of the head must end in CRLF. httparse lets
/// no LF into a method, target, version, field name or value, and refuses obs-fold in a request,
/// so the head's LFs are those of the empty lines before the request line and the line ends
/// just before each field name and before the final empty line: checked there, a compare per
/// line instead of a pass over every byte of the head (a proptest checks this against counting
/// every LF in generated heads). This checks the lines around the fields; [`read_headers`]
/// checks the one before each field name ([`crlf_before`]) in its pass over the fields.
fn head_ends_in_crlf(buf: &[u8], method: &str, head_len: usize) -> bool {
    let Some(leading) = crlf_offset(buf, method.as_bytes()).and_then(|start| buf.get(..start))
    else {
        return false;
    };
    let leading_ok = leading
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'\n' || (i > 0 && leading[i - 1] == b'\r'));
    leading_ok
        && crlf_at(buf, head_len)
        && head_len.checked_sub(2).is_some_and(|end| crlf_at(buf, end))
}

/// Where `part`, a slice of `buf`, starts in it.
#[inline(always)]
fn crlf_offset(buf: &[u8], part: &[u8]) -> Option<usize> {
    (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)
}

/// The two bytes before offset `line_start` of `buf` are CRLF.
#[inline(always)]
fn crlf_at(buf: &[u8], line_start: usize) -> bool {
    line_start
        .checked_sub(2)
        .and_then(|i| buf.get(i..line_start))
        .is_some_and(|end| end == b"\r\n")
}

/// The line holding field name `name` (a slice of `buf`) follows a CRLF.
#[inline(always)]
fn crlf_before(buf: &[u8], name: &[u8]) -> bool {
    crlf_offset(buf, name).is_some_and(|at| crlf_at(buf, at))
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

/// The fields glint reads, the framing and the Host rules, in one pass over the fields that also
/// checks the line end before each (see [`head_ends_in_crlf`]).
fn read_headers<'a>(
    buf: &[u8],
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
        if !crlf_before(buf, name) {
            return Err(Reject::BadRequest);
        }
        // httparse strips the whitespace around a field value (RFC 9112 5.1).
        let value = header.value;
        match name.len() {
            4 if name_is(name, b"host") => {
                hosts += 1;
                if !valid_host(value) {
                    return Err(Reject::BadRequest);
                }
            }
            10 if name_is(name, b"user-agent") => h.user_agent = value,
            7 if name_is(name, b"referer") => h.referer = value,
            6 if name_is(name, b"cookie") => h.cookie = value,
            6 if name_is(name, b"origin") => h.origin = Some(value),
            6 if name_is(name, b"expect") => {
                h.expect_continue |= value.eq_ignore_ascii_case(b"100-continue")
            }
            3 if name_is(name, b"dnt") => h.dnt = value == b"1",
            7 if name_is(name, b"sec-gpc") => h.gpc = value == b"1",
            9 if name_is(name, b"forwarded") => h.forwarded = Some(value),
            12 if name_is(name, b"content-type") => h.content_type = value,
            15 if name_is(name, b"x-forwarded-for") => h.x_forwarded_for = Some(value),
            10 if name_is(name, b"connection") => {
                for token in value.split(|&b| b == b',').map(trim) {
                    conn_close |= token.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if name_is(name, b"content-length") => {
                for item in value.split(|&b| b == b',').map(trim) {
                    let n = parse_content_length(item).ok_or(Reject::BadRequest)?;
                    if content_length.is_some_and(|seen| seen != n) {
                        return Err(Reject::BadRequest);
                    }
                    content_length = Some(n);
                }
            }
            17 if name_is(name, b"transfer-encoding") => {
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

/// `name`, a token (httparse checked it), equals `lower` (a-z and '-' only) ignoring ASCII case:
/// among token characters OR-ing 0x20 folds exactly A-Z onto a-z and leaves '-' as it is. With
/// `N` known, a name is compared as a few (overlapping) 8- or 4-byte words, no byte loop.
#[inline(always)]
fn name_is<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    let Ok(name) = <&[u8; N]>::try_from(name) else {
        return false;
    };
    if N >= 8 {
        let word =
            |b: &[u8; N], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        // Word starts 0, 8, ..., and N - 8 for the tail (overlapping the previous word).
        (0..N.div_ceil(8))
            .map(|i| (8 * i).min(N - 8))
            .fold(0, |diff, at| {
                diff | ((word(name, at) | 0x2020_2020_2020_2020) ^ word(lower, at))
            })
            == 0
    } else if N >= 4 {
        let word =
            |b: &[u8; N], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
        ((word(name, 0) | 0x2020_2020) ^ word(lower, 0))
            | ((word(name, N - 4) | 0x2020_2020) ^ word(lower, N - 4))
            == 0
    } else {
        name.iter()
            .zip(lower)
            .fold(0, |diff, (&n, &l)| diff | ((n | 0x20) ^ l))
            == 0
    }
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
/// Both request-line parsers already refuse controls, space and DEL in a target (httparse's
/// URI bytes are 0x21..=0x7e and 0x80..; `version::classify` takes 0x21..=0x7e), so what is
/// left is to refuse the bytes from 0x80 up (a test holds httparse to it).
fn valid_target(method: Method, target: &[u8]) -> bool {
    if !target.is_ascii() {
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

/// Bytes of a reg-name or IPv4 address (RFC 3986 3.2.2: unreserved, sub-delims, and the '%' of
/// pct-encoded), as a table: one load per byte of the Host value.
const HOST_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
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
            );
        i += 1;
    }
    table
};

/// Host = uri-host [ ":" port ] (RFC 9110 7.2): no userinfo, path, whitespace or controls.
fn valid_host(v: &[u8]) -> bool {
    let port = if let Some(rest) = v.strip_prefix(b"[") {
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
        &rest[end + 1..]
    } else {
        // ':' is no host byte: the host ends at the first byte that is not one, which must
        // start the port (or end the value).
        let end = v
            .iter()
            .position(|&b| !HOST_BYTE[usize::from(b)])
            .unwrap_or(v.len());
        &v[end..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => {
            digits.is_empty()
                || (digits.len() <= 5
                    && digits.iter().all(u8::is_ascii_digit)
                    && parse_content_length(digits).is_some_and(|p| p <= 65_535))
        }
        _ => false,
    }
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
mod tests;
