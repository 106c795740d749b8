//! Shared helpers of the compactor's integration tests: rings, beacons, segment reading.

use glint::compact::segment::{list_segments, SegmentReader};
use glint::record::{BodyKind, IpSource, Method, RecordFields};
use glint::ring::{ring_file_name, RingOptions, RingWriter};
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::{Command, Output};

pub const BASE_TS: u64 = 1_764_000_000_000_000_000;

/// Opens (or creates) core `core`'s ring in `dir` as `glint serve` does: under the data dir's
/// instance identity.
pub fn open_ring(dir: &Path, core: u32, capacity: u64) -> RingWriter {
    let path = dir.join(ring_file_name(core as usize));
    let identity = glint::instance::open_or_create(dir, None).unwrap();
    let opts = RingOptions {
        slot_size: 512,
        capacity,
        core,
        identity: Some(identity),
    };
    RingWriter::open(&path, opts).unwrap().0
}

const UAS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];

/// Appends one browser-like beacon; `n` varies the target, UA and referer.
pub fn append_beacon(w: &mut RingWriter, core: u16, ts_ns: u64, n: u64) -> u64 {
    try_append_beacon(w, core, ts_ns, n).expect("ring has room")
}

/// [`append_beacon`] that hands back a full ring instead of panicking.
pub fn try_append_beacon(
    w: &mut RingWriter,
    core: u16,
    ts_ns: u64,
    n: u64,
) -> Result<u64, glint::ring::AppendError> {
    let target = format!(
        "/p.gif?e=pageview&sid={:016x}&url=https%3A%2F%2Fshop.example.com%2Fcat%2F{}%3Fref%3Dnav&w=1920&h=1080&t={}",
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        n % 97,
        ts_ns / 1_000_000
    );
    let referer = format!("https://shop.example.com/cat/{}?page={}", n % 89, n % 7);
    let fields = RecordFields {
        ts_ns,
        core,
        status: 200,
        method: Method::Get,
        http_minor: 1,
        flags: 1,
        peer_ip: super::test_net_peer(n),
        peer_port: 40_000 + (n % 20_000) as u16,
        client_ip: Ipv6Addr::LOCALHOST,
        ip_source: IpSource::Peer,
        body_kind: BodyKind::None,
        target: target.as_bytes(),
        user_agent: UAS[(n % 3) as usize].as_bytes(),
        referer: referer.as_bytes(),
        cookie: b"",
        body: b"",
    };
    w.append(&fields).map(|a| a.seq)
}

pub fn compact(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint"))
        .arg("compact")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// One stored record: (segment index, core, seq, ts).
pub type Stored = (usize, u16, u64, u64);

/// Every record of every segment, in list order then stored order; checks each segment's
/// record count and min/max timestamps against its records.
pub fn read_segments(dir: &Path) -> Vec<Stored> {
    let mut out = Vec::new();
    for (i, path) in list_segments(dir).unwrap().iter().enumerate() {
        let mut r = SegmentReader::open(path).unwrap();
        let (count, min, max) = (r.record_count(), r.min_ts_ns(), r.max_ts_ns());
        let (mut n, mut lo, mut hi) = (0, u64::MAX, 0);
        while let Some(v) = r.next_record().unwrap() {
            out.push((i, v.core(), v.seq(), v.ts_ns()));
            n += 1;
            lo = lo.min(v.ts_ns());
            hi = hi.max(v.ts_ns());
        }
        assert_eq!((n, lo, hi), (count, min, max), "{}", path.display());
    }
    out
}

/// Asserts every core's seqs `0..ends[core]` are stored exactly once, in increasing order.
pub fn assert_exactly_once(stored: &[Stored], ends: &[u64]) {
    for (core, &end) in ends.iter().enumerate() {
        let seqs: Vec<u64> = stored
            .iter()
            .filter(|s| s.1 as usize == core)
            .map(|s| s.2)
            .collect();
        let want: Vec<u64> = (0..end).collect();
        if seqs != want {
            let dup = seqs.windows(2).find(|w| w[0] >= w[1]);
            let missing = want.iter().find(|s| !seqs.contains(s));
            panic!(
                "core {core}: {} stored, {end} expected; first out of order/duplicate {dup:?}, first missing {missing:?}",
                seqs.len()
            );
        }
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
