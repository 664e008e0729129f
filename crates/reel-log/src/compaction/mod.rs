//! Compaction, the `compact` when-full policy: keep the latest record per key, and merge
//! the small segments that rewriting leaves behind.
//!
//! Compaction runs beside appends, never inside one: it takes the compaction lock
//! (`reel.compact.lock`, one compaction per log at a time across processes), plans what
//! to drop from a snapshot of the sealed segments in bounded memory (`plan.rs`), writes
//! each group of consecutive segments into one new file, and takes the writer lock only
//! for the few file-system operations that swap a group in. Sealed segments are
//! immutable and appends only touch the tail, so the planning and writing never block
//! appends. The tail segment is never rewritten.
//!
//! A record is dropped only when a later record with its key exists, or when it is the
//! latest, a tombstone, and older than the grace period. Records without a key are kept.
//!
//! Ordering invariants (each crash point leaves a state readers and views can trust):
//! 1. `tombstone_horizon` in `reel.meta` is raised, durably, **before the first rename**:
//!    once a tombstone may be gone, every view checkpoint that has not applied it is
//!    already distrusted (it rebuilds), so no view keeps a deleted value. A crash after
//!    raising it and before any rename only costs a needless rebuild.
//! 2. Groups are swapped in oldest first, each made durable (directory sync) before the
//!    next starts: a tombstone (in a later segment) disappears only after every older
//!    value it deleted has disappeared, so no crash resurrects a deleted key.
//! 3. A group is built in `<first>.seg.compact` / `.idx.compact`, synced, then: old index
//!    removed, new segment renamed over the group's first segment, new index renamed,
//!    directory synced, the group's other segments removed, directory synced. At every
//!    instant each seq is readable from a complete, checksummed file holding every live
//!    value: until the rename the old files serve it; after it the new file does, and
//!    the group's remaining old segments are *covered* (the new file's seal names a
//!    later seq than their first) and ignored by readers (`layout.rs`) until removed
//!    here or at the next writable open.

mod plan;

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, Seal};
use crate::index::{self, INDEX_INTERVAL, IndexEntry};
use crate::log::{LOCK_FILE, LockGuard, Log, max_frame_len, now_micros};
use crate::scan;
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, StorageFile};
use plan::SegmentPlan;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a tombstone is kept after it was written, by default.
pub const DEFAULT_TOMBSTONE_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Name of the lock file that admits one compaction at a time.
pub const COMPACT_LOCK_FILE: &str = "reel.compact.lock";
/// Bytes of a new segment buffered before a `pwrite`.
const WRITE_CHUNK: usize = 1 << 20;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Sealed segments examined.
    pub segments: u64,
    /// Segments rewritten (each group of merged segments counts its members).
    pub rewritten: u64,
    /// Segment files that merging removed.
    pub merged: u64,
    /// Records dropped (superseded values and expired tombstones).
    pub dropped: u64,
    /// Bytes of the examined segment files before.
    pub bytes_before: u64,
    /// Bytes of those segments after.
    pub bytes_after: u64,
    /// Passes over the log needed to plan in bounded memory.
    pub passes: u32,
}

