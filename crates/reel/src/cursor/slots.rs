//! Small position files updated in place with two checksummed slots.
//!
//! ```text
//! 128 bytes = two 64-byte slots; a slot:
//!  0  magic "REELPOS\0" (8)   8 version u32   12 kind u32 (1 reader cursor, 2 tee marker)
//! 16  generation u64          24 a u64        32 b u64     40 updated (µs) i64
//! 48  reserved (12)           60 crc u32 (CRC32C of bytes 0..60)
//! ```
//! An update writes generation g+1 into the slot g+1 mod 2 with one `pwrite`, so a torn
//! write can only damage the slot being written: the other still holds the previous
//! position. Readers take the valid slot with the highest generation. No rename and no
//! directory sync per update: a commit costs one `pwrite` (plus `fdatasync` if asked).

use crate::error::{Error, Result};
use reel_log::storage::{OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SLOT: usize = 64;
const MAGIC: &[u8; 8] = b"REELPOS\0";
const VERSION: u32 = 1;

/// What a position file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A named reader: `a` = next seq to deliver, `b` = records lost to retention.
    Cursor = 1,
    /// A tee target: `a` = next source seq, `b` = destination seq after the last copy.
    TeeMarker = 2,
}

/// The two numbers a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotValue {
    /// First number.
    pub a: u64,
    /// Second number.
    pub b: u64,
    /// When it was written (µs since the epoch).
    pub updated: i64,
}

/// An open position file.
#[derive(Debug)]
pub struct PositionFile {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    kind: SlotKind,
    generation: u64,
}

fn encode(kind: SlotKind, generation: u64, v: &SlotValue) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[24..32].copy_from_slice(&v.a.to_le_bytes());
    b[32..40].copy_from_slice(&v.b.to_le_bytes());
    b[40..48].copy_from_slice(&v.updated.to_le_bytes());
    let crc = crc32c::crc32c(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes one slot: `None` when empty or damaged.
pub fn decode_slot(b: &[u8], kind: SlotKind) -> Option<(u64, SlotValue)> {
    let b = b.get(..SLOT)?;
    if &b[0..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(b[60..64].try_into().ok()?);
    if crc != crc32c::crc32c(&b[..60]) {
        return None;
    }
    if u32::from_le_bytes(b[8..12].try_into().ok()?) != VERSION
        || u32::from_le_bytes(b[12..16].try_into().ok()?) != kind as u32
    {
        return None;
    }
    let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    Some((
        u(16),
        SlotValue {
            a: u(24),
            b: u(32),
            updated: u(40) as i64,
        },
    ))
}

impl PositionFile {
    /// Opens or creates the file. Returns the file and its current value (`None` when
    /// new). A file whose both slots are damaged is an error, never silently reset.
    pub fn open(
        storage: &dyn Storage,
        path: &Path,
        kind: SlotKind,
        writable: bool,
    ) -> Result<(PositionFile, Option<SlotValue>)> {
        let mode = if writable {
            OpenMode::CreateOrOpen
        } else {
            OpenMode::Read
        };
        let file = storage
            .open(path, mode)
            .map_err(|e| reel_log::Error::io("open", path, e))?;
        let mut buf = [0u8; 2 * SLOT];
        let n = file
            .read_full_at(&mut buf, 0)
            .map_err(|e| reel_log::Error::io("read", path, e))?;
        let slots = [
            decode_slot(&buf[..SLOT.min(n)], kind),
            decode_slot(buf.get(SLOT..n).unwrap_or(&[]), kind),
        ];
        let best = slots.iter().flatten().max_by_key(|(g, _)| *g).copied();
        if best.is_none() && buf[..n].iter().any(|&b| b != 0) {
            return Err(Error::CursorCorrupt {
                path: path.into(),
                reason: "both slots fail their checksum".into(),
            });
        }
        let generation = best.map_or(0, |(g, _)| g);
        Ok((
            PositionFile {
                file,
                path: path.into(),
                kind,
                generation,
            },
            best.map(|(_, v)| v),
        ))
    }

    /// Reads the current value of a position file without keeping it open.
    pub fn read(storage: &dyn Storage, path: &Path, kind: SlotKind) -> Result<Option<SlotValue>> {
        match storage.open(path, OpenMode::Read) {
            Ok(_) => Ok(PositionFile::open(storage, path, kind, false)?.1),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(reel_log::Error::io("open", path, e).into()),
        }
    }

    /// Writes a new value; with `durable`, also syncs it.
    pub fn write(&mut self, v: SlotValue, durable: bool) -> Result<()> {
        let generation = self.generation + 1;
        let slot = (generation % 2) * SLOT as u64;
        let bytes = encode(self.kind, generation, &v);
        self.file
            .write_all_at(&bytes, slot)
            .map_err(|e| reel_log::Error::io("write to", &self.path, e))?;
        if durable {
            self.file
                .sync_data()
                .map_err(|e| reel_log::Error::io("sync", &self.path, e))?;
        }
        self.generation = generation;
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reel_log::storage::sim::SimStorage;

    #[test]
    fn alternating_slots_survive_a_torn_write() {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let p = Path::new("/d/r.cursor");
        let (mut f, v) = PositionFile::open(&sim, p, SlotKind::Cursor, true).unwrap();
        assert_eq!(v, None);
        for i in 1..=5 {
            f.write(
                SlotValue {
                    a: i,
                    b: 0,
                    updated: 0,
                },
                false,
            )
            .unwrap();
        }
        // Tear the slot the last write went to: the previous value remains.
        sim.corrupt(p, 64 + 30, &[0xaa]).unwrap();
        let v = PositionFile::read(&sim, p, SlotKind::Cursor)
            .unwrap()
            .unwrap();
        assert_eq!(v.a, 4);
        sim.corrupt(p, 30, &[0xaa]).unwrap();
        assert!(matches!(
            PositionFile::read(&sim, p, SlotKind::Cursor),
            Err(Error::CursorCorrupt { .. })
        ));
    }
}
