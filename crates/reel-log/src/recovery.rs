//! Crash repair of the tail: run on open when the head is not trusted (new boot, copied
//! directory), when a writer died mid-append, and once per writer handle.
//!
//! Only the tail segment can be damaged by a crash: sealed segments were synced before
//! their successor was created. The tail is scanned from its last verified index entry
//! (or, when the head is untrusted and pages may have reached the disk out of order,
//! from its first frame) up to the first frame that is torn, damaged or out of sequence;
//! everything from there on is cut, and said so in the [`RecoveryReport`]. While the
//! head is trusted (same boot, same file), frames past its published end belong to a
//! writer that died mid-append: never visible, never acknowledged, they are cut too, so
//! a crashed append never reappears later as a phantom record. After a power cut the
//! head is not trusted and every complete, valid frame is kept.

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, Frame};
use crate::head::{Head, TailState};
use crate::index::{self, INDEX_INTERVAL, IndexEntry};
use crate::log::max_frame_len;
use crate::meta::Config;
use crate::scan::{self, ScanEnd};
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, Storage};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// What recovery repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// A torn or damaged tail that was cut off.
    pub cut: Option<CutTail>,
    /// Segment files removed because they were never completely created.
    pub removed_segments: Vec<PathBuf>,
    /// Index entries rebuilt from the segment.
    pub rebuilt_index_entries: u64,
    /// Damaged bytes in the tail that valid records follow: kept, not cut, and reported.
    pub damage: Vec<TailDamage>,
}

/// Damage found in the tail segment with valid records after it. Readers stop in front
/// of it as they do for damage in a sealed segment; `reel verify` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailDamage {
    /// The segment file.
    pub path: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Bytes up to the next valid record.
    pub bytes: u64,
    /// What is wrong at `offset`.
    pub reason: String,
    /// The first seq that cannot be read.
    pub first_seq: u64,
    /// The seq of the next valid record (where `reel rewind --to-seq` skips to).
    pub resume_seq: u64,
}

/// A cut tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutTail {
    /// The segment file.
    pub path: PathBuf,
    /// Where the kept data ends.
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Why the bytes at `offset` were not kept.
    pub reason: String,
    /// The cut starts with a whole record frame that does not verify (its checksum, or
    /// its seq out of sequence), with no zeroed sector in it: a crash can leave that
    /// (a write whose pages reached the disk out of order) but so does damage to the
    /// last record, which `reel verify` reports rather than let pass as a torn write.
    pub whole_frame: bool,
}

impl RecoveryReport {
    /// True when nothing had to be cut or removed.
    pub fn is_clean(&self) -> bool {
        self.cut.is_none() && self.removed_segments.is_empty() && self.damage.is_empty()
    }

    /// One line per repair, for people.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.cut {
            out.push(format!(
                "recovery cut {} unacknowledged or torn bytes from {} at offset {} ({})",
                c.bytes,
                c.path.display(),
                c.offset,
                c.reason
            ));
        }
        for d in &self.damage {
            out.push(format!(
                "damaged bytes in {} at offset {} ({}): records from seq {} to {} cannot be read; \
                 the {} bytes and every record after them were kept, not cut \
                 (`reel verify` lists the damage, `reel rewind --to-seq {}` skips it)",
                d.path.display(),
                d.offset,
                d.reason,
                d.first_seq,
                d.resume_seq.saturating_sub(1),
                d.bytes,
                d.resume_seq
            ));
        }
        for p in &self.removed_segments {
            out.push(format!(
                "recovery removed incompletely created segment {}",
                p.display()
            ));
        }
        out
    }

    pub(crate) fn log_warnings(&self, dir: &Path) {
        for line in self.describe() {
            tracing::warn!(dir = %dir.display(), "{line}");
        }
    }
}

