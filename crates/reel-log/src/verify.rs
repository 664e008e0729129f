//! Full verification: every frame checksum, every seq, every seal and index entry.
//! Read-only; reports each damaged place with its file and byte offset, and the first
//! seq that can be read after it.

use crate::error::{IoContext, Result};
use crate::index;
use crate::log::Log;
use crate::scan::{self, ScanEnd};
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::OpenMode;
use std::ops::ControlFlow;
use std::path::PathBuf;

/// One damaged place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
    /// First seq readable after the damage, if any: `reel rewind --to-seq` skips there.
    pub resume_seq: Option<u64>,
}

/// Result of [`Log::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Records whose checksum verified.
    pub records: u64,
    /// Bytes of segment files checked.
    pub bytes: u64,
    /// Everything found damaged.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// True when nothing is damaged.
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

impl Log {
    /// Checks every checksum, seq, seal and index entry of the log.
    pub fn verify(&self) -> Result<VerifyReport> {
        // Segments replaced or removed while verify reads them (compaction, retention)
        // can look like damage: a pass during which the layout changed is repeated. A
        // log compacting without pause could race every pass, so the last one holds the
        // compaction lock: no segment is rewritten under it.
        for _ in 0..3 {
            let before = self.layout_gen();
            let report = self.verify_once()?;
            if report.is_ok() || self.layout_gen() == before {
                return Ok(report);
            }
        }
        if !self.is_writable() {
            return self.verify_once();
        }
        let _one_per_process = self
            .inner
            .compacting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let lock_path = self.dir().join(crate::compaction::COMPACT_LOCK_FILE);
        let lock = self
            .storage()
            .lock_file(&lock_path)
            .ctx("open", &lock_path)?;
        let _no_compaction = crate::log::LockGuard::acquire(&*lock, &lock_path)?;
        self.verify_once()
    }

