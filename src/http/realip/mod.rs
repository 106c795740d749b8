//! The client's real IP behind trusted proxies, and IP truncation.
//!
//! The nginx realip model (`set_real_ip_from` + `real_ip_recursive on`): forwarding headers are
//! believed only when the connection comes from a trusted proxy, and the one header the proxies
//! are known to set is walked right to left, past trusted addresses; the first untrusted address
//! is the client. Entries left of it were written by the client and may be forged. Exactly one
//! header is trusted ([`ClientIpHeader`]): believing whichever header is present would let a
//! client forge the one its proxies do not set.
//!
//! Everything on the request path is pure and allocation-free; IPs are in the record's 16-byte
//! form (IPv4 as IPv4-mapped IPv6, see [`crate::record::ip_to_v6`]).

use crate::record::IpSource;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// `--ip-anonymize` default: IPv4 keeps its first 24 bits.
pub const DEFAULT_V4_PREFIX: u8 = 24;
/// `--ip-anonymize` default: IPv6 keeps its first 48 bits.
pub const DEFAULT_V6_PREFIX: u8 = 48;

/// A CIDR block, held in the IPv6 space: an IPv4 block `a.b.c.d/n` is `::ffff:a.b.c.d/96+n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(Ipv6Net);

/// Why a `--trusted-proxy` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "{input:?} is not an IP address or CIDR block (examples: 10.0.0.0/8, ::1/128, 127.0.0.1)"
    )]
    BadAddress { input: String },
    #[error("{input:?}: the prefix length must be a number from 0 to {max}")]
    BadPrefix { input: String, max: u8 },
    #[error("{input:?}: the address has bits set past the /{prefix} prefix (did you mean {network}/{prefix}?)")]
    HostBits {
        input: String,
        prefix: u8,
        network: IpAddr,
    },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Cidr, CidrError> {
        let text = input.trim();
        let bad_address = || CidrError::BadAddress {
            input: input.into(),
        };
        let net = match text.split_once('/') {
            None => IpNet::from(text.parse::<IpAddr>().map_err(|_| bad_address())?),
            Some((addr, _)) => text.parse::<IpNet>().map_err(|_| {
                // ipnet's error does not say which half is wrong: an address that parses alone
                // means the prefix is.
                match addr.parse::<IpAddr>() {
                    Ok(a) => CidrError::BadPrefix {
                        input: input.into(),
                        max: if a.is_ipv4() { 32 } else { 128 },
                    },
                    Err(_) => bad_address(),
                }
            })?,
        };
        if net.trunc() != net {
            return Err(CidrError::HostBits {
                input: input.into(),
                prefix: net.prefix_len(),
                network: net.network(),
            });
        }
        Ok(Cidr(match net {
            IpNet::V6(v6) => v6,
            IpNet::V4(v4) => Ipv6Net::new(v4.network().to_ipv6_mapped(), v4.prefix_len() + 96)
                .map_err(|_| bad_address())?,
        }))
    }
}

impl Cidr {
    /// Whether `ip` (record form: IPv4 as IPv4-mapped) is inside this block.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        self.0.contains(&ip)
    }
}

/// The `--trusted-proxy` blocks: peers whose forwarding headers and PROXY headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    cidrs: Vec<Cidr>,
}

impl TrustedProxies {
    pub fn new(cidrs: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies { cidrs }
    }

    /// Parses each string as a CIDR block or a single address; the error names the bad one.
    pub fn parse<I, S>(items: I) -> Result<TrustedProxies, CidrError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cidrs = items
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { cidrs })
    }

    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty()
    }

    /// Whether `ip` (record form: IPv4 as IPv4-mapped) is a trusted proxy.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }
}

/// The one header the trusted proxies set, whose value is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, walked right to left.
    XForwardedFor,
    /// RFC 7239 `Forwarded`, its `for=` parameters walked right to left.
    Forwarded,
    /// A CDN header holding one address, such as `CF-Connecting-IP`; the name is lowercase.
    Named(Box<str>),
}

impl FromStr for ClientIpHeader {
    type Err = String;

    fn from_str(name: &str) -> Result<ClientIpHeader, String> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "x-forwarded-for" | "xff" => Ok(ClientIpHeader::XForwardedFor),
            "forwarded" => Ok(ClientIpHeader::Forwarded),
            _ if !lower.is_empty() && lower.bytes().all(is_tchar) => {
                Ok(ClientIpHeader::Named(lower.into()))
            }
            _ => Err(format!("{name:?} is not a header name")),
        }
    }
}

/// The forwarding header values of one request (the last line of each, as parsed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardingHeaders<'a> {
    pub x_forwarded_for: Option<&'a [u8]>,
    pub forwarded: Option<&'a [u8]>,
    /// The value of the [`ClientIpHeader::Named`] header, if configured and present.
    pub named: Option<&'a [u8]>,
}

/// How client IPs are resolved: built once from the flags.
#[derive(Debug, Clone, Default)]
pub struct RealIpPolicy {
    pub trusted: TrustedProxies,
    /// `None`: forwarding headers are never believed.
    pub header: Option<ClientIpHeader>,
}

