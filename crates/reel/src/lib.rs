//! reel: programs hand data to each other through a directory.
//!
//! A [`Spool`] is a directory holding a segmented, checksummed, append-only log of
//! records (JSON-compatible values with an optional key, nonce and timestamp). Any number
//! of threads and processes append; named [`Reader`]s consume it with persisted
//! positions, block when caught up, rewind and replay. Disk use is bounded by the
//! capacity and the when-full policy. The log engine underneath is the `reel-log` crate.
//!
//! Every store knows what it holds, its [`StoreKind`], fixed at creation: a spool (raw
//! records, [`Spool::append`]), a kv store ([`kv::KvStore`], always compacting) or keyed
//! lists ([`list::ListStore`], never compacting). Each kind is opened only as itself and
//! gets the retention that is safe for its data; every kind reads as a log.
//!
//! ```
//! # let tmp = tempfile::tempdir().unwrap();
//! use reel::Spool;
//! use std::time::Duration;
//!
//! let spool = Spool::create(tmp.path())?;          // creates the directory if needed
//! spool.append(serde_json::json!({"user": "Troy", "day": "Wed"}))?;
//!
//! let mut reader = spool.reader("default")?;        // position persisted per name
//! while let Some(rec) = reader.next_timeout(Duration::from_millis(10))? {
//!     println!("{} {}", rec.seq, rec.value.to_json()?);
//! }
//! reader.commit()?;
//! # Ok::<(), reel::Error>(())
//! ```

pub mod cursor;
mod error;
pub mod kv;
pub mod list;
mod record;
mod spool;
pub mod tee;
mod value;
pub mod view;

pub use cursor::{MoveTo, Reader};
pub use error::{Error, Result};
pub use record::{NewRecord, Record, meta_json, nonce_json, value_json};
pub use reel_log::Error as LogError;
pub use reel_log::{
    BATCH_INTERVAL, CompactReport, Config, DEFAULT_CAPACITY, DEFAULT_MAX_RECORD_SIZE, Damage,
    Durability, Entry, HEAD_FILE, KvPathSyntax, Log, LogReader, META_FILE, MIN_CAPACITY, RecordRef,
    SegmentInfo, StoreKind, VerifyReport, WhenFull, now_micros,
};
pub use spool::{
    Iter, ReaderStatus, Replication, RevIter, Spool, SpoolBuilder, Status, Stream, StreamOptions,
};
pub use value::{Encoding, Value, check_integers, check_parsed, json_of, parse_json};