impl Log {
    /// Compacts every sealed segment and merges small ones (see the module
    /// documentation). Waits for a compaction another thread or process is running,
    /// then runs its own. Appends proceed meanwhile.
    pub fn compact(&self, grace: Duration) -> Result<CompactReport> {
        self.check_writable()?;
        self.kind().check_compaction(&self.inner.dir)?;
        let _one_per_process = self
            .inner
            .compacting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let lock_path = self.inner.dir.join(COMPACT_LOCK_FILE);
        let lock = self
            .inner
            .storage
            .lock_file(&lock_path)
            .ctx("open", &lock_path)?;
        let _g = LockGuard::acquire(&*lock, &lock_path)?;
        // Say, durably, that segments may be replaced from now on: until this is
        // cleared, readers check for covered segments and a writable open removes them.
        set_running(&*self.inner.storage, &lock_path, true)?;
        let report = self.compact_exclusive(grace);
        if report.is_ok() {
            set_running(&*self.inner.storage, &lock_path, false)?;
        }
        self.inner
            .appended_since_compaction
            .store(0, Ordering::Release);
        self.inner
            .seq_at_compaction
            .store(self.next_seq(), Ordering::Release);
        match &report {
            Ok(r) if r.rewritten > 0 => tracing::info!(
                dir = %self.inner.dir.display(),
                dropped = r.dropped,
                rewritten = r.rewritten,
                merged = r.merged,
                bytes_before = r.bytes_before,
                bytes_after = r.bytes_after,
                "compaction done"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(dir = %self.inner.dir.display(), "compaction failed: {e}"),
        }
        report
    }

    fn compact_exclusive(&self, grace: Duration) -> Result<CompactReport> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        self.remove_compaction_leftovers()?;
        let max_frame = max_frame_len(&self.config());
        // A consistent snapshot: the committed end and the tail it belongs to.
        let (committed, tail_first) = {
            let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let _g = LockGuard::acquire(&*self.inner.lock, &dir.join(LOCK_FILE))?;
            self.prepare_tail(&mut ws)?;
            let t = self.inner.head.tail();
            (t.next_seq, t.first_seq)
        };
        // A record is dropped because a later one of its key exists: that later one must
        // survive a power cut, or both would be lost. Records in sealed segments are
        // durable; the tail's are made so up to the snapshot's end.
        let tail_path = segment::segment_path(dir, tail_first);
        storage
            .open(&tail_path, OpenMode::Read)
            .and_then(|f| f.sync_data())
            .ctx("sync", &tail_path)?;
        let all: Vec<u64> = self
            .live_segments()?
            .into_iter()
            .filter(|&s| s <= tail_first)
            .collect();
        let sealed: Vec<u64> = all.iter().copied().filter(|&s| s < tail_first).collect();
        let mut report = CompactReport::default();
        if sealed.is_empty() {
            return Ok(report);
        }
        let expiry = now_micros().saturating_sub(grace.as_micros() as i64);
        let snapshot = plan::Snapshot {
            storage,
            dir,
            all: &all,
            sealed: &sealed,
            committed,
            max_frame,
        };
        let plan = plan::plan(snapshot, expiry, plan::MAX_KEYS_PER_PASS)?;
        report.segments = plan.segments.len() as u64;
        report.passes = plan.passes;
        report.bytes_before = plan.segments.iter().map(|s| s.bytes).sum();
        report.bytes_after = report.bytes_before;
        if plan.horizon > 0 {
            self.raise_tombstone_horizon(plan.horizon)?;
        }
        let target = self.config().segment_size;
        for group in groups(&plan.segments, target) {
            let members = &plan.segments[group];
            let Some(new_bytes) = self.rewrite_group(members, max_frame)? else {
                tracing::warn!(
                    dir = %dir.display(),
                    "segments changed under compaction (retention or reconfiguration); it stops here"
                );
                break;
            };
            let old_bytes: u64 = members.iter().map(|s| s.bytes).sum();
            report.rewritten += members.len() as u64;
            report.merged += members.len() as u64 - 1;
            report.dropped += members.iter().map(|s| s.dropped).sum::<u64>();
            report.bytes_after = report.bytes_after - old_bytes + new_bytes;
        }
        Ok(report)
    }

