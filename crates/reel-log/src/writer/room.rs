//! Retention: making room for an append under the when-full policy (dropping the oldest
//! segments, or refusing), and dropping one segment.

use super::TailState;
use crate::error::{Error, IoContext, Result};
use crate::log::Log;
use crate::meta::{Config, StoreKind, WhenFull};
use crate::segment;
use crate::storage::OpenMode;
use std::sync::atomic::Ordering;

impl Log {
    /// Frees space for `needed` more bytes under the when-full policy. `allow_over` lets a
    /// drop-oldest log exceed its capacity by the tail segment when nothing else is left.
    pub(crate) fn make_room(
        &self,
        t: &mut TailState,
        needed: u64,
        allow_over: bool,
        config: &Config,
    ) -> Result<()> {
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let mut floor: Option<Option<u64>> = None;
        while t.used_bytes + needed > config.capacity {
            if config.when_full == WhenFull::Compact {
                // Never drop a segment: compaction (beside appends, see
                // `relieve_compaction_pressure`) is what frees space.
                break;
            }
            let segs = segment::list_segments(storage, dir)?;
            let (Some(&oldest), Some(&next_first)) = (segs.first(), segs.get(1)) else {
                break;
            };
            let may_drop = match config.when_full {
                WhenFull::DropOldest => true,
                // Handled above: compaction never drops a segment.
                WhenFull::Compact => false,
                // A lists store's records are its lists' items, whatever its readers
                // consumed: `reject` keeps every one.
                WhenFull::Reject if self.kind() == StoreKind::Lists => false,
                WhenFull::Reject => {
                    if floor.is_none() {
                        let guard = self
                            .inner
                            .guard
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        floor = Some(match guard {
                            Some(g) => g.protected_from()?,
                            None => None,
                        });
                    }
                    floor.flatten().is_some_and(|f| next_first <= f)
                }
            };
            if !may_drop {
                break;
            }
            if self.kind() == StoreKind::Lists && self.live_barriers().is_empty() {
                // The lists view must save what only it will know once these records
                // are gone (each list's next offset and last nonce): a handle that
                // drops them without it would lose that state for good.
                return Err(Error::RetentionBlocked {
                    reason: format!(
                        "{} is a lists store, and this handle does not keep its lists view \
                         (open it as a lists store to append)",
                        dir.display()
                    ),
                });
            }
            self.drop_oldest_segment(t, oldest, next_first)?;
        }
        let over = t.used_bytes + needed > config.capacity;
        if over && needed > 0 && !(allow_over && config.when_full == WhenFull::DropOldest) {
            tracing::info!(
                dir = %self.inner.dir.display(),
                used = t.used_bytes,
                capacity = config.capacity,
                needed,
                policy = %config.when_full,
                "append refused: the spool is full"
            );
            return Err(Error::Full {
                used: t.used_bytes,
                capacity: config.capacity,
                needed,
                policy: config.when_full,
            });
        }
        Ok(())
    }

    /// Deletes the oldest segment (starting at `oldest`; the next starts at
    /// `next_first`) and publishes the new oldest seq.
    pub(crate) fn drop_oldest_segment(
        &self,
        t: &mut TailState,
        oldest: u64,
        next_first: u64,
    ) -> Result<()> {
        self.before_drop(next_first)?;
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let seg_path = segment::segment_path(dir, oldest);
        let size = storage
            .open(&seg_path, OpenMode::Read)
            .and_then(|f| f.len())
            .ctx("open", &seg_path)?;
        // The new oldest seq is published before the files go: a reader that finds a
        // record missing then always sees that retention moved (and looks again), never
        // a record gone while the log still claims to hold it. A crash before the files
        // are removed leaves them to be dropped again.
        t.oldest_seq = next_first;
        self.inner
            .head
            .words()
            .oldest_seq
            .store(next_first, Ordering::Release);
        self.inner.head.reseal();
        self.inner
            .head
            .words()
            .layout_gen
            .fetch_add(1, Ordering::AcqRel);
        storage.remove_file(&seg_path).ctx("remove", &seg_path)?;
        let idx_path = segment::index_path(dir, oldest);
        if let Err(e) = storage.remove_file(&idx_path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(Error::io("remove", idx_path, e));
        }
        let segs_dir = segment::segments_dir(dir);
        storage.sync_dir(&segs_dir).ctx("sync", &segs_dir)?;
        t.used_bytes = t.used_bytes.saturating_sub(size);
        tracing::debug!(segment = oldest, bytes = size, "dropped oldest segment");
        Ok(())
    }
}
