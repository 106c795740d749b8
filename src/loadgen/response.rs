//! Incremental HTTP/1.x response framing: status line and headers with httparse, then the body
//! skipped by Content-Length across as many reads as it takes. Chunked or unframed bodies are
//! counted as protocol errors rather than waited on.

/// Headers a response may carry before it counts as a protocol error.
const MAX_RESPONSE_HEADERS: usize = 48;

/// The outcome of feeding buffered bytes to [`ResponseParser::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A final response completed; `used` bytes of the input belonged to it.
    Complete {
        status: u16,
        used: usize,
        close: bool,
    },
    /// All of `used` bytes were consumed (a body part or an interim 1xx); feed more later.
    Consumed { used: usize },
    /// The head is not complete yet; keep the bytes and read more.
    Partial,
    /// The response cannot be framed (malformed, chunked, no length).
    Invalid(&'static str),
}

/// Framing state of one connection's response stream.
#[derive(Debug, Default)]
pub struct ResponseParser {
    body: Option<PendingBody>,
}

#[derive(Debug)]
struct PendingBody {
    status: u16,
    remaining: u64,
    close: bool,
}

impl ResponseParser {
    /// Forgets any half-read response (after a reconnect).
    pub fn reset(&mut self) {
        self.body = None;
    }

    /// Consumes from `buf`; `no_body` is true when the request was HEAD.
    pub fn feed(&mut self, buf: &[u8], no_body: bool) -> Step {
        if let Some(body) = &mut self.body {
            let take = body.remaining.min(buf.len() as u64);
            body.remaining -= take;
            if body.remaining > 0 {
                return Step::Consumed {
                    used: take as usize,
                };
            }
            let (status, close) = (body.status, body.close);
            self.body = None;
            return Step::Complete {
                status,
                used: take as usize,
                close,
            };
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Step::Partial,
            Err(_) => return Step::Invalid("malformed response head"),
        };
        let status = resp.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            return Step::Consumed { used: head_len };
        }
        let mut close = resp.version == Some(0);
        let mut length = None;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                match parse_length(h.value) {
                    Some(n) if !matches!(length, Some(l) if l != n) => length = Some(n),
                    _ => return Step::Invalid("bad Content-Length"),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !no_body && status != 204 && status != 304 {
                    return Step::Invalid("chunked response body (not supported)");
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                let v = h.value;
                if contains_token(v, b"close") {
                    close = true;
                } else if contains_token(v, b"keep-alive") {
                    close = false;
                }
            }
        }
        let body_len = if no_body || status == 204 || status == 304 {
            0
        } else {
            match length {
                Some(n) => n,
                None => return Step::Invalid("response without Content-Length"),
            }
        };
        let in_buf = (buf.len() - head_len) as u64;
        if body_len <= in_buf {
            return Step::Complete {
                status,
                used: head_len + body_len as usize,
                close,
            };
        }
        self.body = Some(PendingBody {
            status,
            remaining: body_len - in_buf,
            close,
        });
        Step::Consumed { used: buf.len() }
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIF: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nGIFHTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn pipelined_answers_split_anywhere() {
        // Feed every split of two responses; both must come out with the right statuses.
        for cut in 0..=GIF.len() {
            let mut p = ResponseParser::default();
            let mut pending = Vec::new();
            let mut statuses = Vec::new();
            for chunk in [&GIF[..cut], &GIF[cut..]] {
                pending.extend_from_slice(chunk);
                loop {
                    match p.feed(&pending, false) {
                        Step::Complete { status, used, .. } => {
                            statuses.push(status);
                            pending.drain(..used);
                        }
                        Step::Consumed { used } => {
                            pending.drain(..used);
                            if pending.is_empty() {
                                break;
                            }
                        }
                        Step::Partial => break,
                        Step::Invalid(why) => panic!("{why}"),
                    }
                    if pending.is_empty() {
                        break;
                    }
                }
            }
            assert_eq!(statuses, [200, 204], "cut at {cut}");
        }
    }

    #[test]
    fn head_answers_have_no_body_and_close_is_seen() {
        let mut p = ResponseParser::default();
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 43\r\nConnection: close\r\n\r\n";
        assert_eq!(
            p.feed(r, true),
            Step::Complete {
                status: 200,
                used: r.len(),
                close: true
            }
        );
        let r10 = b"HTTP/1.0 503 Busy\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            p.feed(r10, false),
            Step::Complete {
                status: 503,
                close: true,
                ..
            }
        ));
    }

    #[test]
    fn unframed_or_chunked_is_invalid_not_a_hang() {
        let mut p = ResponseParser::default();
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\nbody until close",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert!(matches!(p.feed(bad, false), Step::Invalid(_)), "{bad:?}");
        }
        assert_eq!(p.feed(b"HTTP/1.1 200 O", false), Step::Partial);
    }

    #[test]
    fn interim_100_is_skipped() {
        let mut p = ResponseParser::default();
        let r = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(p.feed(r, false), Step::Consumed { used: r.len() });
    }
}