    /// Raises `tombstone_horizon` durably (invariant 1), under the writer lock like every
    /// other change of `reel.meta`.
    fn raise_tombstone_horizon(&self, horizon: u64) -> Result<()> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let _ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &dir.join(LOCK_FILE))?;
        let mut meta = crate::meta::Meta::read(storage, dir)?;
        if horizon > meta.tombstone_horizon {
            meta.tombstone_horizon = horizon;
            meta.write(storage, dir)?;
            self.inner
                .head
                .words()
                .config_gen
                .fetch_add(1, Ordering::AcqRel);
            tracing::info!(dir = %dir.display(), horizon, "tombstone horizon raised: views that have not applied it rebuild");
        }
        Ok(())
    }

    /// Writes one group into a new file and swaps it in (invariant 3). Returns the new
    /// file's size, or `None` when a member vanished meanwhile (nothing was changed).
    fn rewrite_group(&self, members: &[SegmentPlan], max_frame: usize) -> Result<Option<u64>> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let Some(first) = members.first().map(|m| m.first) else {
            return Ok(Some(0));
        };
        let segs_dir = segment::segments_dir(dir);
        let tmp_seg = segs_dir.join(format!("{first:020}.seg.compact"));
        let tmp_idx = segs_dir.join(format!("{first:020}.idx.compact"));
        let out = storage
            .open(&tmp_seg, OpenMode::CreateTruncate)
            .ctx("create", &tmp_seg)?;
        let mut w = ChunkWriter::new(&*out, &tmp_seg);
        w.push(&segment::encode_header(first, FLAG_COMPACTED))?;
        let mut entries: Vec<IndexEntry> = Vec::new();
        let (mut kept, mut ts_max, mut last_index_at) = (0u64, i64::MIN, 0u64);
        let mut scratch = Vec::new();
        for m in members {
            let path = segment::segment_path(dir, m.first);
            let file = storage.open(&path, OpenMode::Read).ctx("open", &path)?;
            let mut ordinal = 0u64;
            let mut failed = None;
            scan::scan(&*file, SEGMENT_HEADER_LEN, max_frame, |_, r| {
                let i = ordinal;
                ordinal += 1;
                if m.drops(i) {
                    return ControlFlow::Continue(());
                }
                let at = w.position();
                if kept == 0 || at >= last_index_at + INDEX_INTERVAL {
                    entries.push(IndexEntry {
                        seq: r.seq,
                        offset: at,
                        ts_max_before: ts_max,
                    });
                    last_index_at = at;
                }
                scratch.clear();
                frame::encode_record(&mut scratch, r.seq, r.ts, &r.as_entry());
                if let Err(e) = w.push(&scratch) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
                kept += 1;
                ts_max = ts_max.max(r.ts);
                ControlFlow::Continue(())
            })
            .ctx("read", &path)?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let last = members.last().map_or(first, |m| m.seal.next_seq);
        let mut seal = Vec::with_capacity(frame::SEAL_LEN);
        frame::encode_seal(
            &mut seal,
            &Seal {
                next_seq: last,
                ts_max: members
                    .iter()
                    .map(|m| m.seal.ts_max)
                    .max()
                    .unwrap_or(ts_max),
                records: kept,
                gap: false,
            },
        );
        w.push(&seal)?;
        let new_bytes = w.finish()?;
        out.sync_data().ctx("sync", &tmp_seg)?;
        let mut idx = index::encode_header(first).to_vec();
        for e in &entries {
            index::encode_entry(&mut idx, e);
        }
        let fi = storage
            .open(&tmp_idx, OpenMode::CreateTruncate)
            .ctx("create", &tmp_idx)?;
        fi.write_all_at(&idx, 0).ctx("write to", &tmp_idx)?;
        fi.sync_data().ctx("sync", &tmp_idx)?;

        // The swap, under the writer lock: retention or a reconfiguration must not
        // delete a member between the check and the renames.
        let _ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &dir.join(LOCK_FILE))?;
        let present = segment::list_segments(storage, dir)?;
        if members.iter().any(|m| !present.contains(&m.first)) {
            let _ = storage.remove_file(&tmp_seg);
            let _ = storage.remove_file(&tmp_idx);
            return Ok(None);
        }
        let idx_path = segment::index_path(dir, first);
        remove_if_present(&*self.inner.storage, &idx_path)?;
        let seg_path = segment::segment_path(dir, first);
        storage
            .rename(&tmp_seg, &seg_path)
            .ctx("rename", &seg_path)?;
        // Readers must re-read seals now: the group's other members became covered.
        let w = self.inner.head.words();
        w.layout_gen.fetch_add(1, Ordering::AcqRel);
        storage
            .rename(&tmp_idx, &idx_path)
            .ctx("rename", &idx_path)?;
        storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
        if members.len() > 1 {
            for m in &members[1..] {
                let p = segment::segment_path(dir, m.first);
                storage.remove_file(&p).ctx("remove", &p)?;
                remove_if_present(storage, &segment::index_path(dir, m.first))?;
            }
            storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
        }
        let old_bytes: u64 = members.iter().map(|m| m.bytes).sum();
        w.used_bytes
            .fetch_sub(old_bytes.saturating_sub(new_bytes), Ordering::AcqRel);
        self.inner.head.reseal();
        w.layout_gen.fetch_add(1, Ordering::AcqRel);
        Ok(Some(new_bytes))
    }

    /// Removes what an interrupted compaction left: `.compact` files, and segments
    /// covered by a merged segment before them (invariant 3). Only a process holding the
    /// compaction lock may call this (no compaction is writing those files meanwhile).
    pub(crate) fn remove_compaction_leftovers(&self) -> Result<()> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let segs_dir = segment::segments_dir(dir);
        for name in storage.list_dir(&segs_dir).ctx("list", &segs_dir)? {
            if name.to_str().is_some_and(|n| n.ends_with(".compact")) {
                let p = segs_dir.join(&name);
                remove_if_present(storage, &p)?;
                tracing::info!(path = %p.display(), "removed the leftover of an interrupted compaction");
            }
        }
        let covered = self.covered_segments()?;
        if covered.is_empty() {
            return Ok(());
        }
        let _ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &dir.join(LOCK_FILE))?;
        for first in covered {
            let p = segment::segment_path(dir, first);
            remove_if_present(storage, &p)?;
            remove_if_present(storage, &segment::index_path(dir, first))?;
            tracing::info!(path = %p.display(), "removed a segment an interrupted compaction had already merged");
        }
        storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
        // The interrupted compaction never accounted for its group (the first member was
        // replaced by a smaller file too): count every segment again.
        let t = self.inner.head.tail();
        let mut used = t.offset;
        for first in segment::list_segments(storage, dir)? {
            if first != t.first_seq {
                let p = segment::segment_path(dir, first);
                used += storage
                    .open(&p, OpenMode::Read)
                    .and_then(|f| f.len())
                    .ctx("read", &p)?;
            }
        }
        let w = self.inner.head.words();
        w.used_bytes.store(used, Ordering::Release);
        self.inner.head.reseal();
        w.layout_gen.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// After an append: starts a compaction in a background thread of this process when
    /// a `compact` log is three quarters full and a tenth of its capacity was appended
    /// since the last compaction (so a log whose live data fills it does not rescan
    /// itself forever). At most one such thread runs per handle.
    pub(crate) fn maybe_compact_in_background(&self) {
        let config = self.config();
        if config.when_full != crate::WhenFull::Compact
            || self.used_bytes() < config.capacity / 4 * 3
            || self.appended_since_compaction() < config.capacity / 10
            || self.inner.compactor_running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let log = self.clone();
        let spawned = std::thread::Builder::new()
            .name("reel-compactor".into())
            .spawn(move || {
                let _ = log.compact(DEFAULT_TOMBSTONE_GRACE);
                log.inner.compactor_running.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.inner.compactor_running.store(false, Ordering::Release);
        }
    }

    /// Bytes appended to the log since this process last compacted, by any process: its
    /// own count, or the seqs appended since times the log's mean record, whichever is
    /// more (a writer that appended little would otherwise refuse an append as full while
    /// others filled the log with values a compaction would drop).
    fn appended_since_compaction(&self) -> u64 {
        let own = self.inner.appended_since_compaction.load(Ordering::Acquire);
        let next = self.next_seq();
        let seqs = next.saturating_sub(self.inner.seq_at_compaction.load(Ordering::Acquire));
        let mean = self.used_bytes() / next.saturating_sub(self.oldest_seq()).max(1);
        own.max(seqs.saturating_mul(mean))
    }

    /// Before an append of `needed` bytes to a full `compact` log: compacts first (a
    /// write stall, logged), unless nothing was appended since the last compaction that
    /// could have become superseded.
    pub(crate) fn relieve_compaction_pressure(&self, needed: u64) -> Result<()> {
        if !self.inner.compact_mode.load(Ordering::Acquire) {
            return Ok(());
        }
        let config = self.config();
        if config.when_full != crate::WhenFull::Compact
            || self.used_bytes() + needed <= config.capacity
            || self.appended_since_compaction() < config.capacity / 10
        {
            return Ok(());
        }
        tracing::warn!(dir = %self.inner.dir.display(), "spool full: compacting before the append");
        self.compact(DEFAULT_TOMBSTONE_GRACE).map(|_| ())
    }
}

