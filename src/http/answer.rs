//! Answering one complete request: route it, record it if it is a beacon (client IP resolved,
//! privacy applied), and append the canned answer with its varying headers.

use super::context::Context;
use super::cookie::cookie_value;
use super::parse::{Framing, RequestHead};
use super::policy::GpcPolicy;
use super::realip::{anonymize, ForwardingHeaders};
use super::response::{self, Canned, ConnHeader};
use super::route::{self, RouteAction};
use crate::ingest::Sink;
use crate::record::{flags, BodyKind, IpSource, Method, RecordFields};
use crate::ring::AppendError;
use std::net::Ipv6Addr;

/// What answering needs besides the request: the peer, the per-connection buffers for headers
/// that vary (CORS origin, redirect Location), and the request count.
pub(super) struct Side {
    pub(super) extra: Vec<u8>,
    pub(super) scratch: Vec<u8>,
    pub(super) peer_ip: Ipv6Addr,
    pub(super) peer_port: u16,
    /// Where client-IP resolution starts: the socket peer, or the PROXY protocol source.
    pub(super) base_ip: Ipv6Addr,
    pub(super) base_source: IpSource,
    pub(super) requests: u64,
}

/// Routes one complete request, records it if it is a beacon, and appends the answer.
/// Returns whether the connection stays open.
pub(super) fn answer<S: Sink>(
    core: &mut Context<S>,
    out: &mut Vec<u8>,
    side: &mut Side,
    head: &RequestHead<'_>,
    body: &[u8],
    body_len: u64,
    pipelined: bool,
) -> bool {
    side.requests += 1;
    let cfg = &*core.policy;
    let keep_alive = head.keep_alive && !core.draining && side.requests < cfg.max_requests_per_conn;
    let conn = match (keep_alive, head.http_minor) {
        (false, _) => ConnHeader::Close,
        (true, 0) => ConnHeader::KeepAlive,
        (true, _) => ConnHeader::None,
    };
    let path = path_of(head.target);
    side.extra.clear();
    let (canned, mut record): (&Canned, bool) = match head.method {
        Method::Get | Method::Head if path == cfg.health_path.as_bytes() => (
            if core.draining {
                &response::HEALTH_DRAINING
            } else {
                &response::HEALTH_OK
            },
            false,
        ),
        Method::Get | Method::Head => match cfg.routes.lookup(path) {
            (RouteAction::Gif, rec) => (&response::PIXEL, rec),
            (RouteAction::NoContent, rec) => (&response::NO_CONTENT, rec),
            (RouteAction::Redirect, rec) => {
                match route::redirect_target(
                    query_of(head.target),
                    &cfg.redirect_allow,
                    &mut side.scratch,
                ) {
                    Some(url) => {
                        side.extra.extend_from_slice(b"Location: ");
                        side.extra.extend_from_slice(url);
                        side.extra.extend_from_slice(b"\r\n");
                        (&response::FOUND, rec)
                    }
                    None => {
                        core.stats.redirect_refused();
                        (&response::REDIRECT_REFUSED, false)
                    }
                }
            }
        },
        Method::Post => (&response::NO_CONTENT, cfg.routes.lookup(path).1),
        Method::Options => (&response::OPTIONS, false),
        _ if head.unknown_method => (&response::UNKNOWN_METHOD, false),
        _ => (&response::METHOD_NOT_ALLOWED, false),
    };
    if let Some(origin) = head.origin.filter(|o| cfg.cors.allows(o)) {
        cfg.cors
            .write_headers(&mut side.extra, origin, head.method == Method::Options);
    }
    if record && head.gpc && cfg.honor_gpc == GpcPolicy::Drop {
        core.stats.gpc_dropped();
        record = false;
    }
    let canned = if record {
        let fields = record_fields(
            core,
            head,
            body,
            body_len,
            side,
            keep_alive,
            pipelined,
            canned.status,
        );
        match core.sink.append(&fields) {
            Ok(()) => canned,
            Err(AppendError::Full) => {
                side.extra.clear();
                &response::RING_FULL
            }
            // Unreachable with the start-up check (the largest request fits the ring), but
            // never acknowledged: the client is told the request is too large.
            Err(AppendError::TooLarge { .. }) => {
                side.extra.clear();
                &response::PAYLOAD_TOO_LARGE
            }
        }
    } else {
        canned
    };
    core.stats.answered(canned.status);
    response::write(
        out,
        canned,
        &core.date,
        conn,
        &side.extra,
        head.method == Method::Head,
    );
    keep_alive
}

