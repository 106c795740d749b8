//! Power-loss simulation at the ring level, through the public ring API only.
//!
//! Many seeded histories append records and sync them (`sync_records` or `fdatasync`); each
//! sync point snapshots what is durable. At a random crash point, crash images are built from
//! the durable bytes plus, for every 4 KiB page changed since, a random choice: the new page,
//! the old page, or a tear (new bytes for a prefix of 512-byte sectors, old for the rest). Each
//! image is recovered with `RingWriter::open` and read with `RingReader`: no torn record may
//! validate, nothing synced may be lost, and the writer must resume right after the valid run.
//! A lineage continues from one of its recovered images, so recovery is also tested on rings
//! that were themselves recovered, across laps of the ring. Half the records take several
//! slots (up to the ring's largest record), so tears also fall between the pages of one record
//! and records that would pass the ring's end skip to its start.
//!
//! Restart cost: every recovery must read at most its pending records plus one slot, and no
//! record a power loss left past the recovered head (an earlier writer epoch) may validate
//! afterwards, although its commit word and CRC are intact: the writer epoch is what makes
//! stopping the scan there safe.

mod common;

use common::tempdir;

use glint::record::{BodyKind, IpSource, Method, RecordFields, HEADER_LEN};
use glint::ring::{RingOptions, RingReader, RingWriter, SlotState};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

const PAGE: usize = 4096;
const SECTOR: usize = 512;
const LINEAGES: u64 = 24;
const HISTORIES_PER_LINEAGE: usize = 6;
const IMAGES_PER_CRASH: usize = 4;

/// xorshift64*: deterministic, no crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What was written with one seq: enough to tell it from any other record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    ts_ns: u64,
    target: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Default, Debug)]
struct Figures {
    histories: u64,
    crash_images: u64,
    records_appended: u64,
    records_checked: u64,
    synced_records_checked: u64,
    torn_pages: u64,
    /// Slots whose commit word claimed a seq but whose bytes failed validation.
    torn_records_rejected: u64,
    torn_slots_zeroed: u64,
    /// Records that skipped the slots left at the ring's end and started at its start.
    skips: u64,
    unsynced_lost: u64,
    /// Most slots any recovery read (bounded by its pending records + 1).
    max_scanned: u64,
    /// Intact records of an earlier run found past a recovered head, none of which validated.
    stale_beyond_head: u64,
}

/// One lineage's view of the truth, carried across crashes.
struct Model {
    path: PathBuf,
    opts: RingOptions,
    /// The record each seq was last written with (a seq lost in a crash is written again).
    written: HashMap<u64, Written>,
}

fn open_writer(model: &Model) -> (RingWriter, glint::ring::Recovery) {
    RingWriter::open(&model.path, model.opts).unwrap_or_else(|e| panic!("recovery failed: {e}"))
}

/// Bytes of the file as the page cache has them (the mmap writes included).
fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn append_one(
    w: &mut RingWriter,
    model: &mut Model,
    rng: &mut Rng,
    tag: (u64, usize),
) -> Option<u64> {
    let seq = w.next_seq();
    let target = format!("/b?lineage={}&history={}&seq={seq}", tag.0, tag.1).into_bytes();
    let slot = model.opts.slot_size;
    // Half one slot, half up to the most slots one record may take in this ring.
    let slots = if rng.chance(50) {
        1
    } else {
        w.max_span() as usize
    };
    let room = slots * slot - HEADER_LEN - target.len() - 16;
    let body: Vec<u8> = (0..rng.below(room as u64 + 1))
        .map(|_| rng.next() as u8)
        .collect();
    let written = Written {
        ts_ns: rng.next(),
        target,
        body,
    };
    let fields = RecordFields {
        ts_ns: written.ts_ns,
        core: 0,
        status: 204,
        method: Method::Post,
        http_minor: 1,
        flags: 0,
        peer_ip: Ipv6Addr::LOCALHOST,
        peer_port: 1,
        client_ip: Ipv6Addr::LOCALHOST,
        ip_source: IpSource::Peer,
        body_kind: BodyKind::Other,
        target: &written.target,
        user_agent: b"",
        referer: b"",
        cookie: b"",
        body: &written.body,
    };
    let appended = w.append(&fields).ok()?;
    let cap = model.opts.capacity;
    // At `seq`, or at the ring's start when the record would have passed its end.
    assert!(
        appended.seq == seq || (appended.seq % cap == 0 && appended.seq - seq < cap),
        "appended at {} for next seq {seq}",
        appended.seq
    );
    assert_eq!(w.next_seq(), seq + appended.slots);
    model.written.insert(appended.seq, written);
    Some(appended.seq)
}