    fn verify_once(&self) -> Result<VerifyReport> {
        let storage = &**self.storage();
        let dir = self.dir();
        let committed = self.next_seq();
        let max_frame = self.max_frame_len();
        // Segments an interrupted compaction already merged into an earlier one are
        // leftovers (removed at the next writable open), not part of the log.
        let mut segs = self.live_segments()?;
        // A batch that rolls creates the next segment before it publishes: such a file
        // holds no committed record and may not have its header yet.
        let published_tail = self.inner.head.published_tail_first();
        segs.retain(|&first| first <= published_tail);
        let mut report = VerifyReport::default();
        // A read-only handle does not cut what recovery found at the tail; the next
        // writable open will. A whole last frame that fails its check may be a record
        // that was acknowledged, so it is reported, not passed over as a torn write.
        if !self.is_writable()
            && let Some(cut) = self.recovery_report().and_then(|r| r.cut)
            && cut.whole_frame
        {
            report.damage.push(Damage {
                path: cut.path.clone(),
                offset: cut.offset,
                what: format!(
                    "the last {} bytes of the log hold a whole record frame that does not \
                     verify ({}): damage to the last record, or a write a crash interrupted before \
                     it was acknowledged as synced; the next writer cuts them (copy the \
                     store first to keep them)",
                    cut.bytes, cut.reason
                ),
                resume_seq: None,
            });
        }
        // Retention publishes the new oldest seq before it removes a segment, so the log
        // never holds a first segment that starts past its oldest seq: one that does
        // lost the files before it (deleted, or a copy that missed them).
        let oldest = self.oldest_seq();
        if let Some(&first) = segs.first()
            && first > oldest
        {
            report.damage.push(Damage {
                path: segment::segment_path(dir, oldest),
                offset: 0,
                what: format!(
                    "missing: the log holds seqs from {oldest}, but its first segment starts \
                     at seq {first} (the files of seqs {oldest} to {} were deleted or lost)",
                    first - 1
                ),
                resume_seq: Some(first),
            });
        }
        let mut expected_first: Option<u64> = None;
        for (i, &first) in segs.iter().enumerate() {
            let is_tail = i + 1 == segs.len();
            let path = segment::segment_path(dir, first);
            let file = match storage.open(&path, OpenMode::Read) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(crate::Error::io("open", path, e)),
            };
            report.segments += 1;
            let len = file.len().ctx("read", &path)?;
            report.bytes += len;
            let mut damage = |offset: u64, what: String, resume_seq: Option<u64>| {
                report.damage.push(Damage {
                    path: path.clone(),
                    offset,
                    what,
                    resume_seq,
                });
            };
            let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
            let n = file.read_full_at(&mut hdr, 0).ctx("read", &path)?;
            let flags = match segment::decode_header(&hdr[..n], &path) {
                Ok(h) if h.first_seq == first => h.flags,
                Ok(h) => {
                    damage(
                        0,
                        format!(
                            "header names seq {} but the file is named {first}",
                            h.first_seq
                        ),
                        None,
                    );
                    h.flags
                }
                Err(e) => {
                    // Nothing in a segment whose header is damaged can be read: readers
                    // continue at the next segment (or the end of the log).
                    let resume = segs.get(i + 1).copied().unwrap_or(committed);
                    damage(0, e.to_string(), Some(resume));
                    0
                }
            };
            if let Some(exp) = expected_first
                && exp != first
                && flags & FLAG_COMPACTED == 0
            {
                damage(
                    0,
                    format!(
                        "previous segment ends before seq {exp} but this one starts at {first}"
                    ),
                    None,
                );
            }
            let compacted = flags & FLAG_COMPACTED != 0;
            let idx_path = segment::index_path(dir, first);
            let idx_file = storage.open(&idx_path, OpenMode::Read).ok();
            let (entries, idx_len) = match &idx_file {
                Some(f) => index::load_with_len(&**f, first, &idx_path)?,
                None => (Vec::new(), 0),
            };
            let indexed_len = index::entry_pos(entries.len() as u64);
            let mut idx_problem = None;
            // The tail's writer may be writing the entry after the valid prefix while it
            // is read (a torn read of a sound entry): the tail's index is only damaged if
            // a second read stops at the same entry.
            let entry_damaged =
                idx_len >= indexed_len + index::ENTRY_LEN || (!is_tail && idx_len > indexed_len);
            let still_damaged = || -> Result<bool> {
                let Some(f) = &idx_file else { return Ok(false) };
                let (again, len_again) = index::load_with_len(&**f, first, &idx_path)?;
                Ok(again.len() == entries.len() && len_again >= indexed_len + index::ENTRY_LEN)
            };
            if entry_damaged && (!is_tail || still_damaged()?) {
                idx_problem = Some(Damage {
                    path: idx_path.clone(),
                    offset: indexed_len,
                    what: format!(
                        "index entry {} is damaged (the index is a cache: delete {} to stop using it)",
                        entries.len(),
                        idx_path.display()
                    ),
                    resume_seq: None,
                });
            }
            let mut next_entry = 0usize;
            let mut index_damage: Option<(u64, String)> = None;
            let mut expected = first;
            let mut records = 0u64;
            let mut offset = SEGMENT_HEADER_LEN;
            let mut frames_damaged = false;
            let sealed = loop {
                let end = scan::scan(&*file, offset, max_frame, |off, r| {
                    if is_tail && r.seq >= committed {
                        return ControlFlow::Break(());
                    }
                    let ok = if compacted { r.seq >= expected } else { r.seq == expected };
                    if !ok {
                        return ControlFlow::Break(());
                    }
                    while let Some(e) = entries.get(next_entry) {
                        if e.offset > off {
                            break;
                        }
                        if (e.offset != off || e.seq != r.seq) && index_damage.is_none() {
                            index_damage = Some((
                                index::entry_pos(next_entry as u64),
                                format!("index entry {next_entry} (seq {} at byte {}) does not match the segment", e.seq, e.offset),
                            ));
                        }
                        next_entry += 1;
                    }
                    expected = r.seq + 1;
                    records += 1;
                    ControlFlow::Continue(())
                })
                .ctx("read", &path)?;
                match end {
                    ScanEnd::Seal { offset: at, seal } => {
                        if is_tail {
                            break None;
                        }
                        if at + crate::frame::SEAL_LEN as u64 != len {
                            damage(at, "bytes after the seal frame".into(), None);
                        }
                        if !compacted && !frames_damaged && seal.records != records {
                            damage(
                                at,
                                format!(
                                    "seal counts {} records but the segment holds {records}",
                                    seal.records
                                ),
                                None,
                            );
                        }
                        // A gap seal (a follower's skipped seqs) may only jump forward.
                        let gap_ok = seal.gap && seal.next_seq > expected;
                        if !compacted && seal.next_seq != expected && !gap_ok {
                            damage(
                                at,
                                format!(
                                    "seal says next seq {} but records end at {expected}",
                                    seal.next_seq
                                ),
                                None,
                            );
                        }
                        break Some(seal.next_seq);
                    }
                    ScanEnd::Eof { offset: at } => {
                        if !is_tail {
                            damage(
                                at,
                                "sealed segment has no seal frame (truncated?)".into(),
                                None,
                            );
                        }
                        break None;
                    }
                    // Past the committed end of the tail: unpublished bytes, not damage.
                    ScanEnd::Bad { .. } | ScanEnd::Stopped { .. }
                        if is_tail && expected >= committed =>
                    {
                        break None;
                    }
                    ScanEnd::Bad {
                        offset: at, reason, ..
                    } => {
                        let resume =
                            scan::resync(&*file, at + 1, expected.saturating_sub(1), max_frame)
                                .ctx("read", &path)?;
                        let resume_seq =
                            resume.map(|(_, s)| s).or_else(|| segs.get(i + 1).copied());
                        damage(
                            at,
                            format!("{reason} (at or after seq {expected})"),
                            resume_seq,
                        );
                        frames_damaged = true;
                        match resume {
                            Some((o, s)) => {
                                offset = o;
                                expected = s;
                            }
                            None => break None,
                        }
                    }
                    ScanEnd::Stopped { offset: at } => {
                        damage(
                            at,
                            format!("record out of sequence (expected seq {expected})"),
                            None,
                        );
                        break None;
                    }
                }
            };
            report.damage.extend(idx_problem);
            if let Some((at, what)) = index_damage {
                report.damage.push(Damage {
                    path: segment::index_path(dir, first),
                    offset: at,
                    what,
                    resume_seq: None,
                });
            }
            report.records += records;
            expected_first = sealed.or(Some(expected));
        }
        Ok(report)
    }
}
