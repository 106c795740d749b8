use super::*;
use proptest::prelude::*;

const HTTP: &[u8] = b"GET /p.gif HTTP/1.1\r\nHost: t\r\n\r\n";

fn sock(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn invalid(buf: &[u8]) -> &'static str {
    match parse_proxy_header(buf) {
        ProxyParse::Invalid(why) => why,
        other => panic!(
            "{:?}: expected Invalid, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// Asserts `header` parses to `expected` with HTTP bytes after it, and every strict prefix of
/// it is `Partial`.
fn check_complete(header: &[u8], source: Option<SocketAddr>, destination: Option<SocketAddr>) {
    let mut buf = header.to_vec();
    buf.extend_from_slice(HTTP);
    let want = ProxyParse::Complete {
        consumed: header.len(),
        source,
        destination,
    };
    assert_eq!(parse_proxy_header(&buf), want);
    assert_eq!(parse_proxy_header(header), want);
    for cut in 0..header.len() {
        assert_eq!(
            parse_proxy_header(&header[..cut]),
            ProxyParse::Partial,
            "prefix of {cut} bytes of {header:?}"
        );
    }
}

/// A v2 header: version 2, `command`, `family`, address block, then raw TLV bytes.
fn v2(command: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
    h.extend_from_slice(addrs);
    h.extend_from_slice(tlvs);
    h
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

const TCP4_ADDRS: [u8; 12] = [192, 0, 2, 1, 10, 0, 0, 2, 0xd4, 0x31, 0x1f, 0x90];

fn tcp6_addrs() -> Vec<u8> {
    let mut a = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    a.extend_from_slice(&"::1".parse::<Ipv6Addr>().unwrap().octets());
    a.extend_from_slice(&[0xd4, 0x31, 0x00, 0x50]);
    a
}

/// A TCP4 v2 header with a correct CRC32C TLV after `tlvs`.
fn v2_with_crc(tlvs: &[u8]) -> Vec<u8> {
    let mut all = tlvs.to_vec();
    all.extend(tlv(PP2_TYPE_CRC32C, &[0; 4]));
    let mut h = v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, &all);
    let crc = crc32c::crc32c(&h);
    let at = h.len() - 4;
    h[at..].copy_from_slice(&crc.to_be_bytes());
    h
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    check_complete(
        b"PROXY TCP4 192.0.2.1 10.0.0.2 54321 8080\r\n",
        sock("192.0.2.1:54321"),
        sock("10.0.0.2:8080"),
    );
    check_complete(
        b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n",
        sock("[2001:db8::1]:0"),
        sock("[::1]:65535"),
    );
    check_complete(b"PROXY UNKNOWN\r\n", None, None);
    check_complete(b"PROXY UNKNOWN ffff::1 ::2 1 2\r\n", None, None);
}

#[test]
fn v1_longest_lines() {
    let addr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {addr} {addr} 65535 65535\r\n");
    let full = sock(&format!("[{addr}]:65535"));
    check_complete(line.as_bytes(), full, full);
    let longest = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 16));
    assert_eq!(longest.len(), V1_MAX_LEN);
    check_complete(longest.as_bytes(), None, None);
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 15));
    assert_eq!(
        invalid(long.as_bytes()),
        "v1 line has no CRLF within 107 bytes"
    );
    // The CR is the 107th byte, so the LF would be the 108th.
    assert_eq!(
        invalid(&long.as_bytes()[..V1_MAX_LEN]),
        "v1 line has no CRLF within 107 bytes"
    );
}

#[test]
fn v1_malformed_lines() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            "v1 line ends in LF without CR",
        ),
        (
            b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
            "v1 line has a CR not followed by LF",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8\t1 2\r\n",
            "v1 line has a byte outside printable ASCII",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            "v1 line has too few fields",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            "v1 line has too many fields",
        ),
        (
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            "v1 line has too many fields",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            "v1 line has too many fields",
        ),
        (
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            "v1 protocol is not TCP4, TCP6 or UNKNOWN",
        ),
        (
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            "v1 protocol is not TCP4, TCP6 or UNKNOWN",
        ),
        (
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP6 [::1] ::1 1 2\r\n",
            "v1 address is not valid for its protocol",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            "v1 port is not a decimal 0..65535 without leading zeros",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
            "v1 port is not a decimal 0..65535 without leading zeros",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n",
            "v1 port is not a decimal 0..65535 without leading zeros",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 999999\r\n",
            "v1 port is not a decimal 0..65535 without leading zeros",
        ),
        (b"PROXY \r\n", "v1 line has too few fields"),
        (b"PROXX TCP4", "no PROXY protocol header"),
        (b"PROXY\r\n", "no PROXY protocol header"),
        (
            b"PROXY TCP4 1.2.3.4 \xc3\xa9",
            "v1 line has a byte outside printable ASCII",
        ),
    ];
    for (line, why) in cases {
        assert_eq!(invalid(line), *why, "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn not_a_proxy_header() {
    assert_eq!(parse_proxy_header(b""), ProxyParse::Partial);
    assert_eq!(invalid(HTTP), "no PROXY protocol header");
    assert_eq!(invalid(b"\x16\x03\x01"), "no PROXY protocol header");
    assert_eq!(invalid(b"\r\n\r\n\0\r\nQUIX"), "no PROXY protocol header");
    assert_eq!(invalid(b"\r\r"), "no PROXY protocol header");
}

#[test]
fn v2_proxy_tcp4_and_tcp6() {
    check_complete(
        &v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, &[]),
        sock("192.0.2.1:54321"),
        sock("10.0.0.2:8080"),
    );
    check_complete(
        &v2(CMD_PROXY, FAM_TCP6, &tcp6_addrs(), &[]),
        sock("[2001:db8::1]:54321"),
        sock("[::1]:80"),
    );
}

