//! Byte-level writers for the output formats: JSON strings, RFC 4180 fields, base64, integers.
//!
//! # Non-UTF-8 bytes
//! Clients may send any bytes in a target, User-Agent, Referer, cookie or body. A string value
//! is printed as is when its bytes are valid UTF-8 (with JSON escapes for `"`, `\` and control
//! characters). When they are not, the string holds the text with each invalid sequence
//! replaced by U+FFFD, and a companion `<name>_b64` key holds the exact bytes in standard
//! base64 (RFC 4648, padded). So: no `_b64` key means the string is exactly the bytes sent;
//! a `_b64` key means decode it to get them. This is lossless, unlike escaping invalid bytes as
//! `\u00XX`, which cannot be told apart from a real U+00XX character.

/// Which bytes need an escape inside a JSON string: control characters, `"` and `\`.
const fn json_escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}
static JSON_ESCAPE: [bool; 256] = json_escape_table();

/// Writes `"…"`: the text of `bytes` with JSON escapes. Returns false when `bytes` were not
/// valid UTF-8 (then invalid sequences were written as U+FFFD, see the module docs).
pub fn json_string(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    out.push(b'"');
    // ASCII needs no UTF-8 validation; most targets, user agents and referers are ASCII.
    let valid = bytes.is_ascii() || std::str::from_utf8(bytes).is_ok();
    if valid {
        json_escape_into(out, bytes);
    } else {
        json_escape_into(out, String::from_utf8_lossy(bytes).as_bytes());
    }
    out.push(b'"');
    valid
}

/// JSON-escapes valid UTF-8 text into `out`, without quotes.
pub fn json_escape_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    loop {
        let i = start + first_escape(&text[start..]);
        out.extend_from_slice(&text[start..i]);
        let Some(&b) = text.get(i) else { return };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        start = i + 1;
    }
}

/// Index of the first byte needing a JSON escape (or `text.len()`), eight bytes at a time.
fn first_escape(text: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Flags bytes equal to zero; a wrongly flagged byte always sits above a rightly flagged one.
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = text.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let hits = control
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < text.len() && !JSON_ESCAPE[usize::from(text[i])] {
        i += 1;
    }
    i
}

/// Writes one CSV/TSV field. CSV quotes per RFC 4180 when the field holds the delimiter, a
/// quote, CR or LF (doubling quotes). TSV has no quoting, so tab, CR, LF and `\` are written as
/// `\t`, `\r`, `\n`, `\\` (the convention of PostgreSQL `COPY` and ClickHouse `TSV`).
/// Invalid UTF-8 becomes U+FFFD; pick the `<name>_b64` column for the exact bytes.
pub fn delimited_field(out: &mut Vec<u8>, bytes: &[u8], delimiter: u8) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.as_bytes();
    if delimiter == b'\t' {
        for &b in text {
            match b {
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ => out.push(b),
            }
        }
        return;
    }
    if !text
        .iter()
        .any(|&b| b == delimiter || matches!(b, b'"' | b'\r' | b'\n'))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        out.push(ALPHABET[(v >> 18) as usize & 63]);
        out.push(ALPHABET[(v >> 12) as usize & 63]);
        out.push(if n > 1 {
            ALPHABET[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if n > 2 {
            ALPHABET[v as usize & 63]
        } else {
            b'='
        });
    }
}

/// Decimal digits of an unsigned integer (`itoa`: no allocation, no formatting machinery).
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An IP address as text; IPv4 (and IPv4-mapped IPv6) formatted by hand, it is the common case.
pub fn write_ip(out: &mut Vec<u8>, ip: std::net::Ipv6Addr) {
    match crate::record::ip_from_v6(ip) {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_u64(out, u64::from(o));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> (String, bool) {
        let mut out = Vec::new();
        let ok = json_string(&mut out, bytes);
        (String::from_utf8(out).unwrap(), ok)
    }

    #[test]
    fn json_strings_parse_back_to_the_same_text() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "nl\n cr\r tab\t bell\x07 del\x7f",
            "ünï 😀 \u{2028}",
        ] {
            let (text, ok) = json(s.as_bytes());
            assert!(ok);
            assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
        }
        let (text, ok) = json(b"a\xff\xfeb");
        assert!(!ok);
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            "a\u{fffd}\u{fffd}b"
        );
    }

    #[test]
    fn word_scan_agrees_with_the_byte_table() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let text: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (state >> (i % 8 * 8)) as u8;
                    if b % 5 == 0 {
                        [b'"', b'\\', 0x1f, 0x20, 0x80, 0x9f][usize::from(b) % 6]
                    } else {
                        b
                    }
                })
                .collect();
            let want = text
                .iter()
                .position(|&b| JSON_ESCAPE[usize::from(b)])
                .unwrap_or(len);
            assert_eq!(first_escape(&text), want, "{text:?}");
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64_into(&mut out, raw.as_bytes());
            assert_eq!(out, want.as_bytes());
        }
    }

    #[test]
    fn csv_and_tsv_fields() {
        let field = |b: &[u8], d: u8| {
            let mut out = Vec::new();
            delimited_field(&mut out, b, d);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(field(b"plain", b','), "plain");
        assert_eq!(field(b"a,b", b','), "\"a,b\"");
        assert_eq!(field(b"say \"hi\"\n", b','), "\"say \"\"hi\"\"\n\"");
        assert_eq!(field(b"a\tb\\c\nd", b'\t'), "a\\tb\\\\c\\nd");
        assert_eq!(field(b"a,b", b'\t'), "a,b");
    }

    #[test]
    fn integers_and_ips() {
        let mut out = Vec::new();
        for v in [0, 7, 10, 99, 100, 12345] {
            write_u64(&mut out, v);
            out.push(b' ');
        }
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_ip(&mut out, "::ffff:203.0.113.9".parse().unwrap());
        out.push(b' ');
        write_ip(&mut out, "2001:db8::1".parse().unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 7 10 99 100 12345 18446744073709551615 203.0.113.9 2001:db8::1"
        );
    }
}
