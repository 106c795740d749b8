//! PROXY protocol v1 and v2 headers (HAProxy's `proxy-protocol.txt`), parsed incrementally.
//!
//! Pure and allocation-free: call [`parse_proxy_header`] with everything read so far on a
//! connection that must start with a PROXY header. [`ProxyParse::Partial`] means read more and
//! call again with the longer buffer; [`ProxyParse::Complete`] gives the exact byte count of the
//! header, so HTTP bytes that arrived in the same read stay in the buffer untouched.
//!
//! v1: one ASCII line `PROXY TCP4|TCP6|UNKNOWN ...\r\n`, at most 107 bytes with its CRLF.
//!
//! v2, binary, all integers big-endian:
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |   12 | signature `\r\n\r\n\0\r\nQUIT\n`                             |
//! |     12 |    1 | version (high nibble, must be 2) and command (0 LOCAL, 1 PROXY) |
//! |     13 |    1 | address family (high nibble) and transport (low nibble)      |
//! |     14 |    2 | `len`: bytes that follow (addresses, then TLVs)              |
//! |     16 |    … | addresses: INET 12 bytes, INET6 36, UNIX 216; then TLVs      |
//!
//! A TLV is a type byte, a 2-byte length and the value; every one is bounds-checked, a CRC32C
//! TLV is verified, an SSL TLV's sub-TLVs are bounds-checked too, unknown types are skipped.
//! LOCAL (a balancer's own health check) and AF_UNSPEC carry no usable address: the connection's
//! own endpoints apply, and `len` bytes are skipped all the same.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// First 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (the spec's bound).
pub const V1_MAX_LEN: usize = 107;
/// Longest v2 header accepted, fixed part included: bounds the per-connection buffer. HAProxy,
/// AWS NLB and GCP headers with their TLVs are a few hundred bytes.
pub const V2_MAX_LEN: usize = 4096;

crate::enum_table::indexed_enum! {
    /// Why a PROXY-protocol connection is closed; each has a counter (a bounded metric label).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ProxyError {
        /// The peer is not a `--trusted-proxy`: refused at accept.
        UntrustedPeer,
        /// The header does not parse.
        Malformed,
        /// The connection timed out before the whole header arrived.
        Incomplete,
    }
}

impl ProxyError {
    /// Label for counters and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            ProxyError::UntrustedPeer => "untrusted_peer",
            ProxyError::Malformed => "malformed",
            ProxyError::Incomplete => "incomplete",
        }
    }
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED_LEN: usize = 16;
const CMD_LOCAL: u8 = 0x0;
const CMD_PROXY: u8 = 0x1;
const FAM_UNSPEC: u8 = 0x00;
const FAM_TCP4: u8 = 0x11;
const FAM_TCP6: u8 = 0x21;
const FAM_UNIX_STREAM: u8 = 0x31;
const PP2_TYPE_CRC32C: u8 = 0x03;
const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
const PP2_TYPE_SSL: u8 = 0x20;
const UNIQUE_ID_MAX: usize = 128;
/// Client flags (1 byte) and verify result (4 bytes) before an SSL TLV's sub-TLVs.
const SSL_FIXED_LEN: usize = 5;

/// Outcome of parsing the start of a connection's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyParse {
    /// A whole header: `consumed` bytes belong to it. `source` and `destination` are `None`
    /// for LOCAL, UNKNOWN, AF_UNSPEC and AF_UNIX: use the socket's own endpoints then.
    Complete {
        consumed: usize,
        source: Option<SocketAddr>,
        destination: Option<SocketAddr>,
    },
    /// Valid so far; read more bytes.
    Partial,
    /// Not a valid header: close the connection. The text names the first rule broken.
    Invalid(&'static str),
}

/// Parses the PROXY header at the start of `buf` (v1 or v2, told apart by the first byte).
pub fn parse_proxy_header(buf: &[u8]) -> ProxyParse {
    match buf.first() {
        None => ProxyParse::Partial,
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => ProxyParse::Invalid("no PROXY protocol header"),
    }
}

/// `buf` agrees with `full` on every byte they both have.
fn agrees_with(buf: &[u8], full: &[u8]) -> bool {
    let n = buf.len().min(full.len());
    buf[..n] == full[..n]
}

