//! The output columns: their names, which ones are printed by default, and each one's value.

use super::source::Origin;
use crate::record::{flags, Field, RecordView};

macro_rules! columns {
    ($($var:ident => $name:literal, $doc:literal;)+) => {
        /// One output key (JSON) or column (CSV/TSV).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Column { $($var),+ }

        impl Column {
            pub const ALL: &'static [Column] = &[$(Column::$var),+];
            pub fn name(self) -> &'static str {
                match self { $(Column::$var => $name),+ }
            }
            pub fn doc(self) -> &'static str {
                match self { $(Column::$var => $doc),+ }
            }
        }
    };
}

columns! {
    Ts => "ts", "time the request was answered, RFC 3339 UTC with microseconds";
    TsNs => "ts_ns", "the same time in nanoseconds since the Unix epoch";
    Instance => "instance", "name of the box (instance) that wrote the record (default output: when known)";
    InstanceId => "instance_id", "the instance's id, 32 hex digits; (instance_id, core, seq) is unique in a fleet";
    Core => "core", "worker core that wrote the record";
    Seq => "seq", "per-core sequence number";
    Ip => "ip", "client IP (after PROXY protocol / X-Forwarded-For resolution)";
    IpSource => "ip_source", "how ip was resolved: peer, proxy-protocol, xff, forwarded, header";
    Peer => "peer", "socket peer IP";
    Port => "port", "socket peer port";
    Method => "method", "HTTP method";
    HttpVersion => "http_version", "1.0 or 1.1";
    Status => "status", "HTTP status sent";
    Target => "target", "request target as sent (path and query)";
    Path => "path", "target up to the first '?', without the scheme and authority of an absolute URL";
    Query => "query", "target after the first '?'";
    Ua => "ua", "User-Agent";
    Agent => "agent", "who sent it: browser, email-proxy:NAME, scanner, bot:NAME, unknown (--agents)";
    Referer => "referer", "Referer";
    Cookie => "cookie", "the configured cookie's value (default output: only when present)";
    Body => "body", "request body (default output: only when present)";
    BodyKind => "body_kind", "content type class of the body (default output: only with a body)";
    Truncated => "truncated", "fields cut to fit the slot (only in records of the first release)";
    OrigLen => "orig_len", "original length of each truncated field (default output: when any)";
    Dnt => "dnt", "DNT: 1 was sent";
    Gpc => "gpc", "Sec-GPC: 1 was sent";
    KeepAlive => "keep_alive", "the connection stayed open";
    Pipelined => "pipelined", "the request was pipelined behind another";
    Chunked => "chunked", "the body used chunked transfer coding";
    TargetB64 => "target_b64", "exact target bytes, base64";
    PathB64 => "path_b64", "exact path bytes, base64";
    QueryB64 => "query_b64", "exact query bytes, base64";
    UaB64 => "ua_b64", "exact User-Agent bytes, base64";
    RefererB64 => "referer_b64", "exact Referer bytes, base64";
    CookieB64 => "cookie_b64", "exact cookie bytes, base64";
    BodyB64 => "body_b64", "exact body bytes, base64";
    Q => "q", "percent-decoded query parameters (--expand-query; a JSON object, in CSV as text)";
}

