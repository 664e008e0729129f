//! View checkpoints: `views/<name>/checkpoint`, replaced atomically as a whole.
//!
//! ```text
//!  0  magic "REELVIEW" (8)     8  format version u32 (1)    12 view version u32
//! 16  applied_to u64 (every record below it is applied)
//! 24  log_id u128 (16)         40 state length u64          48 state bytes
//! 48+len  crc u32: CRC32C of every byte before it
//! ```
//! Written to a temporary file named after the process, synced, renamed over the
//! checkpoint, directory synced: a crash leaves the old or the new checkpoint, each
//! consistent with its own `applied_to`.

use crate::error::{Error, Result};
use reel_log::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"REELVIEW";
const FORMAT: u32 = 1;
const HEADER: usize = 48;

/// Directory holding every view's folder.
pub fn views_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("views")
}

/// Path of a view's checkpoint.
pub fn checkpoint_path(spool_dir: &Path, name: &str) -> PathBuf {
    views_dir(spool_dir).join(name).join("checkpoint")
}

/// A decoded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The view version that wrote it.
    pub version: u32,
    /// Every record below this seq is reflected in `state`.
    pub applied_to: u64,
    /// The log it belongs to.
    pub log_id: u128,
    /// The view's saved state.
    pub state: Vec<u8>,
}

impl Checkpoint {
    /// Encodes header, state and checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + self.state.len() + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT.to_le_bytes());
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.applied_to.to_le_bytes());
        b.extend_from_slice(&self.log_id.to_le_bytes());
        b.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        b.extend_from_slice(&self.state);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a checkpoint; `None` when the bytes are not a valid one.
    pub fn decode(b: &[u8]) -> Option<Checkpoint> {
        Self::decode_owned(b.to_vec())
    }

    /// Decodes a checkpoint, reusing the buffer for the state (no second copy of a
    /// possibly large state).
    pub fn decode_owned(b: Vec<u8>) -> Option<Checkpoint> {
        Self::decode_checked(b).ok()
    }

    /// Decodes a checkpoint, or says what is wrong with the bytes.
    pub fn decode_checked(mut b: Vec<u8>) -> std::result::Result<Checkpoint, String> {
        if b.len() < HEADER + 4 || &b[..8] != MAGIC {
            return Err("not a view checkpoint (bad magic or too short)".into());
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err("view checkpoint checksum does not match".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
        let format = u32_at(8);
        if format != FORMAT {
            return Err(format!(
                "view checkpoint format {format} is not supported (this build reads {FORMAT})"
            ));
        }
        let len = u64_at(40);
        if (HEADER as u64)
            .checked_add(len)
            .and_then(|n| n.checked_add(4))
            != Some(b.len() as u64)
        {
            return Err("view checkpoint length does not match its file".into());
        }
        let version = u32_at(12);
        let applied_to = u64_at(16);
        let log_id = u128::from(u64_at(24)) | (u128::from(u64_at(32)) << 64);
        b.truncate(HEADER + len as usize);
        b.drain(..HEADER);
        Ok(Checkpoint {
            version,
            applied_to,
            log_id,
            state: b,
        })
    }

    /// Reads a view's checkpoint: `Ok(None)` when there is none; a damaged one is
    /// reported as `None` too (the view is then rebuilt, losing nothing).
    pub fn read(storage: &dyn Storage, spool_dir: &Path, name: &str) -> Result<Option<Checkpoint>> {
        Ok(Self::read_checked(storage, spool_dir, name)?.and_then(|c| c.ok()))
    }

    /// Reads a view's checkpoint: `Ok(None)` when there is none, `Ok(Some(Err(why)))`
    /// when the file is damaged (`why` names the file and the problem).
    pub fn read_checked(
        storage: &dyn Storage,
        spool_dir: &Path,
        name: &str,
    ) -> Result<Option<std::result::Result<Checkpoint, String>>> {
        let path = checkpoint_path(spool_dir, name);
        let file = match storage.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(reel_log::Error::io("open", path, e).into()),
        };
        let len = file
            .len()
            .map_err(|e| reel_log::Error::io("read", &path, e))?;
        let mut b = vec![0u8; len as usize];
        file.read_exact_at(&mut b, 0)
            .map_err(|e| reel_log::Error::io("read", &path, e))?;
        Ok(Some(
            Checkpoint::decode_checked(b).map_err(|why| format!("{}: {why}", path.display())),
        ))
    }

    /// Reads only the header fields (version, applied_to), for listings.
    pub fn peek(storage: &dyn Storage, path: &Path) -> Option<(u32, u64)> {
        let file = storage.open(path, OpenMode::Read).ok()?;
        let mut h = [0u8; HEADER];
        file.read_exact_at(&mut h, 0).ok()?;
        if &h[..8] != MAGIC {
            return None;
        }
        Some((
            u32::from_le_bytes(h[12..16].try_into().ok()?),
            u64::from_le_bytes(h[16..24].try_into().ok()?),
        ))
    }

    /// Atomically replaces the view's checkpoint.
    pub fn write(&self, storage: &dyn Storage, spool_dir: &Path, name: &str) -> Result<()> {
        let path = checkpoint_path(spool_dir, name);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let io = |op, p: &Path, e| Error::from(reel_log::Error::io(op, p, e));
        storage
            .create_dir_all(&dir)
            .map_err(|e| io("create directory", &dir, e))?;
        let tmp = dir.join(format!("checkpoint.tmp.{}", std::process::id()));
        let f = storage
            .open(&tmp, OpenMode::CreateTruncate)
            .map_err(|e| io("create", &tmp, e))?;
        f.write_all_at(&self.encode(), 0)
            .map_err(|e| io("write to", &tmp, e))?;
        f.sync_data().map_err(|e| io("sync", &tmp, e))?;
        storage
            .rename(&tmp, &path)
            .map_err(|e| io("rename", &path, e))?;
        storage.sync_dir(&dir).map_err(|e| io("sync", &dir, e))?;
        Ok(())
    }

    /// Removes a view's checkpoint (it is rebuilt on next open).
    pub fn remove(storage: &dyn Storage, spool_dir: &Path, name: &str) -> Result<()> {
        let path = checkpoint_path(spool_dir, name);
        match storage.remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(reel_log::Error::io("remove", path, e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let c = Checkpoint {
            version: 3,
            applied_to: 99,
            log_id: 7,
            state: b"state".to_vec(),
        };
        let mut b = c.encode();
        assert_eq!(Checkpoint::decode(&b), Some(c));
        b[50] ^= 1;
        assert_eq!(Checkpoint::decode(&b), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Checkpoint::decode(&b);
        }
    }
}
