//! `decode --stats --by` and `glint report`: grouped counts per agent class, checked against
//! counts the test makes itself from what it wrote (real User-Agents from
//! tests/fixtures/user-agents.tsv, labelled there), and the HTML page loaded in a real headless
//! Chromium: no console errors, no network requests, its numbers equal `decode --stats`.

mod common;

use common::chromium::Cdp;
use common::tempdir;
use glint::agent::{class_of, AgentClass};
use glint::record::{BodyKind, IpSource, Method, RecordFields};
use glint::ring::{ring_file_name, RingOptions, RingWriter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::Path;

use common::decode::{glint, BASE_TS};
const SEC: u64 = 1_000_000_000;
const CAMPAIGNS: [&str; 3] = ["spring sale", "summer", "<b>winter</b>"];
const EVENTS: [&str; 2] = ["open", "click"];
/// A User-Agent that would run if the page put it into its HTML unescaped.
const EVIL_UA: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";

/// (label, UA) of the real User-Agent fixture, plus one hostile UA (no rule: `unknown`).
fn real_uas() -> Vec<(String, String)> {
    let mut uas = common::decode::real_uas();
    uas.push(("unknown".into(), EVIL_UA.into()));
    uas
}

/// One record as the test wrote it.
#[derive(Debug, Clone)]
struct Hit {
    ts_ns: u64,
    status: u16,
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
    let tmp = tempdir("by");
    let dir = tmp.path();
    let hits = write_traffic(dir, 600, 10 * SEC);
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
    let tmp = tempdir("by-field");
    let dir = tmp.path();
    let hits = write_traffic(dir, 300, SEC);
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

/// Lines of a `decode --stats` section (`top paths:` ...) as (key text, count).
fn text_list(text: &str, title: &str) -> Vec<(String, u64)> {
    let start = text.find(&format!("\n{title}:\n")).expect(title) + title.len() + 3;
    text[start..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (n, key) = l[2..].split_at(10);
            (key[2..].to_string(), n.trim().parse().unwrap())
        })
        .collect()
}

/// `name=count` pairs of a `decode --stats` line (`per status: 200=4 404=1`).
fn text_pairs(text: &str, prefix: &str) -> Vec<(String, u64)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .expect(prefix);
    line.split(' ')
        .map(|p| {
            let (k, n) = p.rsplit_once('=').unwrap();
            (k.to_string(), n.parse().unwrap())
        })
        .collect()
}

/// Reads the page's facts and tables: each table as rows of cells, a number for a cell with
/// `data-n`, its text otherwise.
const READ_PAGE: &str = r#"(() => {
  const rows = id => [...document.querySelectorAll('#' + id + ' tbody tr')].map(tr =>
    [...tr.cells].map(td => td.dataset.n !== undefined ? Number(td.dataset.n) : td.textContent));
  const n = id => Number(document.getElementById(id).dataset.n);
  const tables = {};
  for (const t of document.querySelectorAll('table[id]')) tables[t.id] = rows(t.id);
  return {
    records: n('records'), errors: n('errors'), truncated: n('truncated'), people: n('people'),
    problems: n('problems'), tables,
    charts: [...document.querySelectorAll('svg[id]')].map(s => [s.id, s.querySelectorAll('rect').length]),
    width: document.documentElement.scrollWidth, viewport: window.innerWidth,
    active: document.querySelectorAll('script,img,iframe,object,embed,link,base,form').length,
    title: document.title, heading: document.querySelector('h1').textContent,
  };
})()"#;

/// Rows of a page table as (key text, count) pairs: the first cell and the last.
fn page_list(page: &Value, table: &str) -> Vec<(String, u64)> {
    page["tables"][table]
        .as_array()
        .unwrap_or_else(|| panic!("no table {table}"))
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            let key = r[0].as_str().map_or(r[0].to_string(), str::to_string);
            (key, r[r.len() - 1].as_u64().unwrap())
        })
        .collect()
}

/// The page's problems seen by Chromium: console messages, exceptions, log entries, and every
/// network request but the page itself.
fn page_problems(cdp: &Cdp, url: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for e in &cdp.events {
        let method = e["method"].as_str().unwrap_or("");
        match method {
            "Runtime.consoleAPICalled" | "Runtime.exceptionThrown" | "Log.entryAdded" => {
                found.push(format!("{method}: {}", e["params"]))
            }
            "Network.requestWillBeSent" if e["params"]["request"]["url"] != url => {
                found.push(format!("request: {}", e["params"]["request"]["url"]))
            }
            _ => {}
        }
    }
    found
}