#[test]
fn v2_local_unspec_and_unix_skip_len_bytes() {
    // LOCAL: the family and whatever follows are ignored, but `len` bytes still belong to it.
    check_complete(&v2(CMD_LOCAL, 0x00, &[], &[]), None, None);
    check_complete(
        &v2(CMD_LOCAL, FAM_TCP4, &TCP4_ADDRS, b"\xff\xff"),
        None,
        None,
    );
    check_complete(&v2(CMD_LOCAL, 0x77, b"garbage", &[]), None, None);
    check_complete(&v2(CMD_PROXY, FAM_UNSPEC, b"ignored", &[]), None, None);
    check_complete(&v2(CMD_PROXY, FAM_UNIX_STREAM, &[0; 216], &[]), None, None);
}

#[test]
fn v2_tlvs_are_bounds_checked_and_skipped() {
    let mut tlvs = tlv(0x01, b"h2");
    tlvs.extend(tlv(0x02, b"t.example.com"));
    tlvs.extend(tlv(0x04, &[0; 7]));
    tlvs.extend(tlv(PP2_TYPE_UNIQUE_ID, &[7; 128]));
    tlvs.extend(tlv(0xe3, b"custom"));
    tlvs.extend(tlv(0x99, b"unknown type"));
    let mut ssl = vec![0x07, 0, 0, 0, 0];
    ssl.extend(tlv(0x21, b"TLSv1.3"));
    ssl.extend(tlv(0x22, b"client"));
    tlvs.extend(tlv(PP2_TYPE_SSL, &ssl));
    tlvs.extend(tlv(0x04, &[]));
    let (src, dst) = (sock("192.0.2.1:54321"), sock("10.0.0.2:8080"));
    check_complete(&v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, &tlvs), src, dst);
    check_complete(&v2_with_crc(&tlvs), src, dst);
}

#[test]
fn v2_malformed_tlvs() {
    let tcp4 = |tlvs: &[u8]| v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, tlvs);
    assert_eq!(invalid(&tcp4(&[0x04])), "v2 TLV header truncated");
    assert_eq!(invalid(&tcp4(&[0x04, 0x00])), "v2 TLV header truncated");
    assert_eq!(
        invalid(&tcp4(&[0x04, 0x00, 0x02, 0xaa])),
        "v2 TLV runs past the end of the header"
    );
    let mut overrun = tlv(0x02, b"abc");
    overrun[2] = 200;
    assert_eq!(
        invalid(&tcp4(&overrun)),
        "v2 TLV runs past the end of the header"
    );
    assert_eq!(
        invalid(&tcp4(&tlv(PP2_TYPE_UNIQUE_ID, &[0; 129]))),
        "v2 UNIQUE_ID TLV longer than 128 bytes"
    );
    assert_eq!(
        invalid(&tcp4(&tlv(PP2_TYPE_SSL, &[1, 0, 0, 0]))),
        "v2 SSL TLV shorter than 5 bytes"
    );
    let mut ssl = vec![1, 0, 0, 0, 0];
    ssl.extend_from_slice(&[0x21, 0x00, 0x09, b'T']);
    assert_eq!(
        invalid(&tcp4(&tlv(PP2_TYPE_SSL, &ssl))),
        "v2 TLV runs past the end of the header"
    );
    assert_eq!(
        invalid(&tcp4(&tlv(PP2_TYPE_CRC32C, &[0; 3]))),
        "v2 CRC32C TLV is not 4 bytes"
    );
}

