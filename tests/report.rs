//! `decode --stats --by` and `glint report`: grouped counts per agent class, checked against
//! counts the test makes itself from what it wrote (real User-Agents from
//! tests/fixtures/user-agents.tsv, labelled there), and the HTML page loaded in a real headless
//! Chromium: no console errors, no network requests, its numbers equal `decode --stats`.

use glint::agent::{class_of, AgentClass};
use glint::record::{BodyKind, IpSource, Method, RecordFields};
use glint::ring::{ring_file_name, RingOptions, RingWriter};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GLINT: &str = env!("CARGO_BIN_EXE_glint");
/// 2025-11-24T16:00:00Z.
const BASE_TS: u64 = 1_764_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const CAMPAIGNS: [&str; 3] = ["spring sale", "summer", "<b>winter</b>"];
const EVENTS: [&str; 2] = ["open", "click"];
/// A User-Agent that would run if the page put it into its HTML unescaped.
const EVIL_UA: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glint-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (label, UA) of the real User-Agent fixture, plus one hostile UA (no rule: `unknown`).
fn real_uas() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/user-agents.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut uas: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (label, ua) = l.split_once('\t').unwrap();
            (label.to_string(), ua.to_string())
        })
        .collect();
    uas.push(("unknown".into(), EVIL_UA.into()));
    uas
}

/// One record as the test wrote it.
#[derive(Debug, Clone)]
struct Hit {
    ts_ns: u64,
    status: u16,
    #[allow(dead_code)] // read by the report test
    path: String,
    /// (cid, e) as sent (decoded); `None` when the parameter is absent.
    cid: Option<&'static str>,
    e: Option<&'static str>,
    label: String,
    ua: String,
    referer: String,
}

fn encode(v: &str) -> String {
    v.replace(' ', "+").replace('<', "%3C").replace('>', "%3E")
}

/// `count` hits, `step_ns` apart, over two cores of one data dir.
fn write_traffic(dir: &Path, count: u64, step_ns: u64) -> Vec<Hit> {
    let uas = real_uas();
    let identity = glint::instance::open_or_create(dir, Some("edge-1")).unwrap();
    let mut rings: Vec<RingWriter> = (0..2u32)
        .map(|core| {
            let opts = RingOptions {
                slot_size: 512,
                capacity: 4096,
                core,
                identity: Some(identity),
            };
            RingWriter::open(&dir.join(ring_file_name(core as usize)), opts)
                .unwrap()
                .0
        })
        .collect();
    let mut hits = Vec::new();
    for i in 0..count {
        let (label, ua) = &uas[(i * 7 % uas.len() as u64) as usize];
        let cid = (i % 11 != 0).then_some(CAMPAIGNS[(i % 3) as usize]);
        let e = (i % 13 != 5).then_some(EVENTS[(i / 3 % 2) as usize]);
        let path = ["/o.gif", "/c.gif", "/p.gif"][(i / 2 % 3) as usize].to_string();
        let mut query = Vec::new();
        if let Some(c) = cid {
            query.push(format!("cid={}", encode(c)));
        }
        if let Some(e) = e {
            query.push(format!("e={e}"));
        }
        query.push(format!("n={i}"));
        let target = format!("{path}?{}", query.join("&"));
        let referer = [
            "",
            "https://mail.example/inbox",
            "https://shop.example/?q=<i>",
        ][(i % 3) as usize]
            .to_string();
        let hit = Hit {
            ts_ns: BASE_TS + i * step_ns,
            status: [200, 200, 204, 404][(i % 4) as usize],
            path,
            cid,
            e,
            label: label.clone(),
            ua: ua.clone(),
            referer,
        };
        let ip = Ipv6Addr::from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7]);
        let core = (i % 2) as u16;
        rings[core as usize]
            .append(&RecordFields {
                ts_ns: hit.ts_ns,
                core,
                status: hit.status,
                method: Method::Get,
                http_minor: 1,
                flags: 0,
                peer_ip: ip,
                peer_port: 40_000,
                client_ip: ip,
                ip_source: IpSource::Peer,
                body_kind: BodyKind::None,
                target: target.as_bytes(),
                user_agent: hit.ua.as_bytes(),
                referer: hit.referer.as_bytes(),
                cookie: b"",
                body: b"",
            })
            .expect("ring has room");
        hits.push(hit);
    }
    hits
}

fn glint(args: &[&str]) -> Output {
    Command::new(GLINT).args(args).output().unwrap()
}

