//! `reel.head`: the live state of the log, shared by every process through a memory map.
//!
//! The head is how processes tell each other what is committed, without system calls:
//! writers publish `next_seq` after their frames are fully written, readers never read a
//! record at or past it, and sleeping readers wait on the `publish` word (a futex on
//! Linux). The tail fields are only read and written under the writer lock.
//!
//! The head is never synced and never trusted across a reboot or a copy: it carries the
//! boot identifier and the head file's own identity, and when either does not match
//! the state is rebuilt from the segments by recovery. It is a cache of the segments,
//! never a source of truth about them. Its state words carry a checksum (`check`),
//! updated by every change under the writer lock and verified on open and before each
//! append: a damaged head (a flipped byte in the file) is rebuilt, never trusted. The boot identifier comes from Linux's
//! `/proc/sys/kernel/random/boot_id`; on other systems a reboot is not detected.
//! Layout (native-endian atomics, naturally aligned):
//!
//! ```text
//!   0 magic u64 ("REELHEAD")    8 version u32           12 writing u32 (1 mid-append)
//!  16 publish u32 (futex)      20 waiters u32          24 next_seq u64
//!  32 tail_first_seq u64       40 tail_offset u64      48 tail_ts_max i64
//!  56 tail_index_entries u64   64 tail_last_index_offset u64
//!  72 used_bytes u64           80 oldest_seq u64       88 config_gen u64
//!  96 layout_gen u64          104 boot_id u64         112 file_id u64
//! 120 tail_records u64      128 check u64 (CRC32C of the state words, see `state_check`)
//! ```

use crate::storage::SharedRegion;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// Name of the head file inside a log directory.
pub const HEAD_FILE: &str = "reel.head";
/// Bytes mapped.
pub const HEAD_LEN: usize = 4096;
const MAGIC: u64 = u64::from_le_bytes(*b"REELHEAD");
/// Version of the head layout (the segments' format version is separate): 2 added `check`.
pub const HEAD_VERSION: u32 = 2;

/// The shared words. Only ever accessed through atomics.
#[repr(C)]
#[derive(Debug)]
pub struct HeadWords {
    magic: AtomicU64,
    version: AtomicU32,
    /// 1 while a writer is between its first byte written and its publish.
    pub writing: AtomicU32,
    /// Incremented at every publish; the futex word sleeping readers wait on.
    pub publish: AtomicU32,
    /// Number of readers sleeping on `publish` (a hint: a writer only wakes when > 0).
    pub waiters: AtomicU32,
    /// Records with a smaller seq are complete and readable.
    pub next_seq: AtomicU64,
    /// First seq (name) of the segment being appended to.
    pub tail_first_seq: AtomicU64,
    /// End of the last published frame in the tail segment.
    pub tail_offset: AtomicU64,
    /// Largest record timestamp in the tail segment.
    pub tail_ts_max: AtomicI64,
    /// Number of valid entries in the tail segment's index file.
    pub tail_index_entries: AtomicU64,
    /// Segment offset of the tail's last index entry.
    pub tail_last_index_offset: AtomicU64,
    /// Bytes used by all segment files.
    pub used_bytes: AtomicU64,
    /// First seq of the oldest segment.
    pub oldest_seq: AtomicU64,
    /// Bumped whenever `reel.meta` changes.
    pub config_gen: AtomicU64,
    /// Bumped whenever segments are deleted or replaced.
    pub layout_gen: AtomicU64,
    boot_id: AtomicU64,
    file_id: AtomicU64,
    /// Records in the tail segment.
    pub tail_records: AtomicU64,
    /// CRC32C of the state words (see [`Head::state_check`]).
    check: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<HeadWords>() <= HEAD_LEN);

/// The mapped head.
#[derive(Debug)]
pub struct Head {
    region: SharedRegion,
}

/// The tail state a writer works from, read and written under the writer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailState {
    /// Next seq to assign.
    pub next_seq: u64,
    /// First seq of the tail segment.
    pub first_seq: u64,
    /// End of the published frames in the tail segment.
    pub offset: u64,
    /// Largest timestamp in the tail segment.
    pub ts_max: i64,
    /// Valid entries in the tail's index file.
    pub index_entries: u64,
    /// Offset of the tail's last index entry.
    pub last_index_offset: u64,
    /// Records in the tail segment.
    pub records: u64,
    /// Bytes used by all segments.
    pub used_bytes: u64,
    /// First seq of the oldest segment.
    pub oldest_seq: u64,
}

impl Head {
    /// Wraps a region of at least [`HEAD_LEN`] bytes.
    pub fn new(region: SharedRegion) -> Head {
        assert!(region.len() >= HEAD_LEN, "head region too small");
        assert!((region.as_ptr() as usize).is_multiple_of(std::mem::align_of::<HeadWords>()));
        Head { region }
    }

