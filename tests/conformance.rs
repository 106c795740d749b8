//! RFC 9110/9112 conformance of `glint serve`, graded like public HTTP/1.1 probes: raw requests
//! over real loopback sockets, checking every answer's status, how many answers arrive (a
//! request hidden in a body must never be answered) and whether the server closes.
//!
//! `Must` marks an RFC MUST or a row of issue 6's "Bad input" table; `Should` an RFC SHOULD or
//! a widely expected strictness. Any `Must` failure fails the test; the counts are printed
//! (`cargo test --test conformance -- --nocapture`).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every I/O backend the suite runs against: adding one is one line here.
const BACKENDS: &[&str] = &["epoll", "uring"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Must,
    Should,
}
use Level::*;

/// Whether the server must close after its answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CloseRule {
    Closes,
    StaysOpen,
    Either,
}
use CloseRule::*;

/// Request bytes: a literal or generated (long lines, many headers).
#[derive(Clone, Copy)]
enum Raw {
    Lit(&'static [u8]),
    Gen(fn() -> Vec<u8>),
}

struct Case {
    name: &'static str,
    level: Level,
    raw: Raw,
    /// One entry per answer expected, in order; each lists the acceptable statuses.
    answers: &'static [&'static [u16]],
    close: CloseRule,
    /// A header every answer must carry (405 needs `Allow`).
    header: Option<&'static str>,
}

const fn case(
    name: &'static str,
    level: Level,
    raw: &'static [u8],
    answers: &'static [&'static [u16]],
    close: CloseRule,
) -> Case {
    Case {
        name,
        level,
        raw: Raw::Lit(raw),
        answers,
        close,
        header: None,
    }
}

/// A request that must be refused with one of the statuses, answered once, then closed.
macro_rules! refused {
    ($name:expr, $level:expr, $raw:expr, [$($s:expr),+]) => {
        case($name, $level, $raw, &[&[$($s),+]], Closes)
    };
}

const OK_GET: &[u16] = &[200];
const OK_POST: &[u16] = &[204];

/// Longer than the default --max-target (8192).
fn long_target() -> Vec<u8> {
    let mut r = b"GET /".to_vec();
    r.extend(std::iter::repeat_n(b'a', 9000));
    r.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    r
}

fn long_request_line_unterminated() -> Vec<u8> {
    let mut r = b"GET /".to_vec();
    r.extend(std::iter::repeat_n(b'a', 10_000));
    r
}

/// RFC 9112 3: servers SHOULD accept request lines of at least 8,000 octets; this one is that.
fn request_line_of_8000_octets() -> Vec<u8> {
    let mut r = b"GET /p.gif?q=".to_vec();
    r.resize(8000 - b" HTTP/1.1\r\n".len(), b'a');
    r.extend_from_slice(b" HTTP/1.1\r\n");
    assert_eq!(r.len(), 8000);
    r.extend_from_slice(b"Host: a\r\n\r\n");
    r
}

/// Longer than the default --max-head-size (16384).
fn long_header() -> Vec<u8> {
    let mut r = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    r.extend(std::iter::repeat_n(b'v', 17_000));
    r.extend_from_slice(b"\r\n\r\n");
    r
}

fn large_head() -> Vec<u8> {
    let mut r = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..60 {
        r.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(300)).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r
}

fn many_headers() -> Vec<u8> {
    let mut r = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..100 {
        r.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r
}

fn long_chunk_extension() -> Vec<u8> {
    let mut r = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=".to_vec();
    r.extend(std::iter::repeat_n(b'e', 6000));
    r.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    r
}

/// One chunk of 0xaB = 171 bytes, size written with leading zeros and mixed case.
fn mixed_case_chunk() -> Vec<u8> {
    let mut r =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000aB\r\n".to_vec();
    r.extend(std::iter::repeat_n(b'x', 0xab));
    r.extend_from_slice(b"\r\n0\r\n\r\n");
    r
}

fn generated(
    name: &'static str,
    level: Level,
    raw: fn() -> Vec<u8>,
    status: &'static [&'static [u16]],
) -> Case {
    Case {
        name,
        level,
        raw: Raw::Gen(raw),
        answers: status,
        close: Closes,
        header: None,
    }
}

