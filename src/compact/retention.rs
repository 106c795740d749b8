//! Retention: delete the oldest sealed segments by age or total size.
//!
//! Only sealed segments whose records are already past every ring cursor are candidates (the
//! compactor runs retention after moving the cursors), and never the newest sealed segment:
//! its checkpoint tells a restarted compactor where it stopped. A segment that does not open
//! (damaged trailer or index) is never deleted: it is reported and retention stops there.
//!
//! While a shipper is configured (`DATA_DIR/ship-cursor.json` exists, see
//! [`crate::ship::cursor`]), a segment is deleted only once the ship cursor has passed every
//! record its checkpoint covers: data not yet in Kafka is never deleted, whatever the limits.
//! A cursor that cannot be read keeps everything (reported).

use super::segment::{list_segments, SegmentReader, SEGMENT_SUFFIX};
use std::path::{Path, PathBuf};

/// The limits; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub max_age_ns: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    pub deleted: Vec<(PathBuf, u64)>,
    pub problems: Vec<String>,
    /// A segment the limits would delete was kept because it is not shipped yet.
    pub held_for_ship: bool,
}

impl Retention {
    /// Deletes the oldest sealed segments of `data_dir` until both limits hold.
    pub fn apply(&self, data_dir: &Path, now_ns: u64) -> std::io::Result<RetentionReport> {
        let mut report = RetentionReport::default();
        if self.max_age_ns.is_none() && self.max_bytes.is_none() {
            return Ok(report);
        }
        let all = list_segments(data_dir)?;
        let sizes: Vec<u64> = all
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .collect();
        let shipped = match crate::ship::cursor::ShipCursor::load(data_dir) {
            Ok(c) => c,
            Err(e) => {
                report
                    .problems
                    .push(format!("{e} (retention keeps every segment)"));
                return Ok(report);
            }
        };
        let mut total: u64 = sizes.iter().sum();
        let sealed = all
            .iter()
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(SEGMENT_SUFFIX)))
            .count();
        for (path, size) in all.iter().zip(&sizes).take(sealed.saturating_sub(1)) {
            let over_size = self.max_bytes.is_some_and(|max| total > max);
            if !over_size && self.max_age_ns.is_none() {
                break;
            }
            let opened = SegmentReader::open(path).and_then(|mut r| {
                let unshipped = match &shipped {
                    Some(cursor) => !cursor.covers(&r.checkpoint()?),
                    None => false,
                };
                Ok((r.max_ts_ns(), unshipped))
            });
            let (max_ts, unshipped) = match opened {
                Ok(found) => found,
                Err(e) => {
                    report
                        .problems
                        .push(format!("{e} (retention stops here, nothing deleted)"));
                    break;
                }
            };
            let too_old = self
                .max_age_ns
                .is_some_and(|age| max_ts.saturating_add(age) < now_ns);
            if !over_size && !too_old {
                break;
            }
            if unshipped {
                report.held_for_ship = true;
                break;
            }
            std::fs::remove_file(path)?;
            total -= size;
            report.deleted.push((path.clone(), *size));
        }
        if !report.deleted.is_empty() {
            crate::sys::sync_dir(&data_dir.join("segments"))?;
        }
        Ok(report)
    }
}