    /// The shared words.
    pub fn words(&self) -> &HeadWords {
        // SAFETY: the region is at least HEAD_LEN >= size_of::<HeadWords>() bytes, aligned
        // (checked in `new`), lives as long as `self`, and HeadWords consists only of
        // atomics, for which every bit pattern is valid and concurrent access from other
        // processes through the same shared mapping is well defined.
        unsafe { &*self.region.as_ptr().cast::<HeadWords>() }
    }

    /// False for a read-only mapping: this process may not publish or register as waiter.
    pub fn is_writable(&self) -> bool {
        self.region.is_writable()
    }

    /// True when the head was initialized in this boot, for this very file.
    pub fn is_trusted(&self, boot_id: u64, file_id: u64) -> bool {
        let w = self.words();
        w.magic.load(Acquire) == MAGIC
            && w.version.load(Relaxed) == HEAD_VERSION
            && w.boot_id.load(Relaxed) == boot_id
            && w.file_id.load(Relaxed) == file_id
    }

    /// True when the state words match their checksum. Only meaningful while no writer
    /// is changing them: under the writer lock, or retried by read-only handles.
    pub fn is_intact(&self) -> bool {
        let w = self.words();
        w.check.load(Acquire) == self.state_check(&self.tail())
    }

    /// The checksum of the identity words and of the state `t`: CRC32C of version, boot
    /// id, file id and the tail state words, each as 8 little-endian bytes.
    fn state_check(&self, t: &TailState) -> u64 {
        let w = self.words();
        let words = [
            u64::from(w.version.load(Relaxed)),
            w.boot_id.load(Relaxed),
            w.file_id.load(Relaxed),
            t.next_seq,
            t.first_seq,
            t.offset,
            t.ts_max as u64,
            t.index_entries,
            t.last_index_offset,
            t.records,
            t.used_bytes,
            t.oldest_seq,
        ];
        let mut bytes = [0u8; 12 * 8];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        u64::from(crc32c::crc32c(&bytes))
    }

    /// Recomputes the checksum after `used_bytes` or `oldest_seq` changed outside a
    /// publish (call under the writer lock).
    pub fn reseal(&self) {
        let t = self.tail();
        self.words().check.store(self.state_check(&t), Release);
    }

    /// Committed end: records below this seq are readable.
    pub fn next_seq(&self) -> u64 {
        self.words().next_seq.load(Acquire)
    }

    /// First seq of the published tail segment: segments after it are being created by
    /// a batch that has not published yet (their header may not be written).
    pub fn published_tail_first(&self) -> u64 {
        let w = self.words();
        // Acquire on next_seq orders this after the publish that stored it, whose
        // tail_first_seq store came first.
        w.next_seq.load(Acquire);
        w.tail_first_seq.load(Relaxed)
    }

    /// The tail state (call under the writer lock).
    pub fn tail(&self) -> TailState {
        let w = self.words();
        TailState {
            next_seq: w.next_seq.load(Acquire),
            first_seq: w.tail_first_seq.load(Relaxed),
            offset: w.tail_offset.load(Relaxed),
            ts_max: w.tail_ts_max.load(Relaxed),
            index_entries: w.tail_index_entries.load(Relaxed),
            last_index_offset: w.tail_last_index_offset.load(Relaxed),
            records: w.tail_records.load(Relaxed),
            used_bytes: w.used_bytes.load(Relaxed),
            oldest_seq: w.oldest_seq.load(Relaxed),
        }
    }

    /// Publishes a new tail state (call under the writer lock): everything below
    /// `t.next_seq` becomes visible to readers, and sleeping readers are woken.
    pub fn publish(&self, t: &TailState) {
        let w = self.words();
        w.tail_first_seq.store(t.first_seq, Relaxed);
        w.tail_offset.store(t.offset, Relaxed);
        w.tail_ts_max.store(t.ts_max, Relaxed);
        w.tail_index_entries.store(t.index_entries, Relaxed);
        w.tail_last_index_offset.store(t.last_index_offset, Relaxed);
        w.tail_records.store(t.records, Relaxed);
        w.used_bytes.store(t.used_bytes, Relaxed);
        w.oldest_seq.store(t.oldest_seq, Relaxed);
        w.check.store(self.state_check(t), Relaxed);
        // SeqCst on both sides of the waiter handshake (see `wake::wait_for`): either the
        // sleeper sees the new next_seq, or this store sees its waiter registration.
        w.next_seq.store(t.next_seq, SeqCst);
        w.publish.fetch_add(1, SeqCst);
        w.writing.store(0, Release);
        if w.waiters.load(SeqCst) > 0 {
            crate::wake::wake_all(&w.publish);
        }
    }

    /// Stamps a freshly recovered, previously untrusted head as trusted for this boot and
    /// file. Nobody can be sleeping on an untrusted head, so the waiter count restarts.
    pub fn stamp(&self, boot_id: u64, file_id: u64) {
        let w = self.words();
        w.version.store(HEAD_VERSION, Relaxed);
        w.boot_id.store(boot_id, Relaxed);
        w.file_id.store(file_id, Relaxed);
        w.waiters.store(0, Relaxed);
        self.reseal();
        w.magic.store(MAGIC, Release);
    }
}
