//! `--by`: the keys records are grouped by, decode fields or query parameters.
//!
//! A name that is a decode field (`status`, `path`, `agent`, `referer`, ...) groups by the
//! field as CSV prints it; any other name, or `q.NAME`, groups by the query parameter NAME,
//! percent-decoded like `--expand-query` (its first value when it repeats). A group key is
//! the values of all keys, stored as one byte string ([`KeyBytes`]) so that counting a
//! record that joins a known group allocates nothing.

use super::super::columns::{split_target, Column};
use super::super::csv::render_text;
use super::super::query::{form_urlencoded_decode_into, QueryExpander};
use super::super::source::Origin;
use super::super::time::TsFormatter;
use crate::agent::Labeler;
use crate::record::RecordView;

/// Most keys one `--by` takes.
pub const MAX_KEYS: usize = 8;

/// One `--by` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKey {
    Field(Column),
    /// A query parameter, by its decoded name.
    Param(String),
}

impl GroupKey {
    /// The key's name as the user wrote it (`q.` dropped).
    pub fn name(&self) -> &str {
        match self {
            GroupKey::Field(c) => c.name(),
            GroupKey::Param(p) => p,
        }
    }
}

/// Parses `--by` values: each a name or a comma list (`--by cid,e --by agent`).
pub fn parse_keys(values: &[String]) -> Result<Vec<GroupKey>, String> {
    let mut keys = Vec::new();
    for name in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let key = if let Some(param) = name.strip_prefix("q.") {
            GroupKey::Param(param.to_string())
        } else {
            match Column::ALL.iter().find(|c| c.name() == name) {
                Some(Column::Q) => return Err("--by q: name a parameter (--by q.NAME)".into()),
                Some(c) => GroupKey::Field(*c),
                None => GroupKey::Param(name.to_string()),
            }
        };
        if keys.contains(&key) {
            return Err(format!("--by {name}: named twice"));
        }
        keys.push(key);
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("--by: {} keys, at most {MAX_KEYS}", keys.len()));
    }
    Ok(keys)
}

/// A group key as bytes: per key a tag (0 absent, 1 present), then for a present value its
/// length (u32 LE) and bytes.
pub type KeyBytes = Vec<u8>;

/// Builds group keys of records.
pub struct KeyBuilder {
    pub keys: Vec<GroupKey>,
    ts: TsFormatter,
    query: QueryExpander,
    value: Vec<u8>,
}

impl KeyBuilder {
    pub fn new(keys: Vec<GroupKey>) -> KeyBuilder {
        KeyBuilder {
            keys,
            ts: TsFormatter::default(),
            query: QueryExpander::default(),
            value: Vec::new(),
        }
    }

    /// Writes the group key of `rec` into `out` (cleared first).
    pub fn build(
        &mut self,
        out: &mut KeyBytes,
        rec: &RecordView<'_>,
        origin: Option<&Origin>,
        agents: &mut Labeler,
    ) {
        out.clear();
        for key in &self.keys {
            self.value.clear();
            let present = match key {
                GroupKey::Field(column) => {
                    render_text(
                        *column,
                        rec,
                        origin,
                        &mut self.value,
                        &mut self.ts,
                        &mut self.query,
                        agents,
                    );
                    true
                }
                GroupKey::Param(name) => {
                    query_param(&mut self.value, split_target(rec.target()).1, name)
                }
            };
            if present {
                // Values are parts of one record (a few KiB), far below u32::MAX.
                let len = u32::try_from(self.value.len()).unwrap_or(u32::MAX);
                out.push(1);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&self.value[..len as usize]);
            } else {
                out.push(0);
            }
        }
    }
}

/// Splits a group key back into its values (`None`: the parameter was absent).
pub fn key_values(mut bytes: &[u8]) -> Vec<Option<&[u8]>> {
    let mut values = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        if tag == 0 {
            values.push(None);
            bytes = rest;
            continue;
        }
        let (len, rest) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        values.push(Some(&rest[..len]));
        bytes = &rest[len..];
    }
    values
}

/// Writes the decoded value of the first `name` parameter of `query` into `out`; false when
/// the query has no such parameter.
pub fn query_param(out: &mut Vec<u8>, query: &[u8], name: &str) -> bool {
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        out.clear();
        let key = form_urlencoded_decode_into(out, k);
        if out[key] == *name.as_bytes() {
            out.clear();
            form_urlencoded_decode_into(out, v);
            return true;
        }
    }
    out.clear();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fields_or_query_parameters() {
        let keys = parse_keys(&["cid,e".into(), "agent".into(), " q.status ".into()]).unwrap();
        assert_eq!(
            keys,
            [
                GroupKey::Param("cid".into()),
                GroupKey::Param("e".into()),
                GroupKey::Field(Column::Agent),
                GroupKey::Param("status".into()),
            ]
        );
        assert!(parse_keys(&["q".into()]).unwrap_err().contains("q.NAME"));
        assert!(parse_keys(&["e,e".into()]).unwrap_err().contains("twice"));
        assert!(parse_keys(&["a,b,c,d,e,f,g,h,i".into()])
            .unwrap_err()
            .contains("at most 8"));
    }

    #[test]
    fn query_parameters_are_decoded_and_the_first_one_wins() {
        let mut v = Vec::new();
        assert!(query_param(
            &mut v,
            b"e=open&cid=spring%20sale&cid=b",
            "cid"
        ));
        assert_eq!(v, b"spring sale");
        assert!(query_param(&mut v, b"a+b=1&flag", "flag"));
        assert_eq!(v, b"");
        assert!(query_param(&mut v, b"a+b=x+y", "a b"));
        assert_eq!(v, b"x y");
        assert!(!query_param(&mut v, b"cidx=1&xcid=2", "cid"));
        assert!(!query_param(&mut v, b"", "cid"));
    }

    #[test]
    fn key_bytes_round_trip() {
        let mut out = vec![1, 0, 0, 0, 0];
        out.extend([1, 2, 0, 0, 0, b'h', b'i', 0]);
        assert_eq!(key_values(&out), [Some(&b""[..]), Some(b"hi"), None]);
    }
}
