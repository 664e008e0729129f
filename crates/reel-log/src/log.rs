//! [`Log`]: one log directory, opened by this process. Owns opening, creation,
//! configuration and the shared head; how to open is `options.rs`, appending lives in
//! `writer/`, reading in `reader.rs` and `positions.rs`, retention hooks in
//! `retention.rs`, crash repair in `recovery.rs`.

use crate::error::{Error, IoContext, Result};
use crate::frame;
use crate::head::{HEAD_FILE, HEAD_LEN, Head};
use crate::index;
use crate::meta::{Config, Meta, StoreKind, WhenFull};
use crate::options::LogOptions;
use crate::recovery::{self, RecoveryReport};
use crate::retention::{RetentionBarrier, RetentionGuard};
use crate::segment::{self};
use crate::storage::{FileLock, HeapRegion, OpenMode, SharedRegion, Storage};
use crate::sync::{Durability, SyncedFile};
use crate::wake;
use crate::writer::WriterState;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Name of the writer lock file inside a log directory.
pub const LOCK_FILE: &str = "reel.lock";

/// An open log. Cheap to clone; every clone shares one writer and one head mapping.
#[derive(Debug, Clone)]
pub struct Log {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) head: Head,
    pub(crate) lock: Box<dyn FileLock>,
    pub(crate) writable: bool,
    /// The source this log follows, unless this handle is the replica (appends refused).
    pub(crate) follows: Option<String>,
    pub(crate) durability: Durability,
    pub(crate) meta: RwLock<(u64, Meta)>,
    pub(crate) writer: Mutex<WriterState>,
    pub(crate) queue: crate::group::AppendQueue,
    pub(crate) poisoned: Mutex<Option<String>>,
    pub(crate) guard: RwLock<Option<Arc<dyn RetentionGuard>>>,
    /// Called before retention deletes a segment (dead ones are pruned).
    pub(crate) barriers: Mutex<Vec<std::sync::Weak<dyn RetentionBarrier>>>,
    /// The tail file this process last wrote to, and where its writes ended.
    pub(crate) last_written: Mutex<Option<(Arc<SyncedFile>, u64)>>,
    pub(crate) flusher_started: std::sync::Once,
    pub(crate) recovery: Mutex<Option<RecoveryReport>>,
    /// Identity of the head file as mapped at open (its trust stamp names it).
    pub(crate) head_file_id: u64,
    /// Bytes this process appended since it last compacted (gates auto-compaction,
    /// with `seq_at_compaction`: see `Log::appended_since_compaction`).
    pub(crate) appended_since_compaction: std::sync::atomic::AtomicU64,
    /// The log's next seq when this process last compacted.
    pub(crate) seq_at_compaction: std::sync::atomic::AtomicU64,
    /// Whether the when-full policy is `compact`, refreshed whenever the metadata is
    /// re-read, so that an append under another policy does not read the config.
    pub(crate) compact_mode: std::sync::atomic::AtomicBool,
    /// Segment files opened for direct record reads, valid for one `layout_gen` (so
    /// that deleted segments are closed and their space freed).
    pub(crate) segment_files: Mutex<SegmentFiles>,
    /// Segments and index entries known to point lookups ([`Log::read_record`]).
    pub(crate) lookup: Mutex<crate::lookup::LookupCache>,
    /// Seals of sealed segments, for telling merge leftovers from live segments.
    pub(crate) layout: Mutex<crate::layout::LayoutCache>,
    /// Held while this process compacts (the compaction lock file admits one handle).
    pub(crate) compacting: Mutex<()>,
    /// A background compaction thread of this handle is running.
    pub(crate) compactor_running: std::sync::atomic::AtomicBool,
}

/// Open segment files by first seq, and the `layout_gen` they were opened under.
pub(crate) type SegmentFiles = (
    u64,
    std::collections::HashMap<u64, Arc<dyn crate::storage::StorageFile>>,
);

