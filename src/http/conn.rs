//! One connection's state machine, independent of the I/O backend.
//!
//! A backend reads into the read buffer of [`Conn::io`] ([`ConnBuffers::read_buf`]), reports
//! the byte count with [`ConnBuffers::filled`], calls [`Conn::process`], writes everything in
//! [`ConnBuffers::out`] with one write, clears it, and acts on the returned [`Next`]. `process` parses every complete pipelined request in the buffer,
//! appends one record per beacon to the core's ring, and only then appends its canned answer,
//! so a 2xx on the wire always follows a committed record.

use super::answer::{answer, Side};
use super::buffers::ConnBuffers;
use super::chunked::{ChunkError, ChunkedDecoder};
use super::context::Context;
use super::parse::{parse_request_head, Framing, Parsed, Reject};
use super::proxy::{parse_proxy_header, ProxyError, ProxyParse};
use super::response::{self, ConnHeader};
use crate::ingest::Sink;
use crate::record::{IpSource, HEADER_LEN};
use std::net::SocketAddr;

/// What the backend does after writing `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read more bytes, then call `process` again.
    Read,
    /// `out` filled up before the buffered requests were answered: write, then call `process`
    /// again without reading (a client that pipelines without reading stops being read).
    Write,
    /// Write `out`, then close the connection.
    Close,
}

enum State {
    /// Waiting for the PROXY protocol header (`--proxy-protocol`).
    Proxy,
    Head,
    /// A Content-Length body still arriving; the head was copied to `head_copy`.
    Body {
        remaining: u64,
    },
    /// A chunked body still arriving; the head was copied to `head_copy`.
    Chunked(ChunkedDecoder),
    Closed,
}

/// Per-connection buffers and state. Small at accept (the buffers are lent by the backend's
/// pool only while there are bytes to work on); nothing is allocated per request.
pub struct Conn {
    /// What the backend reads into and writes from.
    pub io: ConnBuffers,
    state: State,
    head_copy: Vec<u8>,
    body: Vec<u8>,
    body_len: u64,
    side: Side,
    /// Coarse second at which the request now arriving began (0 = between requests).
    request_started: u64,
}

/// Answers `out` holds before it is written, beyond the room for one more of the largest
/// ([`response::max_answer_len`]); `process` stops before `out` would grow past its capacity.
const OUT_CAPACITY: usize = 32 * 1024;

impl Conn {
    /// A connection from `peer`. With `--proxy-protocol`, a peer outside `--trusted-proxy` is
    /// refused at once (see [`Conn::is_closed`]) and counted.
    pub fn new<S: Sink>(peer: SocketAddr, core: &Context<S>) -> Conn {
        let cfg = &*core.policy;
        let peer_ip = crate::record::ip_to_v6(peer.ip());
        let state = match cfg.proxy_protocol {
            false => State::Head,
            true if cfg.real_ip.trusted.contains(peer_ip) => State::Proxy,
            true => {
                core.stats.proxy_error(ProxyError::UntrustedPeer);
                State::Closed
            }
        };
        Conn {
            io: ConnBuffers::new(
                cfg.limits.max_head.max(16 * 1024),
                OUT_CAPACITY + response::max_answer_len(cfg.limits.max_head),
            ),
            state,
            head_copy: Vec::new(),
            body: Vec::new(),
            body_len: 0,
            side: Side {
                extra: Vec::new(),
                scratch: Vec::new(),
                peer_ip,
                peer_port: peer.port(),
                base_ip: peer_ip,
                base_source: IpSource::Peer,
                requests: 0,
            },
            request_started: 0,
        }
    }

    /// Whether the connection is finished (refused at accept, or after `Next::Close`).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether a request is partly read (head or body still arriving).
    pub fn mid_request(&self) -> bool {
        self.io.start < self.io.end || matches!(self.state, State::Body { .. } | State::Chunked(_))
    }

