//! The built-in rules on real User-Agent strings (the source of each is in data/agents.toml)
//! and on addresses in and out of the listed ranges.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

fn v6(ip: &str) -> Ipv6Addr {
    match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A residential-looking address no rule lists.
const HOME: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// Real UAs sent by current browsers, the mail proxies, bots and libraries, with their label.
pub const REAL_UAS: &str = include_str!("../../tests/fixtures/user-agents.tsv");

/// (label, UA) pairs of [`REAL_UAS`].
pub fn real_uas() -> impl Iterator<Item = (&'static str, &'static str)> {
    REAL_UAS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_once('\t').expect("LABEL<TAB>UA"))
}

#[test]
fn real_user_agents_get_their_labels() {
    let c = Classifier::builtin();
    let home = HOME.to_ipv6_mapped();
    let mut classes = std::collections::BTreeSet::new();
    for (want, ua) in real_uas() {
        assert_eq!(c.label(ua.as_bytes(), home), want, "{ua}");
        assert_eq!(c.classify(ua.as_bytes(), home).1, class_of(want), "{ua}");
        classes.insert(class_of(want));
    }
    assert_eq!(
        classes.len(),
        AgentClass::ALL.len(),
        "every class is tested"
    );
    // Case does not matter for contained patterns.
    assert_eq!(c.label(b"CURL/7.0", home), "bot:http-library");
}

#[test]
fn listed_networks_label_requests_without_a_telling_ua() {
    let c = Classifier::builtin();
    let chrome = real_uas().next().unwrap().1.as_bytes();
    assert_eq!(c.label(chrome, HOME.to_ipv6_mapped()), "browser");
    assert_eq!(c.label(chrome, v6("66.249.84.17")), "email-proxy:gmail");
    assert_eq!(c.label(chrome, v6("66.102.7.200")), "email-proxy:gmail");
    assert_eq!(c.label(b"", v6("66.102.15.255")), "email-proxy:gmail");
    assert_eq!(c.label(chrome, v6("66.102.16.0")), "browser");
    assert_eq!(c.label(chrome, v6("66.249.79.1")), "browser");
    // A crawler's own UA is more specific than the network it crawls from.
    let googlebot = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    assert_eq!(c.label(googlebot, v6("66.249.84.17")), "bot:googlebot");
}

#[test]
fn a_rule_with_ua_and_ip_needs_both_and_the_first_match_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Apple's egress list format and Google's JSON range format.
    std::fs::write(
        dir.join("egress-ip-ranges.csv"),
        "172.224.224.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n\n# note\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ranges.json"),
        r#"{"creationTime":"2026-12-01","prefixes":[{"ipv4Prefix":"192.0.2.0/24"},{"ipv6Prefix":"2001:db8::/32"}]}"#,
    )
    .unwrap();
    let file = dir.join("agents.toml");
    std::fs::write(
        &file,
        r#"
[[rule]]
agent = "email-proxy:apple"
ua_equals = ["Mozilla/5.0"]
ip_files = ["egress-ip-ranges.csv"]
source = "test"
date = "2026-12-03"

[[rule]]
agent = "scanner"
ip_files = ["ranges.json"]
source = "test"
date = "2026-12-03"

[[rule]]
agent = "bot:x"
ua_contains = ["Mozilla"]
source = "test"
date = "2026-12-03"
"#,
    )
    .unwrap();
    let c = Classifier::load(&file).unwrap();
    assert_eq!(
        c.label(b"Mozilla/5.0", v6("172.224.224.31")),
        "email-proxy:apple"
    );
    assert_eq!(
        c.label(b"Mozilla/5.0", v6("2a02:26f7:b3c0:4000::1")),
        "email-proxy:apple"
    );
    // Same UA, not from the egress list; the egress list with a browser UA.
    assert_eq!(c.label(b"Mozilla/5.0", v6("172.224.224.32")), "bot:x");
    assert_eq!(c.label(b"Safari", v6("172.224.224.1")), UNKNOWN);
    assert_eq!(c.label(b"Mozilla/5.0", v6("192.0.2.200")), "scanner");
    assert_eq!(c.label(b"", v6("2001:db8::5")), "scanner");
    assert_eq!(c.rules().len(), 3);

    std::fs::write(
        dir.join("egress-ip-ranges.csv"),
        "172.224.224.0/27\nnot-an-ip,GB\n",
    )
    .unwrap();
    let e = Classifier::load(&file).unwrap_err();
    assert!(
        e.contains("egress-ip-ranges.csv:2") && e.contains("not-an-ip"),
        "{e}"
    );
    let e = Classifier::load(&dir.join("missing.toml")).unwrap_err();
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn every_builtin_rule_cites_a_source_and_date_and_can_match() {
    let c = Classifier::builtin();
    let home = HOME.to_ipv6_mapped();
    for (i, r) in c.rules().iter().enumerate() {
        assert!(r.source.len() > 10 && r.date.len() == 10, "{}", r.label);
        // Each rule's first pattern (or network) reaches that rule: no rule is shadowed.
        let got = if let Some(p) = r.ua_contains.first().or(r.ua_equals.first()) {
            c.rule_of(p.as_bytes(), home)
        } else {
            let ip = match r.nets[0].network() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            c.rule_of(b"", ip)
        };
        assert_eq!(got.map(|g| &c.rules()[g].label), Some(&r.label), "rule {i}");
    }
}
