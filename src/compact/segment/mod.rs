//! Segment files: the compactor's time-ordered, indexed, immutable output.
//!
//! A segment lives in `DATA_DIR/segments/` and is named after the UTC time of its first
//! record and its instance, `YYYYMMDDTHHMMSS.nnnnnnnnnZ-<first 16 hex digits of the instance
//! id>.gls` (version 1 segments: no `-<id>`), so `ls` lists segments in time order and the
//! segments of several boxes can be gathered in one folder. While the
//! compactor writes it, it is `….gls.open`; sealing renames it to `….gls`, after which it is
//! never written again. All integers are little-endian.
//!
//! File layout: header, then blocks, then (sealed only) an index block and a trailer.
//!
//! Header, [`HEADER_LEN`] bytes:
//!
//! | offset | size | field            | meaning                                                  |
//! |-------:|-----:|------------------|----------------------------------------------------------|
//! |      0 |    8 | `magic`          | `GLINTSEG`                                               |
//! |      8 |    4 | `segment_version`| [`SEGMENT_VERSION`]                                      |
//! |     12 |    4 | `record_version` | [`crate::record::FORMAT_VERSION`] of the writer; each record says its own layout (a v1 ring compacts into v1 records) |
//! |     16 |    4 | `codec`          | codec asked for: 0 = none, 1 = zstd (blocks say their own) |
//! |     20 |    4 | reserved         | zero                                                     |
//! |     24 |    8 | `seed`           | random per file, mixed into every block and trailer CRC  |
//! |     32 |    8 | `start_ns`       | the time in the file name, ns since the Unix epoch       |
//! |     40 |    8 | `created_ns`     | wall clock when the file was created                     |
//! |     48 |   12 | reserved         | zero                                                     |
//! |     60 |    4 | `header_crc`     | CRC32C of bytes 0..60                                    |
//! |     64 |   88 | `identity`       | the instance whose rings the records came from, with its own CRC ([`crate::instance`]); version 2 only |
//!
//! Version 1 segments end the header at byte 64 (their first block starts there) and are
//! still read; their records have no instance unless the data dir they lie in has one.
//!
//! Block header, [`BLOCK_HEADER_LEN`] bytes, followed by `stored_len` payload bytes:
//!
//! | offset | size | field        | meaning                                                       |
//! |-------:|-----:|--------------|---------------------------------------------------------------|
//! |      0 |    4 | `magic`      | `GLBK`                                                        |
//! |      4 |    1 | `kind`       | 1 = records, 2 = checkpoint, 3 = index                        |
//! |      5 |    1 | `codec`      | 0 = stored raw, 1 = zstd frame                                |
//! |      6 |    2 | reserved     | zero                                                          |
//! |      8 |    4 | `stored_len` | payload bytes in the file                                     |
//! |     12 |    4 | `raw_len`    | payload bytes after decompression (see the length contract)   |
//! |     16 |    4 | `count`      | records (kind 1) or entries (kinds 2, 3)                      |
//! |     20 |    8 | `min_ts_ns`  | smallest record timestamp in the block (kind 1, 3)            |
//! |     28 |    8 | `max_ts_ns`  | largest record timestamp in the block (kind 1, 3)             |
//! |     36 |    4 | `crc`        | CRC32C of seed (8 bytes LE) ‖ header bytes 0..36 ‖ stored payload |
//!
//! Payloads by kind:
//! - records: the records back to back, each exactly its ring slot's bytes `0..len` (commit word
//!   and record CRC included, padding dropped); a record's own `len` field delimits it.
//! - checkpoint: `count` entries of 24 bytes: `core` u32, reserved u32, ring `seed` u64,
//!   `next_seq` u64. For every ring the compactor has seen, every record with a lower seq from
//!   that ring file (same seed) is in this segment or an earlier one. Written at the end of
//!   every compaction cycle, fsynced before any ring cursor moves: it is the commit point.
//! - index: `count` entries of 32 bytes, one per records block in file order: block `offset`
//!   u64, `min_ts_ns` u64, `max_ts_ns` u64, `count` u32, reserved u32. Its header's min/max are
//!   the whole segment's.
//!
//! Length contract (`BlockHeader::check_lengths`, the one check the writer runs before writing
//! a block and every reader, recovery, `decode --verify` and the fuzz targets run before
//! reading one, so the writer cannot produce a block the reader refuses):
//! - every block ends inside the file;
//! - records: `raw_len` from 1 to [`MAX_RECORDS_BLOCK`] (the writer ends a block once it holds
//!   [`BLOCK_TARGET`] bytes, so at most one record of [`crate::record::MAX_RECORD_LEN`] later),
//!   `count` >= 1 records of at least a record header each; stored raw (`stored_len ==
//!   raw_len`) or as a zstd frame of at most `raw_len` bytes;
//! - checkpoint: stored raw, `count` <= [`MAX_CHECKPOINT_ENTRIES`] (one per core);
//! - index: stored raw, one entry per records block before it, so its length is bounded by
//!   the blocks that fit between the header and the index (41 bytes at least each), not by a
//!   fixed constant: the index grows with the segment and is not split. The only fixed bound
//!   is [`MAX_INDEX_ENTRIES`] (its length must fit the `u32` fields); the compactor seals a
//!   segment before it holds that many blocks, though its size and span limits seal it long
//!   before (a 1 GiB segment of zstd blocks has an index of a few MB). Releases before this
//!   contract refused blocks over 1 MiB when reading, so they could not read the index of a
//!   segment past about 100 MB they had written themselves; such segments read fine now.
//!
//! Trailer, [`TRAILER_LEN`] bytes at the very end of a sealed segment:
//!
//! | offset | size | field               | meaning                                          |
//! |-------:|-----:|---------------------|--------------------------------------------------|
//! |      0 |    8 | `index_offset`      | offset of the index block                        |
//! |      8 |    8 | `checkpoint_offset` | offset of the last checkpoint block              |
//! |     16 |    8 | `record_count`      | records in the segment                           |
//! |     24 |    4 | `crc`               | CRC32C of seed ‖ trailer bytes 0..24             |
//! |     28 |    4 | reserved            | zero                                             |
//! |     32 |    8 | `magic`             | `GLSEGEND`                                       |
//!
//! Records are in (ts, core, seq) order within one compaction cycle; a record that becomes
//! visible in a later cycle with an older timestamp (a wall-clock step backwards, a slow core)
//! is stored after newer ones, and the block and segment min/max timestamps stay true, so
//! [`SegmentReader::seek`] skips only blocks that cannot hold a wanted record.
//!
//! Modules:
//! - `format`: byte layouts of header, block, checkpoint, index entry and trailer.
//! - `reader`: reading sealed segments by index, in-progress ones by block scan.
//! - `recovery`: validating an in-progress segment and keeping its committed prefix.
//! - `writer`: blocks, checkpoints, sealing.

mod format;
mod reader;
mod recovery;
mod writer;

pub use format::{
    list_segments, segment_file_name, BlockKind, Codec, SegmentError, Watermark, BLOCK_HEADER_LEN,
    BLOCK_TARGET, HEADER_LEN, MAX_CHECKPOINT_ENTRIES, MAX_INDEX_ENTRIES, MAX_RECORDS_BLOCK,
    OPEN_SUFFIX, SEGMENT_SUFFIX, SEGMENT_VERSION, TRAILER_LEN,
};
pub use reader::SegmentReader;
pub use writer::{Recovered, SegmentWriter, DEFAULT_ZSTD_LEVEL, ZSTD_LEVELS};

#[cfg(test)]
mod tests;
