//! Deciding what compaction drops, in bounded memory.
//!
//! A record is dropped when a later record with the same key exists in the log (it is
//! superseded), or when it is the latest record of its key, a tombstone, and older than
//! the grace period (the deletion has been visible long enough). Keys are tracked by a
//! 128-bit hash, never by their bytes, and in partitions of the hash space: one pass over
//! the log per partition builds `hash -> latest seq` for that partition's keys only and
//! marks the records it supersedes in a bitmap per sealed segment (one bit per record).
//! Memory is therefore bounded by [`MAX_KEYS_PER_PASS`] map entries plus the bitmaps,
//! whatever the number of keys; more keys cost more passes, not more memory.

use crate::error::{Error, IoContext, Result};
use crate::frame::{RecordRef, Seal, TOMBSTONE};
use crate::scan::{self, ScanEnd};
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::storage::{OpenMode, Storage};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::ops::ControlFlow;
use std::path::Path;

/// Keys tracked at once (about 32 bytes each); a log with more keys is planned in
/// several passes over disjoint parts of the key-hash space.
pub(crate) const MAX_KEYS_PER_PASS: usize = 2 << 20;
/// Marks, in a latest-seq map entry, a latest record that is an expired tombstone.
const EXPIRED_TOMBSTONE: u64 = 1 << 63;

/// What to do with one sealed segment.
#[derive(Debug)]
pub(crate) struct SegmentPlan {
    pub(crate) first: u64,
    /// Size of the file when planned.
    pub(crate) bytes: u64,
    /// Bit `i` set: drop the segment's `i`-th record frame.
    drop: Vec<u64>,
    pub(crate) dropped: u64,
    pub(crate) dropped_bytes: u64,
    pub(crate) seal: Seal,
}

impl SegmentPlan {
    pub(crate) fn drops(&self, ordinal: u64) -> bool {
        let (word, bit) = ((ordinal / 64) as usize, ordinal % 64);
        self.drop.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn mark(&mut self, ordinal: u64) {
        let (word, bit) = ((ordinal / 64) as usize, ordinal % 64);
        if self.drop.len() <= word {
            self.drop.resize(word + 1, 0);
        }
        self.drop[word] |= 1 << bit;
    }
}

/// The decisions for every sealed segment, and the largest seq of a tombstone dropped.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) segments: Vec<SegmentPlan>,
    pub(crate) horizon: u64,
    pub(crate) passes: u32,
}

fn key_hash(key: &[u8]) -> u128 {
    let mut a = DefaultHasher::new();
    a.write(key);
    let mut b = DefaultHasher::new();
    b.write_u8(0xa5);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// What to plan over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot<'a> {
    pub(crate) storage: &'a dyn Storage,
    pub(crate) dir: &'a Path,
    /// Every live segment up to the tail, ascending.
    pub(crate) all: &'a [u64],
    /// The sealed ones among them (all but the tail).
    pub(crate) sealed: &'a [u64],
    /// Records at or past this seq are not looked at.
    pub(crate) committed: u64,
    pub(crate) max_frame: usize,
}

/// Plans the compaction of the sealed segments, looking at every record of all
/// segments below the committed end. Tombstones written before `expiry` may go.
/// `max_keys` bounds the keys tracked per pass.
pub(crate) fn plan(snap: Snapshot<'_>, expiry: i64, max_keys: usize) -> Result<Plan> {
    let mut parts: u64 = 1;
    loop {
        if let Some(plan) = plan_in_parts(snap, expiry, max_keys, parts)? {
            return Ok(plan);
        }
        parts *= 2;
    }
}

