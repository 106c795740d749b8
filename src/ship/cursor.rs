//! The ship cursor: `DATA_DIR/ship-cursor.json`, per ring stream the first seq not yet
//! shipped, for both sinks.
//!
//! A stream is one ring file: (core, seed). The cursor is written only with values the sink
//! has confirmed for every record before them (Kafka: the delivery reports; S3: the completed
//! upload of every object holding them), by writing a temporary file,
//! fsyncing it, renaming it over the old one and fsyncing the directory, so after a crash it
//! is either the old or the new cursor, never a torn one. Its existence means "a shipper is
//! configured for this data dir": compactor retention then keeps every segment the cursor has
//! not passed ([`ShipCursor::covers`]).
//!
//! ```json
//! {"version":1,"instance":"…","updated_ns":1764745200000000000,
//!  "streams":[{"core":0,"seed":1234,"next_seq":56789}]}
//! ```

use crate::compact::segment::Watermark;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The cursor file's name inside the data dir.
pub const CURSOR_FILE: &str = "ship-cursor.json";
/// Version of the JSON layout above.
pub const CURSOR_VERSION: u32 = 1;
/// Largest cursor file read (a stream is ~60 bytes; a data dir has a few hundred at most).
const MAX_CURSOR_BYTES: u64 = 4 << 20;

/// One ring stream's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamPos {
    pub core: u32,
    pub seed: u64,
    pub next_seq: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CursorFile {
    version: u32,
    #[serde(default)]
    instance: String,
    #[serde(default)]
    updated_ns: u64,
    streams: Vec<StreamPos>,
}

/// The durable ship position of a data dir.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipCursor {
    /// Instance id of the data dir the cursor belongs to (empty before instance identities).
    pub instance: String,
    /// (core, seed) -> first seq not yet acknowledged.
    pub streams: BTreeMap<(u32, u64), u64>,
}

/// Path of the cursor file of a data dir.
pub fn cursor_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CURSOR_FILE)
}

impl ShipCursor {
    /// Reads the cursor of a data dir: `Ok(None)` when there is none (no shipper configured).
    /// Errors name the file and say what is wrong with it.
    pub fn load(data_dir: &Path) -> Result<Option<ShipCursor>, String> {
        let path = cursor_path(data_dir);
        let bad = |what: String| format!("{}: {what}", path.display());
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        if meta.len() > MAX_CURSOR_BYTES {
            return Err(bad(format!(
                "{} bytes, more than a ship cursor can be ({MAX_CURSOR_BYTES})",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let file: CursorFile = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a ship cursor ({e}); move it away to reship from the oldest segment"
            ))
        })?;
        if file.version != CURSOR_VERSION {
            return Err(bad(format!(
                "cursor version {} (this glint reads {CURSOR_VERSION})",
                file.version
            )));
        }
        let mut streams = BTreeMap::new();
        for s in file.streams {
            if streams.insert((s.core, s.seed), s.next_seq).is_some() {
                return Err(bad(format!("core {} seed {} listed twice", s.core, s.seed)));
            }
        }
        Ok(Some(ShipCursor {
            instance: file.instance,
            streams,
        }))
    }

    /// Writes the cursor crash-safely: temporary file, fsync, rename, fsync of the directory.
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let file = CursorFile {
            version: CURSOR_VERSION,
            instance: self.instance.clone(),
            updated_ns: crate::clock::now_ns(),
            streams: self
                .streams
                .iter()
                .map(|(&(core, seed), &next_seq)| StreamPos {
                    core,
                    seed,
                    next_seq,
                })
                .collect(),
        };
        let mut text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let path = cursor_path(data_dir);
        let tmp = data_dir.join(format!("{CURSOR_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        crate::sys::sync_dir(data_dir)
    }

    /// The cursor of a data dir, created (empty) when there is none: from then on compactor
    /// retention keeps what is not shipped.
    pub fn open(data_dir: &Path, instance: &str) -> Result<ShipCursor, String> {
        if let Some(c) = ShipCursor::load(data_dir)? {
            return Ok(c);
        }
        let c = ShipCursor {
            instance: instance.to_string(),
            ..ShipCursor::default()
        };
        c.save(data_dir)?;
        Ok(c)
    }

    /// [`ShipCursor::store`] with an error naming the file.
    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        self.store(data_dir).map_err(|e| {
            format!(
                "{}: cannot store the ship cursor: {e}",
                cursor_path(data_dir).display()
            )
        })
    }

    /// First seq of stream (core, seed) not yet acknowledged (0 for a stream never shipped).
    pub fn next_seq(&self, core: u32, seed: u64) -> u64 {
        self.streams.get(&(core, seed)).copied().unwrap_or(0)
    }

    /// True when every record a segment checkpoint covers is acknowledged: for each ring in the
    /// checkpoint, the cursor of that same ring file is at or past its `next_seq`.
    pub fn covers(&self, checkpoint: &[Watermark]) -> bool {
        checkpoint
            .iter()
            .all(|m| self.next_seq(m.core, m.seed) >= m.next_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_and_covers_by_ring_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(ShipCursor::load(d).unwrap(), None);
        let mut c = ShipCursor {
            instance: "abc".into(),
            ..ShipCursor::default()
        };
        c.streams.insert((0, 7), 100);
        c.streams.insert((1, 9), 5);
        c.store(d).unwrap();
        assert!(!d.join(format!("{CURSOR_FILE}.tmp")).exists());
        let back = ShipCursor::load(d).unwrap().unwrap();
        assert_eq!(back, c);
        let m = |core, seed, next_seq| Watermark {
            core,
            seed,
            next_seq,
        };
        assert!(back.covers(&[m(0, 7, 100), m(1, 9, 5)]));
        assert!(!back.covers(&[m(0, 7, 101)]));
        // Same core, another ring file (recreated): nothing of it is shipped.
        assert!(!back.covers(&[m(0, 8, 1)]));
        assert!(back.covers(&[m(2, 1, 0)]));
    }

    #[test]
    fn damaged_cursor_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(cursor_path(d), b"{\"version\":1,\"streams\":[{\"core\":0").unwrap();
        let e = ShipCursor::load(d).unwrap_err();
        assert!(
            e.contains(CURSOR_FILE) && e.contains("not a ship cursor"),
            "{e}"
        );
        std::fs::write(cursor_path(d), b"{\"version\":9,\"streams\":[]}").unwrap();
        assert!(ShipCursor::load(d).unwrap_err().contains("version 9"));
        let twice = b"{\"version\":1,\"streams\":[{\"core\":0,\"seed\":1,\"next_seq\":2},{\"core\":0,\"seed\":1,\"next_seq\":3}]}";
        std::fs::write(cursor_path(d), twice).unwrap();
        assert!(ShipCursor::load(d).unwrap_err().contains("twice"));
    }
}
