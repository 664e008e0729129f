//! [`Spool`]: the embedded API over one log directory: appending values, named readers,
//! range iteration, status and reconfiguration; creating stores (`create.rs`) and
//! keeping each kind of store to its kind (`kind.rs`).

mod create;
mod kind;
mod status;
mod stream;

pub use status::{ReaderStatus, Replication, Status};
pub use stream::{Stream, StreamOptions};

use crate::cursor::{CursorFloor, Reader};
use crate::error::{Error, Result};
use crate::record::{NewRecord, Record};
use reel_log::meta::Meta;
use reel_log::storage::{DiskStorage, Storage};
use reel_log::{Config, Durability, Entry, Log, LogOptions, LogReader, StoreKind, WhenFull};
use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A spool: a directory holding a log of records that any number of threads and
/// processes append to and read from.
///
/// Every store is a spool underneath and can be read as one, whatever its
/// [kind](StoreKind); the `append` methods refuse a kv or lists store, whose records
/// must keep their encoding (use [`KvStore`](crate::kv::KvStore) and
/// [`ListStore`](crate::list::ListStore); a tool that really means to write raw records
/// there appends through the engine, [`Spool::log`]).
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// use reel::{Spool, WhenFull};
/// let spool = Spool::builder(tmp.path()).capacity(64 << 20).when_full(WhenFull::Reject).open()?;
/// let seq = spool.append(serde_json::json!({"day": "Wed", "temp": 37}))?;
/// let back: Vec<_> = spool.iter(seq..).collect::<Result<_, _>>()?;
/// assert_eq!(back[0].value.to_json()?["temp"], 37);
/// # Ok::<(), reel::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spool {
    log: Log,
}

/// Options for opening or creating a spool; see [`Spool::builder`].
#[derive(Debug, Clone)]
pub struct SpoolBuilder {
    dir: std::path::PathBuf,
    config: Config,
    kind: Option<StoreKind>,
    create: bool,
    durability: Durability,
    read_only: bool,
    storage: Option<Arc<dyn Storage>>,
}

impl SpoolBuilder {
    /// Capacity in bytes for a new spool (default 1 GiB). Also sets the segment size to
    /// a tenth of it.
    pub fn capacity(mut self, bytes: u64) -> Self {
        let max = self.config.max_record_size;
        self.config = Config::with_capacity(bytes, self.config.when_full);
        self.config.max_record_size = max;
        self
    }

    /// When-full policy for a new spool (default drop-oldest).
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.config.when_full = policy;
        self
    }

    /// Largest key + value in bytes for a new spool (default 16 MiB).
    pub fn max_record_size(mut self, bytes: u64) -> Self {
        self.config.max_record_size = bytes;
        self
    }

    /// Segment size for a new spool (default a tenth of the capacity).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.config.segment_size = bytes;
        self
    }

    /// Kind of a new store (default [`StoreKind::Spool`]); the when-full policy must
    /// suit it (kv: compact; lists: not compact). When set, an existing store must be
    /// of this kind, or untyped and fit for it (a writable open then records the kind,
    /// see [`Spool::set_kind`]); otherwise opening fails with [`Error::WrongKind`].
    pub fn kind(mut self, kind: StoreKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Create the spool if the directory holds none (default true). The directory must
    /// not exist, be empty, or hold only reel's own files ([`Error::ForeignFiles`]); a
    /// creation that fails removes what it created ([`Error::CreateFailed`]).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Durability of this handle's appends (default none).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Never write to the directory.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Storage backend (tests use the simulated disk).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Opens the spool.
    pub fn open(self) -> Result<Spool> {
        let kind = self.kind.unwrap_or(StoreKind::Spool);
        let disk = self.storage.is_none();
        let storage: Arc<dyn Storage> = self.storage.unwrap_or_else(|| Arc::new(DiskStorage));
        if self.dir.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(
                "the store's directory is an empty path".into(),
            ));
        }
        // Absolute (on disk) before anything is created: see `Storage::absolute`.
        let dir = storage
            .absolute(&self.dir)
            .map_err(|e| reel_log::Error::io("resolve", &self.dir, e))?;
        let mut opts = LogOptions::new()
            .durability(self.durability)
            .read_only(self.read_only)
            .storage(storage.clone())
            .kind(kind);
        let creating = self.create && !self.read_only && !storage.exists(&Meta::path(&dir));
        let attempt = if creating {
            kind.check_policy(self.config.when_full)?;
            self.config.validate()?;
            Some(create::Attempt::start(&*storage, &dir, disk)?)
        } else {
            None
        };
        if self.create && !self.read_only {
            opts = opts.create(self.config);
        }
        let log = match (opts.open(&dir), attempt) {
            (Ok(log), _) => log,
            (Err(e), Some(attempt)) => return Err(attempt.failed(e.into())),
            (Err(e), None) => return Err(e.into()),
        };
        let spool = Spool::from_log(log);
        if let Some(kind) = self.kind {
            spool.ensure_kind(kind)?;
        }
        Ok(spool)
    }
}