/// Consecutive sealed segments rewritten together: a segment joins the group before it
/// while their kept bytes fit in one segment of the target size. A group of one segment
/// that loses nothing is left alone.
fn groups(segments: &[SegmentPlan], target: u64) -> Vec<std::ops::Range<usize>> {
    let kept = |s: &SegmentPlan| s.bytes - s.dropped_bytes;
    let mut out = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let mut j = i + 1;
        let mut bytes = kept(&segments[i]);
        while j < segments.len() {
            let next = kept(&segments[j]) - SEGMENT_HEADER_LEN - frame::SEAL_LEN as u64;
            if bytes + next > target {
                break;
            }
            bytes += next;
            j += 1;
        }
        if j - i > 1 || segments[i].dropped > 0 {
            out.push(i..j);
        }
        i = j;
    }
    out
}

/// Byte 0 of `reel.compact.lock`: 1 while a compaction may be replacing segments (set
/// durably before its first rename, cleared when it finished cleanly), 0 otherwise.
pub(crate) fn is_running(storage: &dyn crate::storage::Storage, lock_path: &Path) -> bool {
    let mut b = [0u8; 1];
    storage
        .open(lock_path, OpenMode::Read)
        .and_then(|f| f.read_full_at(&mut b, 0))
        .is_ok_and(|n| n == 1 && b[0] == 1)
}