    /// The coarse second after which this connection has timed out, given the current second.
    ///
    /// Between requests the idle timeout runs from the last activity; once a request starts
    /// arriving, the head timeout runs from that moment and is not extended by further bytes,
    /// so a client trickling one byte at a time (slowloris) cannot hold the connection.
    ///
    /// Seconds are whole, so the deadline is rounded up by one: a sweep at the first second
    /// boundary after the deadline never closes a connection before its full timeout.
    pub fn deadline<S: Sink>(&mut self, now_secs: u64, core: &Context<S>) -> u64 {
        if self.mid_request() {
            if self.request_started == 0 {
                self.request_started = now_secs;
            }
            self.request_started + core.policy.head_timeout_secs + 1
        } else {
            self.request_started = 0;
            now_secs + core.policy.idle_timeout_secs + 1
        }
    }

    /// Called when [`Conn::deadline`] has passed: a partial request gets 408, an idle
    /// connection is just closed. Always ends the connection.
    pub fn timed_out<S: Sink>(&mut self, core: &mut Context<S>) -> Next {
        if matches!(self.state, State::Proxy) {
            core.stats.proxy_error(ProxyError::Incomplete);
            core.stats.timed_out(false);
        } else if self.mid_request() && !matches!(self.state, State::Closed) {
            core.stats.timed_out(true);
            response::write(
                &mut self.io.out,
                &response::REQUEST_TIMEOUT,
                &core.date,
                ConnHeader::Close,
                b"",
                false,
            );
        } else {
            core.stats.timed_out(false);
        }
        self.state = State::Closed;
        Next::Close
    }

    /// Answers every complete request in the buffer (see module docs).
    pub fn process<S: Sink>(&mut self, core: &mut Context<S>) -> Next {
        core.start_batch();
        self.io.reserve_out();
        let next = self.process_batch(core);
        if core.sink.commit().is_err() {
            // The batch's records are not as durable as promised: their 2xx must not be sent.
            self.io.out.clear();
            self.state = State::Closed;
            return Next::Close;
        }
        next
    }

    fn process_batch<S: Sink>(&mut self, core: &mut Context<S>) -> Next {
        // Set once a request of this batch was answered: the ones after it were pipelined.
        let mut pipelined = false;
        let room = response::max_answer_len(core.policy.limits.max_head);
        loop {
            if self.io.out.len() + room > self.io.out.capacity() {
                return Next::Write;
            }
            match &mut self.state {
                State::Closed => return Next::Close,
                State::Proxy => {
                    match parse_proxy_header(&self.io.buf[self.io.start..self.io.end]) {
                        ProxyParse::Partial => return Next::Read,
                        ProxyParse::Invalid(_) => {
                            core.stats.proxy_error(ProxyError::Malformed);
                            self.state = State::Closed;
                            return Next::Close;
                        }
                        ProxyParse::Complete {
                            consumed, source, ..
                        } => {
                            self.io.start += consumed;
                            if let Some(src) = source {
                                self.side.base_ip = crate::record::ip_to_v6(src.ip());
                                self.side.base_source = IpSource::ProxyProtocol;
                            }
                            self.state = State::Head;
                            continue;
                        }
                    }
                }
                State::Head => {
                    if self.io.start == self.io.end {
                        return Next::Read;
                    }
                    if let Some(next) = self.on_head(core, pipelined) {
                        return next;
                    }
                    // A head whose body is still to be read was not answered yet: the request
                    // answered next is this one, not one behind it.
                    if matches!(self.state, State::Head | State::Closed) {
                        pipelined = true;
                    }
                }
                State::Body { remaining } => {
                    let take = (*remaining).min((self.io.end - self.io.start) as u64) as usize;
                    capture(
                        &mut self.body,
                        &self.io.buf[self.io.start..self.io.start + take],
                    );
                    self.io.start += take;
                    *remaining -= take as u64;
                    if *remaining > 0 {
                        return Next::Read;
                    }
                    self.finish_buffered_request(core, pipelined);
                    pipelined = true;
                }
                State::Chunked(decoder) => {
                    let body = &mut self.body;
                    let body_len = &mut self.body_len;
                    let fed = decoder.feed(&self.io.buf[self.io.start..self.io.end], |data| {
                        *body_len += data.len() as u64;
                        capture(body, data);
                    });
                    let done = decoder.is_done();
                    // Chunk sizes declared so far, not bytes received: a chunk announcing more
                    // than the limit is refused at once instead of waited for.
                    let declared = decoder.declared_len();
                    match fed {
                        Err(ChunkError::Malformed | ChunkError::TooLong) => {
                            return self.reject(core, Reject::BadRequest);
                        }
                        Ok(used) => self.io.start += used,
                    }
                    if declared > core.policy.limits.max_body {
                        return self.reject(core, Reject::PayloadTooLarge);
                    }
                    if !done {
                        return Next::Read;
                    }
                    self.finish_buffered_request(core, pipelined);
                    pipelined = true;
                }
            }
        }
    }

