//! Frames: the checksummed unit of every segment.
//!
//! ```text
//! offset size field
//!      0    4 crc      CRC32C (Castagnoli) of bytes 4..len
//!      4    4 len      total frame length in bytes, header included
//!      8    1 kind     1 = record, 2 = seal
//!      9    1 flags    bit 0: key present, bit 1: nonce present, bits 4-7: value encoding
//!     10    2 key_len  length of the key in bytes (0 without a key)
//!     12    8 seq      record: its sequence number; seal: first seq of the next segment
//!     20    8 ts       record: microseconds since the Unix epoch; seal: max ts in segment
//!     28   16 nonce    only when flag bit 1 is set
//!      …    … key      key_len bytes of UTF-8
//!      …    … value    the rest: the value bytes (record) or a u64 record count (seal)
//! ```
//! All integers are little-endian. The checksum covers the length, so a torn or zeroed
//! tail never decodes as a frame. This module only encodes and decodes bytes; it does
//! no I/O.

/// Bytes of the fixed frame header.
pub const HEADER_LEN: usize = 28;
/// Bytes of an optional nonce.
pub const NONCE_LEN: usize = 16;
/// Largest key in bytes.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;
/// Length of a seal frame.
pub const SEAL_LEN: usize = HEADER_LEN + 8;

/// Encoding tag of a deletion marker (a tombstone): the `compact` policy drops every
/// record superseded by a later one with the same key, and drops tombstones themselves
/// once they are older than the grace period.
pub const TOMBSTONE: u8 = 15;

const KIND_RECORD: u8 = 1;
const KIND_SEAL: u8 = 2;
const FLAG_KEY: u8 = 1;
const FLAG_NONCE: u8 = 2;
const FLAGS_RESERVED: u8 = 0b0000_1100;
/// Seal flag: the seqs before its `next_seq` that the segment lacks were skipped.
const SEAL_FLAG_GAP: u8 = 1;

/// A record to append, borrowed from the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Timestamp in microseconds since the Unix epoch; `None` means "now".
    pub ts: Option<i64>,
    /// Optional key (UTF-8).
    pub key: Option<&'a str>,
    /// Optional nonce (used by keyed lists for exactly-once appends).
    pub nonce: Option<u128>,
    /// Value encoding tag, 0..=15, opaque to the engine.
    pub encoding: u8,
    /// The value bytes.
    pub value: &'a [u8],
}

impl Entry<'_> {
    /// Encoded frame length.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN
            + if self.nonce.is_some() { NONCE_LEN } else { 0 }
            + self.key.map_or(0, str::len)
            + self.value.len()
    }

    /// Key plus value bytes: what the maximum record size limits.
    pub fn payload_len(&self) -> usize {
        self.key.map_or(0, str::len) + self.value.len()
    }
}

/// A record decoded in place from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp (microseconds since the Unix epoch).
    pub ts: i64,
    /// Key, if any (validated UTF-8).
    pub key: Option<&'a str>,
    /// Nonce, if any.
    pub nonce: Option<u128>,
    /// Value encoding tag.
    pub encoding: u8,
    /// Value bytes.
    pub value: &'a [u8],
}

impl RecordRef<'_> {
    /// Re-borrows this record as an [`Entry`] that keeps its timestamp.
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            ts: Some(self.ts),
            key: self.key,
            nonce: self.nonce,
            encoding: self.encoding,
            value: self.value,
        }
    }
}

/// The trailer that closes a full segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// First seq of the next segment (one past this segment's last record).
    pub next_seq: u64,
    /// Largest record timestamp in the segment (`i64::MIN` when empty).
    pub ts_max: i64,
    /// Number of records in the segment.
    pub records: u64,
    /// The seqs from one past the segment's last record up to `next_seq` were skipped on
    /// purpose ([`Log::skip_to`](crate::Log::skip_to): a follower's source no longer had
    /// them); in a seal without it such a jump is damage.
    pub gap: bool,
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A record.
    Record(RecordRef<'a>),
    /// A segment seal.
    Seal(Seal),
}

/// Why bytes did not decode as a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends before the frame does; `needed` is the full frame length when known.
    Incomplete {
        /// Total bytes the frame needs (at least the header when unknown).
        needed: usize,
    },
    /// The bytes are not a valid frame.
    Corrupt(String),
}

/// Appends the frame for `entry` with sequence number `seq` and timestamp `ts` to `out`.
///
/// The caller checks `entry.key` fits [`MAX_KEY_LEN`], `encoding` fits four bits and
/// the frame fits in `u32`.
pub fn encode_record(out: &mut Vec<u8>, seq: u64, ts: i64, entry: &Entry<'_>) {
    let start = out.len();
    let len = entry.frame_len();
    let key = entry.key.unwrap_or("");
    debug_assert!(key.len() <= MAX_KEY_LEN && entry.encoding < 16 && len <= u32::MAX as usize);
    let mut flags = entry.encoding << 4;
    if entry.key.is_some() {
        flags |= FLAG_KEY;
    }
    if entry.nonce.is_some() {
        flags |= FLAG_NONCE;
    }
    out.reserve(len);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(KIND_RECORD);
    out.push(flags);
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    if let Some(n) = entry.nonce {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(entry.value);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the seq of an encoded record frame and its checksum.
pub fn patch_seq(frame: &mut [u8], seq: u64) {
    frame[12..20].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&frame[4..]);
    frame[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a seal frame to `out`.
pub fn encode_seal(out: &mut Vec<u8>, seal: &Seal) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(SEAL_LEN as u32).to_le_bytes());
    out.push(KIND_SEAL);
    out.push(if seal.gap { SEAL_FLAG_GAP } else { 0 });
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seal.next_seq.to_le_bytes());
    out.extend_from_slice(&seal.ts_max.to_le_bytes());
    out.extend_from_slice(&seal.records.to_le_bytes());
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the total length a frame at the start of `buf` claims, if its header is present.
pub fn peek_len(buf: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize)
}

