//! Compactor throughput: records/s merged from 2 to 16 rings into a segment (one full cycle:
//! read, merge, encode blocks, fdatasync, cursor stores, seal), and the size ratio ring bytes :
//! segment bytes on realistic beacons, without compression and with zstd at several levels.
//!
//! `cargo bench --bench compact` (the ratios print first, then criterion's figures).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use glint::compact::segment::{list_segments, Codec, DEFAULT_ZSTD_LEVEL};
use glint::compact::{CompactOptions, Compactor, CycleReport};
use glint::record::{BodyKind, IpSource, Method, RecordFields};
use glint::ring::{ring_file_name, RingOptions, RingWriter};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOTAL_RECORDS: u64 = 65_536;
const SLOT_SIZE: usize = 512;
const RUNS: u64 = 20;

const UAS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
];
const PAGES: [&str; 8] = [
    "/",
    "/cart",
    "/checkout/shipping",
    "/c/shoes/running",
    "/p/trail-runner-3-gtx",
    "/search?q=rain+jacket",
    "/account/orders",
    "/blog/how-to-choose-running-shoes",
];
const EVENTS: [&str; 4] = ["page_view", "scroll", "add_to_cart", "view_item"];

/// Deterministic pseudo-random beacons, browser-like: GA4-style query strings, real UAs, referers.
struct Beacons(u64);

impl Beacons {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn append(&mut self, w: &mut RingWriter, core: u16, ts_ns: u64) {
        let (r1, r2, r3) = (self.next(), self.next(), self.next());
        let page = PAGES[(r1 % 8) as usize];
        let target = format!(
            "/g/collect?v=2&tid=G-7XK2M9QW1B&cid={}.{}&sid={}&en={}&dl=https%3A%2F%2Fshop.example.com{}&sr={}&ul=en-us&_s={}",
            r2 % 2_000_000_000,
            1_764_000_000 + r3 % 400_000,
            1_764_300_000 + r1 % 90_000,
            EVENTS[(r2 % 4) as usize],
            page.replace('/', "%2F").replace('?', "%3F").replace('=', "%3D"),
            ["1920x1080", "390x844", "1440x900", "412x915"][(r3 % 4) as usize],
            r1 % 40,
        );
        let referer = format!("https://shop.example.com{}", PAGES[(r3 % 8) as usize]);
        let ip = Ipv6Addr::from([
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0xff,
            0xff,
            203,
            0,
            113,
            (r2 % 250) as u8,
        ]);
        let rec = RecordFields {
            ts_ns,
            core,
            status: 200,
            method: Method::Get,
            http_minor: 1,
            flags: 1,
            peer_ip: ip,
            peer_port: 1024 + (r3 % 60_000) as u16,
            client_ip: ip,
            ip_source: IpSource::Peer,
            body_kind: BodyKind::None,
            target: target.as_bytes(),
            user_agent: UAS[(r1 % 6) as usize].as_bytes(),
            referer: referer.as_bytes(),
            cookie: b"",
            body: b"",
        };
        w.append(&rec).expect("bench ring sized for its records");
    }
}

/// A data dir with `rings` rings holding `TOTAL_RECORDS` beacons between them, interleaved in time.
fn data_dir(rings: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "glint-bench-compact-{}-{rings}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let per = TOTAL_RECORDS / rings;
    let mut gen = Beacons(rings);
    for core in 0..rings {
        let opts = RingOptions {
            slot_size: SLOT_SIZE,
            capacity: per.next_power_of_two(),
            core: core as u32,
            identity: None,
        };
        let (mut w, _) = RingWriter::open(&dir.join(ring_file_name(core as usize)), opts).unwrap();
        for i in 0..per {
            gen.append(
                &mut w,
                core as u16,
                1_764_400_000_000_000_000 + i * 10_000 + core * 37,
            );
        }
    }
    dir
}

/// Puts every cursor back to 0 and removes the segments, so the same records compact again.
fn reset(dir: &Path, rings: u64) {
    let _ = std::fs::remove_dir_all(dir.join("segments"));
    for core in 0..rings as usize {
        let path = dir.join(ring_file_name(core));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &0u64.to_le_bytes(), 64).unwrap();
    }
}

fn compact_once(dir: &Path, codec: Codec, zstd_level: i32) -> CycleReport {
    let opts = CompactOptions {
        data_dir: dir.to_path_buf(),
        span_ns: u64::MAX,
        max_bytes: u64::MAX,
        codec,
        zstd_level,
        retain_ns: None,
        retain_bytes: None,
        instance_name: None,
    };
    let mut c = Compactor::open(opts).unwrap();
    let mut report = c.cycle().unwrap();
    c.commit_and_seal(&mut report).unwrap();
    assert_eq!(report.moved, TOTAL_RECORDS);
    report
}

/// No compression, then zstd at the default level and at faster ones.
const CODECS: [(Codec, i32); 5] = [
    (Codec::None, DEFAULT_ZSTD_LEVEL),
    (Codec::Zstd, DEFAULT_ZSTD_LEVEL),
    (Codec::Zstd, -1),
    (Codec::Zstd, -3),
    (Codec::Zstd, -7),
];

/// Size ratios, and records per second of this thread's CPU time (the compactor runs in it;
/// robust on a machine shared with other work). The codecs take turns, cycle by cycle, so
/// all see the same machine.
fn print_size_ratios_and_cpu_rate() {
    for rings in [2u64, 16] {
        let dir = data_dir(rings);
        let mut cpu = [Duration::ZERO; CODECS.len()];
        let mut seg = [0u64; CODECS.len()];
        let mut ring_bytes = 0;
        for _ in 0..RUNS {
            for (k, &(codec, level)) in CODECS.iter().enumerate() {
                reset(&dir, rings);
                let before = glint::sys::thread_cpu_time();
                ring_bytes = compact_once(&dir, codec, level).ring_bytes;
                cpu[k] += glint::sys::thread_cpu_time() - before;
                seg[k] = list_segments(&dir)
                    .unwrap()
                    .iter()
                    .map(|p| std::fs::metadata(p).unwrap().len())
                    .sum();
            }
        }
        for (k, (codec, level)) in CODECS.iter().enumerate() {
            let codec = match codec {
                Codec::None => "none".to_string(),
                Codec::Zstd => format!("zstd {level}"),
            };
            println!(
                "{rings} rings, {codec}: {TOTAL_RECORDS} beacons, ring bytes {ring_bytes} ({SLOT_SIZE}-byte slots) : segment bytes {} = {:.2} : 1 ({:.0} bytes/record); {:.0} records/s of CPU time (mean of {RUNS} cycles)",
                seg[k],
                ring_bytes as f64 / seg[k] as f64,
                seg[k] as f64 / TOTAL_RECORDS as f64,
                (RUNS * TOTAL_RECORDS) as f64 / cpu[k].as_secs_f64().max(1e-3),
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn merge_throughput(c: &mut Criterion) {
    print_size_ratios_and_cpu_rate();
    let mut group = c.benchmark_group("compact_cycle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(TOTAL_RECORDS));
    for rings in [2u64, 4, 8, 16] {
        let dir = data_dir(rings);
        for codec in [Codec::None, Codec::Zstd] {
            let id = format!("{rings}_rings_{codec:?}").to_lowercase();
            group.bench_function(id, |b| {
                b.iter_batched(
                    || reset(&dir, rings),
                    |()| compact_once(&dir, codec, DEFAULT_ZSTD_LEVEL),
                    BatchSize::PerIteration,
                )
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

criterion_group!(benches, merge_throughput);
criterion_main!(benches);
