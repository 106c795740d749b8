//! Traffic labels: what sent each request (a browser, a mail provider's image proxy, a mail
//! scanner, a named bot), decided when records are read, never on the ingest path.
//!
//! The rules live in a data file, `data/agents.toml` (compiled in as the default; `--agents
//! FILE` reads another): UA patterns and CIDR lists, each with the source it comes from and
//! the date it was checked. A rule matches when every kind of condition it has holds (a UA
//! pattern, an IP range); the first matching rule in file order gives the label.
//!
//! Matching is one Aho-Corasick pass over the User-Agent (all `ua_contains` patterns at once,
//! ASCII case-insensitive) and one binary search in the rules' CIDRs flattened into disjoint
//! ranges ([`ipset`]); both yield rule bit sets, and the lowest rule in both wins.
//!
//! Modules:
//! - [`ipset`]: the rules' CIDRs as sorted, disjoint address ranges.
//! - [`rules`]: the agents file: `[[rule]]`s with UA patterns and CIDR lists.

#![forbid(unsafe_code)]

pub mod ipset;
pub mod rules;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use ipset::{insert, IpTable, RuleSet};
use rules::{Rule, MAX_FILE_LEN, MAX_RULES};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::path::Path;

/// The rules glint ships with.
pub const BUILTIN_RULES: &str = include_str!("../../data/agents.toml");

/// The label of a record no rule matches.
pub const UNKNOWN: &str = "unknown";

/// The kind of agent: a label's part before `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentClass {
    Browser,
    EmailProxy,
    Scanner,
    Bot,
    Unknown,
}

impl AgentClass {
    pub const ALL: [AgentClass; 5] = [
        AgentClass::Browser,
        AgentClass::EmailProxy,
        AgentClass::Scanner,
        AgentClass::Bot,
        AgentClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentClass::Browser => "browser",
            AgentClass::EmailProxy => "email-proxy",
            AgentClass::Scanner => "scanner",
            AgentClass::Bot => "bot",
            AgentClass::Unknown => "unknown",
        }
    }

    /// Whether a person is behind the request (a browser); machines and unknowns are not counted as people.
    pub fn is_human(self) -> bool {
        self == AgentClass::Browser
    }
}

/// The compiled rules.
#[derive(Debug)]
pub struct Classifier {
    rules: Vec<Rule>,
    /// All `ua_contains` patterns; pattern `i` belongs to rule `pattern_rule[i]`.
    contains: AhoCorasick,
    pattern_rule: Vec<u16>,
    /// `ua_equals` patterns with their rule.
    equals: Vec<(Vec<u8>, u16)>,
    /// Rules without a UA condition (their UA part always holds).
    no_ua: RuleSet,
    /// Rules without an IP condition.
    no_ip: RuleSet,
    ips: IpTable,
}

impl Classifier {
    /// The built-in rules (`data/agents.toml`).
    pub fn builtin() -> Classifier {
        Classifier::from_text(BUILTIN_RULES, None, "built-in agents rules")
            .expect("the built-in agents rules are valid (tested)")
    }

