//! The Cookie request header: `--capture-cookie` stores one cookie's value, never the header.

/// The value of the first cookie called `name` in a Cookie header (RFC 6265 5.4 cookie-string:
/// `name=value` pairs separated by `;`), without surrounding double quotes. Names match
/// case-sensitively; pairs without `=` are skipped.
pub fn cookie_value<'a>(cookie_header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if name.is_empty() {
        return None;
    }
    cookie_header.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        if pair[..eq].trim_ascii() != name {
            return None;
        }
        let value = pair[eq + 1..].trim_ascii();
        Some(match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values() {
        let h: &[u8] = b"theme=dark; vid=abc123; empty=; quoted=\"q v\";noeq; vid=second;  sp = x ";
        assert_eq!(cookie_value(h, b"vid"), Some(&b"abc123"[..]));
        assert_eq!(cookie_value(h, b"theme"), Some(&b"dark"[..]));
        assert_eq!(cookie_value(h, b"empty"), Some(&b""[..]));
        assert_eq!(cookie_value(h, b"quoted"), Some(&b"q v"[..]));
        assert_eq!(cookie_value(h, b"sp"), Some(&b"x"[..]));
        assert_eq!(cookie_value(h, b"VID"), None);
        assert_eq!(cookie_value(h, b"noeq"), None);
        assert_eq!(cookie_value(h, b"missing"), None);
        assert_eq!(cookie_value(h, b""), None);
        assert_eq!(cookie_value(b"", b"vid"), None);
        assert_eq!(cookie_value(b"a=b=c", b"a"), Some(&b"b=c"[..]));
        assert_eq!(cookie_value(b"a=\"", b"a"), Some(&b"\""[..]));
        // A name that is a suffix of another does not match it.
        assert_eq!(cookie_value(b"xvid=1; vid=2", b"vid"), Some(&b"2"[..]));
    }
}
