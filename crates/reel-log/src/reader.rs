//! Reading: [`LogReader`] walks the log forward from a seq in batches decoded in place,
//! following seal frames from segment to segment, never past the committed end (reads
//! by time and by stored position are in `positions`).

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, DecodeError, Frame, RecordRef};
use crate::index;
use crate::log::Log;
use crate::scan::{self, SCAN_CHUNK, ScanEnd};
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, StorageFile};
use std::io;
use std::ops::{ControlFlow, Range};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A forward cursor over the log (not persisted; see the `reel` crate for named readers).
#[derive(Debug)]
pub struct LogReader {
    log: Log,
    next: u64,
    seg: Option<OpenSegment>,
    buf: Vec<u8>,
    buf_off: u64,
    buf_len: usize,
    /// `next_seq` observed before `buf` was filled: frames below it were complete then.
    buf_committed: u64,
    parsed: Vec<Range<usize>>,
}

#[derive(Debug)]
struct OpenSegment {
    first_seq: u64,
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    compacted: bool,
    /// Offset of the next frame to parse.
    offset: u64,
}

/// Records read by one [`LogReader::read_batch`] call, borrowed from the reader's buffer.
#[derive(Debug)]
pub struct Batch<'a> {
    buf: &'a [u8],
    frames: &'a [Range<usize>],
    lost: Option<Range<u64>>,
    /// The segment every frame of the batch is in, and the file offset of `buf[0]`.
    segment: u64,
    buf_off: u64,
}

/// Where a record's frame is stored: for reading it again directly with
/// [`Log::read_record_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FramePos {
    /// First seq (name) of the segment file.
    pub segment: u64,
    /// Byte offset of the frame in that file.
    pub offset: u64,
}