/// Page-granular: copies `from`'s pages holding slots of `seqs` into `durable`.
fn mark_synced(durable: &mut [u8], now: &[u8], w: &RingWriter, seqs: std::ops::Range<u64>) {
    let slot = w.header().slot_size as usize;
    for seq in seqs {
        let off = w.header().slot_offset(seq);
        let first = off / PAGE * PAGE;
        let end = ((off + slot).div_ceil(PAGE) * PAGE).min(now.len());
        durable[first..end].copy_from_slice(&now[first..end]);
    }
}

/// Durable bytes plus, per page changed since, new / old / torn at a sector boundary.
fn crash_image(durable: &[u8], now: &[u8], rng: &mut Rng, figures: &mut Figures) -> Vec<u8> {
    let mut image = durable.to_vec();
    for start in (0..now.len()).step_by(PAGE) {
        // The file's last page may be short (a small ring).
        let end = (start + PAGE).min(now.len());
        let (old, new) = (&durable[start..end], &now[start..end]);
        if old == new {
            continue;
        }
        match rng.below(3) {
            0 => image[start..end].copy_from_slice(new),
            1 => {}
            _ => {
                let sectors = 1 + rng.below(((end - start) / SECTOR).max(2) as u64 - 1) as usize;
                let cut = (start + sectors * SECTOR).min(end);
                image[start..cut].copy_from_slice(&now[start..cut]);
                figures.torn_pages += 1;
            }
        }
    }
    image
}

/// Recovers `image` and checks every invariant; returns the seq the writer resumed at.
fn check_image(
    model: &mut Model,
    image: &[u8],
    synced_upto: u64,
    written_upto: u64,
    figures: &mut Figures,
) -> u64 {
    std::fs::write(&model.path, image).unwrap();
    // Before recovery: whatever validates is exactly what was written with that seq.
    check_valid_records(model, figures);
    let (mut w, recovery) = open_writer(model);
    let mut reader = RingReader::open(&model.path).unwrap();
    let cursor = reader.cursor();
    let range = reader.valid_range();
    // Restart cost: recovery looked at the pending records and one slot more, never the ring.
    assert!(
        recovery.scanned <= recovery.pending + 1,
        "recovery read {} slots for {} pending records",
        recovery.scanned,
        recovery.pending
    );
    figures.max_scanned = figures.max_scanned.max(recovery.scanned);
    // After recovery nothing past the head is current any more: a record a power loss left
    // beyond it (pages persist out of order) must not validate, even though its bytes are
    // intact and were once written with that seq.
    let survivors = Model {
        path: model.path.clone(),
        opts: model.opts,
        written: model
            .written
            .iter()
            .filter(|(&seq, _)| seq < recovery.next_seq)
            .map(|(&seq, w)| (seq, w.clone()))
            .collect(),
    };
    figures.stale_beyond_head += stale_beyond_head(model, recovery.next_seq);
    check_valid_records(&survivors, figures);
    assert_eq!(
        recovery.next_seq, range.end,
        "resumes right after the valid run"
    );
    assert!(
        range.end >= synced_upto,
        "synced records lost: valid run ends at {} but {synced_upto} were synced (cursor {cursor})",
        range.end
    );
    assert!(
        range.end <= written_upto,
        "resumed past what was ever written"
    );
    // Every synced record reads back whole, record after record.
    let mut seq = cursor.max(range.start);
    while seq < synced_upto {
        let r = reader
            .read(seq)
            .unwrap_or_else(|s| panic!("synced seq {seq} not readable: {s:?}"));
        assert!(r.seqs().start <= seq && r.seqs().end > seq);
        seq = r.seqs().end;
        figures.synced_records_checked += 1;
    }
    figures.torn_slots_zeroed += recovery.torn;
    figures.unsynced_lost += written_upto - range.end;
    // The next append gets the resumed seq and reads back (unless the ring is full).
    assert_eq!(w.next_seq(), range.end);
    // A probe only: the next image is written over it, so the model keeps its old entries.
    let before = model.written.clone();
    if let Some(seq) = append_one(&mut w, model, &mut Rng::new(range.end), (u64::MAX, 0)) {
        let r = reader.read(range.end);
        assert!(
            r.is_ok_and(|r| r.seq() == seq),
            "the first record after recovery reads back"
        );
    } else {
        assert!(
            range.end - cursor > 0,
            "an empty ring has room for any record"
        );
    }
    model.written = before;
    range.end
}

