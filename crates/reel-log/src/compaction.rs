//! Compaction, the `compact` when-full policy: keep the latest record per key.
//!
//! Every sealed segment is rewritten without the records a later record with the same
//! key supersedes, and without tombstones older than the grace period (a tombstone must
//! outlive the values it deletes long enough for every reader to see it). Records
//! without a key are kept. The tail segment is never rewritten.
//!
//! Crash safety: a rewritten segment is built in `<name>.seg.compact`, synced, then the
//! old index is removed, the new segment renamed over the old one, the new index
//! renamed into place, and the directory synced. At every instant the segment file is
//! either the old or the new one, each complete and checksummed (a missing index is
//! only slower), and both keep every live value: a record is dropped only when a later
//! record of its key exists in the log. Readers that opened the old file keep reading
//! it. Rewritten segments carry the `compacted` header flag: their seqs have gaps.

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, Seal, TOMBSTONE};
use crate::index::{self, INDEX_INTERVAL, IndexEntry};
use crate::log::{LOCK_FILE, LockGuard, Log, max_frame_len, now_micros};
use crate::scan::{self, ScanEnd};
use crate::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use crate::storage::OpenMode;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a tombstone is kept after it was written, by default.
pub const DEFAULT_TOMBSTONE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Sealed segments examined.
    pub segments: u64,
    /// Segments rewritten.
    pub rewritten: u64,
    /// Records dropped (superseded values and expired tombstones).
    pub dropped: u64,
    /// Bytes of segment files before.
    pub bytes_before: u64,
    /// Bytes of segment files after.
    pub bytes_after: u64,
}

impl Log {
    /// Compacts every sealed segment (see the module documentation). Takes the writer
    /// lock for its whole run: appends wait.
    pub fn compact(&self, grace: Duration) -> Result<CompactReport> {
        self.check_writable()?;
        self.kind().check_compaction(&self.inner.dir)?;
        let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
        self.prepare_tail(&mut ws)?;
        self.compact_locked(grace)
    }

    /// Compaction under the writer lock (also run by `make_room` when full).
    pub(crate) fn compact_locked(&self, grace: Duration) -> Result<CompactReport> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let max_frame = max_frame_len(&self.config());
        let committed = self.inner.head.next_seq();
        let segs = segment::list_segments(storage, dir)?;
        let mut report = CompactReport::default();
        let Some((_, sealed)) = segs.split_last() else {
            return Ok(report);
        };

        // The latest seq of every key, over the whole log.
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        for &first in &segs {
            let path = segment::segment_path(dir, first);
            let file = storage.open(&path, OpenMode::Read).ctx("open", &path)?;
            let end = scan::scan(&*file, SEGMENT_HEADER_LEN, max_frame, |_, r| {
                if r.seq >= committed {
                    return ControlFlow::Break(());
                }
                if let Some(k) = r.key {
                    match latest.get_mut(k.as_bytes()) {
                        Some(s) => *s = (*s).max(r.seq),
                        None => {
                            latest.insert(k.as_bytes().to_vec(), r.seq);
                        }
                    }
                }
                ControlFlow::Continue(())
            })
            .ctx("read", &path)?;
            if let ScanEnd::Bad { offset, reason, .. } = end
                && first != *segs.last().unwrap_or(&first)
            {
                return Err(Error::corrupt(
                    &path,
                    offset,
                    format!("{reason}; compaction refuses to rewrite around damage"),
                ));
            }
        }