impl<'a> Batch<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no record was read.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Seqs skipped because retention deleted them before this reader got there.
    pub fn lost(&self) -> Option<Range<u64>> {
        self.lost.clone()
    }

    /// The records, in seq order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = RecordRef<'a>> + 'a {
        let buf = self.buf;
        self.frames
            .iter()
            .filter_map(move |r| match frame::decode_verified(&buf[r.clone()]) {
                Ok((Frame::Record(rec), _)) => Some(rec),
                _ => None,
            })
    }

    /// Every frame of the batch as stored (checksummed bytes, for replication), with its
    /// seq.
    pub fn for_each_frame(&self, mut f: impl FnMut(u64, &'a [u8])) {
        for r in self.frames {
            let bytes = &self.buf[r.clone()];
            if let Ok((Frame::Record(rec), _)) = frame::decode_verified(bytes) {
                f(rec.seq, bytes);
            }
        }
    }

    /// Calls `f` on every record without collecting them.
    pub fn for_each(&self, mut f: impl FnMut(RecordRef<'a>)) {
        for r in self.frames {
            if let Ok((Frame::Record(rec), _)) = frame::decode_verified(&self.buf[r.clone()]) {
                f(rec);
            }
        }
    }

    /// Calls `f` on every record with where it is stored.
    pub fn for_each_at(&self, mut f: impl FnMut(RecordRef<'a>, FramePos)) {
        for r in self.frames {
            if let Ok((Frame::Record(rec), _)) = frame::decode_verified(&self.buf[r.clone()]) {
                f(
                    rec,
                    FramePos {
                        segment: self.segment,
                        offset: self.buf_off + r.start as u64,
                    },
                );
            }
        }
    }
}

impl Log {
    /// A reader positioned at `seq` (clamped up to the oldest retained record when read).
    pub fn reader(&self, seq: u64) -> LogReader {
        LogReader {
            log: self.clone(),
            next: seq,
            seg: None,
            buf: Vec::new(),
            buf_off: 0,
            buf_len: 0,
            buf_committed: 0,
            parsed: Vec::new(),
        }
    }
}

/// The seal at the end of a sealed segment.
pub(crate) fn read_seal(file: &dyn StorageFile, max_frame: usize) -> Option<frame::Seal> {
    let len = file.len().ok()?;
    let at = len.checked_sub(frame::SEAL_LEN as u64)?;
    let mut buf = [0u8; frame::SEAL_LEN];
    file.read_exact_at(&mut buf, at).ok()?;
    match frame::decode(&buf, max_frame) {
        Ok((Frame::Seal(s), _)) => Some(s),
        _ => None,
    }
}

impl LogReader {
    /// The seq of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Moves to `seq`; the next read starts there.
    pub fn seek(&mut self, seq: u64) {
        self.next = seq;
        self.seg = None;
        self.buf_len = 0;
    }

    /// The log this reader reads.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Blocks until the record at [`position`](Self::position) is committed or
    /// `deadline` passes; true when it is there.
    pub fn wait(&self, deadline: Option<Instant>) -> bool {
        self.log.wait_for(self.next, deadline)
    }

    /// Reads up to `max` committed records without blocking. An empty batch means the
    /// reader is caught up. Damaged data is an error naming the file and offset, and the
    /// reader stays in front of it (see [`LogReader::skip_damage`]).
    pub fn read_batch(&mut self, max: usize) -> Result<Batch<'_>> {
        self.parsed.clear();
        let mut lost: Option<Range<u64>> = None;
        let committed = self.log.next_seq();
        let max_frame = self.log.max_frame_len();
        let mut fresh_reads = 0;
        'outer: while self.next < committed && self.parsed.len() < max {
            if self.seg.is_none() {
                if let Some(l) = self.locate()? {
                    lost = Some(lost.map_or(l.clone(), |p| p.start..l.end));
                }
                if self.next >= committed {
                    break;
                }
            }
            let Some(seg) = self.seg.as_ref() else { break };
            let o = seg.offset;
            let compacted = seg.compacted;
            let fresh = self.buf_committed > self.next || compacted;
            let in_buf = o >= self.buf_off && o < self.buf_off + self.buf_len as u64;
            if !in_buf || !fresh {
                if !self.parsed.is_empty() {
                    break;
                }
                self.refill(o, 0)?;
                continue;
            }
            let mut at = (o - self.buf_off) as usize;
            loop {
                let avail = &self.buf[at..self.buf_len];
                match frame::decode(avail, max_frame) {
                    Ok((Frame::Record(r), len)) => {
                        // Only frames below the committed end observed *before* the
                        // buffer was filled are known to have been complete when read:
                        // bytes past it may be a dead writer's leftovers or an undone
                        // batch, later overwritten by the real record with that seq.
                        let limit = if compacted {
                            committed
                        } else {
                            self.buf_committed
                        };
                        if r.seq >= limit {
                            if r.seq < committed && self.parsed.is_empty() {
                                let offset = self.buf_off + at as u64;
                                self.refill(offset, 0)?;
                                continue 'outer;
                            }
                            break 'outer;
                        }
                        let seg = self.seg.as_mut().expect("segment open");
                        if r.seq >= self.next {
                            if r.seq > self.next && !seg.compacted {
                                if !self.parsed.is_empty() {
                                    break 'outer;
                                }
                                return Err(Error::corrupt(
                                    &seg.path,
                                    seg.offset,
                                    format!(
                                        "record seq {} is missing or damaged (found seq {} here)",
                                        self.next, r.seq
                                    ),
                                ));
                            }
                            self.parsed.push(at..at + len);
                            self.next = r.seq + 1;
                        }
                        seg.offset += len as u64;
                        at += len;
                        if self.parsed.len() >= max {
                            break 'outer;
                        }
                    }
                    Ok((Frame::Seal(s), _)) => {
                        if !self.parsed.is_empty() {
                            break 'outer;
                        }
                        // A seal is followed only once a record after it was committed
                        // before this buffer was read: until the batch that rolled is
                        // published, its seal and next segment may still be undone.
                        let limit = if compacted {
                            committed
                        } else {
                            self.buf_committed
                        };
                        if s.next_seq >= limit {
                            if s.next_seq < committed {
                                let offset = self.buf_off + at as u64;
                                self.refill(offset, 0)?;
                                continue 'outer;
                            }
                            break 'outer;
                        }
                        self.next = self.next.max(s.next_seq);
                        self.open_next(s.next_seq)?;
                        continue 'outer;
                    }
                    Err(e) => {
                        if !self.parsed.is_empty() {
                            break 'outer;
                        }
                        let seg = self.seg.as_ref().expect("segment open");
                        let offset = self.buf_off + at as u64;
                        let needed = match &e {
                            DecodeError::Incomplete { needed } => *needed,
                            DecodeError::Corrupt(_) => 0,
                        };
                        // Stale or short buffer: read again once before judging the bytes.
                        let short = at + needed > self.buf_len && self.buf_len == self.buf.len();
                        if fresh_reads == 0 || short {
                            fresh_reads += 1;
                            if fresh_reads > 3 {
                                return Err(Error::corrupt(
                                    &seg.path,
                                    offset,
                                    "frame cannot be read completely",
                                ));
                            }
                            self.refill(offset, needed)?;
                            continue 'outer;
                        }
                        let reason = match e {
                            DecodeError::Incomplete { needed } => format!(
                                "segment ends inside the frame of seq {} ({} of {needed} bytes present)",
                                self.next,
                                self.buf_len - at
                            ),
                            DecodeError::Corrupt(r) => format!("{r} (record seq {})", self.next),
                        };
                        return Err(Error::corrupt(&seg.path, offset, reason));
                    }
                }
            }
        }
        Ok(Batch {
            buf: &self.buf[..self.buf_len],
            frames: &self.parsed,
            lost,
            segment: self.seg.as_ref().map_or(0, |s| s.first_seq),
            buf_off: self.buf_off,
        })
    }

    /// Moves this reader past damaged bytes it stopped at, onto the next record that
    /// decodes (or the next segment). Returns the seqs skipped.
    pub fn skip_damage(&mut self) -> Result<Range<u64>> {
        let from = self.next;
        // Nothing is skipped when the next record reads from a fresh position (a damaged
        // seal, say, only stops readers that follow it): only damage is stepped over.
        self.seek(from);
        match self.read_batch(1) {
            Ok(_) => {
                self.seek(from);
                return Ok(from..from);
            }
            Err(e) if !e.is_corrupt() => return Err(e),
            Err(_) => {}
        }
        self.seek(from);
        if self.seg.is_none()
            && let Err(e) = self.locate()
        {
            if !e.is_corrupt() {
                return Err(e);
            }
            // The segment holding `from` cannot even be opened (a damaged header):
            // continue at the next segment, or at the end of the log.
            let segs = self.log.live_segments()?;
            let i = segs.partition_point(|&s| s <= from);
            let target = segs
                .get(i)
                .copied()
                .unwrap_or_else(|| self.log.next_seq())
                .max(from);
            self.seek(target);
            return Ok(from..target);
        }
        let Some(seg) = self.seg.as_mut() else {
            return Ok(from..from);
        };
        let max_frame = self.log.max_frame_len();
        let found = scan::resync(
            &*seg.file,
            seg.offset + 1,
            from.saturating_sub(1),
            max_frame,
        )
        .ctx("read", &seg.path)?;
        match found {
            Some((offset, seq)) => {
                seg.offset = offset;
                self.next = seq;
                self.buf_len = 0;
            }
            None => {
                let segs = self.log.live_segments()?;
                let first = seg.first_seq;
                let target = segs
                    .into_iter()
                    .find(|&s| s > first)
                    .unwrap_or_else(|| self.log.next_seq());
                self.seek(target.max(from));
            }
        }
        Ok(from..self.next)
    }

    fn refill(&mut self, offset: u64, min_len: usize) -> Result<()> {
        let seg = self.seg.as_ref().expect("segment open");
        let want = SCAN_CHUNK.max(min_len);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.buf_committed = self.log.next_seq();
        let n = seg
            .file
            .read_full_at(&mut self.buf[..want], offset)
            .ctx("read", &seg.path)?;
        self.buf_off = offset;
        self.buf_len = n;
        if n == 0 {
            // Nothing at the position of a committed record.
            return Err(Error::corrupt(
                &seg.path,
                offset,
                format!("segment ends before record seq {}", self.next),
            ));
        }
        Ok(())
    }

    fn open_next(&mut self, first: u64) -> Result<()> {
        self.seg = None;
        self.buf_len = 0;
        let path = segment::segment_path(self.log.dir(), first);
        match self.log.storage().open(&path, OpenMode::Read) {
            Ok(file) => {
                let compacted = read_flags(&*file, &path)? & FLAG_COMPACTED != 0;
                self.seg = Some(OpenSegment {
                    first_seq: first,
                    file,
                    path,
                    compacted,
                    offset: SEGMENT_HEADER_LEN,
                });
                Ok(())
            }
            // Dropped by retention meanwhile, or merged by compaction into an earlier
            // segment: `locate` finds where the log now holds it. A missing segment that
            // nothing covers, after the oldest one, is damage.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let segs = self.log.live_segments()?;
                let merged = segs
                    .iter()
                    .rev()
                    .find(|&&s| s < first)
                    .and_then(|&s| {
                        let p = segment::segment_path(self.log.dir(), s);
                        let f = self.log.storage().open(&p, OpenMode::Read).ok()?;
                        read_seal(&*f, self.log.max_frame_len())
                    })
                    .is_some_and(|seal| seal.next_seq > first);
                if !merged && segs.first().is_some_and(|&oldest| first > oldest) {
                    return Err(Error::corrupt(
                        &path,
                        0,
                        format!(
                            "segment file missing: the previous segment's seal says records continue at seq {first}"
                        ),
                    ));
                }
                Ok(())
            }
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    /// Opens the segment holding `self.next`, jumping to the oldest retained record when
    /// retention deleted it; returns the lost seqs.
    fn locate(&mut self) -> Result<Option<Range<u64>>> {
        let storage = self.log.storage().clone();
        let dir = self.log.dir().to_path_buf();
        let mut lost = None;
        for _ in 0..16 {
            let segs = self.log.live_segments()?;
            let Some(&oldest) = segs.first() else {
                return Err(Error::corrupt(
                    segment::segments_dir(&dir),
                    0,
                    "the log has no segments",
                ));
            };
            if self.next < oldest {
                lost = Some(self.next..oldest);
                self.next = oldest;
            }
            let i = segs.partition_point(|&s| s <= self.next);
            let first = segs[i.saturating_sub(1)];
            let path = segment::segment_path(&dir, first);
            let file = match storage.open(&path, OpenMode::Read) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", path, e)),
            };
            let compacted = read_flags(&*file, &path)? & FLAG_COMPACTED != 0;
            let entries = self.log.load_index(first);
            let floor =
                index::floor_by_seq(&entries, self.next).map_or(SEGMENT_HEADER_LEN, |e| e.offset);
            let offset = self.position_in(&*file, &path, floor)?;
            self.seg = Some(OpenSegment {
                first_seq: first,
                file,
                path,
                compacted,
                offset,
            });
            self.buf_len = 0;
            return Ok(lost);
        }
        Err(Error::corrupt(
            segment::segments_dir(&dir),
            0,
            "segments keep disappearing while locating a record",
        ))
    }
}