/// Slots past `head` that hold an intact record of an earlier run for their seq: what a scan
/// that trusted commit words and CRCs alone would have read as current after the restart.
fn stale_beyond_head(model: &Model, head: u64) -> u64 {
    let bytes = file_bytes(&model.path);
    let slot = model.opts.slot_size;
    let cap = model.opts.capacity;
    (head + 1..head + cap)
        .filter(|&seq| {
            let off = PAGE + (seq % cap) as usize * slot;
            let commit = u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap());
            commit == seq + 1 && model.written.contains_key(&seq)
        })
        .count() as u64
}

/// Every record that validates equals the one written with its seq: no torn record passes.
fn check_valid_records(model: &Model, figures: &mut Figures) {
    let mut reader = RingReader::open(&model.path).unwrap();
    let cap = reader.header().capacity;
    let cursor = reader.cursor();
    // Every slot, for every seq it could hold within a lap of the cursor either side.
    for seq in cursor.saturating_sub(cap)..cursor + 2 * cap {
        // A record starting exactly at this seq (continuation slots read as uncommitted).
        let state = reader.state(seq);
        // A commit word for this seq over bytes that fail the CRC: a torn record.
        figures.torn_records_rejected += u64::from(state == SlotState::Corrupt);
        if state != SlotState::Valid {
            continue;
        }
        let r = reader.read(seq).expect("validated a moment ago");
        assert_eq!(r.seq(), seq);
        let got = Written {
            ts_ns: r.ts_ns(),
            target: r.target().to_vec(),
            body: r.body().to_vec(),
        };
        let want = model.written.get(&seq);
        assert_eq!(
            Some(&got),
            want,
            "seq {seq} validated with bytes never written for it"
        );
        figures.records_checked += 1;
    }
}

/// One history: open (recover), then appends, syncs and cursor moves until a crash.
fn history(model: &mut Model, rng: &mut Rng, tag: (u64, usize), figures: &mut Figures) {
    let (mut w, recovery) = open_writer(model);
    // What was past the head is gone for good: the seqs are written again from there.
    model.written.retain(|&seq, _| seq < recovery.next_seq);
    // Recovery's own writes are made durable first, so the snapshot is truthful.
    w.sync_handle().unwrap().sync_data().unwrap();
    let mut durable = file_bytes(&model.path);
    let consumer = RingReader::open_consumer(&model.path).unwrap();
    let mut synced_upto = w.next_seq();
    // Record boundaries: the compactor only ever moves the cursor to one.
    let mut bounds = vec![w.next_seq()];
    let steps = 1 + rng.below(40);
    for _ in 0..steps {
        match rng.below(10) {
            0..=5 => {
                for _ in 0..1 + rng.below(6) {
                    let head = w.next_seq();
                    if let Some(seq) = append_one(&mut w, model, rng, tag) {
                        figures.records_appended += 1;
                        bounds.push(w.next_seq());
                        if seq > head {
                            // The writer synced the skipped slots' cleared commit words before
                            // the record that skipped them.
                            let now = file_bytes(&model.path);
                            mark_synced(&mut durable, &now, &w, head..seq);
                            figures.skips += 1;
                        }
                    }
                }
            }
            6..=7 => {
                let now_seq = w.next_seq();
                if rng.chance(50) {
                    w.sync_records(synced_upto, now_seq).unwrap();
                    let now = file_bytes(&model.path);
                    mark_synced(&mut durable, &now, &w, synced_upto..now_seq);
                } else {
                    w.sync_handle().unwrap().sync_data().unwrap();
                    durable = file_bytes(&model.path);
                }
                synced_upto = now_seq;
            }
            _ => {
                // The consumer passes whole synced records only; advancing flushes the header.
                let cursor = consumer.cursor();
                let reachable: Vec<u64> = bounds
                    .iter()
                    .copied()
                    .filter(|b| (cursor..=synced_upto).contains(b))
                    .collect();
                let to = reachable[rng.below(reachable.len() as u64) as usize];
                consumer.advance_cursor(to).unwrap();
                let now = file_bytes(&model.path);
                durable[..PAGE].copy_from_slice(&now[..PAGE]);
            }
        }
    }
    let now = file_bytes(&model.path);
    let written_upto = w.next_seq();
    drop(consumer);
    drop(w);
    figures.histories += 1;
    let mut keep = None;
    for _ in 0..IMAGES_PER_CRASH {
        let image = crash_image(&durable, &now, rng, figures);
        check_image(model, &image, synced_upto, written_upto, figures);
        figures.crash_images += 1;
        keep.get_or_insert(image);
    }
    // The lineage goes on from its first crash image (recovered again on the next open).
    std::fs::write(&model.path, keep.unwrap()).unwrap();
}

