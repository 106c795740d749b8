//! `glint decode`'s `agent` field: real User-Agents (tests/fixtures/user-agents.tsv) and client
//! IPs in listed ranges get their labels in JSON, CSV and TSV; `--where agent=...` selects by
//! it; `--agents FILE` replaces the built-in rules (with an IP list in Apple's egress format).

mod common;

use common::decode::*;
use common::tempdir;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

const SEC: u64 = 1_000_000_000;

fn v6(ip: &str) -> Ipv6Addr {
    match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A data dir with one record per (UA, IP) case; returns the labels expected, in order.
fn ring_of_agents(dir: &Path) -> Vec<String> {
    let home = v6("203.0.113.9");
    let mut cases: Vec<(String, Vec<u8>, Ipv6Addr)> = real_uas()
        .into_iter()
        .map(|(label, ua)| (label, ua.into_bytes(), home))
        .collect();
    let chrome = cases[0].1.clone();
    // A browser UA from the Gmail image proxy's network, one just outside it, and over IPv6.
    cases.push((
        "email-proxy:gmail".into(),
        chrome.clone(),
        v6("66.249.84.17"),
    ));
    cases.push(("browser".into(), chrome.clone(), v6("66.249.96.1")));
    cases.push(("browser".into(), chrome, v6("2001:db8::42")));
    let mut w = open_ring(dir, 0, 256);
    let recs = cases
        .iter()
        .enumerate()
        .map(|(i, (_, ua, ip))| {
            let mut s = Sent::varied(0, BASE_TS + i as u64 * SEC, i as u64);
            s.ua = ua.clone();
            s.client_ip = *ip;
            s
        })
        .collect();
    append_all(&mut w, recs);
    cases.into_iter().map(|(label, _, _)| label).collect()
}

#[test]
fn every_record_gets_its_label_in_json_csv_and_tsv() {
    let tmp = tempdir("agents");
    let dir = tmp.path();
    let want = ring_of_agents(dir);
    let d = dir.to_str().unwrap();
    let objs = jsonl(&decode_ok(&[d]));
    let got: Vec<&str> = objs.iter().map(|o| o["agent"].as_str().unwrap()).collect();
    assert_eq!(got, want);
    // In the default output it follows ua.
    let first = decode_ok(&[d]).lines().next().unwrap().to_string();
    assert!(
        first.contains(r#"Safari/537.36","agent":"browser","referer""#),
        "{first}"
    );

    let rows = parse_csv(&decode_ok(&["--format", "csv", "--fields", "seq,agent", d]));
    assert_eq!(rows[0], ["seq", "agent"]);
    let csv: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(csv, want);
    let tsv = decode_ok(&["--format", "tsv", "--fields", "agent", d]);
    let tsv: Vec<&str> = tsv.lines().skip(1).collect();
    assert_eq!(tsv, want);
}

#[test]
fn where_selects_by_agent() {
    let tmp = tempdir("agents-where");
    let dir = tmp.path();
    let want = ring_of_agents(dir);
    let d = dir.to_str().unwrap();
    let count = |cond: &str| {
        let out = decode_ok(&["--fields", "agent", "--where", cond, d]);
        jsonl(&out)
            .iter()
            .map(|o| o["agent"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let browsers = count("agent=browser");
    assert_eq!(
        browsers.len(),
        want.iter().filter(|l| *l == "browser").count()
    );
    assert!(browsers.len() >= 10);
    let proxies = count("agent~email-proxy:");
    assert_eq!(
        proxies,
        want.iter()
            .filter(|l| l.starts_with("email-proxy:"))
            .cloned()
            .collect::<Vec<_>>()
    );
    for p in ["gmail", "yahoo", "apple", "outlook"] {
        assert!(proxies.contains(&format!("email-proxy:{p}")), "{p}");
    }
    let humans = count("agent!=browser");
    assert_eq!(humans.len() + browsers.len(), want.len());
    assert_eq!(count("agent=bot:googlebot").len(), 2);
}

#[test]
fn an_agents_file_replaces_the_built_in_rules() {
    let tmp = tempdir("agents-file");
    let dir = tmp.path();
    let want = ring_of_agents(dir);
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // Apple's egress-ip-ranges.csv format: CIDR,country,region,city,
    std::fs::write(
        rules.join("egress-ip-ranges.csv"),
        "203.0.113.0/28,US,US-CA,Los Angeles,\n2001:db8::/48,US,US-CA,Los Angeles,\n",
    )
    .unwrap();
    let file = rules.join("agents.toml");
    std::fs::write(
        &file,
        r#"
[[rule]]
agent = "email-proxy:apple"
ua_equals = ["Mozilla/5.0"]
ip_files = ["egress-ip-ranges.csv"]
source = "Apple's Private Relay egress list (test copy)"
date = "2026-12-03"

[[rule]]
agent = "scanner"
ip_files = ["egress-ip-ranges.csv"]
ua_contains = ["Chrome/"]
source = "test"
date = "2026-12-03"
"#,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let agents = file.to_str().unwrap();
    let objs = jsonl(&decode_ok(&[
        "--agents",
        agents,
        "--fields",
        "ua,ip,agent",
        d,
    ]));
    assert_eq!(objs.len(), want.len());
    for o in &objs {
        let (ua, ip) = (o["ua"].as_str().unwrap(), o["ip"].as_str().unwrap());
        let listed = ip == "203.0.113.9" || ip == "2001:db8::42";
        let expected = match (ua, listed) {
            ("Mozilla/5.0", true) => "email-proxy:apple",
            (ua, true) if ua.contains("Chrome/") => "scanner",
            _ => "unknown",
        };
        assert_eq!(o["agent"], expected, "{o}");
    }
    assert!(objs.iter().any(|o| o["agent"] == "email-proxy:apple"));
    assert!(objs.iter().any(|o| o["agent"] == "scanner"));

    // A broken file stops the run before anything is printed, naming the file and line.
    std::fs::write(
        rules.join("egress-ip-ranges.csv"),
        "203.0.113.0/28\n203.0.113/99,US\n",
    )
    .unwrap();
    let out = decode(&["--agents", agents, d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("egress-ip-ranges.csv:2"), "{err}");
    let out = decode(&["--agents", "/nonexistent/agents.toml", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agents.toml"));
}
