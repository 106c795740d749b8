//! The agents file: TOML `[[rule]]`s with UA patterns and CIDR lists, each with its source and
//! date (the format is described at the top of `data/agents.toml`), checked and bounded.

#![forbid(unsafe_code)]

use super::AgentClass;
use ipnet::IpNet;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most rules in one file (rule sets are fixed-size bit sets of this many bits).
pub const MAX_RULES: usize = 256;
/// Longest UA pattern.
pub const MAX_PATTERN_LEN: usize = 512;
/// Most UA patterns over all rules.
pub const MAX_PATTERNS: usize = 16_384;
/// Largest agents file or IP list file read.
pub const MAX_FILE_LEN: u64 = 64 << 20;
/// Most CIDRs over all rules and their files (Apple's egress list has a few hundred thousand).
pub const MAX_CIDRS: usize = 4_000_000;
/// Longest agent label (`bot:NAME`).
pub const MAX_LABEL_LEN: usize = 64;

/// A rule as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    agent: String,
    #[serde(default)]
    ua_contains: Vec<String>,
    #[serde(default)]
    ua_equals: Vec<String>,
    #[serde(default)]
    ip: Vec<String>,
    #[serde(default)]
    ip_files: Vec<PathBuf>,
    source: String,
    date: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    rule: Vec<RawRule>,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub label: String,
    pub class: AgentClass,
    pub ua_contains: Vec<String>,
    pub ua_equals: Vec<String>,
    pub nets: Vec<IpNet>,
    pub source: String,
    pub date: String,
}

impl Rule {
    pub fn has_ua(&self) -> bool {
        !self.ua_contains.is_empty() || !self.ua_equals.is_empty()
    }
}