/// Repairs the tail and republishes the head from the segments. With `mutate` false,
/// nothing on disk changes (read-only opens) and only `head` is filled in.
///
/// `full_scan` distrusts the index and scans the whole tail: after a power cut, pages
/// may have reached the disk out of order, so an index entry can point past a hole.
pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    head: &Head,
    config: &Config,
    mutate: bool,
    full_scan: bool,
) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let segs_dir = segment::segments_dir(dir);
    if mutate {
        storage
            .create_dir_all(&segs_dir)
            .ctx("create directory", &segs_dir)?;
    }
    let max_frame = max_frame_len(config);
    let mut segs = segment::list_segments(storage, dir)?;
    // A log always keeps its tail segment (retention never drops it, and creation makes
    // the first before `reel.meta`): none at all, while the head says records were
    // written, is a deleted or lost `segments/`, not a log to start over.
    if segs.is_empty() && head.next_seq() > 0 {
        return Err(Error::corrupt(
            &segs_dir,
            0,
            format!(
                "the log has no segment files, but it held records up to seq {}: segments/ \
                 was deleted or lost (restore it from a copy of the store)",
                head.next_seq() - 1
            ),
        ));
    }
    // A trusted head is the published truth: what a writer wrote after it (and died
    // before publishing) was never visible and never acknowledged, so it is dropped
    // rather than resurrected. After a power cut nothing says what was published, so
    // every valid frame is kept.
    let published = (!full_scan).then(|| head.tail());
    if let (Some(p), true) = (published, mutate) {
        // Every one of them, even the last: when retention inside the dead writer's
        // group deleted the published tail itself, nothing left is published, and the
        // log starts over at the published end (below).
        while segs.last().is_some_and(|&s| s > p.first_seq) {
            let orphan = segs.pop().unwrap_or_default();
            let path = segment::segment_path(dir, orphan);
            storage.remove_file(&path).ctx("remove", &path)?;
            let _ = storage.remove_file(&segment::index_path(dir, orphan));
            storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
            report.removed_segments.push(path);
        }
    }
    let (first, file, flags) = loop {
        let Some(&first) = segs.last() else {
            // Every segment is gone: start over after the last seq anyone was told of.
            let start = head.next_seq();
            if !mutate {
                return Err(Error::corrupt(&segs_dir, 0, "the log has no segments"));
            }
            segment::create(storage, dir, start, true)?;
            segs.push(start);
            continue;
        };
        let path = segment::segment_path(dir, first);
        let mode = if mutate {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        let file = storage.open(&path, mode).ctx("open", &path)?;
        let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
        let n = file.read_full_at(&mut hdr, 0).ctx("read", &path)?;
        match segment::decode_header(&hdr[..n], &path) {
            Ok(h) if h.first_seq == first => break (first, file, h.flags),
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
            Ok(_) | Err(_) => {
                // A header that never reached the disk reads as zeros (or is missing).
                // The header is a segment's first write, so any sync of the file made it
                // durable: a segment without one holds nothing that was ever synced.
                let never_synced = hdr[..n].iter().all(|&b| b == 0);
                if !never_synced || !mutate {
                    return Err(Error::corrupt(&path, 0, "segment header is damaged"));
                }
                if segs.len() == 1 {
                    file.set_len(0).ctx("truncate", &path)?;
                    file.write_all_at(&segment::encode_header(first, 0), 0)
                        .ctx("write to", &path)?;
                    file.sync_data().ctx("sync", &path)?;
                    break (first, file, 0);
                }
                storage.remove_file(&path).ctx("remove", &path)?;
                let _ = storage.remove_file(&segment::index_path(dir, first));
                storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
                report.removed_segments.push(path);
                segs.pop();
            }
        }
    };
    let path = segment::segment_path(dir, first);
    let compacted = flags & FLAG_COMPACTED != 0;

    // Where to start scanning: the last index entry that points at the frame it names.
    let idx_path = segment::index_path(dir, first);
    let idx_file = if mutate {
        Some(
            storage
                .open(&idx_path, OpenMode::CreateOrOpen)
                .ctx("open", &idx_path)?,
        )
    } else {
        storage.open(&idx_path, OpenMode::Read).ok()
    };
    let mut entries = match (&idx_file, full_scan) {
        (Some(f), false) => index::load(&**f, first, &idx_path)?,
        _ => Vec::new(),
    };
    // Index entries a dead writer added for frames it never published are not trusted.
    let published_end = published
        .filter(|p| p.first_seq == first)
        .map(|p| p.next_seq);
    while let Some(e) = entries.last() {
        let unpublished = published_end.is_some_and(|end| e.seq >= end);
        if !unpublished
            && e.offset >= SEGMENT_HEADER_LEN
            && frame_seq_at(&*file, e.offset, max_frame) == Some(e.seq)
        {
            break;
        }
        entries.pop();
    }
    let kept_entries = entries.len() as u64;
    let (start_offset, mut expected, mut ts_max) = match entries.last() {
        Some(e) => (e.offset, e.seq, e.ts_max_before),
        None => (SEGMENT_HEADER_LEN, first, i64::MIN),
    };
    let mut last_index_offset = entries.last().map_or(0, |e| e.offset);
    let mut records = expected - first;
    let mut new_entries: Vec<IndexEntry> = Vec::new();
    // The frame an index entry names is already indexed and must carry exactly its seq.
    let mut at_indexed_frame = !entries.is_empty();
    // A trusted head says where the published frames end: below it every frame was
    // complete when published, so anything wrong there is damage, never a torn write.
    let published_offset = published.filter(|p| p.first_seq == first).map(|p| p.offset);
    let mut pos = start_offset;
    let mut force_entry = false;
    // `incomplete`: for a cut at a frame that fails, whether the file ends inside it.
    let (valid_end, reason, incomplete) = loop {
        let mut unpublished = false;
        let end = scan::scan(&*file, pos, max_frame, |offset, r| {
            if published_end.is_some_and(|end| r.seq >= end) {
                unpublished = true;
                return ControlFlow::Break(());
            }
            let in_order = if compacted && !at_indexed_frame {
                r.seq >= expected
            } else {
                r.seq == expected
            };
            if !in_order {
                return ControlFlow::Break(());
            }
            if !at_indexed_frame
                && (records == 0 || force_entry || offset >= last_index_offset + INDEX_INTERVAL)
            {
                new_entries.push(IndexEntry {
                    seq: r.seq,
                    offset,
                    ts_max_before: ts_max,
                });
                last_index_offset = offset;
                force_entry = false;
            }
            at_indexed_frame = false;
            ts_max = ts_max.max(r.ts);
            expected = r.seq + 1;
            records += 1;
            ControlFlow::Continue(())
        })
        .ctx("read", &path)?;
        let (bad_at, why, incomplete) = match end {
            ScanEnd::Eof { offset } => break (offset, None, None),
            ScanEnd::Seal { offset, .. } => {
                break (
                    offset,
                    Some("seal of a segment whose successor was never created".to_string()),
                    None,
                );
            }
            ScanEnd::Stopped { offset } if unpublished => {
                break (
                    offset,
                    Some("written by a writer that died before publishing".to_string()),
                    None,
                );
            }
            ScanEnd::Stopped { offset } => (
                offset,
                format!("frame out of sequence (expected seq {expected})"),
                false,
            ),
            ScanEnd::Bad {
                offset,
                reason,
                incomplete,
            } => (offset, reason, incomplete),
        };
        // A torn write is the end of what was written: nothing valid may follow it, and
        // what follows a hole (bytes that never reached the disk) was never synced
        // either. Anything else followed by valid frames is damage: kept and reported,
        // never cut, so that no acknowledged record after it is lost.
        let below_published = published_offset.is_some_and(|p| bad_at < p);
        let within = |found: Option<(u64, u64)>| {
            found.filter(|&(at, _)| published_offset.is_none_or(|p| at < p))
        };
        // Where the next record starts. A frame whose length is intact ends where it
        // says: look there first, never inside its (damaged) value, which may hold
        // bytes that look like frames. A frame that seems to run past the end of the
        // file is a torn write, unless only its length was damaged: then its checksum
        // holds with the length that reaches the next valid frame.
        let mut length_only = false;
        let resume = if incomplete {
            // Candidates in order; one inside the frame's own value fails the checksum.
            let mut from = bad_at + 1;
            let mut found = None;
            for _ in 0..64 {
                let Some((at, seq)) = within(
                    scan::resync(&*file, from, expected.saturating_sub(1), max_frame)
                        .ctx("read", &path)?,
                ) else {
                    break;
                };
                if only_the_length_is_wrong(&*file, &path, bad_at, at)? {
                    length_only = true;
                    found = Some((at, seq));
                    break;
                }
                from = at + 1;
            }
            found
        } else {
            match within(frame_at_its_end(
                &*file, &path, bad_at, expected, max_frame,
            )?) {
                Some(found) => Some(found),
                None => within(
                    scan::resync(&*file, bad_at + 1, expected.saturating_sub(1), max_frame)
                        .ctx("read", &path)?,
                ),
            }
        };
        let resume = match (resume, published_offset) {
            (Some(r), _) => Some(r),
            // Published frames are gone entirely: the damage reaches the published end.
            (None, Some(p)) if below_published => Some((p, published_end.unwrap_or(expected))),
            (None, _) => None,
        };
        let damage_kept = |at: u64| -> Result<bool> {
            Ok(below_published || length_only || !looks_unwritten(&*file, &path, bad_at, at)?)
        };
        match resume {
            Some((at, seq)) if damage_kept(at)? => {
                report.damage.push(TailDamage {
                    path: path.clone(),
                    offset: bad_at,
                    bytes: at - bad_at,
                    reason: why,
                    first_seq: expected,
                    resume_seq: seq,
                });
                pos = at;
                expected = seq;
                at_indexed_frame = false;
                force_entry = true;
            }
            _ => break (bad_at, Some(why), Some(incomplete)),
        }
    };
    let file_len = file.len().ctx("read", &path)?;
    if file_len > valid_end {
        // A whole frame that fails, not a torn write: none of its sectors is zeros, or
        // only its length field was damaged (it looks like a frame the file ends inside,
        // but its checksum holds with the length that reaches the end of the file).
        let whole = match incomplete {
            None => false,
            Some(true) => only_the_length_is_wrong(&*file, &path, valid_end, file_len)?,
            Some(false) => {
                !looks_unwritten(&*file, &path, valid_end, file_len)?
                    && !partial_tail_unwritten(&*file, &path, valid_end, file_len)?
            }
        };
        report.cut = Some(CutTail {
            path: path.clone(),
            offset: valid_end,
            bytes: file_len - valid_end,
            reason: reason.unwrap_or_else(|| "unknown".into()),
            whole_frame: whole,
        });
        if mutate {
            file.set_len(valid_end).ctx("truncate", &path)?;
        }
    }
    report.rebuilt_index_entries = new_entries.len() as u64;
    if let (true, Some(idx)) = (mutate, &idx_file) {
        let (at, mut bytes) = if kept_entries == 0 {
            (0, index::encode_header(first).to_vec())
        } else {
            (index::entry_pos(kept_entries), Vec::new())
        };
        for e in &new_entries {
            index::encode_entry(&mut bytes, e);
        }
        idx.set_len(at).ctx("truncate", &idx_path)?;
        idx.write_all_at(&bytes, at).ctx("write to", &idx_path)?;
    }

    let mut used = 0;
    for &s in &segs {
        let p = segment::segment_path(dir, s);
        if s == first {
            used += valid_end;
        } else if let Ok(f) = storage.open(&p, OpenMode::Read) {
            used += f.len().ctx("read", &p)?;
        }
    }
    let t = TailState {
        next_seq: expected,
        first_seq: first,
        offset: valid_end,
        ts_max,
        index_entries: kept_entries + new_entries.len() as u64,
        last_index_offset,
        records,
        used_bytes: used,
        oldest_seq: segs.first().copied().unwrap_or(first),
    };
    let w = head.words();
    w.config_gen.fetch_add(1, Ordering::AcqRel);
    w.layout_gen.fetch_add(1, Ordering::AcqRel);
    head.publish(&t);
    Ok(report)
}

