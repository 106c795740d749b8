//! Shared helpers of the decoder's integration tests: varied records, rings, running glint.

use glint::record::{flags, BodyKind, IpSource, Method, RecordFields};
use glint::ring::{ring_file_name, RingOptions, RingWriter};
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::{Command, Output};

/// 2025-11-24T16:00:00Z.
pub const BASE_TS: u64 = 1_764_000_000_000_000_000;
pub const SLOT: usize = 512;

/// Everything written for one record, owned.
#[derive(Debug, Clone)]
pub struct Sent {
    pub ts_ns: u64,
    pub core: u16,
    pub seq: u64,
    pub status: u16,
    pub method: Method,
    pub http_minor: u8,
    pub flags: u32,
    pub peer_ip: Ipv6Addr,
    pub peer_port: u16,
    pub client_ip: Ipv6Addr,
    pub ip_source: IpSource,
    pub body_kind: BodyKind,
    pub target: Vec<u8>,
    pub ua: Vec<u8>,
    pub referer: Vec<u8>,
    pub cookie: Vec<u8>,
    pub body: Vec<u8>,
}

impl Sent {
    /// A record varied by `n`: odd bytes, quotes, commas, newlines, long (multi-slot) fields.
    pub fn varied(core: u16, ts_ns: u64, n: u64) -> Sent {
        let target: Vec<u8> = match n % 6 {
            0 => format!("/p.gif?e=pv&n={n}&url=https%3A%2F%2Fa.example%2F%3Fx%3D1&tag=a&tag=b")
                .into_bytes(),
            1 => format!("http://collector.example/i?n={n}&q=\"quoted\",comma").into_bytes(),
            2 => [
                b"/bad\xff\xfe?n=".as_slice(),
                n.to_string().as_bytes(),
                b"&x=%FF",
            ]
            .concat(),
            3 => format!("/plain-{n}").into_bytes(),
            4 => format!("/long?{}", "k=v&".repeat(150)).into_bytes(),
            _ => format!("/tab\there?line=1\n2&n={n}").into_bytes(),
        };
        let ua = match n % 4 {
            0 => b"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0".to_vec(),
            1 => b"bot \"quoted\", with comma\r\nand newline".to_vec(),
            2 => vec![0xC3, 0x28, b'a', 0x80, b'\\', 0x00, 0x1F],
            _ => "caf\u{e9} \u{1F600} \u{2028} \u{F7FF}".as_bytes().to_vec(),
        };
        let body = if n % 5 == 0 {
            format!("{{\"n\":{n},\"s\":\"a,b\"}}").into_bytes()
        } else {
            Vec::new()
        };
        let cookie = if n % 3 == 0 {
            format!("uid={n:08x}").into_bytes()
        } else {
            Vec::new()
        };
        let v4 = super::test_net_peer(n);
        Sent {
            ts_ns,
            core,
            seq: 0,
            status: [200, 204, 404, 413][(n % 4) as usize],
            method: [Method::Get, Method::Post, Method::Head][(n % 3) as usize],
            http_minor: (n % 2) as u8,
            flags: [
                flags::KEEP_ALIVE,
                flags::DNT | flags::GPC,
                flags::PIPELINED | flags::KEEP_ALIVE,
                0,
            ][(n % 4) as usize]
                | if n % 6 == 1 { flags::ABSOLUTE_FORM } else { 0 },
            peer_ip: v4,
            peer_port: 40_000 + (n % 1000) as u16,
            client_ip: if n % 2 == 0 {
                v4
            } else {
                "2001:db8::42".parse().unwrap()
            },
            ip_source: if n % 2 == 0 {
                IpSource::Peer
            } else {
                IpSource::XForwardedFor
            },
            body_kind: if body.is_empty() {
                BodyKind::None
            } else {
                BodyKind::Json
            },
            target,
            ua,
            referer: format!("https://shop.example.com/c/{}?p=1,2", n % 7).into_bytes(),
            cookie,
            body,
        }
    }

    pub fn fields(&self) -> RecordFields<'_> {
        RecordFields {
            ts_ns: self.ts_ns,
            core: self.core,
            status: self.status,
            method: self.method,
            http_minor: self.http_minor,
            flags: self.flags,
            peer_ip: self.peer_ip,
            peer_port: self.peer_port,
            client_ip: self.client_ip,
            ip_source: self.ip_source,
            body_kind: self.body_kind,
            target: &self.target,
            user_agent: &self.ua,
            referer: &self.referer,
            cookie: &self.cookie,
            body: &self.body,
        }
    }
}

/// Opens (or creates) core `core`'s ring in `dir` as `glint serve` does: under the data dir's
/// instance identity.
pub fn open_ring(dir: &Path, core: u32, capacity: u64) -> RingWriter {
    let path = dir.join(ring_file_name(core as usize));
    let identity = glint::instance::open_or_create(dir, None).unwrap();
    let opts = RingOptions {
        slot_size: SLOT,
        capacity,
        core,
        identity: Some(identity),
    };
    RingWriter::open(&path, opts).unwrap().0
}

/// Appends records and returns them with their seqs.
pub fn append_all(w: &mut RingWriter, mut recs: Vec<Sent>) -> Vec<Sent> {
    for r in &mut recs {
        r.seq = w.append(&r.fields()).expect("ring has room").seq;
    }
    recs
}