fn parse_v1(buf: &[u8]) -> ProxyParse {
    if !agrees_with(buf, V1_PREFIX) {
        return ProxyParse::Invalid("no PROXY protocol header");
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\n' if i > 0 && window[i - 1] == b'\r' => {
                return match parse_v1_line(&window[V1_PREFIX.len()..i - 1]) {
                    Ok((source, destination)) => ProxyParse::Complete {
                        consumed: i + 1,
                        source,
                        destination,
                    },
                    Err(why) => ProxyParse::Invalid(why),
                };
            }
            b'\n' => return ProxyParse::Invalid("v1 line ends in LF without CR"),
            b'\r' if window.get(i + 1).is_some_and(|&n| n != b'\n') => {
                return ProxyParse::Invalid("v1 line has a CR not followed by LF");
            }
            b'\r' | 0x20..=0x7e => {}
            _ => return ProxyParse::Invalid("v1 line has a byte outside printable ASCII"),
        }
    }
    if buf.len() >= V1_MAX_LEN {
        ProxyParse::Invalid("v1 line has no CRLF within 107 bytes")
    } else {
        ProxyParse::Partial
    }
}

type Endpoints = (Option<SocketAddr>, Option<SocketAddr>);

/// Parses what follows `PROXY ` up to the CRLF.
fn parse_v1_line(line: &[u8]) -> Result<Endpoints, &'static str> {
    // The spec lets UNKNOWN carry anything up to the CRLF; the receiver ignores it.
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok((None, None));
    }
    let mut fields = line.split(|&b| b == b' ');
    let mut next = || fields.next().ok_or("v1 line has too few fields");
    let (proto, src, dst, sport, dport) = (next()?, next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err("v1 line has too many fields");
    }
    let sport = v1_port(sport)?;
    let dport = v1_port(dport)?;
    let (source, destination) = match proto {
        b"TCP4" => (
            SocketAddr::from((v1_addr::<Ipv4Addr>(src)?, sport)),
            SocketAddr::from((v1_addr::<Ipv4Addr>(dst)?, dport)),
        ),
        b"TCP6" => (
            SocketAddr::from((v1_addr::<Ipv6Addr>(src)?, sport)),
            SocketAddr::from((v1_addr::<Ipv6Addr>(dst)?, dport)),
        ),
        _ => return Err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    Ok((Some(source), Some(destination)))
}

/// An address in the family's textual form (std's parsers: no leading zeros in IPv4 octets).
fn v1_addr<A: std::str::FromStr>(text: &[u8]) -> Result<A, &'static str> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("v1 address is not valid for its protocol")
}

/// A decimal port 0..=65535 without leading zeros.
fn v1_port(text: &[u8]) -> Result<u16, &'static str> {
    const BAD: &str = "v1 port is not a decimal 0..65535 without leading zeros";
    if text.is_empty() || text.len() > 5 || (text.len() > 1 && text[0] == b'0') {
        return Err(BAD);
    }
    let mut n = 0u32;
    for &b in text {
        if !b.is_ascii_digit() {
            return Err(BAD);
        }
        n = n * 10 + u32::from(b - b'0');
    }
    u16::try_from(n).map_err(|_| BAD)
}