/// The seq of the record frame at `offset`, if one decodes there.
fn frame_seq_at(
    file: &dyn crate::storage::StorageFile,
    offset: u64,
    max_frame: usize,
) -> Option<u64> {
    let mut hdr = [0u8; frame::HEADER_LEN];
    file.read_exact_at(&mut hdr, offset).ok()?;
    let len = frame::peek_len(&hdr)?;
    // A damaged index entry may point at any bytes: their claimed length must fit the
    // file before anything is allocated for it.
    let file_len = file.len().ok()?;
    if len > max_frame || len < frame::HEADER_LEN || offset + len as u64 > file_len {
        return None;
    }
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).ok()?;
    match frame::decode(&buf, max_frame) {
        Ok((Frame::Record(r), _)) => Some(r.seq),
        _ => None,
    }
}

/// Sector size assumed for torn writes: a write that did not reach the disk leaves whole
/// sectors as they were (zeros at the end of an append-only file).
const SECTOR: u64 = 512;

/// True when the bytes from `from` to `to` look like a write that never (fully) reached
/// the disk: the frame header at `from` is zeros, or a whole sector-aligned block in the
/// range is zeros. One flipped or damaged byte does neither (unless the record's own
/// data holds a zero sector), so it is reported as damage instead of cut as torn.
fn looks_unwritten(
    file: &dyn crate::storage::StorageFile,
    path: &Path,
    from: u64,
    to: u64,
) -> Result<bool> {
    let len = (to.saturating_sub(from)).min(1 << 20) as usize;
    let mut buf = vec![0u8; len];
    let n = file.read_full_at(&mut buf, from).ctx("read", path)?;
    let bytes = &buf[..n];
    if bytes.len() >= 8 && bytes[..8].iter().all(|&b| b == 0) {
        return Ok(true);
    }
    let mut block = from.div_ceil(SECTOR) * SECTOR;
    while block + SECTOR <= from + bytes.len() as u64 {
        let at = (block - from) as usize;
        if bytes[at..at + SECTOR as usize].iter().all(|&b| b == 0) {
            return Ok(true);
        }
        block += SECTOR;
    }
    Ok(false)
}

