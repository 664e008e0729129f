//! Segment files: naming, the 32-byte header, and listing a log's segments.
//!
//! A segment is `segments/<first seq, 20 digits>.seg`: a header followed by frames. It is
//! written only at its end, sealed by a seal frame when full, and never modified after
//! that (compaction replaces a sealed segment as a whole file).
//!
//! ```text
//! offset size field
//!      0    8 magic    "REELSEG\0"
//!      8    4 version  format version (1)
//!     12    4 flags    bit 0: compacted (seqs may have gaps)
//!     16    8 first    first seq of the segment (equals the file name)
//!     24    4 reserved 0
//!     28    4 crc      CRC32C of bytes 0..28
//! ```

use crate::error::{Error, IoContext, Result};
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// Bytes of the segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"REELSEG\0";
/// Header flag: the segment was rewritten by compaction and its seqs may have gaps.
pub const FLAG_COMPACTED: u32 = 1;

/// Directory holding segments and their indexes.
pub fn segments_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("segments")
}

/// Path of the segment starting at `first_seq`.
pub fn segment_path(log_dir: &Path, first_seq: u64) -> PathBuf {
    segments_dir(log_dir).join(format!("{first_seq:020}.seg"))
}

/// Path of the sparse index of the segment starting at `first_seq`.
pub fn index_path(log_dir: &Path, first_seq: u64) -> PathBuf {
    segments_dir(log_dir).join(format!("{first_seq:020}.idx"))
}

/// Encodes a segment header.
pub fn encode_header(first_seq: u64, flags: u32) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&flags.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// First seq.
    pub first_seq: u64,
    /// Header flags.
    pub flags: u32,
}

/// Decodes a segment header; `path` names the file in errors.
pub fn decode_header(bytes: &[u8], path: &Path) -> Result<SegmentHeader> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err(Error::corrupt(path, 0, "segment header is truncated"));
    }
    if &bytes[0..8] != MAGIC {
        return Err(Error::corrupt(path, 0, "bad segment magic"));
    }
    let crc = u32::from_le_bytes(bytes[28..32].try_into().unwrap_or_default());
    if crc != crc32c::crc32c(&bytes[..28]) {
        return Err(Error::corrupt(path, 0, "segment header checksum mismatch"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(SegmentHeader {
        flags: u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default()),
        first_seq: u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default()),
    })
}

/// Creates the empty segment starting at `first` and its index (headers only), then
/// syncs the directory so the new names survive a power cut. With `sync_files`, the
/// files' contents are synced too (a segment that must exist after a crash even if
/// nothing is ever written to it).
pub fn create(
    storage: &dyn Storage,
    log_dir: &Path,
    first: u64,
    sync_files: bool,
) -> Result<(
    std::sync::Arc<dyn crate::storage::StorageFile>,
    std::sync::Arc<dyn crate::storage::StorageFile>,
)> {
    use crate::storage::OpenMode;
    let seg_path = segment_path(log_dir, first);
    let idx_path = index_path(log_dir, first);
    let seg = storage
        .open(&seg_path, OpenMode::CreateTruncate)
        .ctx("create", &seg_path)?;
    seg.write_all_at(&encode_header(first, 0), 0)
        .ctx("write to", &seg_path)?;
    let idx = storage
        .open(&idx_path, OpenMode::CreateTruncate)
        .ctx("create", &idx_path)?;
    idx.write_all_at(&crate::index::encode_header(first), 0)
        .ctx("write to", &idx_path)?;
    if sync_files {
        seg.sync_data().ctx("sync", &seg_path)?;
        idx.sync_data().ctx("sync", &idx_path)?;
    }
    let dir = segments_dir(log_dir);
    storage.sync_dir(&dir).ctx("sync", &dir)?;
    Ok((seg, idx))
}

/// First seqs of all segments in the log, ascending.
pub fn list_segments(storage: &dyn Storage, log_dir: &Path) -> Result<Vec<u64>> {
    let dir = segments_dir(log_dir);
    let names = storage.list_dir(&dir).ctx("list", &dir)?;
    let mut seqs: Vec<u64> = names
        .iter()
        .filter_map(|n| n.to_str())
        .filter_map(|n| n.strip_suffix(".seg"))
        .filter(|n| n.len() == 20)
        .filter_map(|n| n.parse().ok())
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let p = Path::new("x.seg");
        let mut h = encode_header(77, FLAG_COMPACTED);
        assert_eq!(
            decode_header(&h, p).unwrap(),
            SegmentHeader {
                first_seq: 77,
                flags: FLAG_COMPACTED
            }
        );
        h[17] ^= 1;
        assert!(decode_header(&h, p).unwrap_err().is_corrupt());
    }

    #[test]
    fn the_header_of_format_md_encodes_byte_for_byte() {
        // FORMAT.md §2.1: segment 0.
        let mut expected = vec![
            0x52, 0x45, 0x45, 0x4c, 0x53, 0x45, 0x47, 0x00, 0x01, 0, 0, 0,
        ];
        expected.extend_from_slice(&[0; 16]);
        expected.extend_from_slice(&[0xaf, 0xc9, 0xdb, 0xf9]);
        assert_eq!(encode_header(0, 0).to_vec(), expected);
    }

    #[test]
    fn names_sort_by_seq() {
        let d = Path::new("/s");
        assert!(segment_path(d, 9) < segment_path(d, 10));
        assert!(segment_path(d, 10).ends_with("segments/00000000000000000010.seg"));
    }
}