impl Spool {
    /// Options for opening or creating a spool in `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> SpoolBuilder {
        SpoolBuilder {
            dir: dir.as_ref().to_path_buf(),
            config: Config::default(),
            kind: None,
            create: true,
            durability: Durability::None,
            read_only: false,
            storage: None,
        }
    }

    /// Opens the spool in `dir`, creating it with default settings if there is none.
    pub fn create(dir: impl AsRef<Path>) -> Result<Spool> {
        Spool::builder(dir).open()
    }

    /// Opens the existing spool in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Spool> {
        Spool::builder(dir).create(false).open()
    }

    /// A spool over a log opened with [`reel_log::LogOptions`] (such as a follower's
    /// replica handle), with the same retention guard [`SpoolBuilder::open`] installs.
    pub fn from_log(log: Log) -> Spool {
        log.set_retention_guard(Arc::new(CursorFloor {
            storage: log.storage().clone(),
            dir: log.dir().to_path_buf(),
        }));
        Spool { log }
    }

    /// The engine handle.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Appends one value; returns its seq. Refused in a kv or lists store
    /// ([`Error::WrongKind`]), as are the other `append` methods.
    pub fn append(&self, value: impl Into<NewRecord>) -> Result<u64> {
        self.check_raw_append()?;
        let rec = value.into();
        Ok(self.log.append(&[rec.as_entry()])?.start)
    }

    /// Appends records as one batch (one lock, one write); returns their seqs.
    pub fn append_batch<'a>(
        &self,
        records: impl IntoIterator<Item = &'a NewRecord>,
    ) -> Result<Range<u64>> {
        self.check_raw_append()?;
        let entries: Vec<Entry<'_>> = records.into_iter().map(NewRecord::as_entry).collect();
        Ok(self.log.append(&entries)?)
    }

    /// Appends records as one batch with an explicit durability (instead of the
    /// handle's); returns their seqs.
    pub fn append_batch_with<'a>(
        &self,
        records: impl IntoIterator<Item = &'a NewRecord>,
        durability: Durability,
    ) -> Result<Range<u64>> {
        self.check_raw_append()?;
        let entries: Vec<Entry<'_>> = records.into_iter().map(NewRecord::as_entry).collect();
        Ok(self.log.append_with(&entries, durability)?)
    }

    /// Appends already-borrowed engine entries (no copy): the fastest append path.
    pub fn append_entries(&self, entries: &[Entry<'_>]) -> Result<Range<u64>> {
        self.check_raw_append()?;
        Ok(self.log.append(entries)?)
    }

    /// Makes everything this handle appended durable.
    pub fn sync(&self) -> Result<()> {
        Ok(self.log.sync()?)
    }

    /// Opens the named reader (creating it at the oldest record). Fails with
    /// [`Error::ReaderBusy`] while another process or handle holds it.
    pub fn reader(&self, name: &str) -> Result<Reader> {
        Reader::open(self, name)
    }

    /// Seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.log.next_seq()
    }

    /// Seq of the oldest retained record.
    pub fn oldest_seq(&self) -> u64 {
        self.log.oldest_seq()
    }

    /// Blocks until record `seq` exists or `timeout` passes; true when it does.
    pub fn wait_for(&self, seq: u64, timeout: Option<Duration>) -> bool {
        self.log.wait_for(seq, timeout.map(|t| Instant::now() + t))
    }

    /// The record at `seq`, if retained.
    pub fn get(&self, seq: u64) -> Result<Option<Record>> {
        self.log.read_record(seq, Record::from_ref)?.transpose()
    }

    /// Records in `range` (bounded above by the end of the log at the time of the call),
    /// oldest first.
    pub fn iter(&self, range: impl RangeBounds<u64>) -> Iter {
        let (start, end) = self.bounds(range);
        Iter {
            reader: self.log.reader(start),
            end,
            buf: Vec::new().into_iter(),
            done: false,
        }
    }

    /// Records in `range`, newest first.
    pub fn iter_rev(&self, range: impl RangeBounds<u64>) -> RevIter {
        let (start, end) = self.bounds(range);
        RevIter {
            spool: self.clone(),
            start,
            end,
            buf: Vec::new(),
            damage: None,
        }
    }

    fn bounds(&self, range: impl RangeBounds<u64>) -> (u64, u64) {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let next = self.log.next_seq();
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1).min(next),
            Bound::Excluded(&e) => e.min(next),
            Bound::Unbounded => next,
        };
        (start, end)
    }

    /// Where a reader stopped by damaged bytes at `seq` can continue: the next seq that
    /// decodes (what `reel rewind --to-seq` needs to skip the damage).
    pub fn resume_after_damage(&self, seq: u64) -> Result<u64> {
        let mut r = self.log.reader(seq);
        if r.read_batch(1).is_ok() {
            return Ok(seq);
        }
        Ok(r.skip_damage()?.end)
    }

    /// Changes capacity and when-full policy, keeping the data (shrinking a drop-oldest
    /// spool drops its oldest records to fit). The policy must suit the store's kind
    /// (kv: compact; lists: not compact).
    pub fn reconfigure(&self, capacity: u64, when_full: WhenFull) -> Result<()> {
        self.log.kind().check_policy(when_full)?;
        self.log.check_writable()?;
        // A lists store's next offsets and last nonces outlive their items only in its
        // view: with the lists open on this spool, the view is checkpointed through the
        // records a drop-oldest resize drops, as before an append's retention. (Under
        // `reject` a lists store drops nothing.)
        let _lists = match (self.log.kind(), when_full) {
            (StoreKind::Lists, WhenFull::DropOldest) => {
                Some(crate::list::ListStore::on_spool(self)?)
            }
            _ => None,
        };
        Ok(self.log.reconfigure(capacity, when_full)?)
    }

    /// Checks every checksum in the spool, including the reader cursors and the tables
    /// of views kept on disk (every block of every table a view's checkpoint names).
    pub fn verify(&self) -> Result<reel_log::VerifyReport> {
        let mut report = self.log.verify()?;
        let dir = crate::cursor::readers_dir(self.dir());
        if let Ok(names) = self.log.storage().list_dir(&dir) {
            for n in names {
                let path = dir.join(&n);
                if path.extension().is_some_and(|e| e == "cursor")
                    && let Err(Error::CursorCorrupt { reason, .. }) =
                        crate::cursor::slots::PositionFile::read(
                            &**self.log.storage(),
                            &path,
                            crate::cursor::slots::SlotKind::Cursor,
                        )
                {
                    report.damage.push(reel_log::Damage {
                        path,
                        offset: 0,
                        what: reason,
                        resume_seq: None,
                    });
                }
            }
        }
        report
            .damage
            .extend(crate::view::tables::verify_views(self)?);
        Ok(report)
    }
}

