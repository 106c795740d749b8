use super::*;

fn ip(s: &str) -> Ipv6Addr {
    crate::record::ip_to_v6(s.parse().unwrap())
}

fn policy(trusted: &[&str], header: &str) -> RealIpPolicy {
    RealIpPolicy {
        trusted: TrustedProxies::parse(trusted).unwrap(),
        header: Some(header.parse().unwrap()),
    }
}

fn xff(p: &RealIpPolicy, peer: &str, value: &str) -> (Ipv6Addr, IpSource) {
    let h = ForwardingHeaders {
        x_forwarded_for: Some(value.as_bytes()),
        ..Default::default()
    };
    p.resolve(ip(peer), IpSource::Peer, &h)
}

fn fwd(p: &RealIpPolicy, peer: &str, value: &str) -> (Ipv6Addr, IpSource) {
    let h = ForwardingHeaders {
        forwarded: Some(value.as_bytes()),
        ..Default::default()
    };
    p.resolve(ip(peer), IpSource::Peer, &h)
}

#[test]
fn cidrs_parse_v4_v6_and_single_addresses() {
    let t = TrustedProxies::parse(["10.0.0.0/8", "::1/128", "127.0.0.1", "2001:db8::/32"]).unwrap();
    assert!(t.contains(ip("10.255.0.1")));
    assert!(!t.contains(ip("11.0.0.1")));
    assert!(t.contains(ip("127.0.0.1")));
    assert!(!t.contains(ip("127.0.0.2")));
    assert!(t.contains(ip("::1")));
    assert!(!t.contains(ip("::2")));
    assert!(t.contains(ip("2001:db8:ffff::1")));
    assert!(!t.contains(ip("2001:db9::1")));
    // An IPv4 block covers the same address seen as IPv4-mapped IPv6 (dual-stack sockets).
    assert!(t.contains("::ffff:10.1.2.3".parse().unwrap()));
    // An IPv4-mapped block covers IPv4 peers; an IPv4 /0 covers no native IPv6 address.
    let mapped = TrustedProxies::parse(["::ffff:192.168.0.0/112"]).unwrap();
    assert!(mapped.contains(ip("192.168.7.7")));
    let all_v4 = TrustedProxies::parse(["0.0.0.0/0"]).unwrap();
    assert!(all_v4.contains(ip("8.8.8.8")) && !all_v4.contains(ip("2001:db8::1")));
    assert!(TrustedProxies::parse([" 10.0.0.0/8 "])
        .unwrap()
        .contains(ip("10.0.0.1")));
    assert!(TrustedProxies::default().is_empty());
}

#[test]
fn cidr_errors_are_clear() {
    let err = |s: &str| s.parse::<Cidr>().unwrap_err().to_string();
    assert_eq!(
        err("10.0.0.1/8"),
        "\"10.0.0.1/8\": the address has bits set past the /8 prefix (did you mean 10.0.0.0/8?)"
    );
    assert_eq!(
        err("2001:db8::1/32"),
        "\"2001:db8::1/32\": the address has bits set past the /32 prefix (did you mean 2001:db8::/32?)"
    );
    assert_eq!(
        err("10.0.0.0/33"),
        "\"10.0.0.0/33\": the prefix length must be a number from 0 to 32"
    );
    assert_eq!(
        err("::/129"),
        "\"::/129\": the prefix length must be a number from 0 to 128"
    );
    for bad_prefix in [
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.0/0008",
        "10.0.0.0/x",
    ] {
        assert!(
            matches!(bad_prefix.parse::<Cidr>(), Err(CidrError::BadPrefix { .. })),
            "{bad_prefix}"
        );
    }
    assert_eq!(
        err("proxy.local"),
        "\"proxy.local\" is not an IP address or CIDR block (examples: 10.0.0.0/8, ::1/128, 127.0.0.1)"
    );
    assert!(matches!(
        "10.0.0.256/32".parse::<Cidr>(),
        Err(CidrError::BadAddress { .. })
    ));
    assert!(matches!(
        "".parse::<Cidr>(),
        Err(CidrError::BadAddress { .. })
    ));
    let list = TrustedProxies::parse(["10.0.0.0/8", "nope"])
        .unwrap_err()
        .to_string();
    assert!(list.starts_with("\"nope\""), "{list}");
}

#[test]
fn header_names_parse() {
    assert_eq!("X-Forwarded-For".parse(), Ok(ClientIpHeader::XForwardedFor));
    assert_eq!("xff".parse(), Ok(ClientIpHeader::XForwardedFor));
    assert_eq!("Forwarded".parse(), Ok(ClientIpHeader::Forwarded));
    assert_eq!(
        "CF-Connecting-IP".parse(),
        Ok(ClientIpHeader::Named("cf-connecting-ip".into()))
    );
    assert!("bad header".parse::<ClientIpHeader>().is_err());
    assert!("".parse::<ClientIpHeader>().is_err());
}