/// Parses an agents file's text; `base` is the folder `ip_files` are relative to (`None` for
/// the built-in file, which may not name any), `name` what errors call the file.
pub fn parse(text: &str, base: Option<&Path>, name: &str) -> Result<Vec<Rule>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    if raw.rule.is_empty() {
        return Err(format!("{name}: no [[rule]]"));
    }
    if raw.rule.len() > MAX_RULES {
        return Err(format!(
            "{name}: {} rules, at most {MAX_RULES}",
            raw.rule.len()
        ));
    }
    let (mut patterns, mut cidrs) = (0usize, 0usize);
    let mut rules = Vec::with_capacity(raw.rule.len());
    for (i, r) in raw.rule.into_iter().enumerate() {
        let at = format!("{name}: rule {} ({})", i + 1, r.agent);
        let class = check_label(&r.agent).map_err(|e| format!("{at}: {e}"))?;
        if !is_date(&r.date) {
            return Err(format!("{at}: date {:?} is not YYYY-MM-DD", r.date));
        }
        if r.source.trim().is_empty() {
            return Err(format!("{at}: source is empty"));
        }
        for p in r.ua_contains.iter().chain(&r.ua_equals) {
            if p.len() > MAX_PATTERN_LEN {
                return Err(format!(
                    "{at}: UA pattern of {} bytes, at most {MAX_PATTERN_LEN}",
                    p.len()
                ));
            }
        }
        if r.ua_contains.iter().any(String::is_empty) {
            return Err(format!(
                "{at}: empty ua_contains pattern (it would match everything)"
            ));
        }
        patterns += r.ua_contains.len() + r.ua_equals.len();
        if patterns > MAX_PATTERNS {
            return Err(format!("{name}: more than {MAX_PATTERNS} UA patterns"));
        }
        let mut nets = Vec::with_capacity(r.ip.len());
        for (n, text) in r.ip.iter().enumerate() {
            nets.push(parse_cidr(text).map_err(|e| format!("{at}: ip[{n}]: {e}"))?);
        }
        for file in &r.ip_files {
            let Some(base) = base else {
                return Err(format!(
                    "{at}: ip_files cannot be used in the built-in rules"
                ));
            };
            read_ip_file(&base.join(file), &mut nets, MAX_CIDRS.saturating_sub(cidrs))
                .map_err(|e| format!("{at}: {e}"))?;
        }
        cidrs += nets.len();
        if cidrs > MAX_CIDRS {
            return Err(format!("{name}: more than {MAX_CIDRS} CIDRs"));
        }
        let rule = Rule {
            label: r.agent,
            class,
            ua_contains: r.ua_contains,
            ua_equals: r.ua_equals,
            nets,
            source: r.source,
            date: r.date,
        };
        if !rule.has_ua() && rule.nets.is_empty() {
            return Err(format!(
                "{at}: no condition (ua_contains, ua_equals, ip or ip_files)"
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// Checks `browser`, `scanner`, `email-proxy:NAME` or `bot:NAME` (NAME: a-z 0-9 . _ -).
fn check_label(label: &str) -> Result<AgentClass, String> {
    if label.len() > MAX_LABEL_LEN {
        return Err(format!("agent label longer than {MAX_LABEL_LEN} bytes"));
    }
    let (kind, name) = match label.split_once(':') {
        Some((k, n)) => (k, Some(n)),
        None => (label, None),
    };
    let class = AgentClass::ALL
        .iter()
        .copied()
        .find(|c| c.as_str() == kind && *c != AgentClass::Unknown)
        .ok_or_else(|| {
            format!("agent must be browser, scanner, email-proxy:NAME or bot:NAME, not {label:?}")
        })?;
    let named = matches!(class, AgentClass::EmailProxy | AgentClass::Bot);
    match name {
        None if named => Err(format!("{kind} needs a name: {kind}:NAME")),
        Some(_) if !named => Err(format!("{kind} takes no name")),
        Some(n)
            if n.is_empty()
                || !n.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                }) =>
        {
            Err(format!("name {n:?}: use a-z, 0-9, '.', '_' and '-'"))
        }
        _ => Ok(class),
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Parses `a.b.c.d/n`, `v6/n`, or a bare address (a /32 or /128).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{t:?} is not a CIDR (a.b.c.d/n or an IPv6 prefix)"))
}

/// Reads one IP list file (Google JSON or one CIDR per line, first CSV column) into `nets`.
fn read_ip_file(path: &Path, nets: &mut Vec<IpNet>, room: usize) -> Result<(), String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if len > MAX_FILE_LEN {
        return Err(format!("{shown}: {len} bytes, at most {MAX_FILE_LEN}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let before = nets.len();
    if path.extension().is_some_and(|e| e == "json") {
        #[derive(Deserialize)]
        struct Prefix {
            #[serde(rename = "ipv4Prefix")]
            v4: Option<String>,
            #[serde(rename = "ipv6Prefix")]
            v6: Option<String>,
        }
        #[derive(Deserialize)]
        struct Ranges {
            prefixes: Vec<Prefix>,
        }
        let ranges: Ranges = serde_json::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        for (i, p) in ranges.prefixes.iter().enumerate() {
            let text = p.v4.as_deref().or(p.v6.as_deref()).ok_or_else(|| {
                format!("{shown}: prefixes[{i}] has neither ipv4Prefix nor ipv6Prefix")
            })?;
            nets.push(parse_cidr(text).map_err(|e| format!("{shown}: prefixes[{i}]: {e}"))?);
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let first = line.split(',').next().unwrap_or("").trim();
            if first.is_empty() || first.starts_with('#') {
                continue;
            }
            nets.push(parse_cidr(first).map_err(|e| format!("{shown}:{}: {e}", n + 1))?);
            if nets.len() - before > room {
                return Err(format!("{shown}: more than {MAX_CIDRS} CIDRs"));
            }
        }
    }
    if nets.len() - before > room {
        return Err(format!("{shown}: more than {MAX_CIDRS} CIDRs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(rule: &str) -> Result<Vec<Rule>, String> {
        parse(
            &format!("[[rule]]\n{rule}\nsource = \"s\"\ndate = \"2026-12-03\"\n"),
            None,
            "t",
        )
    }

    #[test]
    fn labels_dates_and_conditions_are_checked() {
        assert!(one("agent = \"bot:x-1.2\"\nua_contains = [\"x\"]").is_ok());
        assert!(one("agent = \"browser\"\nua_equals = [\"\"]").is_ok());
        for (rule, wanted) in [
            ("agent = \"bot\"\nua_contains = [\"x\"]", "needs a name"),
            (
                "agent = \"browser:x\"\nua_contains = [\"x\"]",
                "takes no name",
            ),
            (
                "agent = \"unknown\"\nua_contains = [\"x\"]",
                "agent must be",
            ),
            (
                "agent = \"robot:x\"\nua_contains = [\"x\"]",
                "agent must be",
            ),
            ("agent = \"bot:X Y\"\nua_contains = [\"x\"]", "use a-z"),
            ("agent = \"scanner\"", "no condition"),
            (
                "agent = \"scanner\"\nua_contains = [\"\"]",
                "empty ua_contains",
            ),
            ("agent = \"scanner\"\nip = [\"10.0.0.0/33\"]", "ip[0]"),
            ("agent = \"scanner\"\nip_files = [\"x.csv\"]", "built-in"),
            (
                "agent = \"scanner\"\nua_contains = [\"x\"]\nfoo = 1",
                "unknown field",
            ),
        ] {
            let e = one(rule).unwrap_err();
            assert!(e.contains(wanted), "{rule}: {e}");
        }
        let e = parse(
            "[[rule]]\nagent = \"scanner\"\nua_contains = [\"x\"]\nsource = \"s\"\ndate = \"3 Dec\"\n",
            None,
            "t",
        )
        .unwrap_err();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        let e = parse(
            "[[rule]]\nagent = \"scanner\"\nua_contains = [\"x\"]\ndate = \"2026-12-03\"\n",
            None,
            "t",
        )
        .unwrap_err();
        assert!(e.contains("source"), "{e}");
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        assert_eq!(
            parse_cidr("10.1.0.0/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(
            parse_cidr(" 2001:db8::/32 ").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert!(parse_cidr("192.0.2.0/24,GB").is_err());
    }
}
