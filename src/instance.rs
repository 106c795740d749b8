//! The data dir's fleet identity: a random instance id created once, and a human name.
//!
//! Several glint boxes behind one load balancer all number their records (core 0, seq 0, ...).
//! The identity is what tells their records apart once their rings and segments are gathered
//! in one place: readers deduplicate by (instance id, core, seq), and segment file names carry
//! an id prefix so segments of several boxes can share one folder.
//!
//! `DATA_DIR/instance.toml` is created on first use (by `glint serve` or `glint compact`):
//!
//! ```toml
//! id = "3f2a9c0d5e7b41a8b6c4d2e0f1a3b5c7"   # 128 random bits, 32 lowercase hex digits
//! name = "web-1"                              # --instance-name, default: the host name
//! ```
//!
//! It is written to a temporary file, fsynced, and hard-linked into place (so two processes
//! starting at once agree on one id), then the directory is fsynced. A later
//! `--instance-name` that differs replaces the file the same way (write, fsync, rename).
//! Copying a data dir copies its identity; a box built from a copied data dir must delete
//! `instance.toml` before its first start, or both boxes' records share one id.
//!
//! Every ring header (bytes 192..280) and segment header holds the identity as one block of
//! [`BLOCK_LEN`] bytes with its own CRC:
//!
//! | offset | size | field      | meaning                                             |
//! |-------:|-----:|------------|-----------------------------------------------------|
//! |      0 |    4 | `magic`    | `GLID`                                              |
//! |      4 |   16 | `id`       | the instance id                                     |
//! |     20 |    1 | `name_len` | bytes of `name` in use, 1..=[`MAX_NAME_LEN`]        |
//! |     21 |   63 | `name`     | UTF-8 name, zero padded                             |
//! |     84 |    4 | `crc`      | CRC32C of bytes 0..84                               |
//!
//! A block of zeros means "no identity" (files written before identities existed).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes of the instance id.
pub const ID_LEN: usize = 16;
/// Longest instance name in bytes (a Linux host name is at most 64).
pub const MAX_NAME_LEN: usize = 63;
/// Bytes of the identity block in ring and segment headers.
pub const BLOCK_LEN: usize = 88;
/// The identity file inside a data dir.
pub const FILE_NAME: &str = "instance.toml";
/// Hex digits of the id that segment file names carry (64 bits).
pub const NAME_PREFIX_HEX: usize = 16;

const MAGIC: [u8; 4] = *b"GLID";
const OFF_ID: usize = 4;
const OFF_NAME_LEN: usize = OFF_ID + ID_LEN;
const OFF_NAME: usize = OFF_NAME_LEN + 1;
const OFF_CRC: usize = OFF_NAME + MAX_NAME_LEN;
const _: () = assert!(OFF_CRC + 4 == BLOCK_LEN);

/// One instance's identity: its id and its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    id: [u8; ID_LEN],
    name_len: u8,
    name: [u8; MAX_NAME_LEN],
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({} {:?})", self.id_hex(), self.name())
    }
}

impl Identity {
    /// An identity from its parts; the name must pass [`check_name`] and the id must not be zero.
    pub fn new(id: [u8; ID_LEN], name: &str) -> Result<Identity, String> {
        check_name(name)?;
        if id == [0; ID_LEN] {
            return Err("instance id is all zeros".into());
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        buf[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Identity {
            id,
            name_len: name.len() as u8,
            name: buf,
        })
    }

    pub fn id(&self) -> [u8; ID_LEN] {
        self.id
    }

    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..usize::from(self.name_len)]).expect("checked UTF-8")
    }

    /// The id as 32 lowercase hex digits.
    pub fn id_hex(&self) -> String {
        String::from_utf8(self.id_hex_bytes().to_vec()).expect("hex is ASCII")
    }

    /// The id as 32 lowercase hex digits, without allocating.
    pub fn id_hex_bytes(&self) -> [u8; 2 * ID_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 2 * ID_LEN];
        for (i, b) in self.id.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    /// The block written into ring and segment headers.
    pub fn encode(&self) -> [u8; BLOCK_LEN] {
        let mut b = [0u8; BLOCK_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[OFF_ID..OFF_NAME_LEN].copy_from_slice(&self.id);
        b[OFF_NAME_LEN] = self.name_len;
        b[OFF_NAME..OFF_CRC].copy_from_slice(&self.name);
        let crc = crc32c::crc32c(&b[..OFF_CRC]);
        b[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a header's identity block: `None` for an all-zero block (a file from before
    /// identities); an error names the offset inside the block that is wrong.
    pub fn decode(b: &[u8]) -> Result<Option<Identity>, (usize, String)> {
        let Some(b) = b.get(..BLOCK_LEN) else {
            return Err((
                b.len(),
                format!("identity block shorter than {BLOCK_LEN} bytes"),
            ));
        };
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        if b[0..4] != MAGIC {
            return Err((0, "bad instance identity magic".into()));
        }
        let crc = u32::from_le_bytes(b[OFF_CRC..].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[..OFF_CRC]) != crc {
            return Err((OFF_CRC, "instance identity CRC mismatch".into()));
        }
        let len = usize::from(b[OFF_NAME_LEN]);
        let name = b[OFF_NAME..OFF_CRC]
            .get(..len)
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| {
                (
                    OFF_NAME_LEN,
                    format!("instance name of {len} bytes is invalid"),
                )
            })?;
        let id = b[OFF_ID..OFF_NAME_LEN].try_into().expect("16 bytes");
        Identity::new(id, name)
            .map(Some)
            .map_err(|why| (OFF_ID, why))
    }

    /// The file name suffix that keeps this instance's segments apart from other boxes'.
    pub fn file_tag(&self) -> String {
        self.id_hex()[..NAME_PREFIX_HEX].to_string()
    }
}

/// An instance name: 1..=63 bytes of UTF-8 without control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "instance name {name:?} must be 1 to {MAX_NAME_LEN} bytes, not {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "instance name {name:?} must not hold control characters"
        ));
    }
    Ok(())
}

