//! Decoding throughput: a ring of beacons (mostly browsers, some mail proxies and bots) to JSON
//! Lines / CSV into a sink, and to a Parquet file, one core; the same fields with and without the
//! `agent` label side by side; and `--stats` (with and without `--by e`), the counting behind
//! `glint report`.
//!
//! `cargo bench --bench decode`; the figure to read is `elem/s` (records per second), and the
//! records per CPU-second printed after the criterion groups.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glint::decode::{run_to, DecodeArgs, Format};
use glint::record::{BodyKind, IpSource, Method, RecordFields};
use glint::ring::{RingOptions, RingWriter};
use std::net::Ipv6Addr;
use std::path::PathBuf;

const RECORDS: u64 = 1 << 17;

/// The User-Agents of the beacons, in turn: browsers, mail proxies, crawlers, a library.
const USER_AGENTS: [&str; 12] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.32.3",
];

/// The default fields without `agent` (classification off) and with it, both as `--fields`.
const WITHOUT_AGENT: &str = "ts,ts_ns,instance,instance_id,core,seq,ip,ip_source,peer,port,method,\
http_version,status,path,query,ua,referer,cookie,body,body_kind,truncated,orig_len,dnt,gpc,\
keep_alive,pipelined,chunked";
const WITH_AGENT: &str = "ts,ts_ns,instance,instance_id,core,seq,ip,ip_source,peer,port,method,\
http_version,status,path,query,ua,agent,referer,cookie,body,body_kind,truncated,orig_len,dnt,gpc,\
keep_alive,pipelined,chunked";

/// `--stats` (the summary `glint report` draws too) in place of `--fields`, and with `--by e`.
const STATS: &str = "--stats";
const STATS_BY_E: &str = "--stats --by e";

fn ring_of_beacons() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glint-bench-decode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring-000.glr");
    let opts = RingOptions {
        slot_size: 512,
        capacity: RECORDS,
        core: 0,
        identity: None,
    };
    let (mut w, _) = RingWriter::open(&path, opts).unwrap();
    for n in 0..RECORDS {
        let target = format!(
            "/p.gif?e=pageview&sid={:016x}&url=https%3A%2F%2Fshop.example.com%2Fcat%2F{}&w=1920&h=1080",
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            n % 97
        );
        let referer = format!("https://shop.example.com/cat/{}?page={}", n % 89, n % 7);
        let ip = Ipv6Addr::from([
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, n as u8,
        ]);
        let rec = RecordFields {
            ts_ns: 1_764_000_000_000_000_000 + n * 7_919_000,
            core: 0,
            status: 200,
            method: Method::Get,
            http_minor: 1,
            flags: 1,
            peer_ip: ip,
            peer_port: 40_000 + (n % 20_000) as u16,
            client_ip: ip,
            ip_source: IpSource::Peer,
            body_kind: BodyKind::None,
            target: target.as_bytes(),
            user_agent: USER_AGENTS[(n % USER_AGENTS.len() as u64) as usize].as_bytes(),
            referer: referer.as_bytes(),
            cookie: b"",
            body: b"",
        };
        w.append(&rec).unwrap();
    }
    path
}

fn args(path: &std::path::Path, format: Format, fields: Option<&str>) -> DecodeArgs {
    DecodeArgs {
        paths: vec![path.to_path_buf()],
        format,
        output: (format == Format::Parquet).then(|| path.with_extension("parquet")),
        from: None,
        to: None,
        fields: fields
            .filter(|f| !f.starts_with("--stats"))
            .map(str::to_string),
        conditions: Vec::new(),
        expand_query: false,
        follow: false,
        verify: false,
        skip_bad: false,
        stats: fields.is_some_and(|f| f.starts_with("--stats")),
        by: fields
            .and_then(|f| f.strip_prefix("--stats --by "))
            .map(str::to_string)
            .into_iter()
            .collect(),
        top: glint::decode::stats::DEFAULT_TOP,
        agents: None,
    }
}

fn decode(c: &mut Criterion) {
    let path = ring_of_beacons();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    let cases = [
        ("jsonl", Format::Jsonl, None),
        (
            "jsonl_fields_without_agent",
            Format::Jsonl,
            Some(WITHOUT_AGENT),
        ),
        ("jsonl_fields_with_agent", Format::Jsonl, Some(WITH_AGENT)),
        ("csv", Format::Csv, None),
        ("parquet", Format::Parquet, None),
        ("stats", Format::Jsonl, Some(STATS)),
        ("stats_by_e", Format::Jsonl, Some(STATS_BY_E)),
    ];
    for (name, format, fields) in cases {
        let a = args(&path, format, fields);
        group.bench_function(name, |b| {
            b.iter(|| run_to(&a, &mut std::io::sink()).unwrap())
        });
    }
    group.finish();
    // Classification alone, every UA matched against the patterns (no cache): the cost for
    // traffic whose User-Agents never repeat.
    let classifier = glint::agent::Classifier::builtin();
    let ip = Ipv6Addr::from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7]);
    let mut group = c.benchmark_group("agent");
    group.throughput(Throughput::Elements(USER_AGENTS.len() as u64));
    group.bench_function("label_uncached", |b| {
        b.iter(|| {
            for ua in USER_AGENTS {
                std::hint::black_box(classifier.label(ua.as_bytes(), ip));
            }
        })
    });
    group.finish();
    for (name, format, fields) in cases {
        cpu_time_figure(&args(&path, format, fields), name);
    }
    // GLINT_DECODE_BENCH_KEEP=1 keeps the ring to time `glint decode RING > /dev/null` on it.
    if std::env::var_os("GLINT_DECODE_BENCH_KEEP").is_some() {
        println!("ring kept: {}", path.display());
    } else {
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}

/// User+system CPU seconds of this thread so far, from /proc (clock ticks of 10 ms).
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Records per CPU-second: on a shared machine the wall-clock figure above counts time the
/// thread spent waiting for a core; this one does not.
fn cpu_time_figure(a: &DecodeArgs, name: &str) {
    let rounds = 20;
    let start = thread_cpu_seconds();
    for _ in 0..rounds {
        run_to(a, &mut std::io::sink()).unwrap();
    }
    let cpu = thread_cpu_seconds() - start;
    let records = (RECORDS * rounds) as f64;
    println!(
        "decode/{name}: {records} records in {cpu:.2} CPU s = {:.0} records per CPU-second",
        records / cpu
    );
}

criterion_group!(benches, decode);
criterion_main!(benches);
