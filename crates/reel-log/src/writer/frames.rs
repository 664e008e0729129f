//! Replication's append: frames copied from another log exactly as stored (same seqs,
//! timestamps, keys, nonces and checksums), verified before they are written through the
//! same path as any append.

use super::Extent;
use crate::error::{Error, Result};
use crate::frame;
use crate::group::Unit;
use crate::log::{LOCK_FILE, LockGuard, Log};
use crate::sync::Durability;
use std::ops::Range;
use std::sync::atomic::Ordering;

impl Log {
    /// Appends frames read from another log as they are (replication: same seqs,
    /// timestamps, keys, nonces and checksums), as one batch. Every frame's checksum is
    /// verified, the frames must be records with consecutive seqs, and the first must be
    /// this log's next seq ([`Error::NotNext`] otherwise: a gap or a divergence). Needs a
    /// handle that may append (the replica handle of a follower).
    pub fn append_frames(&self, frames: &[u8], durability: Durability) -> Result<Range<u64>> {
        self.check_appendable()?;
        let max_frame = self.max_frame_len();
        let mut extent = Extent::default();
        let mut first = None;
        let mut at = 0;
        while at < frames.len() {
            let (f, len) = frame::decode(&frames[at..], max_frame).map_err(|e| {
                Error::InvalidArgument(format!("replicated frame at byte {at}: {e:?}"))
            })?;
            let frame::Frame::Record(r) = f else {
                return Err(Error::InvalidArgument(format!(
                    "replicated frame at byte {at} is not a record"
                )));
            };
            let expected = first.map_or(r.seq, |f: u64| f + extent.records);
            if r.seq != expected {
                return Err(Error::InvalidArgument(format!(
                    "replicated frames jump from seq {} to {}",
                    expected.saturating_sub(1),
                    r.seq
                )));
            }
            first.get_or_insert(r.seq);
            extent.total += len as u64;
            extent.records += 1;
            extent.max_payload = extent.max_payload.max(r.as_entry().payload_len() as u64);
            extent.max_frame = extent.max_frame.max(len as u64);
            at += len;
        }
        let Some(first) = first else {
            return Ok(self.next_seq()..self.next_seq());
        };
        self.relieve_compaction_pressure(extent.total)?;
        let (range, file, end) = {
            let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            self.check_poisoned()?;
            let _g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
            self.prepare_tail(&mut ws)?;
            let t = self.inner.head.tail();
            if first != t.next_seq {
                return Err(Error::NotNext {
                    expected: t.next_seq,
                    got: first,
                });
            }
            let config = self.meta_checked()?.config;
            extent.check(&config)?;
            self.write_alone(&mut ws, t, &Unit::Raw(frames), extent.total, &config)?
        };
        self.make_durable(durability, &file, end)?;
        self.maybe_compact_in_background();
        Ok(range)
    }

    /// Makes `seq` this log's next seq, skipping the seqs in between (replication: the
    /// source no longer has them, or a follower starts at `--from-seq`); returns them.
    /// The tail segment is sealed with a seal that says so (a gap, not damage, for
    /// `verify` and recovery) and the next segment starts at `seq`, durably: a gap is
    /// never undone by a crash once this returns. Needs a handle that may append (the
    /// replica handle of a follower); `seq` below the next seq is refused.
    pub fn skip_to(&self, seq: u64) -> Result<Range<u64>> {
        self.check_appendable()?;
        let (skipped, file, end) = {
            let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            self.check_poisoned()?;
            let _g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
            self.prepare_tail(&mut ws)?;
            let mut t = self.inner.head.tail();
            if seq < t.next_seq {
                return Err(Error::InvalidArgument(format!(
                    "cannot skip to seq {seq}: the log already holds seqs up to {}",
                    t.next_seq - 1
                )));
            }
            if seq == t.next_seq {
                return Ok(seq..seq);
            }
            let good = t;
            let skipped = t.next_seq..seq;
            self.inner.head.words().writing.store(1, Ordering::Release);
            t.next_seq = seq;
            if let Err(e) = self.roll(&mut ws, &mut t, true) {
                return Err(self.fail_append(&mut ws, &good, e));
            }
            // A log that held no record at all starts at `seq` (`--from-seq`): its empty
            // first segment goes, so that its oldest seq is `seq`, not 0. Done after
            // the new segment exists, so a crash in between leaves only an empty
            // sealed segment, which reads as the same gap.
            if good.records == 0 && good.first_seq == good.oldest_seq {
                self.drop_oldest_segment(&mut t, good.first_seq, seq)?;
            }
            let file = self.publish_written(&ws, &t)?;
            (skipped, file, t.offset)
        };
        self.make_durable(Durability::Always, &file, end)?;
        tracing::info!(dir = %self.inner.dir.display(), from = skipped.start, to = skipped.end, "skipped seqs (replication gap)");
        Ok(skipped)
    }
}
