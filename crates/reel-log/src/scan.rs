//! Sequential frame scanning over a segment file, shared by recovery, positioning
//! and verification.

use crate::frame::{self, DecodeError, Frame, RecordRef, Seal};
use crate::storage::StorageFile;
use std::io;
use std::ops::ControlFlow;

/// Bytes read per system call while scanning.
pub const SCAN_CHUNK: usize = 256 << 10;

/// Where and why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Clean end of file at `offset`.
    Eof {
        /// File length.
        offset: u64,
    },
    /// A seal frame starts at `offset`.
    Seal {
        /// Offset of the seal frame.
        offset: u64,
        /// Its content.
        seal: Seal,
    },
    /// Bytes at `offset` are not a frame: damaged, or a torn write when `incomplete`.
    Bad {
        /// Offset of the first bad byte.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// The file ends inside a frame (a torn append rather than damage).
        incomplete: bool,
    },
    /// The visitor stopped at the frame starting at `offset`.
    Stopped {
        /// Offset of the frame the visitor refused.
        offset: u64,
    },
}

/// Visits every record frame from `start` until the end of the file, a seal, a bad
/// frame, or until `visit` breaks. `visit` gets each record's offset and contents.
pub fn scan(
    file: &dyn StorageFile,
    start: u64,
    max_frame: usize,
    mut visit: impl FnMut(u64, &RecordRef<'_>) -> ControlFlow<()>,
) -> io::Result<ScanEnd> {
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut pos = start;
    loop {
        let n = file.read_full_at(&mut buf, pos)?;
        if n == 0 {
            return Ok(ScanEnd::Eof { offset: pos });
        }
        let mut at = 0usize;
        loop {
            match frame::decode(&buf[at..n], max_frame) {
                Ok((Frame::Record(r), len)) => {
                    if visit(pos + at as u64, &r).is_break() {
                        return Ok(ScanEnd::Stopped {
                            offset: pos + at as u64,
                        });
                    }
                    at += len;
                }
                Ok((Frame::Seal(seal), _)) => {
                    return Ok(ScanEnd::Seal {
                        offset: pos + at as u64,
                        seal,
                    });
                }
                Err(DecodeError::Incomplete { needed }) => {
                    if n < buf.len() {
                        // The file ends here: cleanly or inside a frame.
                        if at == n {
                            return Ok(ScanEnd::Eof {
                                offset: pos + at as u64,
                            });
                        }
                        return Ok(ScanEnd::Bad {
                            offset: pos + at as u64,
                            reason: format!(
                                "file ends inside a frame ({} of {needed} bytes present)",
                                n - at
                            ),
                            incomplete: true,
                        });
                    }
                    if at == 0 {
                        // One frame larger than the buffer: grow to fit it.
                        buf.resize(needed.max(buf.len() * 2), 0);
                    }
                    break;
                }
                Err(DecodeError::Corrupt(reason)) => {
                    return Ok(ScanEnd::Bad {
                        offset: pos + at as u64,
                        reason,
                        incomplete: false,
                    });
                }
            }
        }
        pos += at as u64;
    }
}

/// Finds the first offset at or after `from` where a valid record frame with a seq
/// greater than `after_seq` starts, by trying every byte offset. Used to resume
/// past damage; `None` when no such frame exists before the end of the file. Reads in
/// chunks of [`SCAN_CHUNK`]; a candidate frame longer than what a chunk holds is read
/// alone, so memory stays bounded by the largest plausible frame actually met.
pub fn resync(
    file: &dyn StorageFile,
    from: u64,
    after_seq: u64,
    max_frame: usize,
) -> io::Result<Option<(u64, u64)>> {
    let len = file.len()?;
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut single = Vec::new();
    let mut base = from;
    while base < len {
        let n = file.read_full_at(&mut buf, base)?;
        if n == 0 {
            break;
        }
        for at in 0..n {
            let found = match frame::decode(&buf[at..n], max_frame) {
                Ok((Frame::Record(r), _)) => (r.seq > after_seq).then_some(r.seq),
                Ok((Frame::Seal(s), _)) => (s.next_seq > after_seq).then_some(s.next_seq),
                // A plausible frame longer than the rest of this chunk: read it whole.
                Err(DecodeError::Incomplete { needed })
                    if needed <= max_frame
                        && base + (at + needed) as u64 <= len
                        && plausible_header(&buf[at..n]) =>
                {
                    single.resize(needed, 0);
                    file.read_exact_at(&mut single, base + at as u64)?;
                    match frame::decode(&single, max_frame) {
                        Ok((Frame::Record(r), _)) => (r.seq > after_seq).then_some(r.seq),
                        Ok((Frame::Seal(s), _)) => (s.next_seq > after_seq).then_some(s.next_seq),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            if let Some(seq) = found {
                return Ok(Some((base + at as u64, seq)));
            }
        }
        if n < buf.len() {
            break;
        }
        // Overlap by a frame header so a header straddling the chunk edge is seen whole.
        base += (n.saturating_sub(frame::HEADER_LEN)).max(1) as u64;
    }
    Ok(None)
}

/// Cheap checks of a frame header before reading a long candidate frame whole: the kind
/// is a record or a seal, reserved flag bits are clear, a key length needs the key flag.
fn plausible_header(b: &[u8]) -> bool {
    let Some(h) = b.get(..frame::HEADER_LEN) else {
        return false;
    };
    let (kind, flags) = (h[8], h[9]);
    let key_len = u16::from_le_bytes([h[10], h[11]]);
    match kind {
        1 => flags & 0b0000_1100 == 0 && (flags & 1 != 0 || key_len == 0),
        2 => flags == 0 && key_len == 0,
        _ => false,
    }
}