/// The "Bad input" table, one row per case.
fn bad_input_table() -> Vec<Case> {
    vec![
        generated("target too long: 414", Must, long_target, &[&[414]]),
        generated(
            "request line too long, unterminated: 414",
            Must,
            long_request_line_unterminated,
            &[&[414]],
        ),
        Case {
            close: StaysOpen,
            ..generated("request line of 8,000 octets", Must, request_line_of_8000_octets, &[OK_GET])
        },
        generated("one header too large: 431", Must, long_header, &[&[431]]),
        generated("whole head too large: 431", Must, large_head, &[&[431]]),
        generated("too many headers: 431", Must, many_headers, &[&[431]]),
        refused!("malformed request line", Must, b"GET/HTTP/1.1\r\nHost: a\r\n\r\n", [400]),
        refused!("binary garbage", Must, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", [400]),
        refused!("header without colon", Must, b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", [400]),
        refused!("space before colon", Must, b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", [400]),
        refused!("obs-fold", Must, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", [400]),
        refused!("bare CR in header", Must, b"GET / HTTP/1.1\r\nHost: a\rX-A: 1\r\n\r\n", [400]),
        refused!("bare CR in request line", Must, b"GET / HTTP/1.1\rHost: a\r\n\r\n", [400]),
        refused!("NUL in header value", Must, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", [400]),
        refused!("control byte in header value", Must, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n", [400]),
        refused!("bare LF line ends", Must, b"GET / HTTP/1.1\nHost: a\n\n", [400]),
        refused!("bare LF after one header", Must, b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", [400]),
        refused!("HTTP/1.1 without Host", Must, b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", [400]),
        refused!("HTTP/2.0 request line: 505", Must, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", [505]),
        refused!("HTTP/3.0 request line: 505", Must, b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", [505]),
        // RFC 9110 2.5: a higher minor version is handled as the highest 1.x supported.
        case("HTTP/1.2 answered as HTTP/1.1", Must, b"GET /p.gif HTTP/1.2\r\nHost: a\r\n\r\n", &[OK_GET], StaysOpen),
        case("HTTP/1.9 POST with a body, then HTTP/1.1", Must, b"POST / HTTP/1.9\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n", &[OK_POST, OK_GET], StaysOpen),
        refused!("HTTP/1.2 without Host, like 1.1", Must, b"GET / HTTP/1.2\r\n\r\n", [400]),
        refused!("CL and TE together", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400]),
        refused!("differing Content-Lengths", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", [400]),
        refused!("invalid Content-Length", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: five\r\n\r\nhello", [400]),
        refused!("TE gzip: 501", Must, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", [501]),
        refused!("body over the limit: 413", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\nhello", [413]),
        Case {
            header: Some("Allow"),
            ..case("DELETE: 405 with Allow", Must, b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", &[&[405]], Either)
        },
    ]
}

fn host_cases() -> Vec<Case> {
    vec![
        refused!(
            "Host duplicated, differing",
            Must,
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            [400]
        ),
        refused!(
            "Host duplicated, identical",
            Must,
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "Host with userinfo",
            Must,
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            [400]
        ),
        refused!(
            "Host with a path",
            Must,
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            [400]
        ),
        refused!(
            "Host port out of range",
            Must,
            b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n",
            [400]
        ),
        refused!(
            "Host port not digits",
            Must,
            b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n",
            [400]
        ),
        refused!(
            "Host with NUL",
            Must,
            b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            [400]
        ),
        refused!(
            "Host with inner space",
            Must,
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            [400]
        ),
        refused!(
            "Host IPv6 literal unterminated",
            Must,
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            [400]
        ),
        case(
            "Host with port",
            Must,
            b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
            &[OK_GET],
            StaysOpen,
        ),
        case(
            "Host IPv6 literal",
            Must,
            b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            &[OK_GET],
            StaysOpen,
        ),
        case(
            "HTTP/1.0 without Host",
            Must,
            b"GET / HTTP/1.0\r\n\r\n",
            &[OK_GET],
            Closes,
        ),
    ]
}

macro_rules! chunked {
    ($body:literal) => {
        concat!(
            "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            $body
        )
        .as_bytes()
    };
}

fn chunked_cases() -> Vec<Case> {
    vec![
        case("chunked, one chunk", Must, chunked!("5\r\nhello\r\n0\r\n\r\n"), &[OK_POST], StaysOpen),
        case("chunked, upper-case hex", Must, chunked!("A\r\n0123456789\r\n0\r\n\r\n"), &[OK_POST], StaysOpen),
        case("chunked, lower-case hex", Must, chunked!("a\r\n0123456789\r\n0\r\n\r\n"), &[OK_POST], StaysOpen),
        Case {
            close: StaysOpen,
            ..generated("chunked, mixed-case hex, leading zeros", Must, mixed_case_chunk, &[OK_POST])
        },
        case("chunked, extensions", Must, chunked!("5;name=val;flag\r\nhello\r\n6;q=\"a b\"\r\n world\r\n0;end\r\n\r\n"), &[OK_POST], StaysOpen),
        case("chunked, trailers", Must, chunked!("5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n"), &[OK_POST], StaysOpen),
        case("chunked, empty body", Must, chunked!("0\r\n\r\n"), &[OK_POST], StaysOpen),
        case("chunked, TE token case-insensitive", Should, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &[OK_POST], StaysOpen),
        refused!("chunk size 0x5", Must, chunked!("0x5\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk size +0", Must, chunked!("+0\r\n\r\n"), [400]),
        refused!("chunk size -1", Must, chunked!("-1\r\nh\r\n0\r\n\r\n"), [400]),
        refused!("chunk size 1_0", Must, chunked!("1_0\r\n0123456789abcdef\r\n0\r\n\r\n"), [400]),
        refused!("chunk size leading space", Must, chunked!(" 5\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk size empty", Must, chunked!("\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk size line bare LF", Must, chunked!("5\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk data without CRLF", Must, chunked!("5\r\nhello0\r\n\r\n"), [400]),
        refused!("chunk data spills past size", Must, chunked!("5\r\nhelloXX\r\n0\r\n\r\n"), [400]),
        refused!("chunk data then bare LF", Must, chunked!("5\r\nhello\n0\r\n\r\n"), [400]),
        refused!("chunk size overflows u64", Must, chunked!("10000000000000000\r\nx\r\n0\r\n\r\n"), [400]),
        refused!("chunk size 20 hex digits", Must, chunked!("ffffffffffffffffffff\r\nx\r\n0\r\n\r\n"), [400, 413]),
        refused!("last chunk ends with bare LF", Must, chunked!("0\r\n\n"), [400]),
        refused!("chunk extension empty: 5;", Must, chunked!("5;\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk extension without a name: 5;=v", Must, chunked!("5;=v\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("last chunk extension empty: 0;", Must, chunked!("5\r\nhello\r\n0;\r\n\r\n"), [400]),
        refused!("chunk extension value missing: 5;a=", Should, chunked!("5;a=\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("chunk extension quoted value unterminated", Should, chunked!("5;a=\"b\r\nhello\r\n0\r\n\r\n"), [400]),
        case("chunk extension with whitespace around ; and =", Should, chunked!("5 ; a = b\r\nhello\r\n0\r\n\r\n"), &[OK_POST], StaysOpen),
        refused!("chunk extension with control byte", Should, chunked!("5;a\x01\r\nhello\r\n0\r\n\r\n"), [400]),
        refused!("trailer line without colon", Should, chunked!("0\r\nNoColon\r\n\r\n"), [400]),
        refused!("trailer with space before colon", Should, chunked!("0\r\nX-T : 1\r\n\r\n"), [400]),
        refused!("trailer obs-fold", Should, chunked!("0\r\nX-T: 1\r\n folded\r\n\r\n"), [400]),
        refused!("chunk size over the body limit: 413", Should, chunked!("fffffff\r\nxxxx"), [413]),
        generated("chunk extension too long", Should, long_chunk_extension, &[&[400]]),
    ]
}

fn content_length_cases() -> Vec<Case> {
    vec![
        case("Content-Length body", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", &[OK_POST], StaysOpen),
        case("Content-Length leading zeros", Should, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello", &[OK_POST], StaysOpen),
        case("identical Content-Lengths merged", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", &[OK_POST], StaysOpen),
        case("identical Content-Length list merged", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", &[OK_POST], StaysOpen),
        refused!("Content-Length list differing", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", [400]),
        refused!("Content-Length +5", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", [400]),
        refused!("Content-Length -1", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nhello", [400]),
        refused!("Content-Length 0x5", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", [400]),
        refused!("Content-Length 5.0", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\nhello", [400]),
        refused!("Content-Length 5 5", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\nhello", [400]),
        refused!("Content-Length empty", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\nhello", [400]),
        refused!("Content-Length overflows u64", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\nhello", [400]),
        refused!("Content-Length 20 nines", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\nhello", [400]),
        refused!("Content-Length u64::MAX: 413", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\nhello", [413]),
        case("pipelined after a Content-Length body", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: a\r\n\r\n", &[OK_POST, OK_GET], StaysOpen),
        case("pipelined after a chunked body", Must, chunked!("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n"), &[OK_POST, OK_GET], StaysOpen),
        case("pipelined after Content-Length: 0", Must, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n", &[OK_POST, OK_GET], StaysOpen),
    ]
}

macro_rules! smuggle {
    ($head:literal, $body:literal) => {
        concat!(
            "POST / HTTP/1.1\r\nHost: a\r\n",
            $head,
            "\r\n",
            $body,
            "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        .as_bytes()
    };
}

/// Each sends a request whose body hides `SMUGGLED`: exactly one answer, then close.
fn smuggling_cases() -> Vec<Case> {
    vec![
        refused!("CL.TE", Must, smuggle!("Content-Length: 40\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), [400]),
        refused!("TE.CL", Must, smuggle!("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "22\r\n"), [400]),
        refused!("TE xchunked with CL", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n", "22\r\n"), [400, 501]),
        refused!("TE xchunked alone", Must, smuggle!("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE chunked1 repeated", Must, smuggle!("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked1\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE chunked repeated", Must, smuggle!("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), [400]),
        refused!("TE chunked then identity", Must, smuggle!("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE list chunked, chunked", Must, smuggle!("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"), [400]),
        refused!("TE list identity, chunked", Must, smuggle!("Transfer-Encoding: identity, chunked\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE continuation line ' chunked'", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n", "22\r\n"), [400]),
        refused!("TE line-leading space", Must, smuggle!("Content-Length: 4\r\n Transfer-Encoding: chunked\r\n", "22\r\n"), [400]),
        refused!("TE value ' chunked' with CL", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding:  chunked\r\n", "22\r\n"), [400]),
        refused!("TE value tab chunked with CL", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n", "22\r\n"), [400]),
        refused!("TE chunked\\x0b", Must, smuggle!("Transfer-Encoding: chunked\x0b\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE chunked\\x0b with CL", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding: chunked\x0b\r\n", "22\r\n"), [400, 501]),
        refused!("TE name with space before colon", Must, smuggle!("Content-Length: 4\r\nTransfer-Encoding : chunked\r\n", "22\r\n"), [400]),
        refused!("TE empty value", Must, smuggle!("Transfer-Encoding:\r\n", "0\r\n\r\n"), [400, 501]),
        refused!("TE on HTTP/1.0", Must, concat!("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(), [400]),
        refused!("TE with CL on HTTP/1.0", Must, concat!("POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(), [400]),
        refused!("CL with space before colon", Must, smuggle!("Content-Length : 40\r\n", ""), [400]),
        refused!("CL differing, smuggled in the longer", Must, smuggle!("Content-Length: 0\r\nContent-Length: 40\r\n", ""), [400]),
        refused!("bare-LF header hides TE", Must, smuggle!("X-A: 1\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n", "22\r\n"), [400]),
        refused!("chunk size with bare-LF extension", Must, smuggle!("Transfer-Encoding: chunked\r\n", "2;\n\r\n0\r\n\r\n"), [400]),
    ]
}

fn should_cases() -> Vec<Case> {
    vec![
        case(
            "unknown method: 501 or 405",
            Should,
            b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
            &[&[501, 405]],
            Either,
        ),
        case(
            "absolute-form target",
            Must,
            b"GET http://a.example/p.gif?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
            &[OK_GET],
            StaysOpen,
        ),
        case(
            "absolute-form, Host differs: authority wins",
            Should,
            b"GET http://a.example/p.gif HTTP/1.1\r\nHost: b.example\r\n\r\n",
            &[OK_GET],
            StaysOpen,
        ),
        case(
            "OPTIONS *",
            Should,
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            &[&[204, 200]],
            StaysOpen,
        ),
        case(
            "leading empty line ignored",
            Should,
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[OK_GET],
            StaysOpen,
        ),
        refused!("HTTP/0.9 request", Should, b"GET /\r\n\r\n", [400, 505]),
        refused!(
            "HTTP/0.9 request, no CRLF pair",
            Should,
            b"GET /\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "version lower-case",
            Should,
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "version HTTP/1",
            Should,
            b"GET / HTTP/1\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "version HTTP/1.1.1",
            Should,
            b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "version HTTP/01.1",
            Should,
            b"GET / HTTP/01.1\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "version HTTP/ 1.1",
            Should,
            b"GET / HTTP/ 1.1\r\nHost: a\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "HTTP/2 preface",
            Should,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            [400, 505]
        ),
        refused!(
            "header name with space",
            Should,
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
            [400]
        ),
        refused!(
            "header name with brackets",
            Should,
            b"GET / HTTP/1.1\r\nHost: a\r\nBad[x]: y\r\n\r\n",
            [400]
        ),
        refused!(
            "header name empty",
            Should,
            b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
            [400]
        ),
        refused!(
            "header name with control byte",
            Should,
            b"GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: v\r\n\r\n",
            [400]
        ),
        refused!(
            "whitespace before first header",
            Must,
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            [400]
        ),
        refused!(
            "raw UTF-8 in target",
            Should,
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "obs-text byte in target",
            Should,
            b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "NUL in target",
            Should,
            b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "control byte in target",
            Should,
            b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "DEL in target",
            Should,
            b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "tab in target",
            Should,
            b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "two spaces after method",
            Should,
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "two spaces before version",
            Should,
            b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "trailing space after version",
            Should,
            b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "tab as separator",
            Should,
            b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "missing target",
            Should,
            b"GET HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "target not origin, absolute or *",
            Should,
            b"GET p.gif HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "asterisk-form for GET",
            Should,
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            [400]
        ),
        refused!(
            "absolute-form with userinfo",
            Should,
            b"GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
            [400]
        ),
    ]
}

fn all_cases() -> Vec<Case> {
    let mut all = bad_input_table();
    all.extend(host_cases());
    all.extend(chunked_cases());
    all.extend(content_length_cases());
    all.extend(smuggling_cases());
    all.extend(should_cases());
    all
}

/// What came back on one connection.
#[derive(Debug)]
struct Observed {
    statuses: Vec<u16>,
    missing_header: bool,
    closed: bool,
    /// Bytes that did not parse as a response.
    garbage: usize,
}

/// Sends `raw`; reads until the answers the case expects have arrived (generous deadline, so a
/// loaded machine does not fail the suite), then until the server closes: for a case that must
/// close up to 5 s, otherwise a short quiet window that would catch any extra answer.
fn exchange(server: &Server, raw: &[u8], case: &Case) -> Observed {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_nodelay(true).unwrap();
    // The server may refuse and close before reading everything: a failed write is expected.
    let _ = s.write_all(raw);
    let mut got = Vec::new();
    let answered = |got: &[u8]| {
        let (statuses, _, garbage) = parse_responses(got, None);
        garbage == 0 && statuses.len() >= case.answers.len()
    };
    let mut closed = read_until(&mut s, &mut got, Duration::from_secs(10), answered);
    if !closed {
        let quiet = match case.close {
            Closes => Duration::from_secs(5),
            StaysOpen | Either => Duration::from_millis(300),
        };
        closed = read_until(&mut s, &mut got, quiet, |_| false);
    }
    let (statuses, missing_header, garbage) = parse_responses(&got, case.header);
    Observed {
        statuses,
        missing_header,
        closed,
        garbage,
    }
}

/// Reads into `got` until EOF (true), `done(got)`, or `limit` passes (false).
fn read_until(
    s: &mut TcpStream,
    got: &mut Vec<u8>,
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while !done(got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

fn parse_responses(mut bytes: &[u8], header: Option<&str>) -> (Vec<u16>, bool, usize) {
    let mut statuses = Vec::new();
    let mut missing_header = false;
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = resp.parse(bytes) else {
            return (statuses, missing_header, bytes.len());
        };
        let status = resp.code.unwrap_or(0);
        let find = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
        };
        let len = find("content-length")
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        if let Some(name) = header {
            missing_header |= find(name).is_none();
        }
        statuses.push(status);
        bytes = &bytes[(n + len).min(bytes.len())..];
    }
    (statuses, missing_header, 0)
}

/// Why `obs` violates `case`, if it does.
fn verdict(case: &Case, obs: &Observed) -> Option<String> {
    let status_ok = obs.statuses.len() == case.answers.len()
        && obs
            .statuses
            .iter()
            .zip(case.answers)
            .all(|(s, allowed)| allowed.contains(s));
    let close_ok = match case.close {
        Closes => obs.closed,
        StaysOpen => !obs.closed,
        Either => true,
    };
    if status_ok && close_ok && !obs.missing_header && obs.garbage == 0 {
        return None;
    }
    Some(format!(
        "got {:?}{}{}, closed: {}; want {:?}, {:?}",
        obs.statuses,
        if obs.missing_header {
            " (missing header)"
        } else {
            ""
        },
        if obs.garbage > 0 {
            " (+ unparsable bytes)"
        } else {
            ""
        },
        obs.closed,
        case.answers,
        case.close
    ))
}

fn run_suite(io: &str) {
    let tmp = tempdir("conformance");
    let server = Server::start(tmp.path(), &["--io", io, "--admin-listen", "off"]);
    let cases = all_cases();
    let results: Vec<Option<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(cases.len().div_ceil(8))
            .map(|chunk| {
                let server = &server;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| {
                            let raw = match c.raw {
                                Raw::Lit(b) => b.to_vec(),
                                Raw::Gen(f) => f(),
                            };
                            verdict(c, &exchange(server, &raw, c))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut tally = [(0, 0), (0, 0)];
    for (case, failure) in cases.iter().zip(&results) {
        let t = &mut tally[usize::from(case.level == Should)];
        t.1 += 1;
        match failure {
            None => t.0 += 1,
            Some(why) => println!("[{io}] {:?} FAIL {}: {why}", case.level, case.name),
        }
    }
    println!(
        "[{io}] MUST: {}/{}, SHOULD: {}/{}",
        tally[0].0, tally[0].1, tally[1].0, tally[1].1
    );
    assert!(
        server.stop().success(),
        "server exits cleanly after the suite"
    );
    assert_eq!(tally[0].0, tally[0].1, "{io}: MUST violations (see above)");
}

#[test]
fn conformance_all_backends() {
    for io in BACKENDS {
        run_suite(io);
    }
}

/// The suite itself catches what it claims to: a case run against the wrong expectation fails.
#[test]
fn verdict_detects_hidden_second_answer_and_missing_close() {
    let c = refused!("x", Must, b"", [400]);
    let two = Observed {
        statuses: vec![400, 200],
        missing_header: false,
        closed: true,
        garbage: 0,
    };
    assert!(
        verdict(&c, &two).is_some(),
        "a smuggled second answer fails"
    );
    let open = Observed {
        statuses: vec![400],
        missing_header: false,
        closed: false,
        garbage: 0,
    };
    assert!(
        verdict(&c, &open).is_some(),
        "staying open after a refusal fails"
    );
    let good = Observed {
        statuses: vec![400],
        missing_header: false,
        closed: true,
        garbage: 0,
    };
    assert!(verdict(&c, &good).is_none());
}

/// Chunked bodies are decoded, not just accepted: the ring holds the exact decoded bytes.
#[test]
fn chunked_bodies_are_decoded_into_the_ring() {
    let tmp = tempdir("conformance-chunked");
    let server = Server::start(tmp.path(), &["--io", "epoll", "--admin-listen", "off"]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let bodies: &[(&[u8], &[u8])] = &[
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            b"A\r\n0123456789\r\na;ext=1\r\nabcdefghij\r\n0\r\n\r\n",
            b"0123456789abcdefghij",
        ),
        (
            b"3;x=\"q;s\"\r\nabc\r\n1\r\nd\r\n0\r\nX-T: 1\r\n\r\n",
            b"abcd",
        ),
        (b"0\r\n\r\n", b""),
    ];
    for (chunked, _) in bodies {
        let mut raw = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(chunked);
        assert_eq!(roundtrip(&mut s, &raw).unwrap().status, 204);
    }
    drop(s);
    assert!(server.stop().success());
    let got: Vec<Vec<u8>> = ring_records(&dir).into_iter().map(|r| r.body).collect();
    let want: Vec<Vec<u8>> = bodies.iter().map(|(_, b)| b.to_vec()).collect();
    assert_eq!(got, want);
}
