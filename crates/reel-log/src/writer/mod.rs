//! Appending: frames are encoded under the in-process writer mutex and the cross-process
//! writer lock, written with one `pwrite` per MiB of frames (index entries with their
//! own), and published through the head. Also owns segment rolling; making room is in `room`,
//! durability after the append in `durability`.
//!
//! Commit protocol of one append batch:
//! 1. take the writer lock; repair the tail if the previous holder died mid-append;
//! 2. make room under the when-full policy (delete oldest segments or refuse);
//! 3. set `writing`, write the frames after the published end, then their index entries;
//! 4. publish the new tail and `next_seq` in the head (readers may now see the records),
//!    clear `writing`, wake sleepers; release the lock;
//! 5. for `always`, wait for an `fdatasync` covering the batch (group commit).
//!
//! A full segment is sealed first: seal frame, `fdatasync` of segment and index (in every
//! durability mode, so a later segment never survives a power cut that an earlier one did
//! not), creation of the next segment, directory sync. A roll publishes nothing: a batch
//! becomes visible as a whole when it ends, and a batch that fails is undone as a whole,
//! rolls included, so an append error always means that nothing of the batch is stored.

mod durability;
mod frames;
mod limits;
mod room;

pub(crate) use limits::Extent;

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, Entry, Seal};
use crate::group::{Appended, Unit};
use crate::head::TailState;
use crate::index::{self, INDEX_INTERVAL, IndexEntry};
use crate::log::{LOCK_FILE, LockGuard, Log, now_micros};
use crate::meta::Config;
use crate::recovery;
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, StorageFile};
use crate::sync::{Durability, SyncedFile};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a `batch` append may stay unsynced.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(10);
/// Encoded bytes buffered before a `pwrite` inside one large batch.
const WRITE_CHUNK: usize = 1 << 20;

/// Checks entries against the limits; returns the bytes their frames take.
/// A record to append that owns its bytes (built under the writer lock by
/// [`Log::append_guarded`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedEntry {
    /// Timestamp; `None` means now.
    pub ts: Option<i64>,
    /// Optional key (shared: the entries of one list in a batch carry the same key).
    pub key: Option<Arc<str>>,
    /// Optional nonce.
    pub nonce: Option<u128>,
    /// Value encoding tag, 0..=15.
    pub encoding: u8,
    /// Value bytes.
    pub value: Vec<u8>,
}

impl OwnedEntry {
    /// Borrows as an [`Entry`].
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            ts: self.ts,
            key: self.key.as_deref(),
            nonce: self.nonce,
            encoding: self.encoding,
            value: &self.value,
        }
    }
}

/// This process's view of the tail: open files and reusable buffers.
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    tail: Option<TailFiles>,
    /// Frames encoded but not yet written; they go to the tail at `buf_at`.
    buf: Vec<u8>,
    buf_at: u64,
    /// Index entries encoded but not yet written; they go to entry number `idx_at`.
    idx_buf: Vec<u8>,
    idx_at: u64,
    verified: bool,
}

#[derive(Debug)]
struct TailFiles {
    first_seq: u64,
    seg: Arc<SyncedFile>,
    idx: Arc<dyn StorageFile>,
}

