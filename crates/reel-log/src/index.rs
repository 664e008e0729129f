//! Sparse per-segment index: which seq starts at which byte, and the largest timestamp
//! seen before it, so that seeking by seq or time reads at most one index interval.
//!
//! `segments/<first seq>.idx` is a 32-byte header then 32-byte entries:
//!
//! ```text
//! header: magic "REELIDX\0" (8) | version u32 | reserved u32 | first seq u64 | reserved u32 | crc u32
//! entry:  seq u64 | offset u64 | ts_max_before i64 | reserved u32 | crc u32 (CRC32C of bytes 0..28)
//! ```
//!
//! An entry is written for the first frame of a segment and for the first frame that
//! starts at least [`INDEX_INTERVAL`] bytes after the previous entry. `ts_max_before` is
//! the largest timestamp of the segment's records before that frame (`i64::MIN` if none):
//! it only grows, so it can be binary searched even though timestamps need not.
//! The index is a cache: recovery rebuilds the tail segment's index from the segment,
//! and a damaged entry (of any segment) is never trusted: lookups use the entries before
//! it and scan from there. `reel verify` reports damaged index files.

use crate::error::{IoContext, Result};
use crate::segment::FORMAT_VERSION;
use crate::storage::StorageFile;
use std::path::Path;

/// Bytes of the index header and of each entry.
pub const INDEX_HEADER_LEN: u64 = 32;
/// Bytes per entry.
pub const ENTRY_LEN: u64 = 32;
/// Segment bytes between index entries.
pub const INDEX_INTERVAL: u64 = 4096;
const MAGIC: &[u8; 8] = b"REELIDX\0";
/// The most bytes of an index file ever read: room for more entries than a segment of the
/// largest size can need.
const MAX_INDEX_LEN: u64 = INDEX_HEADER_LEN + ENTRY_LEN * ((1 << 30) / INDEX_INTERVAL + 1024);

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Seq of the frame at `offset`.
    pub seq: u64,
    /// Byte offset of that frame in the segment file.
    pub offset: u64,
    /// Largest record timestamp in the segment before this frame (`i64::MIN` if none).
    pub ts_max_before: i64,
}

/// Encodes the index header.
pub fn encode_header(first_seq: u64) -> [u8; INDEX_HEADER_LEN as usize] {
    let mut h = [0u8; INDEX_HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends an encoded entry to `out`.
pub fn encode_entry(out: &mut Vec<u8>, e: &IndexEntry) {
    let start = out.len();
    out.extend_from_slice(&e.seq.to_le_bytes());
    out.extend_from_slice(&e.offset.to_le_bytes());
    out.extend_from_slice(&e.ts_max_before.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let crc = crc32c::crc32c(&out[start..start + 28]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes one entry; `None` when its checksum fails.
pub fn decode_entry(b: &[u8]) -> Option<IndexEntry> {
    let b = b.get(..ENTRY_LEN as usize)?;
    let crc = u32::from_le_bytes(b[28..32].try_into().ok()?);
    if crc != crc32c::crc32c(&b[..28]) {
        return None;
    }
    Some(IndexEntry {
        seq: u64::from_le_bytes(b[0..8].try_into().ok()?),
        offset: u64::from_le_bytes(b[8..16].try_into().ok()?),
        ts_max_before: i64::from_le_bytes(b[16..24].try_into().ok()?),
    })
}

/// Loads the valid prefix of an index: entries up to the first damaged or out-of-order
/// one. An index with a bad header loads as empty.
pub fn load(file: &dyn StorageFile, first_seq: u64, path: &Path) -> Result<Vec<IndexEntry>> {
    let len = file.len().ctx("read", path)?;
    if len < INDEX_HEADER_LEN {
        return Ok(Vec::new());
    }
    // A segment of at most 1 GiB has one entry per 4 KiB at most: a longer index file is
    // damaged, and only its plausible prefix is read (never an allocation of its length).
    let len = len.min(MAX_INDEX_LEN);
    let mut buf = vec![0u8; len as usize];
    let n = file.read_full_at(&mut buf, 0).ctx("read", path)?;
    buf.truncate(n);
    if buf.get(..INDEX_HEADER_LEN as usize) != Some(&encode_header(first_seq)[..]) {
        return Ok(Vec::new());
    }
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(buf.len() / ENTRY_LEN as usize);
    for chunk in buf[INDEX_HEADER_LEN as usize..].chunks_exact(ENTRY_LEN as usize) {
        let Some(e) = decode_entry(chunk) else { break };
        if let Some(prev) = entries.last()
            && (e.seq <= prev.seq
                || e.offset <= prev.offset
                || e.ts_max_before < prev.ts_max_before)
        {
            break;
        }
        entries.push(e);
    }
    Ok(entries)
}

/// Byte position of entry number `i` in the index file.
pub fn entry_pos(i: u64) -> u64 {
    INDEX_HEADER_LEN + i * ENTRY_LEN
}

/// The last entry whose seq is at most `seq`.
pub fn floor_by_seq(entries: &[IndexEntry], seq: u64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.seq <= seq);
    i.checked_sub(1).map(|i| &entries[i])
}

/// The last entry before which every record of the segment is older than `ts`:
/// the first record at or after `ts` is at or after this entry.
pub fn floor_by_time(entries: &[IndexEntry], ts: i64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.ts_max_before < ts);
    i.checked_sub(1).map(|i| &entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_and_rejects_damage() {
        let e = IndexEntry {
            seq: 5,
            offset: 4096,
            ts_max_before: -3,
        };
        let mut b = Vec::new();
        encode_entry(&mut b, &e);
        assert_eq!(decode_entry(&b), Some(e));
        b[3] ^= 0x40;
        assert_eq!(decode_entry(&b), None);
    }

    #[test]
    fn floors() {
        let es = [
            IndexEntry {
                seq: 0,
                offset: 32,
                ts_max_before: i64::MIN,
            },
            IndexEntry {
                seq: 10,
                offset: 5000,
                ts_max_before: 100,
            },
            IndexEntry {
                seq: 20,
                offset: 9000,
                ts_max_before: 200,
            },
        ];
        assert_eq!(floor_by_seq(&es, 15).unwrap().seq, 10);
        assert_eq!(floor_by_seq(&es, 20).unwrap().seq, 20);
        assert_eq!(floor_by_time(&es, 150).unwrap().seq, 10);
        assert_eq!(floor_by_time(&es, 100).unwrap().seq, 0);
        assert_eq!(floor_by_time(&es, 201).unwrap().seq, 20);
    }
}