/// One attempt with the key-hash space cut in `parts`; `None` when a part holds more
/// than `max_keys` keys.
fn plan_in_parts(
    snap: Snapshot<'_>,
    expiry: i64,
    max_keys: usize,
    parts: u64,
) -> Result<Option<Plan>> {
    let Snapshot {
        storage,
        dir,
        all,
        sealed,
        committed,
        max_frame,
    } = snap;
    let mut segments = Vec::with_capacity(sealed.len());
    for &first in sealed {
        let path = segment::segment_path(dir, first);
        let file = storage.open(&path, OpenMode::Read).ctx("open", &path)?;
        let bytes = file.len().ctx("read", &path)?;
        segments.push(SegmentPlan {
            first,
            bytes,
            drop: Vec::new(),
            dropped: 0,
            dropped_bytes: 0,
            seal: Seal {
                next_seq: first,
                ts_max: i64::MIN,
                records: 0,
                gap: false,
            },
        });
    }
    let mut horizon = 0u64;
    for part in 0..parts {
        let in_part = |h: u128| (h as u64) & (parts - 1) == part;
        // Pass 1: the latest record of every key of this part.
        let mut latest: HashMap<u128, u64> = HashMap::new();
        for &first in all {
            let mut overflow = false;
            visit(storage, dir, first, max_frame, committed, |_, r| {
                let Some(k) = r.key else { return true };
                let h = key_hash(k.as_bytes());
                if !in_part(h) {
                    return true;
                }
                let expired = r.encoding == TOMBSTONE && r.ts < expiry;
                let v = r.seq | if expired { EXPIRED_TOMBSTONE } else { 0 };
                match latest.get_mut(&h) {
                    Some(s) if *s & !EXPIRED_TOMBSTONE < r.seq => *s = v,
                    Some(_) => {}
                    None => {
                        latest.insert(h, v);
                        overflow = latest.len() > max_keys;
                    }
                }
                !overflow
            })?;
            if overflow {
                return Ok(None);
            }
        }
        // Pass 2: mark what the latest records supersede, in the sealed segments.
        for seg in &mut segments {
            let mut ordinal = 0u64;
            let end = visit(storage, dir, seg.first, max_frame, committed, |len, r| {
                let i = ordinal;
                ordinal += 1;
                let Some(k) = r.key else { return true };
                let h = key_hash(k.as_bytes());
                if !in_part(h) {
                    return true;
                }
                let l = latest.get(&h).copied().unwrap_or(r.seq);
                let superseded = l & !EXPIRED_TOMBSTONE != r.seq;
                let expired_latest = !superseded && l & EXPIRED_TOMBSTONE != 0;
                if superseded || expired_latest {
                    seg.mark(i);
                    seg.dropped += 1;
                    seg.dropped_bytes += len;
                    if expired_latest {
                        // The last trace of this key's deletion goes.
                        horizon = horizon.max(r.seq);
                    }
                }
                true
            })?;
            match end {
                ScanEnd::Seal { seal, .. } => seg.seal = seal,
                _ => {
                    return Err(Error::corrupt(
                        segment::segment_path(dir, seg.first),
                        seg.bytes,
                        "sealed segment has no seal; compaction refuses to rewrite it",
                    ));
                }
            }
        }
    }
    Ok(Some(Plan {
        segments,
        horizon,
        passes: parts as u32,
    }))
}

/// Visits the records of one segment below `committed`; `f` gets each record's frame
/// length and returns false to stop. Damage in a sealed segment is an error: compaction
/// never rewrites around it.
fn visit(
    storage: &dyn Storage,
    dir: &Path,
    first: u64,
    max_frame: usize,
    committed: u64,
    mut f: impl FnMut(u64, &RecordRef<'_>) -> bool,
) -> Result<ScanEnd> {
    let path = segment::segment_path(dir, first);
    let file = storage.open(&path, OpenMode::Read).ctx("open", &path)?;
    let mut next = first;
    let end = scan::scan(&*file, SEGMENT_HEADER_LEN, max_frame, |_, r| {
        if r.seq >= committed {
            return ControlFlow::Break(());
        }
        next = r.seq + 1;
        let len = r.as_entry().frame_len() as u64;
        if f(len, r) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .ctx("read", &path)?;
    // Bytes after the committed end of the tail are an append in progress, not damage.
    if let ScanEnd::Bad { offset, reason, .. } = &end
        && next < committed
    {
        return Err(Error::corrupt(
            &path,
            *offset,
            format!("{reason}; compaction refuses to rewrite around damage (see `reel verify`)"),
        ));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimStorage;
    use crate::{Config, Entry, LogOptions, WhenFull};
    use std::sync::Arc;

    #[test]
    fn planning_in_several_passes_decides_exactly_as_in_one() {
        let sim = SimStorage::new();
        let config = Config {
            capacity: 1 << 20,
            when_full: WhenFull::Compact,
            segment_size: 16 << 10,
            max_record_size: 4096,
        };
        let log = LogOptions::new()
            .storage(Arc::new(sim.clone()))
            .create(config)
            .open("/p")
            .unwrap();
        for i in 0..3000u64 {
            let key = format!("key{}", (i * 7919) % 300);
            let tomb = i % 97 == 0;
            log.append(&[Entry {
                key: Some(&key),
                value: if tomb { b"" } else { b"some value bytes" },
                encoding: if tomb { TOMBSTONE } else { 1 },
                ..Default::default()
            }])
            .unwrap();
        }
        let all = segment::list_segments(&sim, Path::new("/p")).unwrap();
        let sealed = &all[..all.len() - 1];
        let committed = log.next_seq();
        let snap = Snapshot {
            storage: &sim,
            dir: Path::new("/p"),
            all: &all,
            sealed,
            committed,
            max_frame: 1 << 20,
        };
        let run = |max_keys| plan(snap, i64::MAX, max_keys).unwrap();
        let one = run(usize::MAX);
        let many = run(16);
        assert_eq!(one.passes, 1);
        assert!(many.passes >= 16, "{} passes", many.passes);
        assert!(one.horizon > 0);
        assert_eq!(one.horizon, many.horizon);
        for (a, b) in one.segments.iter().zip(&many.segments) {
            assert_eq!((a.dropped, a.dropped_bytes), (b.dropped, b.dropped_bytes));
            assert!(a.dropped > 0);
            for i in 0..a.seal.records {
                assert_eq!(a.drops(i), b.drops(i), "segment {} record {i}", a.first);
            }
        }
    }
}