    /// Parses a head at `start`; answers it if its body (if any) is already buffered.
    fn on_head<S: Sink>(&mut self, core: &mut Context<S>, pipelined: bool) -> Option<Next> {
        let avail = &self.io.buf[self.io.start..self.io.end];
        let head = match parse_request_head(avail, &core.policy.limits) {
            Parsed::Partial => return Some(Next::Read),
            Parsed::Error(reject) => return Some(self.reject(core, reject)),
            Parsed::Complete(head) => head,
        };
        let head_len = head.head_len;
        let (body, framing_done) = match head.framing {
            Framing::None => (&avail[..0], true),
            Framing::Length(n) if (avail.len() - head_len) as u64 >= n => {
                (&avail[head_len..head_len + n as usize], true)
            }
            _ => (&avail[..0], false),
        };
        if framing_done {
            let consumed = head_len + body.len();
            self.body_len = body.len() as u64;
            let keep = answer(
                core,
                &mut self.io.out,
                &mut self.side,
                &head,
                body,
                self.body_len,
                pipelined,
            );
            self.io.start += consumed;
            if !keep {
                self.state = State::Closed;
            }
            return None;
        }
        // Slow path: the body is still arriving. Keep a copy of the head to answer it later.
        self.head_copy.clear();
        self.head_copy.extend_from_slice(&avail[..head_len]);
        self.body.clear();
        // Room for one slot's worth at the first body that spans reads (kept for the next).
        self.body.reserve(core.sink.slot_size() - HEADER_LEN);
        self.body_len = 0;
        let expect = head.expect_continue;
        self.state = match head.framing {
            Framing::Length(n) => {
                self.body_len = n;
                State::Body { remaining: n }
            }
            _ => State::Chunked(ChunkedDecoder::default()),
        };
        self.io.start += head_len;
        if expect && self.io.start == self.io.end {
            self.io.out.extend_from_slice(response::CONTINUE);
            return Some(Next::Write);
        }
        None
    }

    /// Answers the request whose head is in `head_copy` and body in `body`.
    fn finish_buffered_request<S: Sink>(&mut self, core: &mut Context<S>, pipelined: bool) {
        let keep = match parse_request_head(&self.head_copy, &core.policy.limits) {
            Parsed::Complete(head) => answer(
                core,
                &mut self.io.out,
                &mut self.side,
                &head,
                &self.body,
                self.body_len,
                pipelined,
            ),
            // The same bytes parsed a moment ago; unreachable, but never panic on the request path.
            _ => false,
        };
        self.state = if keep { State::Head } else { State::Closed };
    }

    fn reject<S: Sink>(&mut self, core: &mut Context<S>, reject: Reject) -> Next {
        core.stats.rejected(reject);
        let canned = match reject {
            Reject::BadRequest => &response::BAD_REQUEST,
            Reject::UriTooLong => &response::URI_TOO_LONG,
            Reject::HeaderTooLarge => &response::HEADER_TOO_LARGE,
            Reject::VersionNotSupported => &response::VERSION_NOT_SUPPORTED,
            Reject::NotImplemented => &response::NOT_IMPLEMENTED,
            Reject::PayloadTooLarge => &response::PAYLOAD_TOO_LARGE,
        };
        response::write(
            &mut self.io.out,
            canned,
            &core.date,
            ConnHeader::Close,
            b"",
            false,
        );
        self.state = State::Closed;
        Next::Close
    }
}