/// The record of one answered request.
#[allow(clippy::too_many_arguments)]
fn record_fields<'a, S: Sink>(
    core: &Context<S>,
    head: &RequestHead<'a>,
    body: &'a [u8],
    body_len: u64,
    side: &Side,
    keep_alive: bool,
    pipelined: bool,
    status: u16,
) -> RecordFields<'a> {
    let bits = [
        (keep_alive, flags::KEEP_ALIVE),
        (pipelined, flags::PIPELINED),
        (head.dnt, flags::DNT),
        (head.gpc, flags::GPC),
        (!head.target.starts_with(b"/"), flags::ABSOLUTE_FORM),
        (head.framing == Framing::Chunked, flags::CHUNKED),
    ];
    let flag_bits = bits
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit);
    let cfg = &*core.policy;
    let forwarding = ForwardingHeaders {
        x_forwarded_for: head.x_forwarded_for,
        forwarded: head.forwarded,
        named: head.named_ip,
    };
    let (mut client_ip, ip_source) =
        cfg.real_ip
            .resolve(side.base_ip, side.base_source, &forwarding);
    let mut peer_ip = side.peer_ip;
    if let Some((v4, v6)) = cfg.anonymize {
        client_ip = anonymize(client_ip, v4, v6);
        // A trusted proxy's address is infrastructure, kept; any other peer is the client.
        if !cfg.real_ip.trusted.contains(peer_ip) {
            peer_ip = anonymize(peer_ip, v4, v6);
        }
    }
    let cookie = cfg
        .capture_cookie
        .as_deref()
        .and_then(|name| cookie_value(head.cookie, name));
    RecordFields {
        ts_ns: core.batch_ns,
        core: core.sink.core(),
        status,
        method: head.method,
        http_minor: head.http_minor,
        flags: flag_bits,
        peer_ip,
        peer_port: side.peer_port,
        client_ip,
        ip_source,
        body_kind: body_kind(head.content_type, body_len),
        target: head.target,
        user_agent: head.user_agent,
        referer: head.referer,
        cookie: cookie.unwrap_or(b""),
        body,
    }
}

/// The query of a target (after the first `?`), or empty.
pub fn query_of(target: &[u8]) -> &[u8] {
    memchr::memchr(b'?', target).map_or(&b""[..], |i| &target[i + 1..])
}

/// The path of an origin-form or absolute-form target, without the query.
///
/// An origin-form target (`/...`, what browsers send) has no scheme to skip, so only its `?` is
/// searched for: a byte-by-byte search for the scheme's `:` through a beacon's long target was
/// 8% of the pipelined server's CPU (README "Design notes").
pub fn path_of(target: &[u8]) -> &[u8] {
    let rest = match target.first() {
        Some(b'/') => target,
        _ => match memchr::memchr(b':', target) {
            Some(i)
                if target[..i].iter().all(u8::is_ascii_alphabetic)
                    && target[i..].starts_with(b"://") =>
            {
                // The authority ends at the path's `/`, or at the query (then the path is `/`).
                let after = &target[i + 3..];
                match memchr::memchr2(b'/', b'?', after) {
                    Some(p) if after[p] == b'/' => &after[p..],
                    _ => b"/",
                }
            }
            _ => target,
        },
    };
    memchr::memchr(b'?', rest).map_or(rest, |i| &rest[..i])
}

fn body_kind(content_type: &[u8], body_len: u64) -> BodyKind {
    let essence = content_type.split(|&b| b == b';').next().unwrap_or(b"");
    let essence = essence.trim_ascii();
    if essence.eq_ignore_ascii_case(b"text/plain") {
        BodyKind::TextPlain
    } else if essence.eq_ignore_ascii_case(b"application/json") {
        BodyKind::Json
    } else if essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if body_len == 0 {
        BodyKind::None
    } else {
        BodyKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_of_origin_and_absolute_forms() {
        assert_eq!(path_of(b"/p.gif?e=1"), b"/p.gif");
        assert_eq!(path_of(b"http://t.example.com/healthz"), b"/healthz");
        assert_eq!(path_of(b"http://t.example.com"), b"/");
        assert_eq!(path_of(b"/a:b"), b"/a:b");
        assert_eq!(path_of(b"/a:b?c://d/e"), b"/a:b");
        assert_eq!(path_of(b"http://t.example.com?x=/y"), b"/");
        assert_eq!(path_of(b"*"), b"*");
        assert_eq!(path_of(b""), b"");
        assert_eq!(query_of(b"/p?e=1?f"), b"e=1?f");
        assert_eq!(query_of(b"/p"), b"");
    }

    #[test]
    fn body_kinds() {
        assert_eq!(
            body_kind(b"application/json; charset=utf-8", 5),
            BodyKind::Json
        );
        assert_eq!(body_kind(b"TEXT/PLAIN", 5), BodyKind::TextPlain);
        assert_eq!(body_kind(b"", 0), BodyKind::None);
        assert_eq!(body_kind(b"image/png", 5), BodyKind::Other);
    }
}