#[test]
fn report_in_chromium_fetches_nothing_and_shows_the_numbers_of_decode_stats() {
    let tmp = tempdir("report-page");
    let dir = tmp.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // 900 hits 10 s apart: 2.5 hours, so per minute.
    let hits = write_traffic(&data, 900, 10 * SEC);
    let d = data.to_str().unwrap();
    let html = dir.join("report.html");
    let h = html.to_str().unwrap();
    glint_ok(&[
        "report", d, "--by", "cid,e", "--top", "0", "-o", h, "--title", "<i>t</i>",
    ]);
    let text = glint_ok(&["decode", "--stats", "--by", "cid,e", "--top", "0", d]);
    let source = std::fs::read_to_string(&html).unwrap();
    assert!(!source.contains("<script"), "a record's UA is escaped");
    assert!(source.contains("&lt;script&gt;document.title="));

    let mut cdp = Cdp::launch(dir);
    for domain in ["Network", "Runtime", "Log", "Page"] {
        cdp.call(&format!("{domain}.enable"), serde_json::json!({}));
    }
    let url = format!("file://{}", html.display());
    cdp.viewport(390, 844, true);
    cdp.navigate(&url);
    let page = cdp.evaluate(READ_PAGE);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(shots.join("report-phone.png"), cdp.screenshot()).unwrap();
    cdp.viewport(1280, 900, false);
    let wide = cdp.evaluate(READ_PAGE);
    std::fs::write(shots.join("report-desktop.png"), cdp.screenshot()).unwrap();
    let problems = page_problems(&cdp, &url);
    assert!(problems.is_empty(), "{problems:#?}");
    let requests = cdp.events_named("Network.requestWillBeSent");
    assert_eq!(requests.len(), 1, "only the page itself was loaded");

    // Phone width: nothing wider than the screen (wide tables scroll inside their box).
    assert_eq!(page["viewport"], 390);
    assert!(page["width"].as_u64().unwrap() <= 390, "{}", page["width"]);
    assert!(wide["width"].as_u64().unwrap() <= 1280);
    // Nothing that runs or loads: the hostile UA and title are text.
    assert_eq!(page["active"], 0);
    assert_eq!(page["title"], "<i>t</i>");
    assert_eq!(page["heading"], "<i>t</i>");
    assert!(page["tables"]["user-agents"]
        .to_string()
        .contains(&serde_json::to_string(&EVIL_UA.escape_debug().to_string()).unwrap()));

    // The numbers are those of decode --stats.
    assert_eq!(page["records"], hits.len());
    assert!(text.contains(&format!("records: {}\n", hits.len())));
    let errors = hits.iter().filter(|h| h.status >= 400).count();
    assert_eq!(page["errors"], errors);
    assert!(text.contains(&format!("errors: {errors} (")));
    assert_eq!(page["truncated"], 0);
    assert_eq!(page["problems"], 0);
    let browsers = hits.iter().filter(|h| h.label == "browser").count();
    assert_eq!(page["people"], browsers);
    for (table, title) in [
        ("paths", "top paths"),
        ("agents", "top agents"),
        ("referers", "top referers"),
        ("user-agents", "top user agents"),
    ] {
        assert_eq!(page_list(&page, table), text_list(&text, title), "{table}");
    }
    assert_eq!(
        page_list(&page, "statuses"),
        text_pairs(&text, "per status: ")
    );
    assert_eq!(page_list(&page, "cores"), text_pairs(&text, "per core: "));
    let classes: Vec<(String, u64)> = page["tables"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    assert_eq!(classes, text_pairs(&text, "per agent class: "));
    // Per minute: the page's table (time, hits, ...) against the text's lines.
    let per_minute: Vec<(String, u64)> = page["tables"]["per-unit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    let start = text.find("\nper minute:\n").unwrap() + 13;
    let text_minutes: Vec<(String, u64)> = text[start..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (t, n) = l.trim().split_once("  ").unwrap();
            (t.to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(per_minute, text_minutes);
    assert_eq!(per_minute.len(), 150);
    // Each bar part of both charts is a drawn rect: one chart per split, every minute drawn.
    let charts = page["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 2);
    assert!(charts.iter().all(|c| c[1].as_u64().unwrap() >= 150));
    // The --by groups: key cells, total, one count per agent class.
    let groups: Vec<(u64, Classes, String)> = page["tables"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = |v: &Value| match v.as_str().unwrap() {
                "(none)" => "(none)".to_string(),
                s => format!("\"{s}\""),
            };
            let n: Vec<u64> = r.as_array().unwrap()[2..]
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            (
                n[0],
                n[1..].try_into().unwrap(),
                format!("cid={} e={}", key(&r[0]), key(&r[1])),
            )
        })
        .collect();
    assert_eq!(groups, group_rows(&text));
    let all: Vec<&Hit> = hits.iter().collect();
    assert_eq!(groups.len(), expected_groups(&all).len());
    assert!(hits
        .iter()
        .all(|h| ["/o.gif", "/c.gif", "/p.gif"].contains(&h.path.as_str())));

    // The checks above see what the page fetches: a copy with an image from the network is
    // refused by the page's policy, and that shows.
    let bad = dir.join("bad.html");
    let injected = source.replacen("<body>", "<body><img src=\"http://127.0.0.1:9/x.gif\">", 1);
    std::fs::write(&bad, injected).unwrap();
    let bad_url = format!("file://{}", bad.display());
    cdp.events.clear();
    cdp.navigate(&bad_url);
    let seen = page_problems(&cdp, &bad_url);
    assert!(
        seen.iter().any(|p| p.contains("Content Security Policy")),
        "{seen:#?}"
    );
}

#[test]
fn help_explains_every_flag_and_bad_input_is_one_line() {
    let help = glint_ok(&["report", "--help"]);
    for flag in [
        "--output",
        "--from",
        "--to",
        "--where",
        "--by",
        "q.NAME",
        "--top",
        "--agents",
        "--skip-bad",
        "--title",
        "Content-Security-Policy",
        "phone",
        "Exit status",
    ] {
        assert!(help.contains(flag), "report --help lacks {flag}");
    }
    let help = glint_ok(&["decode", "--help"]);
    for flag in ["--by", "q.NAME", "--top", "agent class"] {
        assert!(help.contains(flag), "decode --help lacks {flag}");
    }
    let tmp = tempdir("report-bad");
    let dir = tmp.path();
    let missing = dir.join("missing");
    let out = glint(&["report", missing.to_str().unwrap(), "-o", "x.html"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("glint report") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A selection without records is a page that says so.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_traffic(&data, 10, SEC);
    let page = glint_ok(&["report", data.to_str().unwrap(), "--from", "2030-01-01"]);
    assert!(
        page.contains("<p class=\"sub\" id=\"span\">no records</p>"),
        "{page}"
    );
    assert!(page.contains("id=\"records\" data-n=\"0\""), "{page}");
}

#[test]
fn segments_count_as_their_rings_did() {
    let tmp = tempdir("report-segments");
    let dir = tmp.path();
    write_traffic(dir, 400, 30 * SEC);
    let d = dir.to_str().unwrap();
    let args = ["decode", "--stats", "--by", "cid,e,agent", "--top", "0"];
    let before = glint_ok(&[&args[..], &[d]].concat());
    let page_before = glint_ok(&["report", d, "--by", "cid,e,agent", "--top", "0"]);
    common::compact_once(dir, &[]);
    let segments = dir.join("segments");
    let s = segments.to_str().unwrap();
    assert_eq!(glint_ok(&[&args[..], &[s]].concat()), before);
    // Rings and segments together: each record once.
    assert_eq!(glint_ok(&[&args[..], &[d]].concat()), before);
    let page_after = glint_ok(&["report", s, "--by", "cid,e,agent", "--top", "0"]);
    // The same page but for the inputs and the time it was made, in the footer.
    let body = |p: &str| {
        p[..p.find("<footer>").unwrap()]
            .replace(s, "")
            .replace(d, "")
    };
    assert_eq!(body(&page_after), body(&page_before));
    assert!(page_after.contains("data-n=\"400\""));
}
