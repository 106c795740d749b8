//! The request-head parser and the chunked decoder on arbitrary bytes.
//!
//! Byte 0 picks the limits and the mode; the rest is the input. Invariants: never panics; a
//! complete head obeys every limit and every framing rule; the chunked decoder gives the same
//! answer whether fed at once or in arbitrary pieces, and never consumes past the body.

use glint::http::chunked::{ChunkError, ChunkedDecoder};
use glint::http::parse::{parse_request_head, Framing, Limits, Parsed};

/// Checks one input; panics on any violated invariant.
pub fn check(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let limits = if control & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_head: 256,
            max_headers: 4,
            max_target: 64,
            max_body: 100,
            named_ip_header: None,
        }
    };
    if control & 2 == 0 {
        check_head(input, &limits);
    } else {
        check_chunked(input, usize::from(control >> 2) + 1);
    }
}

fn check_head(input: &[u8], limits: &Limits) {
    match parse_request_head(input, limits) {
        Parsed::Complete(head) => {
            let raw = &input[..head.head_len];
            assert!(head.head_len <= limits.max_head, "head over the limit");
            assert!(
                head.target.len() <= limits.max_target,
                "target over the limit"
            );
            assert!(
                raw.ends_with(b"\r\n\r\n"),
                "head does not end with an empty line"
            );
            assert!(
                raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r') && !raw.starts_with(b"\n"),
                "bare LF accepted"
            );
            assert!(!raw.contains(&0), "NUL accepted");
            assert!(head.http_minor <= 1);
            assert!(
                head.target.iter().all(|&b| (0x21..0x7f).contains(&b)),
                "target with a control or non-ASCII byte"
            );
            match head.framing {
                Framing::Length(n) => assert!(n > 0 && n <= limits.max_body),
                Framing::Chunked => assert_eq!(head.http_minor, 1, "TE on HTTP/1.0"),
                Framing::None => {}
            }
            // httparse agrees on where the head ends. It refuses HTTP/1.2 .. 1.9, which glint
            // reads as HTTP/1.1 (RFC 9110 2.5), so it is asked about the head with that version.
            let as_one_one = higher_minor_as_one_one(input);
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut req = httparse::Request::new(&mut headers);
            assert_eq!(
                req.parse(as_one_one.as_deref().unwrap_or(input)).ok(),
                Some(httparse::Status::Complete(head.head_len))
            );
            // Parsing is a pure function of the head's bytes (conn.rs re-parses a copy).
            let again = parse_request_head(raw, limits);
            assert!(matches!(again, Parsed::Complete(h) if h.head_len == head.head_len));
        }
        Parsed::Partial => {
            assert!(input.len() < limits.max_head, "partial past the head limit");
            // A prefix of a partial head is partial or already an error, never complete.
            let cut = input.len() / 2;
            assert!(!matches!(
                parse_request_head(&input[..cut], limits),
                Parsed::Complete(_)
            ));
        }
        Parsed::Error(reject) => {
            assert!(matches!(reject.status(), 400 | 413 | 414 | 431 | 501 | 505));
        }
    }
}

/// A copy of `input` whose request line says `HTTP/1.1` if it said `HTTP/1.2` to `HTTP/1.9`
/// (after the empty lines a request may start with); `None` if there is nothing to rewrite.
fn higher_minor_as_one_one(input: &[u8]) -> Option<Vec<u8>> {
    let mut start = 0;
    while input[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let line_len = input[start..].windows(2).position(|w| w == b"\r\n")?;
    let end = start + line_len;
    let version = input.get(end.checked_sub(8)?..end)?;
    if !(version.starts_with(b"HTTP/1.") && (b'2'..=b'9').contains(&version[7])) {
        return None;
    }
    let mut copy = input.to_vec();
    copy[end - 1] = b'1';
    Some(copy)
}

fn decode(input: &[u8], piece: usize) -> (Result<usize, ChunkError>, Vec<u8>, bool) {
    let mut d = ChunkedDecoder::default();
    let mut out = Vec::new();
    let mut used = 0;
    for part in input.chunks(piece) {
        match d.feed(part, |b| out.extend_from_slice(b)) {
            Ok(n) => {
                assert!(n <= part.len());
                used += n;
                if d.is_done() {
                    break;
                }
                assert_eq!(n, part.len(), "stopped early without finishing");
            }
            Err(e) => return (Err(e), out, false),
        }
    }
    (Ok(used), out, d.is_done())
}

fn check_chunked(input: &[u8], piece: usize) {
    let whole = decode(input, input.len().max(1));
    let pieces = decode(input, piece);
    assert_eq!(
        whole.0.is_ok(),
        pieces.0.is_ok(),
        "error depends on how bytes arrive"
    );
    if let (Ok(a), Ok(b)) = (&whole.0, &pieces.0) {
        assert_eq!((a, &whole.1, whole.2), (b, &pieces.1, pieces.2));
        if whole.2 {
            // Done exactly at the end of the final CRLF; the decoded data is shorter.
            assert!(input[..*a].ends_with(b"\r\n"));
            assert!(whole.1.len() < *a);
        }
    }
}