/// A clap value parser for `--instance-name`.
pub fn parse_name(name: &str) -> Result<String, String> {
    check_name(name).map(|()| name.to_string())
}

/// Why the identity file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct InstanceError {
    pub path: String,
    pub what: String,
}

fn err(path: &Path, what: impl fmt::Display) -> InstanceError {
    InstanceError {
        path: path.display().to_string(),
        what: what.to_string(),
    }
}

/// The path of a data dir's identity file.
pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Reads `DATA_DIR/instance.toml`; `Ok(None)` when there is none.
pub fn load(data_dir: &Path) -> Result<Option<Identity>, InstanceError> {
    let path = file_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(&path, e)),
    };
    parse_file(&text).map(Some).map_err(|why| err(&path, why))
}

fn parse_file(text: &str) -> Result<Identity, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        id: String,
        name: String,
    }
    let f: File = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    let id = parse_id_hex(&f.id)?;
    Identity::new(id, &f.name)
}

fn parse_id_hex(hex: &str) -> Result<[u8; ID_LEN], String> {
    let bad = || format!("id {hex:?} must be {} hex digits", 2 * ID_LEN);
    if hex.len() != 2 * ID_LEN || !hex.is_ascii() {
        return Err(bad());
    }
    let mut id = [0u8; ID_LEN];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(id)
}

fn render_file(identity: &Identity) -> String {
    // A TOML basic string: the name holds no control characters, so escaping \ and " suffices.
    let name = identity.name().replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "# glint instance identity, created once for this data dir. Records are told apart by\n\
         # this id; a box set up from a copy of this data dir must delete this file first.\n\
         id = \"{}\"\nname = \"{name}\"\n",
        identity.id_hex()
    )
}

/// The data dir's identity: read from `instance.toml`, or created there (crash-safe) with a
/// new random id. `name` (from `--instance-name`) is the name for a new file, and replaces the
/// stored name when it differs; without it a new identity is named after the host.
pub fn open_or_create(data_dir: &Path, name: Option<&str>) -> Result<Identity, InstanceError> {
    let path = file_path(data_dir);
    let identity = match load(data_dir)? {
        Some(found) => found,
        None => {
            let name = match name {
                Some(n) => n.to_string(),
                None => default_name(),
            };
            let fresh = Identity::new(random_id().map_err(|e| err(&path, e))?, &name)
                .map_err(|e| err(&path, e))?;
            create_once(data_dir, &fresh)?
        }
    };
    match name {
        Some(n) if n != identity.name() => {
            let renamed = Identity::new(identity.id(), n).map_err(|e| err(&path, e))?;
            write_file(data_dir, &renamed, Placement::Replace)?;
            crate::info!(
                "{}: instance {} renamed from {:?} to {n:?}",
                path.display(),
                identity.id_hex(),
                identity.name()
            );
            Ok(renamed)
        }
        _ => Ok(identity),
    }
}