#[test]
fn power_loss_never_loses_synced_records_and_never_validates_torn_ones() {
    let tmp = tempdir("powerloss");
    let dir = tmp.path();
    let mut figures = Figures::default();
    for lineage in 0..LINEAGES {
        let mut rng = Rng::new(0xC0FF_EE00 + lineage);
        let slot_size = [256, 1024, 2048, 4096][rng.below(4) as usize];
        let capacity = [8, 16, 64][rng.below(3) as usize];
        let mut model = Model {
            path: dir.join(format!("ring-{lineage:03}.glr")),
            opts: RingOptions {
                slot_size,
                capacity,
                core: 0,
                identity: None,
            },
            written: HashMap::new(),
        };
        for h in 0..HISTORIES_PER_LINEAGE {
            history(&mut model, &mut rng, (lineage, h), &mut figures);
        }
    }
    println!("power-loss: {figures:?}");
    assert_eq!(
        figures.histories,
        LINEAGES * HISTORIES_PER_LINEAGE as u64,
        "every history ran"
    );
    assert!(
        figures.torn_pages > 100,
        "tears were exercised: {figures:?}"
    );
    assert!(figures.unsynced_lost > 0 && figures.synced_records_checked > 1000);
    assert!(
        figures.skips > 50,
        "records skipping to the ring's start were exercised"
    );
    assert!(
        figures.stale_beyond_head > 0,
        "stale records past a recovered head were exercised: {figures:?}"
    );
}

/// The simulation itself can fail: a record whose slot is torn after its commit word is
/// rejected by the reader, and an image that drops a synced page is caught as a loss.
#[test]
fn simulation_detects_a_dropped_synced_page() {
    let tmp = tempdir("powerloss-neg");
    let dir = tmp.path();
    let mut model = Model {
        path: dir.join("ring-000.glr"),
        opts: RingOptions {
            slot_size: 4096,
            capacity: 8,
            core: 0,
            identity: None,
        },
        written: HashMap::new(),
    };
    let mut rng = Rng::new(7);
    let (mut w, _) = open_writer(&model);
    w.sync_handle().unwrap().sync_data().unwrap();
    let empty = file_bytes(&model.path);
    for _ in 0..3 {
        append_one(&mut w, &mut model, &mut rng, (0, 0)).unwrap();
    }
    w.sync_records(0, 3).unwrap();
    let now = file_bytes(&model.path);
    drop(w);
    // A tear inside slot 1 (one page, 4096-byte slots): commit word new, tail old.
    let mut torn = now.clone();
    let slot1 = PAGE + 4096;
    torn[slot1 + SECTOR..slot1 + PAGE].copy_from_slice(&empty[slot1 + SECTOR..slot1 + PAGE]);
    std::fs::write(&model.path, &torn).unwrap();
    let mut reader = RingReader::open(&model.path).unwrap();
    assert!(reader.read(0).is_ok());
    assert!(reader.read(1).is_err(), "a torn slot fails its CRC");
    drop(reader);
    let mut figures = Figures::default();
    let lost = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_image(&mut model, &torn, 3, 3, &mut figures)
    }));
    assert!(lost.is_err(), "losing a synced record is reported");
}