/// Forward iterator over a seq range; see [`Spool::iter`].
#[derive(Debug)]
pub struct Iter {
    reader: LogReader,
    end: u64,
    buf: std::vec::IntoIter<Record>,
    done: bool,
}

impl Iterator for Iter {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.buf.next() {
                return Some(Ok(r));
            }
            if self.done || self.reader.position() >= self.end {
                return None;
            }
            let want = (self.end - self.reader.position()).min(1024) as usize;
            let batch = match self.reader.read_batch(want) {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            if batch.is_empty() {
                self.done = true;
                return None;
            }
            let end = self.end;
            let recs: Result<Vec<Record>> = batch
                .iter()
                .filter(|r| r.seq < end)
                .map(|r| Record::from_ref(&r))
                .collect();
            match recs {
                Ok(v) => self.buf = v.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Backward iterator over a seq range; see [`Spool::iter_rev`].
#[derive(Debug)]
pub struct RevIter {
    spool: Spool,
    start: u64,
    end: u64,
    buf: Vec<Record>,
    /// The damage met in the chunk being handed out, reported once the records after
    /// it are.
    damage: Option<Error>,
}

impl RevIter {
    /// The records of `from..end` that follow the last damaged bytes in it, and the
    /// error of that damage (none: all of them). Reading backwards meets the records
    /// after the damage first: they are returned, then the damage is reported.
    fn read_chunk(&self, from: u64) -> (Vec<Record>, Option<Error>) {
        let (mut at, mut last_damage) = (from, None);
        loop {
            let mut records = Vec::new();
            let mut damage = None;
            for r in self.spool.iter(at..self.end) {
                match r {
                    Ok(r) => records.push(r),
                    Err(e) => {
                        damage = Some(e);
                        break;
                    }
                }
            }
            let Some(e) = damage else {
                return (records, last_damage);
            };
            let damaged = records.last().map_or(at, |r| r.seq + 1);
            match self.spool.resume_after_damage(damaged) {
                Ok(next) if next > damaged && next < self.end => {
                    (at, last_damage) = (next, Some(e));
                }
                _ => return (Vec::new(), Some(e)),
            }
        }
    }
}

impl Iterator for RevIter {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.buf.pop() {
                return Some(Ok(r));
            }
            if let Some(e) = self.damage.take() {
                return Some(Err(e));
            }
            let lo = self.start.max(self.spool.oldest_seq());
            if self.end <= lo {
                return None;
            }
            // Read the index interval that ends at `end`, then hand it out backwards.
            let from = match self.spool.log.floor_seq(self.end - 1) {
                Ok(f) => f.max(lo),
                Err(e) => {
                    self.end = lo;
                    return Some(Err(e.into()));
                }
            };
            let (records, damage) = self.read_chunk(from);
            self.buf = records;
            self.end = from;
            if let Some(e) = damage {
                // Nothing before the damage is read: a backwards read stops there, as
                // a forward one does.
                self.damage = Some(e);
                self.end = lo;
            }
        }
    }
}