        let expiry = now_micros().saturating_sub(grace.as_micros() as i64);
        // An expired tombstone is the last trace of its key's deletion: once it is gone,
        // state derived before it can no longer learn of the deletion (see
        // `Log::tombstone_horizon`).
        let mut dropped_tombstone = 0u64;
        let mut keep = |r: &crate::RecordRef<'_>| match r.key {
            None => true,
            Some(k) => {
                let latest_of_key = latest.get(k.as_bytes()) == Some(&r.seq);
                if latest_of_key && r.encoding == TOMBSTONE && r.ts < expiry {
                    dropped_tombstone = dropped_tombstone.max(r.seq);
                    return false;
                }
                latest_of_key
            }
        };
        let segs_dir = segment::segments_dir(dir);
        for &first in sealed {
            report.segments += 1;
            let path = segment::segment_path(dir, first);
            let file = storage.open(&path, OpenMode::Read).ctx("open", &path)?;
            let size = file.len().ctx("read", &path)?;
            report.bytes_before += size;
            // Gather kept frames; find the seal.
            let mut kept: Vec<u8> = Vec::new();
            let mut kept_count = 0u64;
            let mut dropped = 0u64;
            let mut entries: Vec<IndexEntry> = Vec::new();
            let mut ts_max = i64::MIN;
            let mut last_index_at = 0u64;
            let end = scan::scan(&*file, SEGMENT_HEADER_LEN, max_frame, |_, r| {
                if keep(r) {
                    let at = SEGMENT_HEADER_LEN + kept.len() as u64;
                    if kept_count == 0 || at >= last_index_at + INDEX_INTERVAL {
                        entries.push(IndexEntry {
                            seq: r.seq,
                            offset: at,
                            ts_max_before: ts_max,
                        });
                        last_index_at = at;
                    }
                    frame::encode_record(&mut kept, r.seq, r.ts, &r.as_entry());
                    kept_count += 1;
                    ts_max = ts_max.max(r.ts);
                } else {
                    dropped += 1;
                }
                ControlFlow::Continue(())
            })
            .ctx("read", &path)?;
            let ScanEnd::Seal { seal, .. } = end else {
                return Err(Error::corrupt(
                    &path,
                    size,
                    "sealed segment has no seal; compaction refuses to rewrite it",
                ));
            };
            if dropped == 0 {
                report.bytes_after += size;
                continue;
            }
            let mut bytes = segment::encode_header(first, FLAG_COMPACTED).to_vec();
            bytes.extend_from_slice(&kept);
            frame::encode_seal(
                &mut bytes,
                &Seal {
                    next_seq: seal.next_seq,
                    ts_max: seal.ts_max,
                    records: kept_count,
                },
            );
            let tmp_seg = segs_dir.join(format!("{first:020}.seg.compact"));
            let tmp_idx = segs_dir.join(format!("{first:020}.idx.compact"));
            let f = storage
                .open(&tmp_seg, OpenMode::CreateTruncate)
                .ctx("create", &tmp_seg)?;
            f.write_all_at(&bytes, 0).ctx("write to", &tmp_seg)?;
            f.sync_data().ctx("sync", &tmp_seg)?;
            let mut idx = index::encode_header(first).to_vec();
            for e in &entries {
                index::encode_entry(&mut idx, e);
            }
            let fi = storage
                .open(&tmp_idx, OpenMode::CreateTruncate)
                .ctx("create", &tmp_idx)?;
            fi.write_all_at(&idx, 0).ctx("write to", &tmp_idx)?;
            fi.sync_data().ctx("sync", &tmp_idx)?;
            let idx_path = segment::index_path(dir, first);
            match storage.remove_file(&idx_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", idx_path, e)),
            }
            storage.rename(&tmp_seg, &path).ctx("rename", &path)?;
            storage
                .rename(&tmp_idx, &idx_path)
                .ctx("rename", &idx_path)?;
            storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
            let new_size = bytes.len() as u64;
            let w = self.inner.head.words();
            w.used_bytes
                .fetch_sub(size.saturating_sub(new_size), Ordering::AcqRel);
            w.layout_gen.fetch_add(1, Ordering::AcqRel);
            report.rewritten += 1;
            report.dropped += dropped;
            report.bytes_after += new_size;
        }
        if dropped_tombstone > 0 {
            let mut meta = crate::meta::Meta::read(storage, dir)?;
            if dropped_tombstone > meta.tombstone_horizon {
                meta.tombstone_horizon = dropped_tombstone;
                meta.write(storage, dir)?;
                self.inner
                    .head
                    .words()
                    .config_gen
                    .fetch_add(1, Ordering::AcqRel);
            }
        }
        // Leftovers of a compaction that crashed before its renames.
        for name in storage.list_dir(&segs_dir).ctx("list", &segs_dir)? {
            if name.to_str().is_some_and(|n| n.ends_with(".compact")) {
                let _ = storage.remove_file(&segs_dir.join(name));
            }
        }
        Ok(report)
    }
}