fn glint_ok(args: &[&str]) -> String {
    let out = glint(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "glint {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Counts per agent class, in `AgentClass::ALL` order.
type Classes = [u64; 5];

/// What `--by cid,e` must show: per (cid, e) the counts per agent class.
fn expected_groups(
    hits: &[&Hit],
) -> BTreeMap<(Option<&'static str>, Option<&'static str>), Classes> {
    let mut want: BTreeMap<_, Classes> = BTreeMap::new();
    for h in hits {
        want.entry((h.cid, h.e)).or_default()[class_of(&h.label) as usize] += 1;
    }
    want
}

/// Shows a decoded value as the summary does.
fn shown(v: Option<&str>) -> String {
    v.map_or("(none)".into(), |v| format!("\"{}\"", v.escape_debug()))
}

/// The rows of the `by ...` table of `decode --stats` text: (class counts, key text).
fn group_rows(text: &str) -> Vec<(u64, Classes, String)> {
    let table = text.split_once("\nby ").expect("a by table").1;
    let mut lines = table.lines();
    lines.next(); // by KEYS (N groups):
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..6],
        [
            "count",
            "browser",
            "email-proxy",
            "scanner",
            "bot",
            "unknown"
        ]
    );
    lines
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let n: Vec<u64> = words[..6].iter().map(|w| w.parse().unwrap()).collect();
            let key_at = l.find(words[6]).unwrap();
            (n[0], n[1..].try_into().unwrap(), l[key_at..].to_string())
        })
        .collect()
}

#[test]
fn stats_by_query_parameters_counts_each_agent_class_apart() {
    let dir = tempdir("by");
    let hits = write_traffic(&dir, 600, 10 * SEC);
    let d = dir.to_str().unwrap();
    let text = glint_ok(&["decode", "--stats", "--by", "cid,e", "--top", "0", d]);
    let all: Vec<&Hit> = hits.iter().collect();
    let want = expected_groups(&all);
    let rows = group_rows(&text);
    assert_eq!(rows.len(), want.len(), "{text}");
    assert!(text.contains(&format!("by cid,e ({} groups):", want.len())));
    for (total, classes, key) in &rows {
        let (&(cid, e), counts) = want
            .iter()
            .find(|((cid, e), _)| *key == format!("cid={} e={}", shown(*cid), shown(*e)))
            .unwrap_or_else(|| panic!("unexpected group {key}:\n{text}"));
        assert_eq!(classes, counts, "{cid:?} {e:?}");
        assert_eq!(*total, counts.iter().sum::<u64>());
    }
    // Sorted by count, most first.
    assert!(rows.windows(2).all(|w| w[0].0 >= w[1].0), "{text}");
    // Machines and people both opened: the classes are varied.
    let by_class = |c: AgentClass| rows.iter().map(|r| r.1[c as usize]).sum::<u64>();
    for class in AgentClass::ALL {
        assert!(by_class(class) > 0, "no {class:?} in {text}");
    }
    let classes: Vec<String> = AgentClass::ALL
        .iter()
        .map(|c| format!("{}={}", c.as_str(), by_class(*c)))
        .collect();
    assert!(text.contains(&format!("per agent class: {}\n", classes.join(" "))));

    // --top N keeps the N largest groups; --where and --from/--to select records first.
    let text = glint_ok(&[
        "decode", "--stats", "--by", "cid", "--by", "e", "--top", "2", d,
    ]);
    assert_eq!(group_rows(&text).len(), 2, "{text}");
    let from = "2025-11-24T16:10:00Z";
    let to = "2025-11-24T16:50:00Z";
    let args = [
        "decode",
        "--stats",
        "--by=cid,e",
        "--top=0",
        "--where",
        "agent=browser",
    ];
    let text = glint_ok(&[&args[..], &["--from", from, "--to", to, d]].concat());
    let (f, t) = (BASE_TS + 600 * SEC, BASE_TS + 3000 * SEC);
    let picked: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.label == "browser" && (f..t).contains(&h.ts_ns))
        .collect();
    let want = expected_groups(&picked);
    let rows = group_rows(&text);
    assert_eq!(rows.len(), want.len(), "{text}");
    for (total, classes, _) in rows {
        assert_eq!(total, classes[AgentClass::Browser as usize]);
    }
    assert!(text.contains(&format!("records: {}\n", picked.len())));
}

#[test]
fn stats_by_field_and_agent_label() {
    let dir = tempdir("by-field");
    let hits = write_traffic(&dir, 300, SEC);
    let d = dir.to_str().unwrap();
    let text = glint_ok(&["decode", "--stats", "--by", "agent", "--top", "0", d]);
    let rows = group_rows(&text);
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for h in &hits {
        *want.entry(h.label.as_str()).or_default() += 1;
    }
    assert_eq!(rows.len(), want.len(), "{text}");
    for (total, classes, key) in rows {
        let label = key
            .strip_prefix("agent=\"")
            .unwrap()
            .strip_suffix('"')
            .unwrap();
        assert_eq!(total, want[label], "{label}");
        assert_eq!(
            classes[class_of(label) as usize],
            total,
            "{label}: one class"
        );
    }
    // A field and a parameter of the same name: q.NAME is the parameter.
    let text = glint_ok(&["decode", "--stats", "--by", "status,q.e", d]);
    let n200 = hits
        .iter()
        .filter(|h| h.status == 200 && h.e == Some("open"))
        .count();
    assert!(
        group_rows(&text)
            .iter()
            .any(|(n, _, k)| *n == n200 as u64 && k == "status=\"200\" e=\"open\""),
        "{text}"
    );
    let out = glint(&["decode", "--by", "cid", d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stats"));
}
