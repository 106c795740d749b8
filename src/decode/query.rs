//! `--expand-query`: the query string as an object of percent-decoded parameters.
//!
//! Pairs are split on `&`, key and value on the first `=` (a bare `key` has the value `""`),
//! `+` means a space and `%XX` a byte (a `%` not followed by two hex digits stays as is).
//! Keys keep their first-seen order; a key that repeats gets an array of its values in order.
//! Decoded bytes that are not UTF-8 are shown with U+FFFD: `q` is a convenience, the `query`
//! key (with `query_b64` when needed) stays the exact source.

use super::escape::json_string;

/// Reused buffers for decoding one query string.
#[derive(Default)]
pub struct QueryExpander {
    bytes: Vec<u8>,
    pairs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    done: Vec<bool>,
}

impl QueryExpander {
    /// Writes `{"key":"value","k2":["a","b"]}` for a raw query string.
    pub fn write_json(&mut self, out: &mut Vec<u8>, query: &[u8]) {
        self.decode_pairs(query);
        out.push(b'{');
        self.done.clear();
        self.done.resize(self.pairs.len(), false);
        let mut first = true;
        for i in 0..self.pairs.len() {
            if self.done[i] {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            let key = &self.bytes[self.pairs[i].0.clone()];
            json_string(out, key);
            out.push(b':');
            let same: Vec<usize> = (i..self.pairs.len())
                .filter(|&j| &self.bytes[self.pairs[j].0.clone()] == key)
                .collect();
            if same.len() == 1 {
                json_string(out, &self.bytes[self.pairs[i].1.clone()]);
                continue;
            }
            out.push(b'[');
            for (n, &j) in same.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                self.done[j] = true;
                json_string(out, &self.bytes[self.pairs[j].1.clone()]);
            }
            out.push(b']');
        }
        out.push(b'}');
    }

    fn decode_pairs(&mut self, query: &[u8]) {
        self.bytes.clear();
        self.pairs.clear();
        for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let key = form_urlencoded_decode_into(&mut self.bytes, k);
            let value = form_urlencoded_decode_into(&mut self.bytes, v);
            self.pairs.push((key, value));
        }
    }
}

/// `application/x-www-form-urlencoded` decoding, as browsers encode query strings: `+` is a
/// space, `%XX` a byte, and a bad escape is kept as written. Appends the decoded form of `s`
/// to `out` and returns where it landed.
pub fn form_urlencoded_decode_into(out: &mut Vec<u8>, s: &[u8]) -> std::ops::Range<usize> {
    let start = out.len();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                out.push(hex(s[i + 1]).unwrap_or(0) << 4 | hex(s[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    start..out.len()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_turns_plus_into_space_and_keeps_bad_escapes() {
        let mut out = b"x".to_vec();
        let r = form_urlencoded_decode_into(&mut out, b"a+b%20c%2B%G1%2");
        assert_eq!(&out[r], b"a b c+%G1%2");
    }

    fn expand(q: &str) -> serde_json::Value {
        let mut out = Vec::new();
        QueryExpander::default().write_json(&mut out, q.as_bytes());
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn decodes_and_groups_repeated_keys() {
        let v =
            expand("e=page+view&url=https%3A%2F%2Fa.example%2F%3Fx%3D1&tag=a&tag=b&flag&tag=c&=v");
        assert_eq!(
            v,
            serde_json::json!({"e": "page view", "url": "https://a.example/?x=1",
                               "tag": ["a", "b", "c"], "flag": "", "": "v"})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn bad_escapes_stay_and_odd_bytes_are_valid_json() {
        assert_eq!(
            expand("a=%zz%4&b=100%&c=%C3%A9&d=%FF"),
            serde_json::json!({"a": "%zz%4", "b": "100%", "c": "é", "d": "\u{fffd}"})
        );
        assert_eq!(expand(""), serde_json::json!({}));
        assert_eq!(expand("&&"), serde_json::json!({}));
    }
}