#[test]
fn v2_crc32c_is_verified() {
    let good = v2_with_crc(&tlv(0x02, b"t.example.com"));
    assert!(matches!(
        parse_proxy_header(&good),
        ProxyParse::Complete { .. }
    ));
    // Any flipped bit anywhere in the header, the signature included, fails the check.
    // Skipped: byte 12 (one bit turns PROXY into LOCAL, which ignores the whole block) and the
    // CRC TLV's type byte (one bit turns it into AUTHORITY, which carries no checksum).
    let crc_type = good.len() - 7;
    for at in (0..good.len()).filter(|&at| at != 12 && at != crc_type) {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let got = parse_proxy_header(&bad);
        assert!(
            matches!(got, ProxyParse::Invalid(_) | ProxyParse::Partial),
            "flip at {at}: {got:?}"
        );
    }
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(invalid(&bad), "v2 CRC32C does not match the header");
}

#[test]
fn v2_malformed_fixed_part() {
    let mut h = v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, &[]);
    h[12] = 0x11;
    assert_eq!(invalid(&h[..13]), "v2 version is not 2");
    h[12] = 0x22;
    assert_eq!(invalid(&h[..13]), "v2 command unknown");
    for family in [0x12, 0x22, 0x32, 0x10, 0x41, 0x13] {
        let h = v2(CMD_PROXY, family, &TCP4_ADDRS, &[]);
        assert_eq!(
            invalid(&h[..14]),
            "v2 family is not TCP over IPv4/IPv6 or UNSPEC",
            "{family:#x}"
        );
    }
    assert_eq!(
        invalid(&v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS[..11], &[])),
        "v2 length too short for its address family"
    );
    assert_eq!(
        invalid(&v2(CMD_PROXY, FAM_TCP6, &TCP4_ADDRS, &[])),
        "v2 length too short for its address family"
    );
    // The length field alone is enough to refuse an oversized header.
    let mut huge = v2(CMD_LOCAL, 0, &[], &[]);
    huge[14..16].copy_from_slice(&((V2_MAX_LEN - 15) as u16).to_be_bytes());
    assert_eq!(invalid(&huge), "v2 header longer than 4096 bytes");
    let mut largest = v2(CMD_LOCAL, 0, &vec![0; V2_MAX_LEN - 16], &[]);
    largest.extend_from_slice(HTTP);
    assert_eq!(
        parse_proxy_header(&largest),
        complete(V2_MAX_LEN, None, None)
    );
}

#[test]
fn v2_header_followed_by_v2_bytes_consumes_only_the_first() {
    let h = v2(CMD_PROXY, FAM_TCP4, &TCP4_ADDRS, &[]);
    let mut two = h.clone();
    two.extend_from_slice(&h);
    assert_eq!(
        parse_proxy_header(&two),
        complete(h.len(), sock("192.0.2.1:54321"), sock("10.0.0.2:8080"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let ProxyParse::Complete { consumed, .. } = parse_proxy_header(&bytes) {
            prop_assert!(consumed <= bytes.len());
        }
    }

    #[test]
    fn arbitrary_v2_bodies_never_panic(
        ver_cmd in prop_oneof![Just(0x20u8), Just(0x21u8), any::<u8>()],
        family in prop_oneof![Just(FAM_TCP4), Just(FAM_TCP6), Just(FAM_UNSPEC), any::<u8>()],
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut buf = V2_SIGNATURE.to_vec();
        buf.push(ver_cmd);
        buf.push(family);
        buf.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        buf.extend_from_slice(&rest);
        let whole = parse_proxy_header(&buf);
        if let ProxyParse::Complete { consumed, .. } = whole {
            prop_assert_eq!(consumed, buf.len());
        }
        prop_assert_ne!(whole, ProxyParse::Partial);
    }

    #[test]
    fn arbitrary_v1_lines_never_panic(line in "PROXY [ -~]{0,110}(\r\n)?") {
        if let ProxyParse::Complete { consumed, .. } = parse_proxy_header(line.as_bytes()) {
            prop_assert!(consumed <= V1_MAX_LEN && line.as_bytes()[..consumed].ends_with(b"\r\n"));
        }
    }

    #[test]
    fn trailing_bytes_are_never_consumed(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        for header in [
            v2_with_crc(&tlv(0x01, b"http/1.1")),
            b"PROXY TCP4 192.0.2.1 10.0.0.2 54321 8080\r\n".to_vec(),
        ] {
            let mut buf = header.clone();
            buf.extend_from_slice(&tail);
            let got = parse_proxy_header(&buf);
            let ok = matches!(got, ProxyParse::Complete { consumed, .. } if consumed == header.len());
            prop_assert!(ok, "{:?}", got);
        }
    }
}
