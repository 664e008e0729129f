//! Point lookups by seq ([`Log::read_record`]): one `pread` of about one index interval
//! from a cached segment list and cached index entries, instead of a [`LogReader`]
//! (directory listing, whole index file and a 256 KiB buffer per lookup).
//!
//! What is cached is valid for one `layout_gen` (segments deleted, rewritten or
//! recovered clear it). Between generations the log only grows: a new segment is found
//! when the last known one ends in a seal before the wanted seq, and new index entries
//! of a growing segment are read incrementally.
//!
//! Only bytes below the committed end observed *before* reading are trusted: index
//! entries and frames below it were written by batches that were published, and a
//! dead writer's leftovers past it are truncated before anything is written over them.
//! Anything unexpected (damage, a missing frame, a segment gone under us) falls back to
//! the reader, whose answer (or error) is the reference.
//!
//! [`LogReader`]: crate::LogReader

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, DecodeError, Frame, RecordRef};
use crate::index::{self, ENTRY_LEN, INDEX_HEADER_LEN, INDEX_INTERVAL, IndexEntry};
use crate::log::Log;
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, StorageFile};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

/// Bytes read per lookup: an index interval plus room for the frame that crosses it.
const WINDOW: usize = 2 * INDEX_INTERVAL as usize;
/// Segments kept open for lookups at most (two descriptors each): a store of thousands
/// of small segments must not run out of file descriptors.
const MAX_OPEN: usize = 64;

/// What lookups know of the segments as of one `layout_gen`.
#[derive(Debug, Default)]
pub(crate) struct LookupCache {
    layout_gen: u64,
    /// Live segments, ascending, as last listed.
    segments: Vec<u64>,
    by_first: HashMap<u64, Arc<SegmentIndex>>,
}

/// A segment's open file, its flags and the index entries read so far.
#[derive(Debug)]
struct SegmentIndex {
    file: Arc<dyn StorageFile>,
    compacted: bool,
    entries: std::sync::Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// The index file, kept open: a lookup past the last known entry costs an `fstat`.
    file: Option<Arc<dyn StorageFile>>,
    list: Vec<IndexEntry>,
    /// Bytes of the index file decoded into `list` (a multiple of the entry size).
    read_to: u64,
    /// The header was checked (a bad header means no entry is trusted).
    header_ok: Option<bool>,
}

/// Outcome of looking in one segment.
enum Found<R> {
    Record(R),
    /// Not stored (compacted away).
    Absent,
    /// In a later segment than the list knows.
    Later,
    /// Something the fast path does not judge: ask the reader.
    Unsure,
}