    /// Rules from an agents file; its `ip_files` are read relative to its folder.
    pub fn load(path: &Path) -> Result<Classifier, String> {
        let shown = path.display().to_string();
        let len = std::fs::metadata(path)
            .map_err(|e| format!("agents file {shown}: {e}"))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(format!(
                "agents file {shown}: {len} bytes, at most {MAX_FILE_LEN}"
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("agents file {shown}: {e}"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Classifier::from_text(&text, Some(base), &format!("agents file {shown}"))
    }

    /// The built-in rules, or those of `path` when given.
    pub fn builtin_or(path: Option<&Path>) -> Result<Classifier, String> {
        path.map_or_else(|| Ok(Classifier::builtin()), Classifier::load)
    }

    pub fn from_text(text: &str, base: Option<&Path>, name: &str) -> Result<Classifier, String> {
        let rules = rules::parse(text, base, name)?;
        debug_assert!(rules.len() <= MAX_RULES);
        let (mut patterns, mut pattern_rule, mut equals) = (Vec::new(), Vec::new(), Vec::new());
        let (mut no_ua, mut no_ip) = ([0; MAX_RULES / 64], [0; MAX_RULES / 64]);
        for (i, r) in rules.iter().enumerate() {
            let id = u16::try_from(i).expect("rules are bounded by MAX_RULES");
            for p in &r.ua_contains {
                patterns.push(p.as_bytes());
                pattern_rule.push(id);
            }
            for p in &r.ua_equals {
                equals.push((p.as_bytes().to_vec(), id));
            }
            if !r.has_ua() {
                insert(&mut no_ua, i);
            }
            if r.nets.is_empty() {
                insert(&mut no_ip, i);
            }
        }
        let contains = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| format!("{name}: UA patterns: {e}"))?;
        let ips = IpTable::new(
            rules
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.nets.iter().map(move |n| (i, *n))),
        );
        Ok(Classifier {
            rules,
            contains,
            pattern_rule,
            equals,
            no_ua,
            no_ip,
            ips,
        })
    }

    /// The index of the first rule matching a request, `None` when none does.
    #[inline]
    pub fn rule_of(&self, ua: &[u8], ip: Ipv6Addr) -> Option<usize> {
        self.decide(&self.ua_rules(ua), ip)
    }

    /// The rules whose UA condition a User-Agent meets (rules without one included).
    pub fn ua_rules(&self, ua: &[u8]) -> RuleSet {
        let mut ua_hit = self.no_ua;
        for m in self.contains.find_overlapping_iter(ua) {
            insert(
                &mut ua_hit,
                usize::from(self.pattern_rule[m.pattern().as_usize()]),
            );
        }
        for (p, rule) in &self.equals {
            if p == ua {
                insert(&mut ua_hit, usize::from(*rule));
            }
        }
        ua_hit
    }

    /// The first rule whose UA condition is in `ua_hit` and whose IP condition `ip` meets.
    #[inline]
    fn decide(&self, ua_hit: &RuleSet, ip: Ipv6Addr) -> Option<usize> {
        let ip_hit = self.ips.rules_of(ip);
        for w in 0..ua_hit.len() {
            let both = ua_hit[w] & (ip_hit[w] | self.no_ip[w]);
            if both != 0 {
                return Some(w * 64 + both.trailing_zeros() as usize);
            }
        }
        None
    }

    /// The label of a request: `browser`, `email-proxy:NAME`, `scanner`, `bot:NAME` or `unknown`.
    #[inline]
    pub fn label(&self, ua: &[u8], ip: Ipv6Addr) -> &str {
        self.rule_of(ua, ip)
            .map_or(UNKNOWN, |r| self.rules[r].label.as_str())
    }

    /// The label and its class.
    #[inline]
    pub fn classify(&self, ua: &[u8], ip: Ipv6Addr) -> (&str, AgentClass) {
        self.label_of(self.rule_of(ua, ip))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    fn label_of(&self, rule: Option<usize>) -> (&str, AgentClass) {
        rule.map_or((UNKNOWN, AgentClass::Unknown), |r| {
            (self.rules[r].label.as_str(), self.rules[r].class)
        })
    }
}

/// Most User-Agents a [`Labeler`] remembers before it starts over.
pub const UA_CACHE_ENTRIES: usize = 4096;
/// Longer User-Agents are classified every time, never kept (bounds the cache at 2 MiB).
pub const UA_CACHE_MAX_LEN: usize = 512;

/// A classifier with a cache of the UA half of its answer: traffic repeats a few thousand
/// User-Agents, and a hash lookup costs a fraction of a pass over the patterns (the decode
/// bench measures both). One per output writer or filter.
#[derive(Debug, Clone)]
pub struct Labeler {
    classifier: std::sync::Arc<Classifier>,
    seen: HashMap<Box<[u8]>, RuleSet, foldhash::fast::FixedState>,
}

impl Labeler {
    pub fn new(classifier: std::sync::Arc<Classifier>) -> Labeler {
        Labeler {
            classifier,
            seen: HashMap::default(),
        }
    }

    /// The label and class of a request, as [`Classifier::classify`] gives them.
    #[inline]
    pub fn classify(&mut self, ua: &[u8], ip: Ipv6Addr) -> (&str, AgentClass) {
        let c = &*self.classifier;
        let rule = match self.seen.get(ua) {
            Some(hit) => c.decide(hit, ip),
            None if ua.len() > UA_CACHE_MAX_LEN => c.rule_of(ua, ip),
            None => {
                let hit = c.ua_rules(ua);
                if self.seen.len() >= UA_CACHE_ENTRIES {
                    self.seen.clear();
                }
                self.seen.insert(ua.into(), hit);
                c.decide(&hit, ip)
            }
        };
        c.label_of(rule)
    }

    #[inline]
    pub fn label(&mut self, ua: &[u8], ip: Ipv6Addr) -> &str {
        self.classify(ua, ip).0
    }
}

/// The class of a label as printed (`bot:googlebot` is a bot).
pub fn class_of(label: &str) -> AgentClass {
    let kind = label.split(':').next().unwrap_or(label);
    AgentClass::ALL
        .iter()
        .copied()
        .find(|c| c.as_str() == kind)
        .unwrap_or(AgentClass::Unknown)
}

#[cfg(test)]
mod tests;
