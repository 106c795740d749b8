//! Canned responses: static bytes, with the core's current `Date` spliced in without allocating.
//!
//! A response is written as `status line ‖ Date ‖ Connection ‖ extra ‖ fixed headers ‖ CRLF ‖
//! body`, where every piece but the date and the per-connection `extra` headers (CORS, filled
//! by the caller into its own buffer) is `&'static [u8]`.

use crate::clock::HttpDate;

/// The transparent 1x1 GIF every pixel server sends (43 bytes).
pub const GIF: &[u8; 43] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b";

/// Headers that keep browsers and proxies from answering a beacon from cache.
macro_rules! no_cache {
    () => {
        "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\nPragma: no-cache\r\nExpires: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    };
}

/// One canned response.
#[derive(Debug)]
pub struct Canned {
    pub status: u16,
    status_line: &'static [u8],
    headers: &'static [u8],
    body: &'static [u8],
}

macro_rules! canned {
    ($name:ident, $status:literal, $line:literal, $headers:expr, $body:expr) => {
        pub const $name: Canned = Canned {
            status: $status,
            status_line: concat!("HTTP/1.1 ", $line, "\r\n").as_bytes(),
            headers: $headers.as_bytes(),
            body: $body,
        };
    };
}

canned!(
    PIXEL,
    200,
    "200 OK",
    concat!(
        "Content-Type: image/gif\r\nContent-Length: 43\r\n",
        no_cache!()
    ),
    GIF
);
canned!(NO_CONTENT, 204, "204 No Content", no_cache!(), b"");
canned!(
    FOUND,
    302,
    "302 Found",
    concat!("Content-Length: 0\r\n", no_cache!()),
    b""
);
canned!(
    REDIRECT_REFUSED,
    400,
    "400 Bad Request",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    OPTIONS,
    204,
    "204 No Content",
    "Allow: GET, HEAD, POST, OPTIONS\r\n",
    b""
);
canned!(
    HEALTH_OK,
    200,
    "200 OK",
    "Content-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n",
    b"ok\n"
);
canned!(
    HEALTH_DRAINING,
    503,
    "503 Service Unavailable",
    "Content-Type: text/plain\r\nContent-Length: 9\r\nCache-Control: no-store\r\n",
    b"draining\n"
);
canned!(
    METHOD_NOT_ALLOWED,
    405,
    "405 Method Not Allowed",
    "Allow: GET, HEAD, POST, OPTIONS\r\nContent-Length: 0\r\n",
    b""
);
canned!(
    UNKNOWN_METHOD,
    501,
    "501 Not Implemented",
    "Allow: GET, HEAD, POST, OPTIONS\r\nContent-Length: 0\r\n",
    b""
);
canned!(
    RING_FULL,
    503,
    "503 Service Unavailable",
    "Retry-After: 1\r\nContent-Length: 0\r\n",
    b""
);
canned!(
    BAD_REQUEST,
    400,
    "400 Bad Request",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    PAYLOAD_TOO_LARGE,
    413,
    "413 Content Too Large",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    URI_TOO_LONG,
    414,
    "414 URI Too Long",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    HEADER_TOO_LARGE,
    431,
    "431 Request Header Fields Too Large",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    NOT_IMPLEMENTED,
    501,
    "501 Not Implemented",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    VERSION_NOT_SUPPORTED,
    505,
    "505 HTTP Version Not Supported",
    "Content-Length: 0\r\n",
    b""
);
canned!(
    REQUEST_TIMEOUT,
    408,
    "408 Request Timeout",
    "Content-Length: 0\r\n",
    b""
);

/// The interim response to `Expect: 100-continue` (no Date: it is not a final response).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    /// HTTP/1.1 keep-alive: nothing to say.
    None,
    /// HTTP/1.0 client asked for keep-alive.
    KeepAlive,
    /// The server closes after this response.
    Close,
}

impl ConnHeader {
    fn bytes(self) -> &'static [u8] {
        match self {
            ConnHeader::None => b"",
            ConnHeader::KeepAlive => b"Connection: keep-alive\r\n",
            ConnHeader::Close => b"Connection: close\r\n",
        }
    }
}