/// One segment as listed by [`Log::segments`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First seq (the file's name).
    pub first_seq: u64,
    /// File path.
    pub path: PathBuf,
    /// File size in bytes.
    pub bytes: u64,
}

/// Holds the writer lock until dropped.
pub(crate) struct LockGuard<'a>(&'a dyn FileLock);

impl<'a> LockGuard<'a> {
    pub(crate) fn acquire(lock: &'a dyn FileLock, path: &Path) -> Result<Self> {
        lock.lock().ctx("lock", path)?;
        Ok(LockGuard(lock))
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A random 64-bit value from the process's randomly keyed hasher.
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()));
    h.finish()
}

impl Log {
    /// Opens the existing log in `dir` read-write with durability `none`.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use reel_log::{Config, Entry, Log};
    /// let log = Log::create(tmp.path(), Config::default())?;
    /// log.append(&[Entry { value: b"hello", ..Default::default() }])?;
    /// let again = Log::open(tmp.path())?;
    /// assert_eq!(again.next_seq(), 1);
    /// # Ok::<(), reel_log::Error>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        LogOptions::new().open(dir)
    }

    /// Opens the log in `dir`, creating it with `config` if the directory holds none.
    /// An existing log keeps its configuration (see [`Log::reconfigure`]).
    pub fn create(dir: impl AsRef<Path>, config: Config) -> Result<Log> {
        LogOptions::new().create(config).open(dir)
    }

    pub(crate) fn open_with(dir: &Path, opts: LogOptions) -> Result<Log> {
        let storage = opts.storage;
        if dir.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(
                "the store's directory is an empty path".into(),
            ));
        }
        let dir = &storage
            .absolute(dir)
            .map_err(|e| Error::io("resolve", dir, e))?;
        let meta_path = Meta::path(dir);
        if let Some(config) = opts.create {
            config.validate()?;
            opts.kind.check_policy(config.when_full)?;
            if !storage.exists(&meta_path) {
                initialize(&*storage, dir, &config, opts.kind, opts.log_id)?;
            }
        } else if !storage.exists(dir) {
            return Err(Error::NotALog { path: dir.into() });
        }
        let meta = Meta::read(&*storage, dir)?;
        let follows = if opts.replica {
            None
        } else {
            crate::follow::read_source(&*storage, dir)
                .map_err(|e| Error::io("read", dir.join(crate::follow::FOLLOW_FILE), e))?
        };
        let lock_path = dir.join(LOCK_FILE);
        let head_path = dir.join(HEAD_FILE);
        let mut writable = !opts.read_only;
        let lock = match storage.lock_file(&lock_path) {
            Ok(l) => l,
            Err(e) if !writable || e.kind() == io::ErrorKind::PermissionDenied => {
                writable = false;
                Box::new(NoLock)
            }
            Err(e) => return Err(Error::io("open", lock_path, e)),
        };
        let region = if writable {
            match storage.map_shared(&head_path, HEAD_LEN, true) {
                Ok(r) => Some(r),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    writable = false;
                    None
                }
                Err(e) => return Err(Error::io("map", head_path, e)),
            }
        } else {
            None
        };
        let region = match region {
            Some(r) => r,
            None => storage
                .map_shared(&head_path, HEAD_LEN, false)
                .unwrap_or_else(|_| SharedRegion::Heap(Arc::new(HeapRegion::new(HEAD_LEN)))),
        };
        let mut head = Head::new(region);
        let boot = storage.boot_id();
        let file_id = storage.file_id(&head_path).unwrap_or(0);
        let mut report = None;
        let usable = |head: &Head| head.is_trusted(boot, file_id) && head.is_intact();
        if writable {
            if !usable(&head) {
                let _g = LockGuard::acquire(&*lock, &lock_path)?;
                if !usable(&head) {
                    if head.is_trusted(boot, file_id) {
                        tracing::warn!(dir = %dir.display(), "reel.head fails its checksum: rebuilding it from the segments");
                    }
                    report = Some(recovery::recover(
                        &*storage,
                        dir,
                        &head,
                        &meta.config,
                        true,
                        true,
                    )?);
                    head.stamp(boot, file_id);
                }
            }
        } else if !head_usable_read_only(&head, boot, file_id) {
            // Nobody may repair this directory: derive the state privately.
            head = Head::new(SharedRegion::Heap(Arc::new(HeapRegion::new(HEAD_LEN))));
            report = Some(recovery::recover(
                &*storage,
                dir,
                &head,
                &meta.config,
                false,
                true,
            )?);
        }
        if let Some(r) = &report {
            r.log_warnings(dir);
        }
        let config_gen = head
            .words()
            .config_gen
            .load(std::sync::atomic::Ordering::Acquire);
        let log = Log {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                storage,
                head,
                lock,
                writable,
                follows,
                durability: opts.durability,
                meta: RwLock::new((config_gen, meta)),
                writer: Mutex::new(WriterState::default()),
                queue: Default::default(),
                poisoned: Mutex::new(None),
                guard: RwLock::new(None),
                barriers: Mutex::new(Vec::new()),
                last_written: Mutex::new(None),
                flusher_started: std::sync::Once::new(),
                recovery: Mutex::new(report),
                segment_files: Mutex::new(Default::default()),
                lookup: Mutex::new(Default::default()),
                layout: Mutex::new(Default::default()),
                compacting: Mutex::new(()),
                compactor_running: std::sync::atomic::AtomicBool::new(false),
                appended_since_compaction: std::sync::atomic::AtomicU64::new(u64::MAX / 2),
                seq_at_compaction: std::sync::atomic::AtomicU64::new(0),
                compact_mode: std::sync::atomic::AtomicBool::new(
                    meta.config.when_full == WhenFull::Compact,
                ),
                head_file_id: file_id,
            }),
        };
        if log.inner.writable {
            log.remove_leftovers_if_idle();
        }
        Ok(log)
    }

    /// Removes what an interrupted compaction left behind, unless a compaction is
    /// running right now (then it is that compaction's to finish). Failures only warn:
    /// leftovers are harmless to readers, they only take space.
    fn remove_leftovers_if_idle(&self) {
        let lock_path = self.inner.dir.join(crate::COMPACT_LOCK_FILE);
        let outcome = self
            .inner
            .storage
            .lock_file(&lock_path)
            .and_then(|lock| {
                if !lock.try_lock()? {
                    return Ok(Ok(()));
                }
                let storage = &*self.inner.storage;
                let r = if crate::compaction::is_running(storage, &lock_path) {
                    self.remove_compaction_leftovers()
                        .and_then(|()| crate::compaction::set_idle(storage, &lock_path))
                } else {
                    Ok(())
                };
                lock.unlock()?;
                Ok(r)
            })
            .map_err(|e| Error::io("lock", lock_path, e))
            .and_then(|r| r);
        if let Err(e) = outcome {
            tracing::warn!(dir = %self.inner.dir.display(), "cannot remove compaction leftovers: {e}");
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// True when this handle may append.
    pub fn is_writable(&self) -> bool {
        self.inner.writable
    }

    /// Durability of appends through this handle.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// The current configuration (re-read when another process changed it).
    pub fn config(&self) -> Config {
        self.meta().config
    }

    /// Largest seq of a tombstone compaction dropped (0: none). Derived state that has
    /// applied records only up to this seq may still hold a deleted value and must be
    /// rebuilt.
    pub fn tombstone_horizon(&self) -> Result<u64> {
        Ok(self.meta_checked()?.tombstone_horizon)
    }

    /// The random identity of this log.
    pub fn log_id(&self) -> u128 {
        self.meta().log_id
    }

    /// The metadata, re-read when another process changed it. When that re-read fails,
    /// the last good copy is returned and the failure logged: callers that decide
    /// something durable use [`Log::meta_checked`] instead.
    pub(crate) fn meta(&self) -> Meta {
        match self.meta_checked() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(dir = %self.inner.dir.display(), "cannot re-read reel.meta, using the last good copy: {e}");
                self.inner.meta.read().unwrap_or_else(|e| e.into_inner()).1
            }
        }
    }

    /// The metadata, re-read when another process changed it; an error when it cannot
    /// be read (never a stale copy).
    pub(crate) fn meta_checked(&self) -> Result<Meta> {
        let current = self
            .inner
            .head
            .words()
            .config_gen
            .load(std::sync::atomic::Ordering::Acquire);
        {
            let m = self.inner.meta.read().unwrap_or_else(|e| e.into_inner());
            if m.0 == current {
                return Ok(m.1);
            }
        }
        let meta = Meta::read(&*self.inner.storage, &self.inner.dir)?;
        self.inner.compact_mode.store(
            meta.config.when_full == WhenFull::Compact,
            std::sync::atomic::Ordering::Release,
        );
        *self.inner.meta.write().unwrap_or_else(|e| e.into_inner()) = (current, meta);
        Ok(meta)
    }

    /// Largest frame the decoder accepts: anything longer is corruption.
    pub(crate) fn max_frame_len(&self) -> usize {
        max_frame_len(&self.config())
    }

    /// One past the last committed record: the seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.inner.head.next_seq()
    }

    /// First seq of the oldest retained segment.
    pub fn oldest_seq(&self) -> u64 {
        self.inner
            .head
            .words()
            .oldest_seq
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Bytes used by segment files.
    pub fn used_bytes(&self) -> u64 {
        self.inner
            .head
            .words()
            .used_bytes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// What recovery repaired when this handle opened the log, if anything.
    pub fn recovery_report(&self) -> Option<RecoveryReport> {
        self.inner
            .recovery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Lists the segments, oldest first.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let storage = &*self.inner.storage;
        let mut out = Vec::new();
        for first_seq in segment::list_segments(storage, &self.inner.dir)? {
            let path = segment::segment_path(&self.inner.dir, first_seq);
            let bytes = match storage.open(&path, OpenMode::Read) {
                Ok(f) => f.len().ctx("read", &path)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", path, e)),
            };
            out.push(SegmentInfo {
                first_seq,
                path,
                bytes,
            });
        }
        Ok(out)
    }

    /// Blocks until a record with seq `seq` is committed or `deadline` passes; true when
    /// it is there. Wakes within microseconds of an append by any process on this machine.
    pub fn wait_for(&self, seq: u64, deadline: Option<Instant>) -> bool {
        wake::wait_for(&self.inner.head, seq, deadline)
    }

    /// Changes capacity and when-full policy of the log, keeping its data. Shrinking a
    /// `drop-oldest` log deletes its oldest segments until it fits.
    pub fn reconfigure(&self, capacity: u64, when_full: WhenFull) -> Result<()> {
        self.check_writable()?;
        let mut meta = self.meta();
        let mut config = Config::with_capacity(capacity, when_full);
        config.max_record_size = meta.config.max_record_size;
        config.validate()?;
        let mut ws = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _g = LockGuard::acquire(&*self.inner.lock, &self.inner.dir.join(LOCK_FILE))?;
        meta = Meta::read(&*self.inner.storage, &self.inner.dir)?;
        if meta.config == config {
            return Ok(());
        }
        meta.config = config;
        meta.write(&*self.inner.storage, &self.inner.dir)?;
        self.inner
            .head
            .words()
            .config_gen
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.prepare_tail(&mut ws)?;
        let mut tail = self.inner.head.tail();
        self.make_room(
            &mut tail,
            0,
            config.when_full == WhenFull::DropOldest,
            &config,
        )?;
        self.inner.head.publish(&tail);
        Ok(())
    }

    /// Fails with [`Error::ReadOnly`] when this handle may not write.
    pub fn check_writable(&self) -> Result<()> {
        if self.inner.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                path: self.inner.dir.clone(),
            })
        }
    }

    /// Fails unless this handle may append: writable, and not a follower (except
    /// through the replica handle).
    pub fn check_appendable(&self) -> Result<()> {
        self.check_writable()?;
        match &self.inner.follows {
            Some(origin) => Err(Error::Follower {
                path: self.inner.dir.clone(),
                origin: origin.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The source this log follows, when it is a follower opened as one.
    pub fn follows(&self) -> Option<&str> {
        self.inner.follows.as_deref()
    }

    /// Index entries of the segment starting at `first_seq` (empty when unreadable).
    pub(crate) fn load_index(&self, first_seq: u64) -> Vec<index::IndexEntry> {
        let path = segment::index_path(&self.inner.dir, first_seq);
        match self.inner.storage.open(&path, OpenMode::Read) {
            Ok(f) => index::load(&*f, first_seq, &path).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }
}

/// Largest frame a log with `config` may contain.
pub(crate) fn max_frame_len(config: &Config) -> usize {
    frame::HEADER_LEN + frame::NONCE_LEN + frame::MAX_KEY_LEN + config.max_record_size as usize
}

/// Creates the directory structure, the first segment, the head file and, last, the
/// metadata file (whose presence marks the log as complete).
fn initialize(
    storage: &dyn Storage,
    dir: &Path,
    config: &Config,
    kind: StoreKind,
    log_id: Option<u128>,
) -> Result<()> {
    storage.create_dir_all(dir).ctx("create directory", dir)?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = storage.lock_file(&lock_path).ctx("create", &lock_path)?;
    let _g = LockGuard::acquire(&*lock, &lock_path)?;
    if storage.exists(&Meta::path(dir)) {
        return Ok(());
    }
    let segs = segment::segments_dir(dir);
    storage
        .create_dir_all(&segs)
        .ctx("create directory", &segs)?;
    if segment::list_segments(storage, dir)?.is_empty() {
        segment::create(storage, dir, 0, true)?;
    }
    // The head file with its disk blocks, before the metadata: on a disk too full for
    // it, creation fails while it can still remove everything it made.
    let head_path = dir.join(HEAD_FILE);
    storage
        .map_shared(&head_path, HEAD_LEN, true)
        .ctx("create", &head_path)?;
    let log_id =
        log_id.unwrap_or_else(|| (u128::from(random_u64()) << 64) | u128::from(random_u64()));
    Meta {
        config: *config,
        log_id,
        created: now_micros(),
        tombstone_horizon: 0,
        kind,
    }
    .write(storage, dir)?;
    storage.sync_dir(dir).ctx("sync", dir)?;
    Ok(())
}

/// A read-only handle cannot take the writer lock to look at the head while nobody
/// changes it: a checksum mismatch is retried for a while (a writer may be mid-update)
/// before the head is judged damaged.
fn head_usable_read_only(head: &Head, boot: u64, file_id: u64) -> bool {
    for attempt in 0..50 {
        if !head.is_trusted(boot, file_id) {
            return false;
        }
        if head.is_intact() {
            return true;
        }
        // A writer mid-append explains a mismatch for as long as it writes; otherwise
        // only the instant between two stores does.
        let writing = head
            .words()
            .writing
            .load(std::sync::atomic::Ordering::Acquire)
            != 0;
        if !writing && attempt >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    tracing::warn!("reel.head fails its checksum: reading from a private rebuild of it");
    false
}

/// Stand-in lock for read-only opens, which never take the writer lock.
#[derive(Debug)]
struct NoLock;

impl FileLock for NoLock {
    fn lock(&self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "log opened read-only",
        ))
    }
    fn try_lock(&self) -> io::Result<bool> {
        Ok(false)
    }
    fn unlock(&self) -> io::Result<()> {
        Ok(())
    }
}