/// Splits whole record frames (as a replica or a copy from object storage receives
/// them) into batches for [`crate::Log::append_frames`]: each at most `limit` bytes
/// (or one frame), and ending before a jump in the seqs (records a compacting source
/// removed), where the next batch starts past the log's next seq. Bytes that do not form
/// a whole frame end up in a batch of their own, which `append_frames` refuses, saying
/// what is wrong with them.
pub fn batches(frames: &[u8], limit: usize) -> impl Iterator<Item = &[u8]> {
    let seq_of = |frame: &[u8]| match decode(frame, frame.len()) {
        Ok((Frame::Record(r), _)) => Some(r.seq),
        _ => None,
    };
    let mut rest = frames;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut cut, mut last_seq) = (0, None);
        while let Some(len) = peek_len(&rest[cut..]) {
            if len == 0 || cut + len > rest.len() || (cut > 0 && cut + len > limit) {
                break;
            }
            let seq = seq_of(&rest[cut..cut + len]);
            if cut > 0 && seq.is_some() && seq != last_seq.map(|s: u64| s + 1) {
                break;
            }
            last_seq = seq;
            cut += len;
        }
        let cut = if cut == 0 { rest.len() } else { cut };
        let (batch, after) = rest.split_at(cut);
        rest = after;
        Some(batch)
    })
}

/// Decodes the frame at the start of `buf`. `max_len` bounds the frame length: a larger
/// length is corruption, never an allocation. Returns the frame and its length.
pub fn decode(buf: &[u8], max_len: usize) -> Result<(Frame<'_>, usize), DecodeError> {
    decode_inner(buf, max_len, true)
}

/// Decodes a frame whose checksum was already verified by [`decode`] on the same bytes.
pub(crate) fn decode_verified(buf: &[u8]) -> Result<(Frame<'_>, usize), DecodeError> {
    decode_inner(buf, usize::MAX, false)
}

fn decode_inner(
    buf: &[u8],
    max_len: usize,
    check_crc: bool,
) -> Result<(Frame<'_>, usize), DecodeError> {
    let Some(len) = peek_len(buf) else {
        return Err(DecodeError::Incomplete { needed: HEADER_LEN });
    };
    if len < HEADER_LEN || len > max_len {
        return Err(DecodeError::Corrupt(format!(
            "frame length {len} outside {HEADER_LEN}..={max_len}"
        )));
    }
    let Some(frame) = buf.get(..len) else {
        return Err(DecodeError::Incomplete { needed: len });
    };
    if check_crc {
        let stored = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let actual = crc32c::crc32c(&frame[4..]);
        if stored != actual {
            return Err(DecodeError::Corrupt(format!(
                "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
            )));
        }
    }
    let kind = frame[8];
    let flags = frame[9];
    let key_len = u16::from_le_bytes([frame[10], frame[11]]) as usize;
    let seq = u64::from_le_bytes(frame[12..20].try_into().unwrap_or_default());
    let ts = i64::from_le_bytes(frame[20..28].try_into().unwrap_or_default());
    match kind {
        KIND_RECORD => {
            if flags & FLAGS_RESERVED != 0 {
                return Err(DecodeError::Corrupt(format!(
                    "reserved flag bits set ({flags:#04x})"
                )));
            }
            let mut at = HEADER_LEN;
            let nonce = if flags & FLAG_NONCE != 0 {
                let bytes = frame
                    .get(at..at + NONCE_LEN)
                    .ok_or_else(|| DecodeError::Corrupt("nonce extends past frame end".into()))?;
                at += NONCE_LEN;
                Some(u128::from_le_bytes(bytes.try_into().unwrap_or_default()))
            } else {
                None
            };
            let key = if flags & FLAG_KEY != 0 {
                let bytes = frame
                    .get(at..at + key_len)
                    .ok_or_else(|| DecodeError::Corrupt("key extends past frame end".into()))?;
                at += key_len;
                Some(
                    std::str::from_utf8(bytes)
                        .map_err(|_| DecodeError::Corrupt("key is not UTF-8".into()))?,
                )
            } else if key_len != 0 {
                return Err(DecodeError::Corrupt("key length without key flag".into()));
            } else {
                None
            };
            let value = &frame[at..];
            Ok((
                Frame::Record(RecordRef {
                    seq,
                    ts,
                    key,
                    nonce,
                    encoding: flags >> 4,
                    value,
                }),
                len,
            ))
        }
        KIND_SEAL => {
            if len != SEAL_LEN || flags & !SEAL_FLAG_GAP != 0 || key_len != 0 {
                return Err(DecodeError::Corrupt("malformed seal frame".into()));
            }
            let records =
                u64::from_le_bytes(frame[HEADER_LEN..SEAL_LEN].try_into().unwrap_or_default());
            Ok((
                Frame::Seal(Seal {
                    next_seq: seq,
                    ts_max: ts,
                    records,
                    gap: flags & SEAL_FLAG_GAP != 0,
                }),
                len,
            ))
        }
        other => Err(DecodeError::Corrupt(format!("unknown frame kind {other}"))),
    }
}

#[cfg(test)]
mod tests;