/// The value of one column for one record.
pub enum Value<'a> {
    Str(&'a [u8]),
    Text(&'static str),
    Num(u64),
    Bool(bool),
    Ts(u64),
    Ip(std::net::Ipv6Addr),
    Truncated(u32),
    /// The truncation bits and every field's original length.
    OrigLen(u32, [u32; 5]),
    B64(&'a [u8]),
    Query(&'a [u8]),
    /// The request's User-Agent and client IP, labelled by the writer's [`crate::agent::Classifier`].
    Agent(&'a [u8], std::net::Ipv6Addr),
}

impl Column {
    /// Parses `--fields ts,ip,path`.
    pub fn parse_list(list: &str) -> Result<Vec<Column>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Column::ALL
                    .iter()
                    .copied()
                    .find(|c| c.name() == name)
                    .ok_or_else(|| {
                        format!("unknown field {name:?}; fields are: {}", Column::names())
                    })
            })
            .collect()
    }

    pub fn names() -> String {
        Column::ALL
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// For a text column, its base64 companion (printed in JSON when the bytes are not UTF-8).
    pub fn b64_companion(self) -> Option<&'static [u8]> {
        Some(match self {
            Column::Target => b",\"target_b64\":",
            Column::Path => b",\"path_b64\":",
            Column::Query => b",\"query_b64\":",
            Column::Ua => b",\"ua_b64\":",
            Column::Referer => b",\"referer_b64\":",
            Column::Cookie => b",\"cookie_b64\":",
            Column::Body => b",\"body_b64\":",
            _ => return None,
        })
    }

    /// Printed only when present in the default JSON output (an explicit `--fields` prints it always).
    pub fn only_when_present(self, rec: &RecordView<'_>, origin: Option<&Origin>) -> bool {
        match self {
            Column::Instance | Column::InstanceId => origin.is_none(),
            Column::Cookie => rec.cookie().is_empty(),
            Column::Body | Column::BodyKind => rec.body().is_empty(),
            Column::OrigLen => rec.flags() & flags::TRUNC_ANY == 0,
            _ => false,
        }
    }

    /// The value for a record of instance `origin` (`None`: unknown, printed empty).
    pub fn value<'a>(self, rec: &RecordView<'a>, origin: Option<&'a Origin>) -> Value<'a> {
        let flag = |bit: u32| Value::Bool(rec.flags() & bit != 0);
        match self {
            Column::Instance => Value::Str(origin.map_or(&b""[..], |o| o.name.as_bytes())),
            Column::InstanceId => Value::Str(origin.map_or(&b""[..], |o| o.id_hex.as_bytes())),
            Column::Ts => Value::Ts(rec.ts_ns()),
            Column::TsNs => Value::Num(rec.ts_ns()),
            Column::Core => Value::Num(u64::from(rec.core())),
            Column::Seq => Value::Num(rec.seq()),
            Column::Ip => Value::Ip(rec.client_ip()),
            Column::IpSource => Value::Text(rec.ip_source().as_str()),
            Column::Peer => Value::Ip(rec.peer_ip()),
            Column::Port => Value::Num(u64::from(rec.peer_port())),
            Column::Method => Value::Text(rec.method().as_str()),
            Column::HttpVersion => Value::Text(if rec.http_minor() == 0 { "1.0" } else { "1.1" }),
            Column::Status => Value::Num(u64::from(rec.status())),
            Column::Target => Value::Str(rec.target()),
            Column::Path => Value::Str(split_target(rec.target()).0),
            Column::Query => Value::Str(split_target(rec.target()).1),
            Column::Ua => Value::Str(rec.user_agent()),
            Column::Agent => Value::Agent(rec.user_agent(), rec.client_ip()),
            Column::Referer => Value::Str(rec.referer()),
            Column::Cookie => Value::Str(rec.cookie()),
            Column::Body => Value::Str(rec.body()),
            Column::BodyKind => Value::Text(rec.body_kind().as_str()),
            Column::Truncated => Value::Truncated(rec.flags()),
            Column::OrigLen => Value::OrigLen(rec.flags(), Field::ALL.map(|f| rec.orig_len(f))),
            Column::Dnt => flag(flags::DNT),
            Column::Gpc => flag(flags::GPC),
            Column::KeepAlive => flag(flags::KEEP_ALIVE),
            Column::Pipelined => flag(flags::PIPELINED),
            Column::Chunked => flag(flags::CHUNKED),
            Column::TargetB64 => Value::B64(rec.target()),
            Column::PathB64 => Value::B64(split_target(rec.target()).0),
            Column::QueryB64 => Value::B64(split_target(rec.target()).1),
            Column::UaB64 => Value::B64(rec.user_agent()),
            Column::RefererB64 => Value::B64(rec.referer()),
            Column::CookieB64 => Value::B64(rec.cookie()),
            Column::BodyB64 => Value::B64(rec.body()),
            Column::Q => Value::Query(split_target(rec.target()).1),
        }
    }
}

/// The truncated fields in a record's flags with their original lengths, in field order.
pub fn orig_lens(record_flags: u32, lens: [u32; 5]) -> impl Iterator<Item = (&'static str, u32)> {
    Field::ALL
        .into_iter()
        .filter(move |f| record_flags & (flags::TRUNC_TARGET << *f as u32) != 0)
        .map(move |f| (f.name(), lens[f as usize]))
}

/// Names of the truncated fields in a record's flags, in field order.
pub fn truncated_names(record_flags: u32) -> impl Iterator<Item = &'static str> {
    Field::ALL
        .into_iter()
        .filter(move |f| record_flags & (flags::TRUNC_TARGET << *f as u32) != 0)
        .map(Field::name)
}

/// Splits a stored target into (path, query) at the first `?`; for an absolute-form target
/// (`http://host/p?x`) the scheme and authority are not part of the path.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let (before, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &target[target.len()..]),
    };
    (strip_scheme_authority(before), query)
}

fn strip_scheme_authority(path: &[u8]) -> &[u8] {
    let Some(colon) = path.windows(3).position(|w| w == b"://") else {
        return path;
    };
    let scheme = &path[..colon];
    let is_scheme = !scheme.is_empty()
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !is_scheme {
        return path;
    }
    let rest = &path[colon + 3..];
    match rest.iter().position(|&b| b == b'/') {
        Some(i) => &rest[i..],
        None => b"/",
    }
}

/// The columns printed, in order, and whether the user chose them.
#[derive(Debug, Clone)]
pub struct Selection {
    pub columns: Vec<Column>,
    pub explicit: bool,
}

