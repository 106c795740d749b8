//! The HTTP-version of a request line that httparse refused (it knows only 1.0 and 1.1).
//!
//! RFC 9110 2.5: a request with a higher minor version than the server supports is handled as
//! the highest minor it supports, so `HTTP/1.2` .. `HTTP/1.9` are answered as HTTP/1.1. A
//! well-formed request line with another major version (`HTTP/2.0` sent as text) gets 505;
//! anything else is a malformed request line (400).

use super::parse::Reject;

/// What the request line at the start of a buffer says about its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineVersion<'a> {
    /// `HTTP/1.x` with x from 2 to 9: parse the rest as HTTP/1.1.
    HigherMinor(RequestLine<'a>),
    /// The request line has not ended yet.
    Incomplete,
    /// Refuse with this status.
    Refused(Reject),
}

/// A request line [`classify`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// Bytes from the start of the buffer to the end of the line's CRLF (empty lines before
    /// the request line included): where the header fields begin.
    pub end: usize,
}

/// Classifies the request line at the start of `buf`, which httparse refused for its version.
pub fn classify(buf: &[u8]) -> LineVersion<'_> {
    // httparse skips empty lines before the request line (RFC 9112 2.2); so do we.
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let rest = &buf[start..];
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return LineVersion::Incomplete;
    };
    let Some(line) = rest[..lf].strip_suffix(b"\r") else {
        return LineVersion::Refused(Reject::BadRequest); // bare LF
    };
    let Some((method, target, version)) = split_line(line) else {
        return LineVersion::Refused(Reject::BadRequest);
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => {
            // A token and visible ASCII, so both are UTF-8.
            match (
                is_token(method),
                std::str::from_utf8(method),
                std::str::from_utf8(target),
            ) {
                (true, Ok(method), Ok(target))
                    if target.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
                {
                    LineVersion::HigherMinor(RequestLine {
                        method,
                        target,
                        end: start + lf + 1,
                    })
                }
                _ => LineVersion::Refused(Reject::BadRequest),
            }
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            LineVersion::Refused(Reject::VersionNotSupported)
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() => {
            LineVersion::Refused(Reject::VersionNotSupported)
        }
        _ => LineVersion::Refused(Reject::BadRequest),
    }
}

/// `method SP target SP version`, each part non-empty, exactly two single spaces.
fn split_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!method.is_empty() && !target.is_empty()).then_some((method, target, version))
}

/// RFC 9110 5.6.2 token: one or more tchar.
fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_minor_versions_are_one_one_and_other_majors_505() {
        let line = |method, target, end| {
            LineVersion::HigherMinor(RequestLine {
                method,
                target,
                end,
            })
        };
        assert_eq!(
            classify(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
            line("GET", "/", 16)
        );
        assert_eq!(
            classify(b"\r\nPOST /p?q HTTP/1.9\r\n"),
            line("POST", "/p?q", 22)
        );
        assert_eq!(classify(b"GET / HTTP/1.2"), LineVersion::Incomplete);
        let refused = |raw: &[u8]| match classify(raw) {
            LineVersion::Refused(r) => r.status(),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(b"GET / HTTP/2.0\r\n"), 505);
        assert_eq!(refused(b"GET / HTTP/3\r\n"), 505);
        assert_eq!(refused(b"GET / HTTP/1.2\n"), 400, "bare LF");
        assert_eq!(refused(b"GET / HTTP/1.12\r\n"), 400);
        assert_eq!(refused(b"GET /  HTTP/1.2\r\n"), 400);
        assert_eq!(refused(b"G(T / HTTP/1.2\r\n"), 400, "method not a token");
        assert_eq!(refused(b"GET /\x01 HTTP/1.2\r\n"), 400, "control in target");
        assert_eq!(refused(b"GET / HTTP/1.a\r\n"), 400);
    }
}