/// `count` varied records for `core`, `step_ns` apart from `start_ns`.
pub fn write_ring(
    dir: &Path,
    core: u16,
    capacity: u64,
    start_ns: u64,
    step_ns: u64,
    count: u64,
) -> Vec<Sent> {
    let mut w = open_ring(dir, u32::from(core), capacity);
    let recs = (0..count)
        .map(|i| Sent::varied(core, start_ns + i * step_ns, i + u64::from(core) * 7))
        .collect();
    append_all(&mut w, recs)
}

pub fn glint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint"))
        .args(args)
        .output()
        .unwrap()
}

pub fn decode(args: &[&str]) -> Output {
    let mut all = vec!["decode"];
    all.extend_from_slice(args);
    glint(&all)
}

/// Runs decode, insists on exit 0 and a quiet stderr, returns stdout as text.
pub fn decode_ok(args: &[&str]) -> String {
    let out = decode(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "glint decode {args:?} failed: {stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    String::from_utf8(out.stdout).expect("output is UTF-8")
}

pub fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = s
        .bytes()
        .filter(|&b| b != b'=')
        .map(|b| A.iter().position(|&a| a == b).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for c in vals.chunks(4) {
        let v = c
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | x << (18 - 6 * i));
        out.extend_from_slice(&v.to_be_bytes()[1..c.len()]);
    }
    out
}

/// The exact bytes of a string key in a JSON object (following the `_b64` rule).
pub fn exact(obj: &serde_json::Value, key: &str) -> Vec<u8> {
    match obj.get(format!("{key}_b64")) {
        Some(b) => b64_decode(b.as_str().unwrap()),
        None => obj[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {obj}"))
            .as_bytes()
            .to_vec(),
    }
}

/// Splits a target as the decoder promises: path and query at the first `?`, no scheme/authority.
pub fn split(target: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (p, q) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let p = if let Some(rest) = p.strip_prefix(b"http://") {
        rest.iter()
            .position(|&b| b == b'/')
            .map_or(b"/".to_vec(), |i| rest[i..].to_vec())
    } else {
        p.to_vec()
    };
    (p, q.to_vec())
}

/// Checks one decoded JSON object against what was written, field by field, every field whole.
pub fn check_json(obj: &serde_json::Value, sent: &Sent) {
    use glint::record::ip_from_v6;
    assert_eq!(obj["ts_ns"].as_u64(), Some(sent.ts_ns));
    let ts = obj["ts"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.starts_with("2025-11-2") && ts.ends_with('Z'), "{ts}");
    assert_eq!(
        &ts[20..26],
        format!("{:06}", sent.ts_ns % 1_000_000_000 / 1000)
    );
    assert_eq!(obj["core"].as_u64(), Some(u64::from(sent.core)));
    assert_eq!(obj["seq"].as_u64(), Some(sent.seq));
    assert_eq!(
        obj["ip"].as_str().unwrap(),
        ip_from_v6(sent.client_ip).to_string()
    );
    assert_eq!(
        obj["peer"].as_str().unwrap(),
        ip_from_v6(sent.peer_ip).to_string()
    );
    assert_eq!(obj["ip_source"].as_str().unwrap(), sent.ip_source.as_str());
    assert_eq!(obj["port"].as_u64(), Some(u64::from(sent.peer_port)));
    assert_eq!(obj["method"].as_str().unwrap(), sent.method.as_str());
    assert_eq!(
        obj["http_version"].as_str().unwrap(),
        ["1.0", "1.1"][usize::from(sent.http_minor)]
    );
    assert_eq!(obj["status"].as_u64(), Some(u64::from(sent.status)));
    for (key, bit) in [
        ("dnt", flags::DNT),
        ("gpc", flags::GPC),
        ("keep_alive", flags::KEEP_ALIVE),
        ("pipelined", flags::PIPELINED),
    ] {
        assert_eq!(obj[key].as_bool(), Some(sent.flags & bit != 0), "{key}");
    }
    // Every field is stored whole: nothing is ever truncated.
    assert_eq!(obj["truncated"], serde_json::json!([]), "{obj}");
    let check_field = |name: &str, got: &[u8], want: &[u8]| {
        assert_eq!(got, want, "{name} of seq {} core {}", sent.seq, sent.core);
    };
    // path and query come from the target: rebuild the stored target to check them.
    let (path, query) = (exact(obj, "path"), exact(obj, "query"));
    assert_eq!((path, query), split(&sent.target));
    check_field("ua", &exact(obj, "ua"), &sent.ua);
    check_field("referer", &exact(obj, "referer"), &sent.referer);
    if sent.cookie.is_empty() {
        assert!(
            obj.get("cookie").is_none(),
            "no cookie key without a cookie: {obj}"
        );
    } else {
        check_field("cookie", &exact(obj, "cookie"), &sent.cookie);
    }
    if sent.body.is_empty() {
        assert!(obj.get("body").is_none() && obj.get("body_kind").is_none());
    } else {
        check_field("body", &exact(obj, "body"), &sent.body);
        assert_eq!(obj["body_kind"].as_str().unwrap(), sent.body_kind.as_str());
    }
}

/// Minimal RFC 4180 reader for checking CSV output: quoted fields, doubled quotes, CRLF rows.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR only before LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "last row ends with CRLF"
    );
    rows
}

/// (label, UA) pairs of the real User-Agent fixture `tests/fixtures/user-agents.tsv`
/// (`LABEL<TAB>UA` lines, `#` comments); `src/agent/tests.rs` reads the same file.
pub fn real_uas() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/user-agents.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (label, ua) = l.split_once('\t').expect("LABEL<TAB>UA");
            (label.to_string(), ua.to_string())
        })
        .collect()
}
