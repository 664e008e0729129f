//! Which segment files make up the log: the directory listing, minus segments that an
//! interrupted compaction already merged into the segment before them ("covered": the
//! seal of an earlier segment names a later seq than their first). Readers position
//! themselves only in live segments, so a merge's leftovers are never read as current.
//!
//! Covered segments exist only while a compaction runs or after one was interrupted,
//! which `reel.compact.lock` says (byte 0); only then are seals read. What was read is
//! cached per handle and dropped whenever `layout_gen` in the head changes (segments
//! deleted, rewritten or recovered), so the common case costs one directory listing.

use crate::error::Result;
use crate::log::Log;
use crate::segment;
use crate::storage::OpenMode;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// What is known of the segments as of one `layout_gen`.
#[derive(Debug, Default)]
pub(crate) struct LayoutCache {
    layout_gen: u64,
    /// Whether a compaction was running or interrupted (`None`: not read yet). Without
    /// one, no segment can be covered and no seal needs reading.
    compaction: Option<bool>,
    /// First seq of a segment -> `next_seq` of its seal.
    seals: HashMap<u64, u64>,
}

impl Log {
    /// First seqs of the segments that hold the log, ascending.
    pub(crate) fn live_segments(&self) -> Result<Vec<u64>> {
        let segs = segment::list_segments(&*self.inner.storage, &self.inner.dir)?;
        let covered = self.covered_in(&segs);
        Ok(segs.into_iter().filter(|s| !covered.contains(s)).collect())
    }

    /// Segments covered by a merged segment before them (leftovers to remove).
    pub(crate) fn covered_segments(&self) -> Result<Vec<u64>> {
        let segs = segment::list_segments(&*self.inner.storage, &self.inner.dir)?;
        Ok(self.covered_in(&segs))
    }

    /// The generation of the segment layout: changes whenever segments are deleted,
    /// rewritten or recovered (not when the log grows).
    pub(crate) fn layout_gen(&self) -> u64 {
        self.inner.head.words().layout_gen.load(Ordering::Acquire)
    }

    fn covered_in(&self, segs: &[u64]) -> Vec<u64> {
        let layout_gen = self.layout_gen();
        let mut cache = self.inner.layout.lock().unwrap_or_else(|e| e.into_inner());
        if cache.layout_gen != layout_gen {
            cache.seals.clear();
            cache.compaction = None;
            cache.layout_gen = layout_gen;
        }
        let lock_path = self.inner.dir.join(crate::COMPACT_LOCK_FILE);
        let compaction = *cache
            .compaction
            .get_or_insert_with(|| crate::compaction::is_running(&*self.inner.storage, &lock_path));
        if !compaction {
            return Vec::new();
        }
        let max_frame = self.max_frame_len();
        let mut covered = Vec::new();
        let mut reach = 0u64;
        for (i, &first) in segs.iter().enumerate() {
            if first < reach {
                covered.push(first);
                continue;
            }
            if i + 1 == segs.len() {
                break; // the tail has no seal
            }
            let next = match cache.seals.get(&first) {
                Some(&n) => Some(n),
                None => {
                    let path = segment::segment_path(&self.inner.dir, first);
                    let seal = self
                        .inner
                        .storage
                        .open(&path, OpenMode::Read)
                        .ok()
                        .and_then(|f| crate::reader::read_seal(&*f, max_frame));
                    // A segment without a seal (a roll in progress) says nothing yet.
                    if let Some(s) = seal {
                        cache.seals.insert(first, s.next_seq);
                    }
                    seal.map(|s| s.next_seq)
                }
            };
            reach = reach.max(next.unwrap_or(0));
        }
        covered
    }
}
