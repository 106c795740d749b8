//! JSON Lines output: one object per record, written by hand into a reused buffer.
//!
//! Keys follow the selected columns; see [`super::escape`] for how bytes that are not UTF-8
//! are kept losslessly (`<name>_b64`).

use super::columns::{orig_lens, truncated_names, Column, Selection, Value};
use super::escape::{base64_into, json_string, write_ip, write_u64};
use super::query::QueryExpander;
use super::source::Origin;
use super::time::TsFormatter;
use crate::agent::{Classifier, Labeler};
use crate::record::RecordView;
use std::sync::Arc;

/// Writes records as JSON objects, one per line.
pub struct JsonWriter {
    columns: Vec<(Column, Vec<u8>)>,
    explicit: bool,
    ts: TsFormatter,
    query: QueryExpander,
    agents: Labeler,
}

impl JsonWriter {
    pub fn new(sel: &Selection, agents: Arc<Classifier>) -> JsonWriter {
        let columns = sel
            .columns
            .iter()
            .map(|&c| (c, format!(",\"{}\":", c.name()).into_bytes()))
            .collect();
        JsonWriter {
            columns,
            explicit: sel.explicit,
            ts: TsFormatter::default(),
            query: QueryExpander::default(),
            agents: Labeler::new(agents),
        }
    }

    /// Appends one record of instance `origin` as a line to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, rec: &RecordView<'_>, origin: Option<&Origin>) {
        let start = out.len();
        for (column, key) in &self.columns {
            if !self.explicit && column.only_when_present(rec, origin) {
                continue;
            }
            out.extend_from_slice(key);
            let exact = match column.value(rec, origin) {
                Value::Str(bytes) => {
                    if json_string(out, bytes) {
                        None
                    } else {
                        Some(bytes)
                    }
                }
                Value::Text(text) => {
                    out.push(b'"');
                    out.extend_from_slice(text.as_bytes());
                    out.push(b'"');
                    None
                }
                Value::Num(n) => {
                    write_u64(out, n);
                    None
                }
                Value::Bool(b) => {
                    out.extend_from_slice(if b { b"true" } else { b"false" });
                    None
                }
                Value::Ts(ns) => {
                    out.push(b'"');
                    out.extend_from_slice(&self.ts.format(ns));
                    out.push(b'"');
                    None
                }
                Value::Ip(ip) => {
                    out.push(b'"');
                    write_ip(out, ip);
                    out.push(b'"');
                    None
                }
                Value::Truncated(flags) => {
                    out.push(b'[');
                    for (i, name) in truncated_names(flags).enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.push(b'"');
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'"');
                    }
                    out.push(b']');
                    None
                }
                Value::OrigLen(flags, lens) => {
                    out.push(b'{');
                    for (i, (name, len)) in orig_lens(flags, lens).enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.push(b'"');
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(b"\":");
                        write_u64(out, u64::from(len));
                    }
                    out.push(b'}');
                    None
                }
                Value::B64(bytes) => {
                    out.push(b'"');
                    base64_into(out, bytes);
                    out.push(b'"');
                    None
                }
                Value::Query(q) => {
                    self.query.write_json(out, q);
                    None
                }
                Value::Agent(ua, ip) => {
                    json_string(out, self.agents.label(ua, ip).as_bytes());
                    None
                }
            };
            if let (Some(bytes), Some(key)) = (exact, column.b64_companion()) {
                out.extend_from_slice(key);
                out.push(b'"');
                base64_into(out, bytes);
                out.push(b'"');
            }
        }
        // Every key was written with a leading comma; the first one becomes the brace.
        if out.len() > start {
            out[start] = b'{';
        } else {
            out.push(b'{');
        }
        out.extend_from_slice(b"}\n");
    }
}