impl LogReader {
    /// Offset of the first frame at or after `from` whose seq is at least `self.next`,
    /// stepping over damaged frames on the way (so that seeking past damage works).
    fn position_in(
        &self,
        file: &dyn StorageFile,
        path: &std::path::Path,
        mut from: u64,
    ) -> Result<u64> {
        let max_frame = self.log.max_frame_len();
        let committed = self.log.next_seq();
        let mut last_seq = None::<u64>;
        loop {
            let end = scan::scan(file, from, max_frame, |_, r| {
                if r.seq >= self.next || r.seq >= committed {
                    return ControlFlow::Break(());
                }
                last_seq = Some(r.seq);
                ControlFlow::Continue(())
            })
            .ctx("read", path)?;
            match end {
                ScanEnd::Stopped { offset }
                | ScanEnd::Eof { offset }
                | ScanEnd::Seal { offset, .. } => return Ok(offset),
                ScanEnd::Bad { offset, .. } => {
                    let after = last_seq.unwrap_or(0);
                    match scan::resync(file, offset + 1, after, max_frame).ctx("read", path)? {
                        Some((next_offset, seq)) if seq <= self.next => from = next_offset,
                        // The wanted record itself is damaged: stop in front of the damage.
                        _ => return Ok(offset),
                    }
                }
            }
        }
    }
}

fn read_flags(file: &dyn StorageFile, path: &std::path::Path) -> Result<u32> {
    let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
    let n = file.read_full_at(&mut hdr, 0).ctx("read", path)?;
    Ok(segment::decode_header(&hdr[..n], path)?.flags)
}