/// Largest response [`write()`] can produce with `extra` headers of `extra_len` bytes.
pub fn max_len(extra_len: usize) -> usize {
    // Longest status line + Date + Connection + longest fixed headers + CRLF + GIF.
    64 + 37 + 24 + extra_len + 256 + 2 + GIF.len()
}

/// Most bytes an answer's varying headers (CORS, `Location`) add beyond the request bytes they
/// echo (the origin, the decoded redirect target), which come from its head.
pub const EXTRA_OVERHEAD: usize = 320;

/// Largest answer to a request whose head is at most `max_head` bytes: the room a connection
/// keeps in its `out` for each answer it has yet to write.
pub fn max_answer_len(max_head: usize) -> usize {
    max_len(max_head + EXTRA_OVERHEAD)
}

/// Appends `canned` to `out`. `head_only` leaves the body out (HEAD). Never allocates when
/// `out` has room for [`max_len`] more bytes.
pub fn write(
    out: &mut Vec<u8>,
    canned: &Canned,
    date: &HttpDate,
    conn: ConnHeader,
    extra: &[u8],
    head_only: bool,
) {
    out.extend_from_slice(canned.status_line);
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(conn.bytes());
    out.extend_from_slice(extra);
    out.extend_from_slice(canned.headers);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(canned.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&Canned; 17] = [
        &FOUND,
        &REDIRECT_REFUSED,
        &PIXEL,
        &NO_CONTENT,
        &OPTIONS,
        &HEALTH_OK,
        &HEALTH_DRAINING,
        &METHOD_NOT_ALLOWED,
        &UNKNOWN_METHOD,
        &RING_FULL,
        &BAD_REQUEST,
        &PAYLOAD_TOO_LARGE,
        &URI_TOO_LONG,
        &HEADER_TOO_LARGE,
        &NOT_IMPLEMENTED,
        &VERSION_NOT_SUPPORTED,
        &REQUEST_TIMEOUT,
    ];

    #[test]
    fn every_canned_response_parses_with_matching_length_and_date() {
        let date = HttpDate::default();
        for canned in ALL {
            for conn in [ConnHeader::None, ConnHeader::KeepAlive, ConnHeader::Close] {
                let mut out = Vec::new();
                write(&mut out, canned, &date, conn, b"", false);
                assert!(out.len() <= max_len(0));
                let mut headers = [httparse::EMPTY_HEADER; 16];
                let mut resp = httparse::Response::new(&mut headers);
                let head_len = match resp.parse(&out).unwrap() {
                    httparse::Status::Complete(n) => n,
                    httparse::Status::Partial => {
                        panic!("incomplete: {:?}", String::from_utf8_lossy(&out))
                    }
                };
                assert_eq!(resp.code, Some(canned.status));
                let body = &out[head_len..];
                let get = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| h.value)
                };
                assert_eq!(get("Date"), Some(&date.as_bytes()[..]));
                match get("Content-Length") {
                    Some(cl) => assert_eq!(
                        std::str::from_utf8(cl).unwrap().parse::<usize>().unwrap(),
                        body.len()
                    ),
                    None => assert!(
                        canned.status == 204 && body.is_empty(),
                        "{} lacks Content-Length",
                        canned.status
                    ),
                }
                if canned.status == 204 {
                    assert!(
                        get("Content-Length").is_none(),
                        "a 204 carries no Content-Length"
                    );
                }
                assert_eq!(get("Connection").is_some(), conn != ConnHeader::None);
            }
        }
    }

    #[test]
    fn head_leaves_body_out_and_gif_is_43_bytes() {
        let date = HttpDate::default();
        let mut full = Vec::new();
        write(&mut full, &PIXEL, &date, ConnHeader::None, b"", false);
        let mut head = Vec::new();
        write(&mut head, &PIXEL, &date, ConnHeader::None, b"", true);
        assert_eq!(full.len() - head.len(), 43);
        assert!(full.ends_with(GIF));
        assert!(String::from_utf8_lossy(&head).contains("no-store"));
    }
}
