//! The per-core ingest sink: where the HTTP layer puts a request's record, between the protocol
//! ([`crate::http`]) and the storage ([`crate::ring`]).
//!
//! A [`Sink`] owns one core's record store, its counters ([`SinkStats`]), its core id and its
//! durability policy. The HTTP layer calls [`Sink::append`] once per beacon and [`Sink::commit`]
//! once per batch of answers, before any of them is written: with `--sync always` the commit
//! makes the batch's records durable, and a failed commit withholds the batch's answers.
//!
//! [`RingSink`] is the server's (a ring file); [`MemorySink`] keeps records in memory with the
//! same size rules, for the fuzz harness and tests that need no file.
//!
//! Modules:
//! - [`stats`]: a sink's counters.

pub mod stats;

pub use self::stats::SinkStats;
use crate::record::{self, RecordFields};
use crate::ring::{AppendError, RingWriter};
use std::sync::Arc;

/// One core's record store, as the HTTP layer sees it.
pub trait Sink {
    /// Appends one record and counts it (or counts the full store).
    fn append(&mut self, fields: &RecordFields<'_>) -> Result<(), AppendError>;
    /// Ends a batch: the records appended since the last commit are as durable as the policy
    /// asks before this returns. An error means they are not: their answers must not be sent.
    fn commit(&mut self) -> std::io::Result<()>;
    /// The core this sink belongs to (stored in every record).
    fn core(&self) -> u16;
    /// Bytes of one slot: a record up to this size takes one.
    fn slot_size(&self) -> usize;
    /// This core's counters.
    fn stats(&self) -> &SinkStats;
}

/// When a ring's records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Each batch's records are written back (msync) before its answers go out (`--sync always`).
    EachBatch,
    /// Left to the server's periodic fdatasync (`--sync interval`); a process crash loses
    /// nothing either way, the page cache holds the records.
    Background,
}

/// The server's sink: one core's ring file.
pub struct RingSink {
    core: u16,
    ring: RingWriter,
    stats: Arc<SinkStats>,
    durability: Durability,
    /// First seq not yet committed.
    batch_start: u64,
}

impl RingSink {
    pub fn new(
        core: u16,
        ring: RingWriter,
        stats: Arc<SinkStats>,
        durability: Durability,
    ) -> RingSink {
        stats
            .ring_head
            .store(ring.next_seq(), std::sync::atomic::Ordering::Relaxed);
        let batch_start = ring.next_seq();
        RingSink {
            core,
            ring,
            stats,
            durability,
            batch_start,
        }
    }

    pub fn ring(&self) -> &RingWriter {
        &self.ring
    }
}

impl Sink for RingSink {
    #[inline]
    fn append(&mut self, fields: &RecordFields<'_>) -> Result<(), AppendError> {
        match self.ring.append(fields) {
            Ok(appended) => {
                let slot_size = self.ring.header().slot_size as usize;
                self.stats
                    .recorded(self.ring.next_seq(), appended.slots, slot_size);
                Ok(())
            }
            Err(AppendError::Full) => {
                self.stats.ring_full();
                Err(AppendError::Full)
            }
            Err(e) => Err(e),
        }
    }

