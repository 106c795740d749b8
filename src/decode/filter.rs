//! Which records are printed: `--from`/`--to` and `--where`.

use super::columns::Column;
use super::csv::render_text;
use super::query::QueryExpander;
use super::source::Origin;
use super::time::TsFormatter;
use crate::agent::{Classifier, Labeler};
use crate::record::RecordView;
use std::sync::Arc;

/// How a `--where` value is compared with a field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    Contains,
}

/// One `--where` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    column: Column,
    op: Op,
    value: Vec<u8>,
}

impl Condition {
    /// Parses `FIELD=VALUE`, `FIELD!=VALUE` or `FIELD~TEXT`.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let (name, rest) = text.split_at(name_end);
        let (op, value) = if let Some(v) = rest.strip_prefix("!=") {
            (Op::NotEquals, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Equals, v)
        } else if let Some(v) = rest.strip_prefix('~') {
            (Op::Contains, v)
        } else {
            return Err(format!(
                "invalid --where {text:?}: expected FIELD=VALUE, FIELD!=VALUE or FIELD~TEXT"
            ));
        };
        let column = match Column::parse_list(name)?.as_slice() {
            [Column::Q] => return Err("--where cannot test q; test query instead".into()),
            [c] => *c,
            _ => return Err(format!("invalid --where {text:?}: no field name")),
        };
        Ok(Condition {
            column,
            op,
            value: value.as_bytes().to_vec(),
        })
    }
}

/// The record filter: a time range and conditions that must all hold.
pub struct Filter {
    /// First nanosecond printed (inclusive).
    pub from_ns: u64,
    /// End of the range (exclusive).
    pub to_ns: u64,
    conditions: Vec<Condition>,
    scratch: Vec<u8>,
    ts: TsFormatter,
    query: QueryExpander,
    agents: Labeler,
}

impl Filter {
    pub fn new(
        from_ns: Option<u64>,
        to_ns: Option<u64>,
        conditions: Vec<Condition>,
        agents: Arc<Classifier>,
    ) -> Filter {
        Filter {
            from_ns: from_ns.unwrap_or(0),
            to_ns: to_ns.unwrap_or(u64::MAX),
            conditions,
            scratch: Vec::new(),
            ts: TsFormatter::default(),
            query: QueryExpander::default(),
            agents: Labeler::new(agents),
        }
    }

    pub fn in_range(&self, ts_ns: u64) -> bool {
        (self.from_ns..self.to_ns).contains(&ts_ns)
    }

    /// Whether a record of instance `origin` is in range and meets every condition.
    pub fn matches(&mut self, rec: &RecordView<'_>, origin: Option<&Origin>) -> bool {
        if !self.in_range(rec.ts_ns()) {
            return false;
        }
        for i in 0..self.conditions.len() {
            let c = &self.conditions[i];
            self.scratch.clear();
            render_text(
                c.column,
                rec,
                origin,
                &mut self.scratch,
                &mut self.ts,
                &mut self.query,
                &mut self.agents,
            );
            let hit = match c.op {
                Op::Equals => self.scratch == c.value,
                Op::NotEquals => self.scratch != c.value,
                Op::Contains => {
                    c.value.is_empty() || self.scratch.windows(c.value.len()).any(|w| w == c.value)
                }
            };
            if !hit {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conditions() {
        let c = Condition::parse("path=/p.gif").unwrap();
        assert_eq!(
            (c.column, c.op, c.value.as_slice()),
            (Column::Path, Op::Equals, &b"/p.gif"[..])
        );
        let c = Condition::parse("status!=200").unwrap();
        assert_eq!((c.column, c.op), (Column::Status, Op::NotEquals));
        let c = Condition::parse("ua~Firefox/1=2").unwrap();
        assert_eq!(
            (c.op, c.value.as_slice()),
            (Op::Contains, &b"Firefox/1=2"[..])
        );
        assert!(Condition::parse("nope=1")
            .unwrap_err()
            .contains("unknown field"));
        assert!(Condition::parse("path").is_err());
        assert!(Condition::parse("=x").is_err());
    }
}
