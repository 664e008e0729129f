//! reel's log engine: a directory holding a segmented, checksummed, append-only log.
//!
//! This crate knows records only as bytes with a seq, a timestamp, an optional key and
//! nonce; it knows nothing of cursors, views or the network (those live in `reel`).
//! It owns the on-disk format (documented byte by byte in `docs/FORMAT.md`), the commit
//! and recovery protocols, retention, durability and cross-process wake-up.
//!
//! ```
//! # let tmp = tempfile::tempdir().unwrap();
//! use reel_log::{Config, Entry, Log};
//! let log = Log::create(tmp.path(), Config::default())?;
//! log.append(&[Entry { value: b"one", ..Default::default() }])?;
//! let mut reader = log.reader(0);
//! let batch = reader.read_batch(100)?;
//! assert_eq!(batch.iter().next().unwrap().value, b"one");
//! # Ok::<(), reel_log::Error>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod compaction;
mod error;
pub mod follow;
pub mod frame;
mod group;
mod head;
pub mod index;
mod layout;
mod log;
mod lookup;
pub mod meta;
mod options;
mod positions;
mod reader;
mod recovery;
mod retention;
pub mod scan;
pub mod segment;
pub mod storage;
mod sync;
mod verify;
mod wake;
mod writer;

pub use compaction::{COMPACT_LOCK_FILE, CompactReport, DEFAULT_TOMBSTONE_GRACE};
pub use error::{Error, Result};
pub use frame::{Entry, RecordRef};
pub use head::HEAD_FILE;
pub use log::{LOCK_FILE, Log, SegmentInfo, now_micros};
pub use meta::{
    Config, DEFAULT_CAPACITY, DEFAULT_MAX_RECORD_SIZE, KvPathSyntax, MAX_RECORD_SIZE_LIMIT,
    META_FILE, MIN_CAPACITY, StoreKind, WhenFull,
};
pub use options::LogOptions;
pub use reader::{Batch, FramePos, LogReader};
pub use recovery::{CutTail, RecoveryReport, TailDamage};
pub use retention::{RetentionBarrier, RetentionGuard};
pub use sync::Durability;
pub use verify::{Damage, VerifyReport};
pub use writer::{BATCH_INTERVAL, OwnedEntry};