#[test]
fn untrusted_peer_headers_are_ignored() {
    let p = policy(&["10.0.0.0/8"], "x-forwarded-for");
    // A forged header straight from the internet changes nothing.
    assert_eq!(
        xff(&p, "203.0.113.9", "1.2.3.4"),
        (ip("203.0.113.9"), IpSource::Peer)
    );
    let f = policy(&["10.0.0.0/8"], "forwarded");
    assert_eq!(
        fwd(&f, "203.0.113.9", "for=1.2.3.4"),
        (ip("203.0.113.9"), IpSource::Peer)
    );
    // No header configured: even a trusted peer's headers are ignored.
    let none = RealIpPolicy {
        trusted: TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        header: None,
    };
    assert_eq!(
        xff(&none, "10.0.0.1", "1.2.3.4"),
        (ip("10.0.0.1"), IpSource::Peer)
    );
}

#[test]
fn xff_walks_right_to_left_past_trusted_proxies() {
    let p = policy(&["10.0.0.0/8", "::1/128"], "x-forwarded-for");
    let client = (ip("198.51.100.7"), IpSource::XForwardedFor);
    assert_eq!(xff(&p, "10.0.0.1", "198.51.100.7"), client);
    // The client forged the leftmost entries; the proxy appended the address it saw.
    assert_eq!(
        xff(&p, "10.0.0.1", "6.6.6.6, 127.0.0.1, 198.51.100.7"),
        client
    );
    // A chain of trusted proxies is walked past.
    assert_eq!(
        xff(&p, "10.0.0.1", "6.6.6.6,198.51.100.7,10.0.0.5 ,  10.9.9.9"),
        client
    );
    // Every entry trusted: the leftmost, as nginx does.
    assert_eq!(
        xff(&p, "10.0.0.1", "10.0.0.9, 10.0.0.5"),
        (ip("10.0.0.9"), IpSource::XForwardedFor)
    );
    // A forged Forwarded header is not the trusted one.
    let h = ForwardingHeaders {
        x_forwarded_for: Some(b"198.51.100.7"),
        forwarded: Some(b"for=6.6.6.6"),
        named: Some(b"6.6.6.6"),
    };
    assert_eq!(p.resolve(ip("10.0.0.1"), IpSource::Peer, &h), client);
    // A trusted IPv6 peer, IPv6 entries in every accepted shape, and entries with ports.
    for value in [
        "2001:db8::7",
        "[2001:db8::7]",
        "[2001:db8::7]:443",
        "6.6.6.6, 2001:db8::7, ::1",
    ] {
        assert_eq!(
            xff(&p, "::1", value),
            (ip("2001:db8::7"), IpSource::XForwardedFor),
            "{value}"
        );
    }
    assert_eq!(xff(&p, "::1", "198.51.100.7:5555"), client);
    // The peer as seen on a dual-stack socket.
    assert_eq!(xff(&p, "::ffff:10.0.0.1", "198.51.100.7"), client);
}

#[test]
fn xff_malformed_entries_stop_at_the_last_good_address() {
    let p = policy(&["10.0.0.0/8"], "x-forwarded-for");
    let peer = (ip("10.0.0.1"), IpSource::Peer);
    let proxy = (ip("10.0.0.5"), IpSource::XForwardedFor);
    assert_eq!(
        xff(&p, "10.0.0.1", "198.51.100.7, garbage, 10.0.0.5"),
        proxy
    );
    assert_eq!(xff(&p, "10.0.0.1", "198.51.100.7,, 10.0.0.5"), proxy);
    assert_eq!(
        xff(&p, "10.0.0.1", "198.51.100.7, unknown, 10.0.0.5"),
        proxy
    );
    for bad in [
        "",
        " ",
        "garbage",
        "1.2.3.4,",
        "1.2.3",
        "1.2.3.4:99999",
        "01.2.3.4",
        "[::1",
        "1.2.3.4 5.6.7.8",
    ] {
        assert_eq!(xff(&p, "10.0.0.1", bad), peer, "{bad:?}");
    }
    assert_eq!(
        p.resolve(
            ip("10.0.0.1"),
            IpSource::Peer,
            &ForwardingHeaders::default()
        ),
        peer
    );
}

#[test]
fn forwarded_for_parameters() {
    let p = policy(&["10.0.0.0/8"], "forwarded");
    let at = |s: &str| (ip(s), IpSource::Forwarded);
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43"),
        at("192.0.2.60")
    );
    assert_eq!(
        fwd(&p, "10.0.0.1", "For=\"[2001:db8:cafe::17]:4711\""),
        at("2001:db8:cafe::17")
    );
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=\"192.0.2.60:8080\""),
        at("192.0.2.60")
    );
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=\"192.0.2.60:_hidden\""),
        at("192.0.2.60")
    );
    assert_eq!(
        fwd(
            &p,
            "10.0.0.1",
            "proto=https; FOR=192.0.2.60 ; host=\"a;b,c\""
        ),
        at("192.0.2.60")
    );
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=6.6.6.6, for=192.0.2.43, for=10.0.0.7"),
        at("192.0.2.43")
    );
    // A comma inside a quoted value does not split elements.
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=192.0.2.43;host=\"x,for=6.6.6.6\""),
        at("192.0.2.43")
    );
    // The client's unbalanced quote does not swallow the proxy's element.
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=\"6.6.6.6, for=192.0.2.43"),
        at("192.0.2.43")
    );
}