impl Selection {
    pub fn new(fields: Option<&str>, expand_query: bool) -> Result<Selection, String> {
        let (mut columns, explicit) = match fields {
            Some(list) => (Column::parse_list(list)?, true),
            None => (default_columns(), false),
        };
        if columns.is_empty() {
            return Err("--fields lists no field".into());
        }
        if expand_query && !columns.contains(&Column::Q) {
            columns.push(Column::Q);
        }
        if !expand_query && columns.contains(&Column::Q) {
            return Err("field q needs --expand-query".into());
        }
        Ok(Selection { columns, explicit })
    }
}

/// The columns printed without `--fields`, in order: every field but `target`, the `*_b64`
/// ones and `q` (some only when the record has them, see [`Column::only_when_present`]).
pub const DEFAULT_COLUMNS: &[Column] = &[
    Column::Ts,
    Column::TsNs,
    Column::Instance,
    Column::InstanceId,
    Column::Core,
    Column::Seq,
    Column::Ip,
    Column::IpSource,
    Column::Peer,
    Column::Port,
    Column::Method,
    Column::HttpVersion,
    Column::Status,
    Column::Path,
    Column::Query,
    Column::Ua,
    Column::Agent,
    Column::Referer,
    Column::Cookie,
    Column::Body,
    Column::BodyKind,
    Column::Truncated,
    Column::OrigLen,
    Column::Dnt,
    Column::Gpc,
    Column::KeepAlive,
    Column::Pipelined,
    Column::Chunked,
];

fn default_columns() -> Vec<Column> {
    DEFAULT_COLUMNS.to_vec()
}

/// The field list of `glint decode --help`, made from the columns themselves: every field with
/// its meaning, the default ones marked.
pub fn fields_help() -> String {
    let width = Column::ALL
        .iter()
        .map(|c| c.name().len())
        .max()
        .unwrap_or(0);
    let mut s =
        String::from("Fields (for --fields and --where; * = printed by default, in this order):\n");
    let rest = Column::ALL.iter().filter(|c| !DEFAULT_COLUMNS.contains(c));
    for &c in DEFAULT_COLUMNS.iter().chain(rest) {
        let mark = if DEFAULT_COLUMNS.contains(&c) {
            '*'
        } else {
            ' '
        };
        s.push_str(&format!("  {mark} {:width$}  {}\n", c.name(), c.doc()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_first_question_mark() {
        let s = |t: &'static str| {
            let (p, q) = split_target(t.as_bytes());
            (
                std::str::from_utf8(p).unwrap(),
                std::str::from_utf8(q).unwrap(),
            )
        };
        assert_eq!(s("/p.gif?a=1?b=2"), ("/p.gif", "a=1?b=2"));
        assert_eq!(s("/p.gif"), ("/p.gif", ""));
        assert_eq!(s("/p.gif?"), ("/p.gif", ""));
        assert_eq!(s("http://example.com/p.gif?x=1"), ("/p.gif", "x=1"));
        assert_eq!(s("https://example.com:8443?x=://"), ("/", "x=://"));
        assert_eq!(s("/r?u=http://a/b"), ("/r", "u=http://a/b"));
        assert_eq!(s("/a://b"), ("/a://b", ""));
        assert_eq!(s("*"), ("*", ""));
    }

    #[test]
    fn field_lists() {
        let sel = Selection::new(Some("ts, path,ua"), false).unwrap();
        assert_eq!(sel.columns, vec![Column::Ts, Column::Path, Column::Ua]);
        assert!(Selection::new(Some("ts,nope"), false)
            .unwrap_err()
            .contains("unknown field \"nope\""));
        assert!(Selection::new(Some("q"), false).is_err());
        assert_eq!(
            Selection::new(None, true).unwrap().columns.last(),
            Some(&Column::Q)
        );
        let t: Vec<_> = truncated_names(flags::TRUNC_UA | flags::TRUNC_BODY | flags::DNT).collect();
        assert_eq!(t, ["ua", "body"]);
    }

    #[test]
    fn default_fields_are_all_but_target_b64_and_q_and_the_help_lists_them() {
        let left_out: Vec<&str> = Column::ALL
            .iter()
            .filter(|c| !DEFAULT_COLUMNS.contains(c))
            .map(|c| c.name())
            .collect();
        assert!(left_out
            .iter()
            .all(|n| *n == "target" || *n == "q" || n.ends_with("_b64")));
        let help = fields_help();
        for c in Column::ALL {
            let mark = if DEFAULT_COLUMNS.contains(c) {
                '*'
            } else {
                ' '
            };
            let line = format!("  {mark} {} ", c.name());
            assert!(help.contains(&line), "{line:?} in\n{help}");
        }
        assert!(help.contains("* chunked"), "{help}");
        // One line per field in a 100-column terminal: clap would wrap longer ones unindented.
        assert!(help.lines().all(|l| l.len() <= 98), "{help}");
        let first = help.lines().nth(1).unwrap();
        assert!(first.starts_with("  * ts "), "{first}");
    }
}