/// True when the file ends inside a sector (at or after `from`) and that partial last
/// sector is all zeros: a write that had not reached the disk there, which
/// [`looks_unwritten`] (whole sectors only) does not see.
fn partial_tail_unwritten(
    file: &dyn crate::storage::StorageFile,
    path: &Path,
    from: u64,
    len: u64,
) -> Result<bool> {
    let start = (len / SECTOR * SECTOR).max(from);
    if start >= len {
        return Ok(false);
    }
    let mut buf = vec![0u8; (len - start) as usize];
    let n = file.read_full_at(&mut buf, start).ctx("read", path)?;
    Ok(n > 0 && buf[..n].iter().all(|&b| b == 0))
}

/// The record frame right after the frame at `at`, if that frame's length field is
/// usable and a valid record with a seq of at least `expected` starts where it ends.
fn frame_at_its_end(
    file: &dyn crate::storage::StorageFile,
    path: &Path,
    at: u64,
    expected: u64,
    max_frame: usize,
) -> Result<Option<(u64, u64)>> {
    let mut hdr = [0u8; frame::HEADER_LEN];
    if file.read_full_at(&mut hdr, at).ctx("read", path)? < frame::HEADER_LEN {
        return Ok(None);
    }
    let Some(len) = frame::peek_len(&hdr).filter(|&l| (frame::HEADER_LEN..=max_frame).contains(&l))
    else {
        return Ok(None);
    };
    let next = at + len as u64;
    let mut next_hdr = [0u8; frame::HEADER_LEN];
    if file.read_full_at(&mut next_hdr, next).ctx("read", path)? < frame::HEADER_LEN {
        return Ok(None);
    }
    let Some(next_len) =
        frame::peek_len(&next_hdr).filter(|&l| (frame::HEADER_LEN..=max_frame).contains(&l))
    else {
        return Ok(None);
    };
    let mut buf = vec![0u8; next_len];
    if file.read_full_at(&mut buf, next).ctx("read", path)? < next_len {
        return Ok(None);
    }
    Ok(match frame::decode(&buf, max_frame) {
        Ok((Frame::Record(r), _)) if r.seq >= expected => Some((next, r.seq)),
        _ => None,
    })
}

/// True when the frame at `at` passes its checksum once its length field says it ends
/// at `next`: only the length was damaged (not a torn write, whose bytes are missing).
fn only_the_length_is_wrong(
    file: &dyn crate::storage::StorageFile,
    path: &Path,
    at: u64,
    next: u64,
) -> Result<bool> {
    let Ok(len) = u32::try_from(next - at) else {
        return Ok(false);
    };
    if (len as usize) < frame::HEADER_LEN {
        return Ok(false);
    }
    let mut buf = vec![0u8; len as usize];
    if file.read_full_at(&mut buf, at).ctx("read", path)? < buf.len() {
        return Ok(false);
    }
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    let stored = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    Ok(stored == crc32c::crc32c(&buf[4..]))
}