impl RealIpPolicy {
    /// The client IP and how it was found. `peer` is the socket peer (`IpSource::Peer`) or the
    /// PROXY-protocol source (`IpSource::ProxyProtocol`); it is the answer unless it is trusted
    /// and the configured header names someone else.
    pub fn resolve(
        &self,
        peer: Ipv6Addr,
        peer_source: IpSource,
        headers: &ForwardingHeaders<'_>,
    ) -> (Ipv6Addr, IpSource) {
        let start = (peer, peer_source);
        let Some(header) = &self.header else {
            return start;
        };
        if !self.trusted.contains(peer) {
            return start;
        }
        match header {
            ClientIpHeader::XForwardedFor => headers.x_forwarded_for.map_or(start, |value| {
                let hops = RevElements::new(value).map(|e| xff_node(e.trim_ascii()));
                self.walk(start, hops, IpSource::XForwardedFor)
            }),
            ClientIpHeader::Forwarded => headers.forwarded.map_or(start, |value| {
                let hops = RevElements::new(value).map(forwarded_for_node);
                self.walk(start, hops, IpSource::Forwarded)
            }),
            ClientIpHeader::Named(_) => headers
                .named
                .and_then(|v| xff_node(v.trim_ascii()))
                .map_or(start, |ip| (ip, IpSource::Header)),
        }
    }

    /// Takes hops right to left until one is untrusted; a malformed hop stops the walk at the
    /// last good address.
    fn walk(
        &self,
        start: (Ipv6Addr, IpSource),
        hops: impl Iterator<Item = Option<Ipv6Addr>>,
        source: IpSource,
    ) -> (Ipv6Addr, IpSource) {
        let mut found = start;
        for hop in hops {
            let Some(ip) = hop else { break };
            found = (ip, source);
            if !self.trusted.contains(ip) {
                break;
            }
        }
        found
    }
}

/// Comma-separated list elements, right to left; commas inside double quotes do not split.
/// Scanning from the right keeps a proxy's own (rightmost) entries intact even when the
/// client's part to their left has an unbalanced quote.
struct RevElements<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> RevElements<'a> {
    fn new(value: &'a [u8]) -> Self {
        RevElements { rest: Some(value) }
    }
}

impl<'a> Iterator for RevElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let mut quoted = false;
        for i in (0..rest.len()).rev() {
            match rest[i] {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    self.rest = Some(&rest[..i]);
                    return Some(&rest[i + 1..]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// An X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:port`, `2001:db8::1`, `[2001:db8::1]:port`.
fn xff_node(entry: &[u8]) -> Option<Ipv6Addr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        return Some(v6);
    }
    node(text)
}

/// RFC 7239 node: `IPv4[:port]` or `[IPv6][:port]`; `unknown` and obfuscated `_names` are
/// `None`, so they stop the walk.
fn node(text: &str) -> Option<Ipv6Addr> {
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !after.is_empty() && !node_port(after.strip_prefix(':')?) {
            return None;
        }
        return addr.parse::<Ipv6Addr>().ok();
    }
    let (addr, port) = match text.split_once(':') {
        Some((addr, port)) => (addr, Some(port)),
        None => (text, None),
    };
    if port.is_some_and(|p| !node_port(p)) {
        return None;
    }
    addr.parse::<Ipv4Addr>().ok().map(|v4| v4.to_ipv6_mapped())
}

/// `port` (1 to 5 digits) or an obfuscated `_port`.
fn node_port(p: &str) -> bool {
    let b = p.as_bytes();
    match b.first() {
        Some(b'_') => b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"._-".contains(&c)),
        Some(_) => b.len() <= 5 && b.iter().all(u8::is_ascii_digit) && p.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The address in one Forwarded element's `for=` parameter; `None` if absent or malformed.
fn forwarded_for_node(element: &[u8]) -> Option<Ipv6Addr> {
    let mut for_value = None;
    let mut rest = element.trim_ascii();
    while !rest.is_empty() {
        let eq = rest.iter().position(|&b| b == b'=')?;
        let name = &rest[..eq];
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return None;
        }
        let (value, after) = forwarded_value(&rest[eq + 1..])?;
        if name.eq_ignore_ascii_case(b"for") {
            if for_value.is_some() {
                return None; // RFC 7239 4: a parameter occurs at most once per element.
            }
            for_value = Some(value);
        }
        let after = after.trim_ascii_start();
        rest = match after.split_first() {
            None => after,
            Some((b';', next)) => next.trim_ascii_start(),
            Some(_) => return None,
        };
    }
    node(std::str::from_utf8(for_value?).ok()?)
}

/// Splits `token` or `"quoted-string"` off the front; quoted-pairs never occur in a valid node.
fn forwarded_value(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(inner) = s.strip_prefix(b"\"") {
        let end = inner.iter().position(|&b| b == b'"' || b == b'\\')?;
        (inner[end] == b'"').then(|| (&inner[..end], &inner[end + 1..]))
    } else {
        let end = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
        (end > 0).then(|| s.split_at(end))
    }
}

/// RFC 9110 token character.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Zeroes all but the first `v4_prefix` bits of an IPv4(-mapped) address, or all but the first
/// `v6_prefix` bits of an IPv6 one. Prefixes beyond 32 / 128 keep the whole address.
pub fn anonymize(ip: Ipv6Addr, v4_prefix: u8, v6_prefix: u8) -> Ipv6Addr {
    match ip.to_ipv4_mapped() {
        Some(v4) => Ipv4Net::new(v4, v4_prefix.min(32))
            .map_or(v4, |n| n.network())
            .to_ipv6_mapped(),
        None => Ipv6Net::new(ip, v6_prefix.min(128)).map_or(ip, |n| n.network()),
    }
}

#[cfg(test)]
mod tests;