/// Writes a new identity file unless another process created one first; returns the one on disk.
fn create_once(data_dir: &Path, fresh: &Identity) -> Result<Identity, InstanceError> {
    if write_file(data_dir, fresh, Placement::IfAbsent)? {
        crate::info!(
            "{}: created instance {} named {:?}",
            file_path(data_dir).display(),
            fresh.id_hex(),
            fresh.name()
        );
        return Ok(*fresh);
    }
    load(data_dir)?.ok_or_else(|| err(&file_path(data_dir), "vanished while being created"))
}

enum Placement {
    IfAbsent,
    Replace,
}

/// tmp + fsync + (link | rename) + directory fsync. False when `IfAbsent` found a file there.
fn write_file(data_dir: &Path, identity: &Identity, how: Placement) -> Result<bool, InstanceError> {
    let path = file_path(data_dir);
    let mut nonce = [0u8; 8];
    let _ = crate::sys::getrandom(&mut nonce);
    let tmp = data_dir.join(format!(
        ".{FILE_NAME}.{}.{:x}.tmp",
        std::process::id(),
        u64::from_le_bytes(nonce)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(render_file(identity).as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&tmp, e));
    }
    let placed = match how {
        Placement::Replace => std::fs::rename(&tmp, &path).map(|()| true),
        Placement::IfAbsent => {
            let linked = match std::fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&tmp);
            linked
        }
    };
    let placed = placed.map_err(|e| err(&path, e))?;
    crate::sys::sync_dir(data_dir).map_err(|e| err(data_dir, e))?;
    Ok(placed)
}

fn random_id() -> std::io::Result<[u8; ID_LEN]> {
    let mut id = [0u8; ID_LEN];
    crate::sys::getrandom(&mut id)?;
    if id == [0; ID_LEN] {
        id[0] = 1;
    }
    Ok(id)
}

/// The host name (the kernel's), cut to a valid instance name; `glint` if there is none.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = host.trim().chars().filter(|c| !c.is_control()).collect();
    let mut cut = clean.as_str();
    while cut.len() > MAX_NAME_LEN {
        let mut end = MAX_NAME_LEN;
        while !cut.is_char_boundary(end) {
            end -= 1;
        }
        cut = &cut[..end];
    }
    if cut.is_empty() {
        "glint".to_string()
    } else {
        cut.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_and_rejects_damage() {
        let id = Identity::new([7; ID_LEN], "web-ä1").unwrap();
        let mut b = id.encode();
        assert_eq!(Identity::decode(&b).unwrap(), Some(id));
        assert_eq!(Identity::decode(&[0u8; BLOCK_LEN]).unwrap(), None);
        b[30] ^= 1;
        assert_eq!(Identity::decode(&b).unwrap_err().0, 84);
        b[0] = b'X';
        assert_eq!(Identity::decode(&b).unwrap_err().0, 0);
        // A valid CRC over an impossible length is still refused.
        let mut b = id.encode();
        b[OFF_NAME_LEN] = 200;
        let crc = crc32c::crc32c(&b[..OFF_CRC]);
        b[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert!(Identity::decode(&b).unwrap_err().1.contains("200 bytes"));
        assert_eq!(id.id_hex(), "07".repeat(16));
        assert_eq!(id.file_tag(), "07".repeat(8));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("web-1.example.com").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(64)).is_err());
        assert!(check_name("a\nb").is_err());
        assert!(Identity::new([0; ID_LEN], "x").is_err());
        let long = "é".repeat(40);
        assert!(check_name(&default_name()).is_ok());
        assert!(check_name(&long).is_err());
    }

    #[test]
    fn file_is_created_once_kept_and_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(load(dir).unwrap(), None);
        let first = open_or_create(dir, None).unwrap();
        assert_eq!(first.name(), default_name());
        let again = open_or_create(dir, None).unwrap();
        assert_eq!(again, first);
        let renamed = open_or_create(dir, Some("edge \"b\" \\ 2")).unwrap();
        assert_eq!(renamed.id(), first.id());
        assert_eq!(load(dir).unwrap(), Some(renamed));
        assert_eq!(renamed.name(), "edge \"b\" \\ 2");
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [FILE_NAME], "no temporary file is left");
        let other_tmp = tempfile::tempdir().unwrap();
        let other = other_tmp.path();
        assert_ne!(open_or_create(other, None).unwrap().id(), first.id());
        std::fs::write(file_path(dir), "id = \"zz\"\nname = \"a\"\n").unwrap();
        let e = open_or_create(dir, None).unwrap_err().to_string();
        assert!(
            e.contains("instance.toml") && e.contains("hex digits"),
            "{e}"
        );
    }

    #[test]
    fn concurrent_creators_agree_on_one_id() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ids: Vec<Identity> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| open_or_create(dir, None).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    }
}