/// Marks a finished (or cleaned up) compaction.
pub(crate) fn set_idle(storage: &dyn crate::storage::Storage, lock_path: &Path) -> Result<()> {
    set_running(storage, lock_path, false)
}

fn set_running(
    storage: &dyn crate::storage::Storage,
    lock_path: &Path,
    running: bool,
) -> Result<()> {
    let f = storage
        .open(lock_path, OpenMode::CreateOrOpen)
        .ctx("open", lock_path)?;
    f.write_all_at(&[u8::from(running)], 0)
        .ctx("write to", lock_path)?;
    if running {
        f.sync_data().ctx("sync", lock_path)?;
        // The file may be new: its name must be as durable as its byte.
        if let Some(dir) = lock_path.parent() {
            storage.sync_dir(dir).ctx("sync", dir)?;
        }
    }
    Ok(())
}

fn remove_if_present(storage: &dyn crate::storage::Storage, path: &Path) -> Result<()> {
    match storage.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Streams a new file in chunks of [`WRITE_CHUNK`] bytes, tracking the logical position.
struct ChunkWriter<'a> {
    file: &'a dyn StorageFile,
    path: &'a Path,
    buf: Vec<u8>,
    flushed: u64,
}

impl<'a> ChunkWriter<'a> {
    fn new(file: &'a dyn StorageFile, path: &'a Path) -> Self {
        ChunkWriter {
            file,
            path,
            buf: Vec::with_capacity(WRITE_CHUNK),
            flushed: 0,
        }
    }

    fn position(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.buf, self.flushed)
            .ctx("write to", self.path)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.flushed)
    }
}