impl Log {
    /// Reads record `seq` and calls `f` on it; `None` when it is not stored (not written
    /// yet, dropped by retention or compacted away). Damage is an error naming the file.
    pub fn read_record<R>(
        &self,
        seq: u64,
        f: impl FnOnce(&RecordRef<'_>) -> R,
    ) -> Result<Option<R>> {
        let committed = self.next_seq();
        if seq >= committed || seq < self.oldest_seq() {
            return Ok(None);
        }
        let mut f = Some(f);
        let mut call = |r: &RecordRef<'_>| f.take().map(|f| f(r));
        for relist in [false, true] {
            let Some(seg) = self.lookup_segment(seq, relist)? else {
                break;
            };
            match self.find_in(&seg.1, seg.0, seq, committed, &mut call)? {
                Found::Record(r) => return Ok(r),
                Found::Absent => return Ok(None),
                Found::Later => continue,
                Found::Unsure => break,
            }
        }
        self.read_record_slow(seq, call)
    }

    /// The reference: a reader positioned at `seq`.
    fn read_record_slow<R>(
        &self,
        seq: u64,
        call: impl FnOnce(&RecordRef<'_>) -> Option<R>,
    ) -> Result<Option<R>> {
        let mut reader = self.reader(seq);
        let batch = reader.read_batch(1)?;
        let rec = batch.iter().next().filter(|r| r.seq == seq);
        Ok(rec.and_then(|r| call(&r)))
    }

    /// The segment that holds `seq` according to the cached list (listed again when
    /// `relist`, or when the layout changed), with its cached index.
    fn lookup_segment(&self, seq: u64, relist: bool) -> Result<Option<(u64, Arc<SegmentIndex>)>> {
        let layout_gen = self.layout_gen();
        let first = {
            let mut cache = self.inner.lookup.lock().unwrap_or_else(|e| e.into_inner());
            if cache.layout_gen != layout_gen {
                *cache = LookupCache {
                    layout_gen,
                    ..Default::default()
                };
            }
            if relist || cache.segments.first().is_none_or(|&s| s > seq) {
                cache.segments = self.live_segments()?;
            }
            let i = cache.segments.partition_point(|&s| s <= seq);
            let Some(&first) = i.checked_sub(1).and_then(|i| cache.segments.get(i)) else {
                return Ok(None);
            };
            if let Some(seg) = cache.by_first.get(&first) {
                return Ok(Some((first, seg.clone())));
            }
            first
        };
        // Opened outside the lock: lookups in other segments need not wait for it.
        let path = segment::segment_path(&self.inner.dir, first);
        let file = match self.inner.storage.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
        let n = file.read_full_at(&mut hdr, 0).ctx("read", &path)?;
        let Ok(header) = segment::decode_header(&hdr[..n], &path) else {
            return Ok(None);
        };
        let seg = Arc::new(SegmentIndex {
            file,
            compacted: header.flags & FLAG_COMPACTED != 0,
            entries: Default::default(),
        });
        let mut cache = self.inner.lookup.lock().unwrap_or_else(|e| e.into_inner());
        if cache.layout_gen == layout_gen {
            if cache.by_first.len() >= MAX_OPEN {
                cache.by_first.clear();
            }
            cache.by_first.insert(first, seg.clone());
        }
        Ok(Some((first, seg)))
    }

    /// Looks for `seq` in the segment starting at `first`.
    fn find_in<R>(
        &self,
        seg: &SegmentIndex,
        first: u64,
        seq: u64,
        committed: u64,
        call: &mut impl FnMut(&RecordRef<'_>) -> Option<R>,
    ) -> Result<Found<Option<R>>> {
        let floor = self.index_floor(seg, first, seq, committed);
        let (mut at, floor_seq) = floor.map_or((SEGMENT_HEADER_LEN, first), |e| (e.offset, e.seq));
        let max_frame = self.max_frame_len();
        // The path is only built for an error: lookups are meant to cost one `pread`.
        let read_err = |e| Error::io("read", segment::segment_path(&self.inner.dir, first), e);
        let mut buf = vec![0u8; WINDOW];
        let mut buf_off = at;
        let mut buf_len = seg.file.read_full_at(&mut buf, at).map_err(read_err)?;
        let mut expect = floor_seq;
        loop {
            let rel = (at - buf_off) as usize;
            match frame::decode(&buf[rel..buf_len], max_frame) {
                Ok((Frame::Record(r), len)) => {
                    // In a segment that was not compacted seqs follow one another: any
                    // other seq means the index or the bytes are not what they claim.
                    if !seg.compacted && r.seq != expect {
                        return Ok(Found::Unsure);
                    }
                    if r.seq == seq {
                        return Ok(Found::Record(call(&r)));
                    }
                    if r.seq > seq {
                        return Ok(if seg.compacted {
                            Found::Absent
                        } else {
                            Found::Unsure
                        });
                    }
                    expect = r.seq + 1;
                    at += len as u64;
                }
                Ok((Frame::Seal(s), _)) => {
                    return Ok(if s.next_seq <= seq {
                        Found::Later
                    } else if seg.compacted {
                        Found::Absent
                    } else {
                        Found::Unsure
                    });
                }
                Err(DecodeError::Incomplete { needed }) => {
                    // A frame below the committed end always fits in its file: when
                    // reading from its start does not give all of it, something is off.
                    if rel == 0 && buf.len() >= needed {
                        return Ok(Found::Unsure);
                    }
                    let want = needed.max(WINDOW);
                    if buf.len() < want {
                        buf.resize(want, 0);
                    }
                    buf_off = at;
                    buf_len = seg
                        .file
                        .read_full_at(&mut buf[..want], at)
                        .map_err(read_err)?;
                    if buf_len < needed {
                        return Ok(Found::Unsure);
                    }
                }
                Err(DecodeError::Corrupt(_)) => return Ok(Found::Unsure),
            }
        }
    }

    /// The last trusted index entry at or before `seq`, reading entries written since the
    /// last lookup when `seq` is past the known ones. Entries at or past `committed` are
    /// not trusted (nor kept): they may belong to a batch that is not published yet.
    fn index_floor(
        &self,
        seg: &SegmentIndex,
        first: u64,
        seq: u64,
        committed: u64,
    ) -> Option<IndexEntry> {
        let mut e = seg.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.list.last().is_none_or(|l| l.seq < seq) && e.header_ok != Some(false) {
            self.read_more_entries(first, &mut e, committed);
        }
        index::floor_by_seq(&e.list, seq).copied()
    }

    fn read_more_entries(&self, first: u64, e: &mut Entries, committed: u64) {
        let file = match &e.file {
            Some(f) => f.clone(),
            None => {
                let path = segment::index_path(&self.inner.dir, first);
                let Ok(f) = self.inner.storage.open(&path, OpenMode::Read) else {
                    return;
                };
                e.file = Some(f.clone());
                f
            }
        };
        if e.header_ok.is_none() {
            let mut hdr = [0u8; INDEX_HEADER_LEN as usize];
            match file.read_full_at(&mut hdr, 0) {
                Ok(n) if n == hdr.len() => {
                    e.header_ok = Some(hdr == index::encode_header(first));
                    e.read_to = INDEX_HEADER_LEN;
                }
                // Not written yet (a segment just created): try again next time.
                _ => return,
            }
            if e.header_ok == Some(false) {
                return;
            }
        }
        let Ok(len) = file.len() else { return };
        if len <= e.read_to {
            return;
        }
        let mut buf = vec![0u8; (len - e.read_to) as usize];
        let Ok(n) = file.read_full_at(&mut buf, e.read_to) else {
            return;
        };
        for chunk in buf[..n].chunks_exact(ENTRY_LEN as usize) {
            let Some(entry) = index::decode_entry(chunk) else {
                break;
            };
            if entry.seq >= committed
                || e.list.last().is_some_and(|p| {
                    entry.seq <= p.seq
                        || entry.offset <= p.offset
                        || entry.ts_max_before < p.ts_max_before
                })
            {
                break;
            }
            e.list.push(entry);
            e.read_to += ENTRY_LEN;
        }
    }
}
