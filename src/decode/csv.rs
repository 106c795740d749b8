//! CSV (RFC 4180) and TSV output: a header row, then one row per record.

use super::columns::{orig_lens, truncated_names, Column, Selection, Value};
use super::escape::{base64_into, delimited_field, write_ip, write_u64};
use super::query::QueryExpander;
use super::source::Origin;
use super::time::TsFormatter;
use crate::agent::{Classifier, Labeler};
use crate::record::RecordView;
use std::sync::Arc;

/// Writes records as delimited rows; CSV rows end with CRLF as RFC 4180 says, TSV rows with LF.
pub struct DelimitedWriter {
    columns: Vec<Column>,
    delimiter: u8,
    ts: TsFormatter,
    query: QueryExpander,
    scratch: Vec<u8>,
    agents: Labeler,
}

impl DelimitedWriter {
    pub fn new(sel: &Selection, delimiter: u8, agents: Arc<Classifier>) -> DelimitedWriter {
        DelimitedWriter {
            columns: sel.columns.clone(),
            delimiter,
            ts: TsFormatter::default(),
            query: QueryExpander::default(),
            scratch: Vec::new(),
            agents: Labeler::new(agents),
        }
    }

    fn end_row(&self, out: &mut Vec<u8>) {
        if self.delimiter == b',' {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b'\n');
        }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            out.extend_from_slice(c.name().as_bytes());
        }
        self.end_row(out);
    }

    pub fn write(&mut self, out: &mut Vec<u8>, rec: &RecordView<'_>, origin: Option<&Origin>) {
        for i in 0..self.columns.len() {
            if i > 0 {
                out.push(self.delimiter);
            }
            self.scratch.clear();
            let needs_quoting = render_text(
                self.columns[i],
                rec,
                origin,
                &mut self.scratch,
                &mut self.ts,
                &mut self.query,
                &mut self.agents,
            );
            if needs_quoting {
                delimited_field(out, &self.scratch, self.delimiter);
            } else {
                out.extend_from_slice(&self.scratch);
            }
        }
        self.end_row(out);
    }
}

/// Renders one value as text into `s`; true when it is free text that may need quoting.
pub fn render_text(
    column: Column,
    rec: &RecordView<'_>,
    origin: Option<&Origin>,
    s: &mut Vec<u8>,
    ts: &mut TsFormatter,
    query: &mut QueryExpander,
    agents: &mut Labeler,
) -> bool {
    match column.value(rec, origin) {
        Value::Str(bytes) => {
            s.extend_from_slice(bytes);
            return true;
        }
        Value::Text(text) => s.extend_from_slice(text.as_bytes()),
        Value::Num(n) => write_u64(s, n),
        Value::Bool(b) => s.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Ts(ns) => s.extend_from_slice(&ts.format(ns)),
        Value::Ip(ip) => write_ip(s, ip),
        Value::Truncated(flags) => {
            for (i, name) in truncated_names(flags).enumerate() {
                if i > 0 {
                    s.push(b';');
                }
                s.extend_from_slice(name.as_bytes());
            }
        }
        Value::OrigLen(flags, lens) => {
            for (i, (name, len)) in orig_lens(flags, lens).enumerate() {
                if i > 0 {
                    s.push(b';');
                }
                s.extend_from_slice(name.as_bytes());
                s.push(b'=');
                write_u64(s, u64::from(len));
            }
        }
        Value::B64(bytes) => base64_into(s, bytes),
        Value::Query(q) => {
            query.write_json(s, q);
            return true;
        }
        Value::Agent(ua, ip) => s.extend_from_slice(agents.label(ua, ip).as_bytes()),
    }
    false
}