#[test]
fn forwarded_unknown_obfuscated_and_malformed_stop_the_walk() {
    let p = policy(&["10.0.0.0/8"], "forwarded");
    let peer = (ip("10.0.0.1"), IpSource::Peer);
    let proxy = (ip("10.0.0.7"), IpSource::Forwarded);
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=192.0.2.43, for=unknown, for=10.0.0.7"),
        proxy
    );
    assert_eq!(
        fwd(&p, "10.0.0.1", "for=192.0.2.43, for=_gazonk, for=10.0.0.7"),
        proxy
    );
    for bad in [
        "for=unknown",
        "for=_hidden",
        "by=10.0.0.9",
        "for=2001:db8::1",
        "for=[2001:db8::1]",
        "for=\"2001:db8::1\"",
        "for=192.0.2.1:8080",
        "for=\"192.0.2.1\\\"\"",
        "for=\"192.0.2.1",
        "for=192.0.2.1;for=192.0.2.2",
        "for=192.0.2.1 proto=http",
        "=192.0.2.1",
        "for=",
        "",
    ] {
        assert_eq!(fwd(&p, "10.0.0.1", bad), peer, "{bad:?}");
    }
}

#[test]
fn named_cdn_header() {
    let p = policy(&["10.0.0.0/8"], "CF-Connecting-IP");
    let named = |v: &'static [u8]| ForwardingHeaders {
        named: Some(v),
        x_forwarded_for: Some(b"6.6.6.6"),
        ..Default::default()
    };
    let resolve = |peer: &str, v| p.resolve(ip(peer), IpSource::Peer, &named(v));
    assert_eq!(
        resolve("10.0.0.1", b" 203.0.113.50 "),
        (ip("203.0.113.50"), IpSource::Header)
    );
    assert_eq!(
        resolve("10.0.0.1", b"2001:db8::50"),
        (ip("2001:db8::50"), IpSource::Header)
    );
    assert_eq!(
        resolve("203.0.113.9", b"1.2.3.4"),
        (ip("203.0.113.9"), IpSource::Peer)
    );
    assert_eq!(
        resolve("10.0.0.1", b"1.2.3.4, 5.6.7.8"),
        (ip("10.0.0.1"), IpSource::Peer)
    );
    assert_eq!(
        p.resolve(
            ip("10.0.0.1"),
            IpSource::Peer,
            &ForwardingHeaders::default()
        ),
        (ip("10.0.0.1"), IpSource::Peer)
    );
}

#[test]
fn proxy_protocol_source_is_the_starting_peer() {
    let p = policy(&["10.0.0.0/8"], "x-forwarded-for");
    let h = ForwardingHeaders {
        x_forwarded_for: Some(b"6.6.6.6"),
        ..Default::default()
    };
    // HAProxy reported the client: the client is untrusted, so its XFF is ignored.
    assert_eq!(
        p.resolve(ip("198.51.100.7"), IpSource::ProxyProtocol, &h),
        (ip("198.51.100.7"), IpSource::ProxyProtocol)
    );
    // A trusted CDN behind the PROXY hop: its XFF is walked.
    assert_eq!(
        p.resolve(ip("10.1.1.1"), IpSource::ProxyProtocol, &h),
        (ip("6.6.6.6"), IpSource::XForwardedFor)
    );
}

#[test]
fn anonymize_truncates_to_prefixes() {
    let a = |s: &str, v4, v6| anonymize(ip(s), v4, v6);
    assert_eq!(
        a("198.51.100.77", DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX),
        ip("198.51.100.0")
    );
    assert_eq!(
        a(
            "2001:db8:abcd:1234::1",
            DEFAULT_V4_PREFIX,
            DEFAULT_V6_PREFIX
        ),
        ip("2001:db8:abcd::")
    );
    assert_eq!(a("198.51.100.77", 16, 48), ip("198.51.0.0"));
    assert_eq!(a("198.51.100.77", 0, 48), ip("0.0.0.0"));
    assert_eq!(a("198.51.100.77", 32, 48), ip("198.51.100.77"));
    assert_eq!(a("198.51.100.77", 200, 48), ip("198.51.100.77"));
    assert_eq!(
        a("2001:db8:abcd:1234::1", 24, 64),
        ip("2001:db8:abcd:1234::")
    );
    assert_eq!(a("2001:db8:abcd:1234::1", 24, 0), ip("::"));
    assert_eq!(
        a("2001:db8:abcd:1234::1", 24, 128),
        ip("2001:db8:abcd:1234::1")
    );
    assert_eq!(
        a("2001:db8:abcd:1234::1", 24, 52),
        ip("2001:db8:abcd:1000::")
    );
    // The IPv4 result stays IPv4-mapped, so it decodes as IPv4.
    assert!(a("198.51.100.77", 24, 48).to_ipv4_mapped().is_some());
}