/// Keeps a body that arrives over several reads, whole: its length is bounded by `--max-body`
/// (a larger Content-Length or chunk size is refused with 413 before any of it is kept). The
/// buffer gets one slot's room at the connection's first such body and grows only for a larger
/// one.
fn capture(body: &mut Vec<u8>, data: &[u8]) {
    body.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::policy::HttpPolicy;
    use crate::http::route::CorsOrigins;
    use crate::ingest::MemorySink;
    use std::sync::Arc;

    /// Fills a request head to exactly `max_head` bytes with `pad` repeated inside `template`'s
    /// `{}` and answers it alone.
    fn answer_len(core: &mut Context<MemorySink>, template: &str) -> usize {
        let max_head = core.policy.limits.max_head;
        let pad = max_head - (template.len() - 2);
        let request = template.replace("{}", &"a".repeat(pad));
        assert_eq!(request.len(), max_head);
        let mut conn = Conn::new("127.0.0.1:1".parse().unwrap(), core);
        conn.io.read_buf()[..max_head].copy_from_slice(request.as_bytes());
        conn.io.filled(max_head);
        conn.process(core);
        assert!(conn.io.out.starts_with(b"HTTP/1.1 "), "{request}");
        conn.io.out.len()
    }

    #[test]
    fn a_batch_of_pipelined_records_is_stamped_with_the_time_it_was_read() {
        let mut core = Context::new(
            Arc::new(HttpPolicy::default()),
            Default::default(),
            MemorySink::new(0, 512, 1 << 10),
        );
        let mut conn = Conn::new("127.0.0.1:1".parse().unwrap(), &core);
        let read = |conn: &mut Conn, core: &mut Context<MemorySink>, bytes: &[u8]| {
            conn.io.read_buf()[..bytes.len()].copy_from_slice(bytes);
            conn.io.filled(bytes.len());
            let before = crate::clock::now_ns();
            conn.process(core);
            (before, crate::clock::now_ns())
        };
        let two =
            b"GET /p.gif?n=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p.gif?n=2 HTTP/1.1\r\nHost: t\r\n\r\n";
        let (from, to) = read(&mut conn, &mut core, two);
        std::thread::sleep(std::time::Duration::from_millis(2));
        conn.io.out.clear();
        let one = b"GET /p.gif?n=3 HTTP/1.1\r\nHost: t\r\n\r\n";
        let (later, _) = read(&mut conn, &mut core, one);
        let ts: Vec<u64> = core
            .sink
            .records()
            .map(|r| crate::record::RecordView::parse(r).unwrap().ts_ns())
            .collect();
        assert_eq!(ts.len(), 3);
        assert_eq!(ts[0], ts[1], "one read, one time");
        assert!((from..=to).contains(&ts[0]), "{ts:?} not in {from}..={to}");
        assert!(
            ts[2] >= later && ts[2] > ts[1],
            "the next read is stamped anew: {ts:?}"
        );
    }

    #[test]
    fn the_largest_answers_fit_the_room_kept_for_one() {
        let mut policy = HttpPolicy {
            cors: CorsOrigins::new(&["*".into()], u64::MAX),
            redirect_allow: vec!["shop.example".into()],
            ..HttpPolicy::default()
        };
        let max_head = policy.limits.max_head;
        // The longest target a head of this size may carry (see `Limits::check_target_fits`).
        policy.limits.max_target = max_head - 64;
        let mut core = Context::new(
            Arc::new(policy),
            Default::default(),
            MemorySink::new(0, 4096, 1 << 10),
        );
        let bound = response::max_answer_len(max_head);
        let preflight = "OPTIONS /p HTTP/1.0\r\nOrigin: https://{}\r\n\r\n";
        let redirect =
            "GET /r?u=https://shop.example/{} HTTP/1.0\r\nOrigin: https://o\r\nX: 1234567890123456789012345678901234567890\r\n\r\n";
        let origin = "GET /r?u=https://shop.example/ HTTP/1.0\r\nOrigin: https://{}\r\n\r\n";
        for template in [preflight, redirect, origin] {
            let len = answer_len(&mut core, template);
            assert!(len <= bound, "{len} > {bound}: {template}");
            assert!(
                len > max_head,
                "{len}: not an answer echoing the head: {template}"
            );
        }
    }
}
