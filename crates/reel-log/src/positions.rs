//! Reads by position rather than by walking: the first seq at or after a time
//! ([`Log::seek_time`]), records at frame positions a view stored
//! ([`Log::read_record_at`], [`Log::read_records_at`]), and the first retained seq at or
//! before a seq ([`Log::floor_seq`]).

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, DecodeError, Frame, RecordRef};
use crate::index;
use crate::log::Log;
use crate::reader::{FramePos, read_seal};
use crate::scan::{self, ScanEnd};
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, StorageFile};
use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;

impl Log {
    /// The seq of the first record with a timestamp at or after `ts`, or the next seq to
    /// be written when there is none.
    pub fn seek_time(&self, ts: i64) -> Result<u64> {
        let committed = self.next_seq();
        let max_frame = self.max_frame_len();
        let storage = &*self.inner.storage;
        for first in self.live_segments()? {
            let path = segment::segment_path(&self.inner.dir, first);
            let file = match storage.open(&path, OpenMode::Read) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", path, e)),
            };
            if let Some(seal) = read_seal(&*file, max_frame)
                && seal.ts_max < ts
            {
                continue;
            }
            let entries = self.load_index(first);
            // An index whose first entry is not the segment's first frame was rebuilt
            // around damage at the start: scan that part too.
            let floor = index::floor_by_time(&entries, ts).filter(|e| {
                entries
                    .first()
                    .is_some_and(|f| f.offset == SEGMENT_HEADER_LEN)
                    || e.offset == SEGMENT_HEADER_LEN
            });
            let start = floor.map_or(SEGMENT_HEADER_LEN, |e| e.offset);
            let mut found = None;
            let mut next = floor.map_or(first, |e| e.seq);
            let end = scan::scan(&*file, start, max_frame, |_, r| {
                if r.seq >= committed {
                    return ControlFlow::Break(());
                }
                next = r.seq + 1;
                if r.ts >= ts {
                    found = Some(r.seq);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .ctx("read", &path)?;
            // Damage before the answer: the damaged record may be the answer, and the
            // records after it are not known to be: say so, as a reader would.
            if let (ScanEnd::Bad { offset, reason, .. }, None) = (&end, found) {
                return Err(Error::corrupt(
                    &path,
                    *offset,
                    format!(
                        "{reason} (record seq {next}, met while seeking the first record at or after time {ts}; `reel rewind --to-seq` can start past it)"
                    ),
                ));
            }
            if let Some(seq) = found {
                return Ok(seq);
            }
        }
        Ok(committed)
    }

    /// Reads the record `seq` stored at `pos` (from [`Batch::for_each_at`]) with one or
    /// two `pread`s, verifying its checksum and seq; calls `f` on it. Returns `None` when
    /// the record is no longer there (its segment was dropped or rewritten).
    pub fn read_record_at<R>(
        &self,
        pos: FramePos,
        seq: u64,
        f: impl FnOnce(&RecordRef<'_>) -> R,
    ) -> Result<Option<R>> {
        let mut f = Some(f);
        let mut out = None;
        self.read_records_at(&[(pos, seq)], |_, r| {
            if let (Some(r), Some(f)) = (r, f.take()) {
                out = Some(f(r));
            }
        })?;
        Ok(out)
    }

    /// Reads many records by position, coalescing nearby frames of one segment into one
    /// `pread`: `f(i, record)` is called for every `items[i]`, with `None` when that record
    /// is no longer there. A page of a list written in batches costs one or a few reads.
    pub fn read_records_at(
        &self,
        items: &[(FramePos, u64)],
        mut f: impl FnMut(usize, Option<&RecordRef<'_>>),
    ) -> Result<()> {
        const SPAN: u64 = 256 << 10;
        const SLACK: u64 = 512;
        let max_frame = self.max_frame_len();
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].0.segment, items[i].0.offset));
        let mut buf = Vec::new();
        let mut i = 0;
        while i < order.len() {
            // A run of items in one segment within SPAN bytes of the first.
            let first = items[order[i]].0;
            let mut j = i + 1;
            while j < order.len() {
                let p = items[order[j]].0;
                if p.segment != first.segment || p.offset - first.offset > SPAN {
                    break;
                }
                j += 1;
            }
            let last = items[order[j - 1]].0;
            let Some(file) = self.segment_file(first.segment)? else {
                for &k in &order[i..j] {
                    f(k, None);
                }
                i = j;
                continue;
            };
            let read = |buf: &mut Vec<u8>, at: u64, len: usize| -> Result<usize> {
                buf.resize(len, 0);
                let n = file.read_full_at(buf, at).map_err(|e| {
                    Error::io(
                        "read",
                        segment::segment_path(&self.inner.dir, first.segment),
                        e,
                    )
                })?;
                buf.truncate(n);
                Ok(n)
            };
            read(
                &mut buf,
                first.offset,
                (last.offset - first.offset + SLACK) as usize,
            )?;
            for &k in &order[i..j] {
                let (pos, seq) = items[k];
                let at = (pos.offset - first.offset) as usize;
                let mut single = Vec::new();
                let mut frame_bytes = buf.get(at..).unwrap_or_default();
                if frame::peek_len(frame_bytes).is_none_or(|len| len > frame_bytes.len()) {
                    // A frame longer than the slack read: fetch it alone.
                    let len = frame::peek_len(frame_bytes)
                        .unwrap_or(frame::HEADER_LEN)
                        .min(max_frame);
                    read(&mut single, pos.offset, len)?;
                    frame_bytes = &single;
                }
                match frame::decode(frame_bytes, max_frame) {
                    Ok((Frame::Record(r), _)) if r.seq == seq => f(k, Some(&r)),
                    Ok(_) => f(k, None),
                    // A committed record at a position read from the index: a frame that
                    // claims to run past the end of its file is damage, not absence.
                    Err(DecodeError::Incomplete { needed }) => {
                        return Err(Error::corrupt(
                            segment::segment_path(&self.inner.dir, pos.segment),
                            pos.offset,
                            format!(
                                "frame of record seq {seq} claims {needed} bytes, past the end of the segment"
                            ),
                        ));
                    }
                    Err(DecodeError::Corrupt(reason)) => {
                        return Err(Error::corrupt(
                            segment::segment_path(&self.inner.dir, pos.segment),
                            pos.offset,
                            reason,
                        ));
                    }
                }
            }
            i = j;
        }
        Ok(())
    }

    /// An open handle on a segment, cached per log handle; `None` if it is gone.
    fn segment_file(&self, first: u64) -> Result<Option<Arc<dyn StorageFile>>> {
        let layout_gen = self.layout_gen();
        let mut guard = self
            .inner
            .segment_files
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (cache_gen, cache) = &mut *guard;
        if *cache_gen != layout_gen {
            // Segments were deleted or replaced: close every handle, or a deleted file
            // would keep its disk space (and a replaced one its old contents).
            cache.clear();
            *cache_gen = layout_gen;
        }
        if let Some(f) = cache.get(&first) {
            return Ok(Some(f.clone()));
        }
        let path = segment::segment_path(&self.inner.dir, first);
        match self.inner.storage.open(&path, OpenMode::Read) {
            Ok(f) => {
                if cache.len() >= 64 {
                    cache.clear();
                }
                cache.insert(first, f.clone());
                Ok(Some(f))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    /// The seq of the index entry at or before `seq` in the segment holding `seq`: a
    /// cheap place to start reading that ends at `seq`. Used for reverse iteration.
    pub fn floor_seq(&self, seq: u64) -> Result<u64> {
        let segs = self.live_segments()?;
        let i = segs.partition_point(|&s| s <= seq);
        let Some(&first) = i.checked_sub(1).and_then(|i| segs.get(i)) else {
            return Ok(segs.first().copied().unwrap_or(seq));
        };
        let entries = self.load_index(first);
        Ok(index::floor_by_seq(&entries, seq).map_or(first, |e| e.seq))
    }
}