impl Log {
    /// Appends records as one batch with this handle's durability; returns their seqs.
    /// Safe to call from many threads and processes at once: seqs are dense and each
    /// batch is contiguous.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use reel_log::{Config, Entry, Log};
    /// let log = Log::create(tmp.path(), Config::default())?;
    /// let seqs = log.append(&[
    ///     Entry { key: Some("a"), value: b"1", ..Default::default() },
    ///     Entry { value: b"2", ..Default::default() },
    /// ])?;
    /// assert_eq!(seqs, 0..2);
    /// # Ok::<(), reel_log::Error>(())
    /// ```
    pub fn append(&self, entries: &[Entry<'_>]) -> Result<Range<u64>> {
        self.append_with(entries, self.inner.durability)
    }

    /// Appends with an explicit durability.
    pub fn append_with(&self, entries: &[Entry<'_>], durability: Durability) -> Result<Range<u64>> {
        self.check_appendable()?;
        let extent = Extent::of(entries)?;
        if entries.is_empty() {
            return Ok(self.next_seq()..self.next_seq());
        }
        self.relieve_compaction_pressure(extent.total)?;
        let now = now_micros();
        let appended = self
            .inner
            .queue
            .append(entries, extent, now, |units| self.write_group(units, now));
        let (range, file, end) = match appended {
            // Another process filled the log between the check above and this append:
            // compact now (whatever this process appended itself) and try once more.
            Err(Error::Full {
                policy: crate::WhenFull::Compact,
                ..
            }) => {
                self.compact(crate::compaction::DEFAULT_TOMBSTONE_GRACE)?;
                let now = now_micros();
                self.inner
                    .queue
                    .append(entries, extent, now, |units| self.write_group(units, now))?
            }
            other => other?,
        };
        self.make_durable(durability, &file, end)?;
        self.maybe_compact_in_background();
        Ok(range)
    }

    /// Appends what `decide` returns, deciding under the writer lock: `decide` gets the
    /// committed end (every record below it is readable and no other writer can append
    /// until it returns), so it can catch up on the log and check a condition that must
    /// hold at the moment of the append (compare-and-set, exactly-once nonces). An
    /// empty list appends nothing. Returns the seqs appended and what `decide` returned.
    ///
    /// `decide` may be called twice: when another process filled a `compact` log between
    /// the pressure check and the append, the locks are released, the log is compacted,
    /// and the decision is taken again against the log as it then is.
    pub fn append_guarded<T, E>(
        &self,
        durability: Durability,
        mut decide: impl FnMut(u64) -> std::result::Result<(Vec<OwnedEntry>, T), E>,
    ) -> std::result::Result<(Range<u64>, T), E>
    where
        E: From<Error>,
    {
        self.check_appendable()?;
        // What `decide` will append is unknown yet: relieve a log that is already full.
        self.relieve_compaction_pressure(0)?;
        let mut retried = false;
        let (range, file, end, extra) = loop {
            let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            self.check_poisoned()?;
            let guard = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
            self.prepare_tail(&mut ws)?;
            let t = self.inner.head.tail();
            let (owned, extra) = decide(t.next_seq)?;
            let entries: Vec<Entry<'_>> = owned.iter().map(OwnedEntry::as_entry).collect();
            let config = self.meta_checked()?.config;
            let extent = Extent::of(&entries)?;
            extent.check(&config)?;
            let total = extent.total;
            if entries.is_empty() {
                return Ok((t.next_seq..t.next_seq, extra));
            }
            match self.write_alone(&mut ws, t, &Unit::Entries(&entries, extent), total, &config) {
                Ok((range, file, end)) => break (range, file, end, extra),
                Err(Error::Full {
                    policy: crate::WhenFull::Compact,
                    ..
                }) if !retried => {
                    // Compaction takes both locks itself.
                    drop(guard);
                    drop(ws);
                    self.compact(crate::compaction::DEFAULT_TOMBSTONE_GRACE)?;
                    retried = true;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.make_durable(durability, &file, end)?;
        self.maybe_compact_in_background();
        Ok((range, extra))
    }

    /// Writes one unit on its own under the writer lock (tail `t` prepared, limits
    /// checked): room, frames, publication. On a write failure the tail goes back to `t`.
    fn write_alone(
        &self,
        ws: &mut WriterState,
        mut t: TailState,
        unit: &Unit<'_>,
        total: u64,
        config: &Config,
    ) -> Result<(Range<u64>, Arc<SyncedFile>, u64)> {
        let good = t;
        self.make_room(&mut t, total, true, config)?;
        self.inner.head.words().writing.store(1, Ordering::Release);
        let start = t.next_seq;
        if let Err(e) = self
            .write_unit(ws, &mut t, unit, now_micros(), config)
            .and_then(|()| self.flush(ws))
        {
            return Err(self.fail_append(ws, &good, e));
        }
        let file = self.publish_written(ws, &t)?;
        Ok((start..t.next_seq, file, t.offset))
    }

    /// Publishes tail `t`, whose frames are written, and notes how far this handle wrote
    /// (for `sync` and the background flusher); returns the tail file.
    fn publish_written(&self, ws: &WriterState, t: &TailState) -> Result<Arc<SyncedFile>> {
        self.inner.head.publish(t);
        let Some(file) = ws.tail.as_ref().map(|tf| tf.seg.clone()) else {
            return Err(Error::Poisoned {
                cause: "tail segment vanished".into(),
            });
        };
        file.written_end.fetch_max(t.offset, Ordering::AcqRel);
        *self
            .inner
            .last_written
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((file.clone(), t.offset));
        Ok(file)
    }

    /// Writes a group of appends under one lock acquisition and publishes them once.
    /// Each unit gets its own retention check and outcome.
    fn write_group(&self, units: &[Unit<'_>], now: i64) -> Vec<Result<Appended>> {
        let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let prepared = self.check_poisoned().and_then(|()| {
            let g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
            self.prepare_tail(&mut ws)?;
            Ok(g)
        });
        let _guard = match prepared {
            Ok(g) => g,
            Err(e) => return units.iter().map(|_| Err(e.duplicate())).collect(),
        };
        // Read once per group: prepare_tail has just reloaded it if another process changed it.
        let config = match self.meta_checked() {
            Ok(m) => m.config,
            Err(e) => return units.iter().map(|_| Err(e.duplicate())).collect(),
        };
        let mut t = self.inner.head.tail();
        let before = t;
        let mut ranges: Vec<Result<Range<u64>>> = Vec::with_capacity(units.len());
        // The group's frames are buffered and written together (one `pwrite` unless a
        // segment rolls), so a write failure fails every unit of the group: none of them
        // was acknowledged, and the tail goes back to where the group started.
        let mut written = Ok(());
        for unit in units {
            let extent = match unit {
                Unit::Entries(_, extent) => *extent,
                Unit::Encoded(r) => r.extent,
                Unit::Raw(_) => Extent::default(),
            };
            // A refused unit (too large, or no room under the retention policy) fails
            // alone; it writes nothing.
            if let Err(e) = extent
                .check(&config)
                .and_then(|()| self.make_room(&mut t, extent.total, true, &config))
            {
                ranges.push(Err(e));
                continue;
            }
            self.inner.head.words().writing.store(1, Ordering::Release);
            let start = t.next_seq;
            written = self.write_unit(&mut ws, &mut t, unit, now, &config);
            if written.is_err() {
                break;
            }
            ranges.push(Ok(start..t.next_seq));
        }
        if let Err(e) = written.and_then(|()| self.flush(&mut ws)) {
            let e = self.fail_append(&mut ws, &before, e);
            return units.iter().map(|_| Err(e.duplicate())).collect();
        }
        let file = match self.publish_written(&ws, &t) {
            Ok(f) => f,
            Err(e) => {
                return ranges
                    .into_iter()
                    .map(|r| r.and(Err(e.duplicate())))
                    .collect();
            }
        };
        ranges
            .into_iter()
            .map(|r| r.map(|range| (range, file.clone(), t.offset)))
            .collect()
    }

    /// Brings this process's writer state in line with the head (under the writer lock):
    /// repairs after a writer that died mid-append, reloads the configuration, opens the
    /// tail files. The first call per handle also verifies the tail from its last index
    /// entry.
    pub(crate) fn prepare_tail(&self, ws: &mut WriterState) -> Result<()> {
        let head = &self.inner.head;
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let boot = storage.boot_id();
        // The identity of the head file this handle mapped, read once at open.
        let file_id = self.inner.head_file_id;
        let crashed = head.words().writing.load(Ordering::Acquire) != 0;
        let trusted = head.is_trusted(boot, file_id) && head.is_intact();
        if crashed || !ws.verified || !trusted {
            let config = self.meta_checked()?.config;
            let report = recovery::recover(storage, dir, head, &config, true, !trusted)?;
            report.log_warnings(dir);
            if !trusted {
                // Only a head nobody trusts may be re-stamped: stamping resets the
                // waiter count that sleeping readers of a trusted head rely on.
                head.stamp(boot, file_id);
            }
            if !report.is_clean() {
                *self
                    .inner
                    .recovery
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(report);
            }
            ws.tail = None;
            ws.verified = true;
        }
        let t = head.tail();
        if ws
            .tail
            .as_ref()
            .is_none_or(|tf| tf.first_seq != t.first_seq)
        {
            let seg_path = segment::segment_path(dir, t.first_seq);
            let idx_path = segment::index_path(dir, t.first_seq);
            let seg = storage
                .open(&seg_path, OpenMode::ReadWrite)
                .ctx("open", &seg_path)?;
            let idx = storage
                .open(&idx_path, OpenMode::CreateOrOpen)
                .ctx("open", &idx_path)?;
            ws.tail = Some(TailFiles {
                first_seq: t.first_seq,
                seg: SyncedFile::new(seg, seg_path, t.offset),
                idx,
            });
        }
        Ok(())
    }

    fn write_unit(
        &self,
        ws: &mut WriterState,
        t: &mut TailState,
        unit: &Unit<'_>,
        now: i64,
        config: &Config,
    ) -> Result<()> {
        if ws.buf.is_empty() && ws.idx_buf.is_empty() {
            ws.buf_at = t.offset;
            ws.idx_at = t.index_entries;
        }
        // Encoded or replicated units are frames, walked by their lengths.
        let frames: &[u8] = match unit {
            Unit::Entries(..) => &[],
            Unit::Encoded(r) => &r.frames,
            Unit::Raw(b) => b,
        };
        let count = match unit {
            Unit::Entries(es, _) => es.len(),
            Unit::Encoded(_) | Unit::Raw(_) => usize::MAX,
        };
        let mut at = 0usize;
        for i in 0..count {
            let (len, ts) = match unit {
                Unit::Entries(es, _) => (es[i].frame_len() as u64, es[i].ts.unwrap_or(now)),
                Unit::Encoded(_) | Unit::Raw(_) => match frame::peek_len(&frames[at..]) {
                    Some(len) => (
                        len as u64,
                        i64::from_le_bytes(frames[at + 20..at + 28].try_into().unwrap_or_default()),
                    ),
                    None => break,
                },
            };
            if t.records > 0 && t.offset + len + frame::SEAL_LEN as u64 > config.segment_size {
                self.flush(ws)?;
                self.roll(ws, t, false)?;
                ws.buf_at = t.offset;
                ws.idx_at = t.index_entries;
            }
            if t.records == 0 || t.offset >= t.last_index_offset + INDEX_INTERVAL {
                index::encode_entry(
                    &mut ws.idx_buf,
                    &IndexEntry {
                        seq: t.next_seq,
                        offset: t.offset,
                        ts_max_before: t.ts_max,
                    },
                );
                t.index_entries += 1;
                t.last_index_offset = t.offset;
            }
            match unit {
                Unit::Entries(es, _) => frame::encode_record(&mut ws.buf, t.next_seq, ts, &es[i]),
                Unit::Encoded(_) => {
                    let start = ws.buf.len();
                    ws.buf.extend_from_slice(&frames[at..at + len as usize]);
                    frame::patch_seq(&mut ws.buf[start..], t.next_seq);
                    at += len as usize;
                }
                // Checked by `append_frames`: they continue the log, seq for seq.
                Unit::Raw(_) => {
                    ws.buf.extend_from_slice(&frames[at..at + len as usize]);
                    at += len as usize;
                }
            }
            t.offset += len;
            t.used_bytes += len;
            self.inner
                .appended_since_compaction
                .fetch_add(len, Ordering::Relaxed);
            t.next_seq += 1;
            t.records += 1;
            t.ts_max = t.ts_max.max(ts);
            if ws.buf.len() >= WRITE_CHUNK {
                self.flush(ws)?;
                ws.buf_at = t.offset;
                ws.idx_at = t.index_entries;
            }
        }
        Ok(())
    }

    /// Writes the buffered frames and index entries where they belong. On failure the
    /// buffers are dropped: the caller undoes the whole append or group.
    fn flush(&self, ws: &mut WriterState) -> Result<()> {
        let result = self.write_buffers(ws);
        ws.buf.clear();
        ws.idx_buf.clear();
        result
    }

    fn write_buffers(&self, ws: &mut WriterState) -> Result<()> {
        let (at, idx_at) = (ws.buf_at, ws.idx_at);
        let Some(tf) = ws.tail.as_ref() else {
            return Err(Error::Poisoned {
                cause: "no tail segment open".into(),
            });
        };
        if !ws.buf.is_empty() {
            tf.seg
                .file
                .write_all_at(&ws.buf, at)
                .ctx("write to", &tf.seg.path)?;
            ws.buf.clear();
        }
        if !ws.idx_buf.is_empty() {
            let idx_path = segment::index_path(&self.inner.dir, tf.first_seq);
            tf.idx
                .write_all_at(&ws.idx_buf, index::entry_pos(idx_at))
                .ctx("write to", &idx_path)?;
            ws.idx_buf.clear();
        }
        Ok(())
    }

    /// Seals the tail segment and starts the next one at `t.next_seq` (past a gap of
    /// skipped seqs when `gap`).
    fn roll(&self, ws: &mut WriterState, t: &mut TailState, gap: bool) -> Result<()> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let Some(tf) = ws.tail.as_ref() else {
            return Err(Error::Poisoned {
                cause: "no tail segment open".into(),
            });
        };
        let mut seal = Vec::with_capacity(frame::SEAL_LEN);
        frame::encode_seal(
            &mut seal,
            &Seal {
                next_seq: t.next_seq,
                ts_max: t.ts_max,
                records: t.records,
                gap,
            },
        );
        tf.seg
            .file
            .write_all_at(&seal, t.offset)
            .ctx("write to", &tf.seg.path)?;
        tf.seg
            .written_end
            .fetch_max(t.offset + seal.len() as u64, Ordering::AcqRel);
        tf.seg.sync_to(t.offset + seal.len() as u64)?;
        let idx_path = segment::index_path(dir, tf.first_seq);
        tf.idx.sync_data().ctx("sync", &idx_path)?;
        t.offset += seal.len() as u64;
        t.used_bytes += seal.len() as u64;

        let first = t.next_seq;
        let seg_path = segment::segment_path(dir, first);
        let (seg, idx) = segment::create(storage, dir, first, false)?;

        *t = TailState {
            next_seq: first,
            first_seq: first,
            offset: SEGMENT_HEADER_LEN,
            ts_max: i64::MIN,
            index_entries: 0,
            last_index_offset: 0,
            records: 0,
            used_bytes: t.used_bytes + SEGMENT_HEADER_LEN,
            oldest_seq: t.oldest_seq,
        };
        ws.tail = Some(TailFiles {
            first_seq: first,
            seg: SyncedFile::new(seg, seg_path, SEGMENT_HEADER_LEN),
            idx,
        });
        // Not published here: the batch becomes visible as a whole at its end, so that
        // a failure later in the batch can undo the roll too (see `fail_append`).
        Ok(())
    }

    /// Undoes a failed append back to `good`, the state after the last fully written
    /// unit of the group (the published state when the failed unit was the first), and
    /// publishes it: the failed unit leaves no trace, even when it rolled segments (the
    /// new segments are deleted and the old tail loses its seal again). A full disk whose
    /// partial write could be undone leaves the writer usable; anything else poisons it.
    fn fail_append(&self, ws: &mut WriterState, good: &TailState, err: Error) -> Error {
        let undone = self.truncate_to(*good);
        ws.tail = None;
        if undone.is_ok() {
            self.inner.head.publish(good);
        } else {
            self.inner.head.words().writing.store(0, Ordering::Release);
        }
        match (&err, undone) {
            (Error::DiskFull { .. }, Ok(())) => err,
            (_, Ok(())) => {
                self.poison(&err.to_string());
                err
            }
            (_, Err(undo)) => {
                self.poison(&format!("{err}; undoing it failed: {undo}"));
                err
            }
        }
    }

    /// Restores the files to tail state `t`. Segments created after `t`'s tail go first
    /// (made durable by a directory sync), then the tail is truncated: a crash in between
    /// leaves at worst a sealed tail without successor, which recovery cuts back.
    fn truncate_to(&self, t: TailState) -> Result<()> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let mut removed = false;
        for first in segment::list_segments(storage, dir)? {
            if first > t.first_seq {
                let p = segment::segment_path(dir, first);
                storage.remove_file(&p).ctx("remove", &p)?;
                let _ = storage.remove_file(&segment::index_path(dir, first));
                removed = true;
            }
        }
        if removed {
            let segs_dir = segment::segments_dir(dir);
            storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
        }
        let seg_path = segment::segment_path(dir, t.first_seq);
        let seg = storage
            .open(&seg_path, OpenMode::ReadWrite)
            .ctx("open", &seg_path)?;
        seg.set_len(t.offset).ctx("truncate", &seg_path)?;
        let idx_path = segment::index_path(dir, t.first_seq);
        let idx = storage
            .open(&idx_path, OpenMode::CreateOrOpen)
            .ctx("open", &idx_path)?;
        idx.set_len(index::entry_pos(t.index_entries))
            .ctx("truncate", &idx_path)?;
        Ok(())
    }
}