fn parse_v2(buf: &[u8]) -> ProxyParse {
    if !agrees_with(buf, &V2_SIGNATURE) {
        return ProxyParse::Invalid("no PROXY protocol header");
    }
    // Check the fixed fields as soon as they arrive, so garbage is refused without waiting.
    let command = match buf.get(12) {
        Some(&vc) if vc >> 4 != 2 => return ProxyParse::Invalid("v2 version is not 2"),
        Some(&vc) if vc & 0x0f > CMD_PROXY => return ProxyParse::Invalid("v2 command unknown"),
        Some(&vc) => vc & 0x0f,
        None => return ProxyParse::Partial,
    };
    let family = buf.get(13).copied();
    let addr_len = match family {
        _ if command == CMD_LOCAL => None,
        Some(FAM_UNSPEC) | Some(FAM_UNIX_STREAM) => None,
        Some(FAM_TCP4) => Some(12),
        Some(FAM_TCP6) => Some(36),
        Some(_) => return ProxyParse::Invalid("v2 family is not TCP over IPv4/IPv6 or UNSPEC"),
        None => return ProxyParse::Partial,
    };
    if buf.len() < V2_FIXED_LEN {
        return ProxyParse::Partial;
    }
    let total = V2_FIXED_LEN + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if total > V2_MAX_LEN {
        return ProxyParse::Invalid("v2 header longer than 4096 bytes");
    }
    if buf.len() < total {
        return ProxyParse::Partial;
    }
    let header = &buf[..total];
    let Some(addr_len) = addr_len else {
        // LOCAL, UNSPEC, UNIX: no usable address; `len` bytes skipped, their content ignored.
        return complete(total, None, None);
    };
    if total < V2_FIXED_LEN + addr_len {
        return ProxyParse::Invalid("v2 length too short for its address family");
    }
    if let Err(why) = check_tlvs(header, V2_FIXED_LEN + addr_len) {
        return ProxyParse::Invalid(why);
    }
    let a = &header[V2_FIXED_LEN..V2_FIXED_LEN + addr_len];
    let (source, destination) = if family == Some(FAM_TCP4) {
        let ip = |at: usize| Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]);
        let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
        (
            SocketAddr::V4(SocketAddrV4::new(ip(0), port(8))),
            SocketAddr::V4(SocketAddrV4::new(ip(4), port(10))),
        )
    } else {
        let ip = |at: usize| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[at..at + 16]);
            Ipv6Addr::from(octets)
        };
        let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
        (
            SocketAddr::V6(SocketAddrV6::new(ip(0), port(32), 0, 0)),
            SocketAddr::V6(SocketAddrV6::new(ip(16), port(34), 0, 0)),
        )
    };
    complete(total, Some(source), Some(destination))
}

fn complete(
    consumed: usize,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
) -> ProxyParse {
    ProxyParse::Complete {
        consumed,
        source,
        destination,
    }
}

/// Bounds-checks every TLV of `header` from `start`, verifying CRC32C, UNIQUE_ID and SSL ones.
fn check_tlvs(header: &[u8], start: usize) -> Result<(), &'static str> {
    for tlv in (Tlvs {
        block: header,
        at: start,
    }) {
        let (kind, at, value) = tlv?;
        match kind {
            PP2_TYPE_CRC32C => verify_crc32c(header, at, value)?,
            PP2_TYPE_UNIQUE_ID if value.len() > UNIQUE_ID_MAX => {
                return Err("v2 UNIQUE_ID TLV longer than 128 bytes");
            }
            PP2_TYPE_SSL => {
                let subs = value
                    .get(SSL_FIXED_LEN..)
                    .ok_or("v2 SSL TLV shorter than 5 bytes")?;
                for sub in (Tlvs { block: subs, at: 0 }) {
                    sub?;
                }
            }
            // ALPN, AUTHORITY, NOOP, NETNS, custom and unknown types: skipped, per the spec.
            _ => {}
        }
    }
    Ok(())
}

/// The CRC32C of the whole header with the checksum field zeroed must equal the field.
fn verify_crc32c(header: &[u8], at: usize, value: &[u8]) -> Result<(), &'static str> {
    let expected: [u8; 4] = value
        .try_into()
        .map_err(|_| "v2 CRC32C TLV is not 4 bytes")?;
    let crc = crc32c::crc32c(&header[..at]);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    let crc = crc32c::crc32c_append(crc, &header[at + 4..]);
    if crc == u32::from_be_bytes(expected) {
        Ok(())
    } else {
        Err("v2 CRC32C does not match the header")
    }
}

/// Iterates the TLVs in `block[at..]`: `(type, value offset in block, value)`.
struct Tlvs<'a> {
    block: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<(u8, usize, &'a [u8]), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.block.get(self.at..).filter(|r| !r.is_empty())?;
        if rest.len() < 3 {
            self.at = self.block.len();
            return Some(Err("v2 TLV header truncated"));
        }
        let (kind, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        let Some(value) = rest.get(3..3 + len) else {
            self.at = self.block.len();
            return Some(Err("v2 TLV runs past the end of the header"));
        };
        let at = self.at + 3;
        self.at = at + len;
        Some(Ok((kind, at, value)))
    }
}

#[cfg(test)]
mod tests;