    #[inline]
    fn commit(&mut self) -> std::io::Result<()> {
        let (from, to) = (self.batch_start, self.ring.next_seq());
        self.batch_start = to;
        if self.durability == Durability::EachBatch && to > from {
            if let Err(e) = self.ring.sync_records(from, to) {
                // The kernel may have dropped the pages: these records are not durable. Never
                // retried as if it had succeeded.
                self.stats.msync_failed(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    fn core(&self) -> u16 {
        self.core
    }

    fn slot_size(&self) -> usize {
        self.ring.header().slot_size as usize
    }

    fn stats(&self) -> &SinkStats {
        &self.stats
    }
}

/// Records kept in memory, each encoded as in a ring of the given geometry (the same
/// [`crate::ring::max_span`] bound, `Full` when `capacity` slots are taken until [`clear`]).
/// Room for `capacity` full slots is reserved up front, so appending never allocates: the
/// zero-allocation test serves from it.
///
/// [`clear`]: MemorySink::clear
pub struct MemorySink {
    core: u16,
    stats: Arc<SinkStats>,
    slot_size: usize,
    capacity: u64,
    max_span: u64,
    used: u64,
    next_seq: u64,
    crc_init: u32,
    /// The records' bytes, back to back, in append order.
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl MemorySink {
    /// A store shaped like a ring of `capacity` slots of `slot_size` bytes (a power of two).
    ///
    /// # Panics
    /// If `capacity` slots of `slot_size` bytes do not fit in memory's address space.
    pub fn new(core: u16, slot_size: usize, capacity: u64) -> MemorySink {
        let slots = usize::try_from(capacity).expect("capacity fits in usize");
        let room = slots
            .checked_mul(slot_size)
            .expect("capacity * slot_size fits in usize");
        MemorySink {
            core,
            stats: Arc::default(),
            slot_size,
            capacity,
            max_span: crate::ring::max_span(slot_size, capacity),
            used: 0,
            next_seq: 0,
            crc_init: record::crc_init(0),
            bytes: Vec::with_capacity(room),
            ends: Vec::with_capacity(slots),
        }
    }

    /// Counts into `stats` instead of counters of its own (the server's admin listener reads
    /// a core's counters through such a shared handle).
    pub fn with_stats(mut self, stats: Arc<SinkStats>) -> MemorySink {
        self.stats = stats;
        self
    }

    /// The records appended since the last [`MemorySink::clear`], each exactly its bytes.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(from, &to)| &self.bytes[from..to])
    }

    /// Forgets the records (what a consumer passing them does to a ring); keeps the room.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.used = 0;
    }
}

impl Sink for MemorySink {
    fn append(&mut self, fields: &RecordFields<'_>) -> Result<(), AppendError> {
        let len = record::encoded_len(fields);
        let span = len.div_ceil(self.slot_size).max(1) as u64;
        if span > self.max_span {
            return Err(AppendError::TooLarge { len });
        }
        if self.used + span > self.capacity {
            self.stats.ring_full();
            return Err(AppendError::Full);
        }
        // Within the room reserved in `new`: the records so far take at most `used` slots.
        let start = self.bytes.len();
        self.bytes.resize(start + span as usize * self.slot_size, 0);
        let place = record::Placement {
            span: span as u32,
            pad_before: 0,
        };
        let written = record::encode(
            &mut self.bytes[start..],
            self.next_seq,
            self.crc_init,
            fields,
            place,
        );
        self.bytes.truncate(start + written);
        self.ends.push(self.bytes.len());
        self.used += span;
        self.next_seq += span;
        self.stats.recorded(self.next_seq, span, self.slot_size);
        Ok(())
    }

    fn commit(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn core(&self) -> u16 {
        self.core
    }

    fn slot_size(&self) -> usize {
        self.slot_size
    }

    fn stats(&self) -> &SinkStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BodyKind, IpSource, Method, RecordView};
    use std::net::Ipv6Addr;

    fn fields(body: &[u8]) -> RecordFields<'_> {
        RecordFields {
            ts_ns: 1,
            core: 3,
            status: 200,
            method: Method::Post,
            http_minor: 1,
            flags: 0,
            peer_ip: Ipv6Addr::LOCALHOST,
            peer_port: 1,
            client_ip: Ipv6Addr::LOCALHOST,
            ip_source: IpSource::Peer,
            body_kind: BodyKind::Other,
            target: b"/p.gif",
            user_agent: b"",
            referer: b"",
            cookie: b"",
            body,
        }
    }

    #[test]
    fn memory_sink_keeps_ring_size_rules() {
        // 8 slots of 256 bytes: a record may take at most 4 (half the ring).
        let mut sink = MemorySink::new(3, 256, 8);
        let room = sink.bytes.as_ptr();
        sink.append(&fields(b"x")).unwrap();
        let first = sink.records().next().unwrap();
        let view = RecordView::parse(first).unwrap();
        assert_eq!(view.bytes(), first);
        let too_big = vec![b'a'; 4 * 256];
        assert!(matches!(
            sink.append(&fields(&too_big)),
            Err(AppendError::TooLarge { .. })
        ));
        let three_slots = vec![b'a'; 2 * 256];
        sink.append(&fields(&three_slots)).unwrap();
        sink.append(&fields(&three_slots)).unwrap();
        assert_eq!(sink.append(&fields(b"")), Ok(()));
        assert_eq!(sink.append(&fields(b"")), Err(AppendError::Full));
        let stats = sink.stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((load(&stats.records), load(&stats.ring_full)), (4, 1));
        assert_eq!(load(&stats.multi_slot), 2);
        assert_eq!(sink.records().count(), 4);
        for record in sink.records() {
            RecordView::parse(record).unwrap();
        }
        assert_eq!(sink.bytes.as_ptr(), room, "a full store never reallocated");
        sink.clear();
        assert_eq!(sink.records().count(), 0);
        assert_eq!(sink.append(&fields(b"")), Ok(()));
    }
}
