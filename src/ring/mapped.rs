//! Opening an existing ring file, as the reader, the writer and recovery all do: the header
//! validated, then exactly the validated geometry mapped.

use super::format::{file_len, RingError, RingHeader, HEADER_PAGE};
use super::raw::RawRing;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Opens and maps an existing ring file and validates its header (magic, versions, CRC,
/// geometry, length); the map's slot geometry is set from the header.
pub(super) fn open_mapped(
    path: &Path,
    writable: bool,
) -> Result<(File, RawRing, RingHeader), RingError> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| RingError::io(path, e))?;
    let len = file.metadata().map_err(|e| RingError::io(path, e))?.len();
    if len < HEADER_PAGE as u64 {
        return Err(RingError::format(
            path,
            len,
            format!("file is {len} bytes, shorter than the {HEADER_PAGE}-byte ring header"),
        ));
    }
    let mut page = [0u8; HEADER_PAGE];
    file.read_exact_at(&mut page, 0)
        .map_err(|e| RingError::io(path, e))?;
    let header = RingHeader::decode(path, &page, len)?;
    // Only the bytes the validated geometry needs are mapped (at most MAX_FILE_LEN).
    let want = file_len(header.slot_size as usize, header.capacity).expect("decode checked it");
    let map_len = usize::try_from(want).map_err(|_| {
        RingError::format(
            path,
            24,
            format!("ring of {want} bytes cannot be mapped here"),
        )
    })?;
    let mut raw = RawRing::map(&file, map_len, writable).map_err(|e| RingError::io(path, e))?;
    raw.set_geometry(header.slot_size as usize, header.capacity);
    Ok((file, raw, header))
}
