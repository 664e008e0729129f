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
    Ok(load_with_len(file, first_seq, path)?.0)
}

/// [`load`], and how many bytes of the file that read saw: a tail segment's index grows
/// while it is read, so only this length (not a later `len()`) says whether the entries
/// after the valid prefix are damaged or were simply not there yet.
pub fn load_with_len(
    file: &dyn StorageFile,
    first_seq: u64,
    path: &Path,
) -> Result<(Vec<IndexEntry>, u64)> {
    let len = file.len().ctx("read", path)?;
    if len < INDEX_HEADER_LEN {
        return Ok((Vec::new(), len));
    }
    // A segment of at most 1 GiB has one entry per 4 KiB at most: a longer index file is
    // damaged, and only its plausible prefix is read (never an allocation of its length).
    let len = len.min(MAX_INDEX_LEN);
    let mut buf = vec![0u8; len as usize];
    let n = file.read_full_at(&mut buf, 0).ctx("read", path)?;
    buf.truncate(n);
    if buf.get(..INDEX_HEADER_LEN as usize) != Some(&encode_header(first_seq)[..]) {
        return Ok((Vec::new(), n as u64));
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
    Ok((entries, n as u64))
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

    fn entry(seq: u64, offset: u64, ts_max_before: i64) -> IndexEntry {
        IndexEntry {
            seq,
            offset,
            ts_max_before,
        }
    }

    /// Loads an index file made of `header` then `entries` then `tail` bytes.
    fn load_bytes(
        first: u64,
        header: &[u8],
        entries: &[IndexEntry],
        tail: &[u8],
    ) -> Vec<IndexEntry> {
        use crate::storage::sim::SimStorage;
        use crate::storage::{OpenMode, Storage};
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/x.idx");
        let f = sim.open(path, OpenMode::CreateTruncate).unwrap();
        let mut bytes = header.to_vec();
        for e in entries {
            encode_entry(&mut bytes, e);
        }
        bytes.extend_from_slice(tail);
        f.write_all_at(&bytes, 0).unwrap();
        load(&*f, first, path).unwrap()
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let h = encode_header(0x0102);
        assert_eq!(&h[0..8], b"REELIDX\0");
        assert_eq!(&h[8..12], &1u32.to_le_bytes());
        assert_eq!(&h[12..16], &[0; 4]);
        assert_eq!(&h[16..24], &0x0102u64.to_le_bytes());
        assert_eq!(&h[24..28], &[0; 4]);
        assert_eq!(&h[28..32], &crc32c::crc32c(&h[..28]).to_le_bytes());
        let mut b = vec![0xee; 32];
        encode_entry(&mut b, &entry(7, 4128, -1));
        let e = &b[32..];
        assert_eq!(e.len(), 32);
        assert_eq!(&e[0..8], &7u64.to_le_bytes());
        assert_eq!(&e[8..16], &4128u64.to_le_bytes());
        assert_eq!(&e[16..24], &(-1i64).to_le_bytes());
        assert_eq!(&e[24..28], &[0; 4]);
        assert_eq!(&e[28..32], &crc32c::crc32c(&e[..28]).to_le_bytes());
        assert_eq!(decode_entry(e), Some(entry(7, 4128, -1)));
        assert_eq!(decode_entry(&e[..31]), None);
        assert_eq!(
            (entry_pos(0), entry_pos(1), entry_pos(5)),
            (32, 64, 32 + 5 * 32)
        );
    }

    #[test]
    fn load_takes_the_valid_prefix_of_increasing_entries() {
        let h = encode_header(10);
        let good = [
            entry(10, 32, i64::MIN),
            entry(20, 4200, 5),
            entry(30, 8400, 5),
            entry(40, 12600, 9),
        ];
        assert_eq!(load_bytes(10, &h, &good, &[]), good);
        // A trailing partial entry is ignored.
        assert_eq!(load_bytes(10, &h, &good, &[1; 31]), good);
        // Equal timestamps are fine (they only have to grow or stay).
        assert_eq!(load_bytes(10, &h, &good[..3], &[]), good[..3]);
        // The first entry that does not move forward ends the usable prefix: a seq or
        // offset not greater than its predecessor's, or a smaller timestamp.
        for bad in [
            entry(20, 8400, 5),
            entry(19, 8400, 5),
            entry(30, 4200, 5),
            entry(30, 4100, 5),
            entry(30, 8400, 4),
        ] {
            let es = [good[0], good[1], bad, good[3]];
            assert_eq!(load_bytes(10, &h, &es, &[]), good[..2], "{bad:?}");
        }
        // A damaged entry ends it too.
        let mut damaged = Vec::new();
        encode_entry(&mut damaged, &good[2]);
        damaged[3] ^= 1;
        assert_eq!(load_bytes(10, &h, &good[..2], &damaged), good[..2]);
    }

    #[test]
    fn an_index_of_another_segment_or_version_loads_as_empty() {
        let good = [entry(10, 32, i64::MIN)];
        assert_eq!(load_bytes(11, &encode_header(10), &good, &[]), []);
        let mut other_version = encode_header(10);
        other_version[8] = 2;
        let crc = crc32c::crc32c(&other_version[..28]);
        other_version[28..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(load_bytes(10, &other_version, &good, &[]), []);
        // Reserved header bytes are checked (compared byte for byte).
        let mut reserved = encode_header(10);
        reserved[12] = 1;
        let crc = crc32c::crc32c(&reserved[..28]);
        reserved[28..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(load_bytes(10, &reserved, &good, &[]), []);
        // A header alone, or less than a header.
        assert_eq!(load_bytes(10, &encode_header(10), &[], &[]), []);
        assert_eq!(load_bytes(10, &encode_header(10)[..20], &[], &[]), []);
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
