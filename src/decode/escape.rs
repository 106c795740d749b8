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

#![forbid(unsafe_code)]

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
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => {
            json_escape_into(out, bytes);
            true
        }
        Err(_) => {
            json_escape_into(out, String::from_utf8_lossy(bytes).as_bytes());
            false
        }
    };
    out.push(b'"');
    valid
}

/// JSON-escapes valid UTF-8 text into `out`, without quotes.
pub fn json_escape_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if !JSON_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&text[start..i]);
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
    out.extend_from_slice(&text[start..]);
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

/// Decimal digits of an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
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
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_ip(&mut out, "::ffff:203.0.113.9".parse().unwrap());
        out.push(b' ');
        write_ip(&mut out, "2001:db8::1".parse().unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 18446744073709551615 203.0.113.9 2001:db8::1"
        );
    }
}
