//! Views: state derived from the log in seq order (flumedb's model, made crash-safe).
//!
//! A [`View`] consumes records in order and keeps its own state; a [`ViewHandle`] feeds it
//! from a spool, persists checkpoints (`views/<name>/checkpoint`) so that opening does not
//! replay the whole log, and rebuilds it from the oldest record when its version changes.
//! Every read through a handle first catches the view up with everything committed to
//! the log (by any process) at the moment of the read: read-your-writes, with no
//! background thread. A view with files of its own (kv, lists) keeps its state in sorted
//! tables every process maps, plus in memory what it applied since the last checkpoint;
//! a view without files keeps all of its state in each process's memory. Applying
//! records and writing checkpoints is `apply.rs`.

mod apply;
mod barrier;
mod catalog;
pub mod checkpoint;
mod rebuild;
mod reduce;
pub mod table;
pub mod tables;

use apply::{apply_chunk, discard_if_ahead, lost_state, try_adopt, unusable, write_checkpoint};

pub use catalog::all_views;
pub use checkpoint::Checkpoint;
pub use reduce::Reduce;

use crate::error::Result;
use crate::spool::Spool;
use reel_log::storage::Storage;
use reel_log::{FramePos, LogReader, RecordRef};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Records applied between automatic checkpoints...
pub const CHECKPOINT_EVERY: u64 = 100_000;
/// ...and the least time between them: a checkpoint serializes the whole state under the
/// view's lock, so a large view must not be rewritten at every hundred thousand records.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);

/// State derived from a log.
///
/// A count of records per key, as an example (it is compiled and run as a test):
///
/// ```
/// use reel::view::{View, ViewHandle};
/// use reel::{RecordRef, Spool};
/// use std::collections::BTreeMap;
///
/// #[derive(Default)]
/// struct CountByKey(BTreeMap<String, u64>);
///
/// impl View for CountByKey {
///     fn name(&self) -> &str { "count-by-key" }
///     fn version(&self) -> u32 { 1 }
///     fn apply(&mut self, r: &RecordRef<'_>) -> reel::Result<()> {
///         *self.0.entry(r.key.unwrap_or("").to_string()).or_default() += 1;
///         Ok(())
///     }
///     fn reset(&mut self) { self.0.clear() }
///     fn save(&self) -> reel::Result<Vec<u8>> {
///         reel::Value::encode(&self.0).map(|v| v.as_bytes().to_vec())
///     }
///     fn load(&mut self, bytes: &[u8]) -> reel::Result<()> {
///         self.0 = reel::Value::from_parts(reel::Encoding::MsgPack, bytes.to_vec()).decode()?;
///         Ok(())
///     }
/// }
///
/// # let tmp = tempfile::tempdir().unwrap();
/// let spool = Spool::create(tmp.path())?;
/// let counts = ViewHandle::open(&spool, CountByKey::default())?;
/// spool.append(reel::NewRecord::new(serde_json::json!(1)).key("a"))?;
/// spool.append(reel::NewRecord::new(serde_json::json!(2)).key("a"))?;
/// // The read waits for the view to apply both appends first.
/// assert_eq!(counts.read(|v| v.0["a"])?, 2);
/// # Ok::<(), reel::Error>(())
/// ```
pub trait View: Send + Sync + 'static {
    /// Stable name; `views/<name>/` holds the checkpoint. Letters, digits, `.`, `_`, `-`.
    fn name(&self) -> &str;
    /// Changing the version discards checkpoints and rebuilds the view from the oldest
    /// record.
    fn version(&self) -> u32;
    /// Applies one record. Called in seq order, exactly once per record per state.
    fn apply(&mut self, record: &RecordRef<'_>) -> Result<()>;
    /// Like `apply`, also told where the record is stored, for views that keep
    /// positions to read records again directly ([`reel_log::Log::read_record_at`]).
    fn apply_at(&mut self, record: &RecordRef<'_>, pos: FramePos) -> Result<()> {
        let _ = pos;
        self.apply(record)
    }
    /// Forgets everything (before a rebuild).
    fn reset(&mut self);
    /// Forgets what the log can tell again, before [`ViewHandle::rebuild`] applies it
    /// from the oldest record: by default everything ([`View::reset`]). A view whose
    /// state outlives the records retention dropped keeps that part (the lists view
    /// keeps each list's next offset and last nonce). `records_dropped`: the log no
    /// longer starts at its first record. A view that cannot keep such state (its
    /// files are damaged) fails with [`crate::Error::RebuildLoses`] unless `force`.
    fn reset_for_rebuild(&mut self, records_dropped: bool, force: bool) -> Result<()> {
        let _ = (records_dropped, force);
        self.reset();
        Ok(())
    }
    /// True for a view whose state outlives the records retention drops (the lists
    /// view): without its checkpoint, that part is gone, which opening reports.
    fn outlives_log(&self) -> bool {
        false
    }
    /// Serializes the state for a checkpoint.
    fn save(&self) -> Result<Vec<u8>>;
    /// Restores a state written by `save` of the same version.
    fn load(&mut self, bytes: &[u8]) -> Result<()>;

    /// True for a view that keeps its state in files of its own in `views/<name>/`
    /// (see [`View::save_files`]); such a view's checkpoints are written under a lock
    /// shared by every process, and a process adopts a newer one instead of replaying.
    /// [`tables::TableSet`] keeps such a state in sorted tables, as the kv and lists
    /// views do (a complete user view: `CountInTables` in `crates/reel/tests/views.rs`).
    fn uses_files(&self) -> bool {
        false
    }
    /// Saves the state for a checkpoint: writes (and syncs) any files of its own into
    /// `files`, and returns the bytes the checkpoint stores (naming those files).
    fn save_files(&mut self, files: &ViewFiles) -> Result<Vec<u8>> {
        let _ = files;
        self.save()
    }
    /// Restores a state written by `save_files` of the same version. A view that uses
    /// files must leave its state unchanged when this fails (a process may try to adopt
    /// another's checkpoint and keep its own state if it cannot).
    fn load_files(&mut self, files: &ViewFiles, bytes: &[u8]) -> Result<()> {
        let _ = files;
        self.load(bytes)
    }
    /// The names of the files in `views/<name>/` the current state reads (the others
    /// are removed after a checkpoint).
    fn files_in_use(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether a read should write a checkpoint now, `records_since` records and
    /// `since` time after the last one.
    fn checkpoint_due(&self, records_since: u64, since: Duration) -> bool {
        records_since >= CHECKPOINT_EVERY && since >= CHECKPOINT_INTERVAL
    }
    /// Whether closing the last handle should write a checkpoint.
    fn checkpoint_on_close(&self, records_since: u64) -> bool {
        records_since > 0
    }
    /// Asks the next [`View::save_files`] to merge the view's files into as few as it
    /// can ([`tables::TableSet::merge_all_next`]); nothing for a view without files.
    fn compact_at_next_save(&mut self) {}
}

/// Where a view keeps files of its own: `views/<name>/`.
#[derive(Debug, Clone)]
pub struct ViewFiles {
    /// The storage of the spool.
    pub storage: Arc<dyn Storage>,
    /// The view's folder.
    pub dir: PathBuf,
}

/// A number that differs between processes and calls (for new file names).
pub(crate) fn unique_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A view fed from a spool. Cheap to clone; clones share the state.
pub struct ViewHandle<V: View> {
    shared: Arc<Shared<V>>,
}

impl<V: View> Clone for ViewHandle<V> {
    fn clone(&self) -> Self {
        ViewHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<V: View> std::fmt::Debug for ViewHandle<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewHandle")
            .field("dir", &self.shared.spool.dir())
            .finish_non_exhaustive()
    }
}

struct Shared<V: View> {
    spool: Spool,
    files: ViewFiles,
    state: RwLock<State<V>>,
    /// Registered with the log by [`ViewHandle::checkpoint_before_retention`].
    barrier: std::sync::Mutex<Option<Arc<dyn reel_log::RetentionBarrier>>>,
}

/// A view with its position, locked while applied or read.
#[derive(Debug)]
pub struct State<V> {
    view: V,
    applied_to: u64,
    checkpointed_at: u64,
    /// The checkpoint on disk (written or loaded by this process) covers every record
    /// below this seq; `checkpointed_at` also moves past a checkpoint that failed.
    durable_at: u64,
    reader: LogReader,
    lost: u64,
    /// The tombstone horizon this state is known to be consistent with.
    base_horizon: u64,
    /// When this process last wrote (or loaded) the checkpoint.
    last_checkpoint: Instant,
    /// The state bytes of the checkpoint this state was loaded from or last wrote (for
    /// views that use files: tells whether another process checkpointed since).
    manifest: Option<Vec<u8>>,
    /// A rebuild is running: checkpoints of other processes are not adopted.
    rebuilding: bool,
    /// Why this view lacks state that only its checkpoint held (a view that outlives
    /// the log, whose checkpoint could not be loaded after retention dropped records):
    /// writes that depend on that state and a rebuild without `force` are refused.
    lost_state: Option<String>,
}

impl<V> State<V> {
    /// The view.
    pub fn view(&self) -> &V {
        &self.view
    }

    /// The view, for changes a caller applies itself under the lock (the kv store uses
    /// this to apply its own append without re-reading it).
    pub fn view_mut(&mut self) -> &mut V {
        &mut self.view
    }

    /// Every record below this seq is applied.
    pub fn applied_to(&self) -> u64 {
        self.applied_to
    }

    /// Records retention dropped before the view applied them.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

impl<V: View> ViewHandle<V> {
    /// Attaches `view` to `spool`: restores its checkpoint when one of the same version
    /// and log exists, otherwise starts from the oldest record. Nothing is applied yet;
    /// the first read catches up.
    pub fn open(spool: &Spool, mut view: V) -> Result<Self> {
        crate::cursor::validate_name(view.name())?;
        let storage = spool.log().storage().clone();
        let files = ViewFiles {
            storage: storage.clone(),
            dir: checkpoint::views_dir(spool.dir()).join(view.name()),
        };
        let mut applied_to = spool.oldest_seq();
        let horizon = spool.log().tombstone_horizon()?;
        let mut manifest = None;
        let mut load_error = None;
        // A view in files may find a table gone that another process's checkpoint
        // replaced between reading the checkpoint and opening the table: read it again.
        for attempt in 0..3 {
            let cp = match Checkpoint::read_checked(&*storage, spool.dir(), view.name())? {
                None => break,
                Some(Ok(cp)) => cp,
                Some(Err(why)) => {
                    tracing::warn!(dir = %spool.dir().display(), view = view.name(), "{why}: rebuilding the view from the log");
                    load_error = Some(why);
                    break;
                }
            };
            if let Some(why) = unusable(&cp, &view, spool, horizon) {
                tracing::info!(dir = %spool.dir().display(), view = view.name(), "view checkpoint not used ({why}): rebuilding from the log");
                // A view of another version cannot carry over what only its checkpoint
                // held: as for a checkpoint that cannot be loaded (below); nor can one
                // ahead of the log, which is also removed before the log reaches it.
                if cp.applied_to > spool.next_seq() {
                    discard_if_ahead(spool, &files, view.name())?;
                    load_error = Some(why);
                } else if cp.version != view.version() {
                    load_error = Some(why);
                }
                break;
            }
            view.reset();
            match view.load_files(&files, &cp.state) {
                Ok(()) => {
                    applied_to = cp.applied_to;
                    manifest = Some(cp.state);
                    break;
                }
                Err(e) => {
                    view.reset();
                    if attempt == 2 || !view.uses_files() {
                        tracing::warn!(dir = %spool.dir().display(), view = view.name(), "view checkpoint cannot be loaded ({e}): rebuilding from the log");
                        load_error = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        // A view that outlives the log lost what only its checkpoint held once retention
        // dropped records, whether the checkpoint could not be used or there was none (a
        // deleted view, or a follower that never held the first records): its writes
        // are refused.
        let mut lost = None;
        if applied_to > 0 && view.outlives_log() {
            lost = match load_error {
                Some(e) => Some(lost_state(
                    view.name(),
                    &format!("cannot load its checkpoint ({e})"),
                    applied_to,
                )),
                None if manifest.is_none() => Some(lost_state(
                    view.name(),
                    &format!(
                        "has no checkpoint ({} does not exist)",
                        checkpoint::checkpoint_path(spool.dir(), view.name()).display()
                    ),
                    applied_to,
                )),
                None => None,
            };
        }
        let reader = spool.log().reader(applied_to);
        let state = State {
            view,
            applied_to,
            checkpointed_at: applied_to,
            durable_at: applied_to,
            reader,
            lost: 0,
            base_horizon: horizon,
            last_checkpoint: Instant::now(),
            manifest,
            rebuilding: false,
            lost_state: lost,
        };
        Ok(ViewHandle {
            shared: Arc::new(Shared {
                spool: spool.clone(),
                files,
                state: RwLock::new(state),
                barrier: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The spool the view is fed from.
    pub fn spool(&self) -> &Spool {
        &self.shared.spool
    }

    fn lock(&self) -> RwLockWriteGuard<'_, State<V>> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Catches up with everything committed now, then calls `f` on the view.
    pub fn read<R>(&self, f: impl FnOnce(&V) -> R) -> Result<R> {
        let end = self.shared.spool.next_seq();
        {
            // Already caught up: readers share the state (a dropped tombstone is always
            // below the end of the log, so a caught-up state never needs a rebuild).
            let st = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
            if st.applied_to >= end {
                return Ok(f(&st.view));
            }
        }
        let mut st = self.lock();
        self.apply_to(&mut st, end)?;
        Ok(f(&st.view))
    }

    /// Waits (up to `timeout`) until the record `seq` exists and is applied, then calls
    /// `f`; `None` on timeout. Several callers may wait for different seqs at once.
    pub fn read_at<R>(
        &self,
        seq: u64,
        timeout: Duration,
        f: impl FnOnce(&V) -> R,
    ) -> Result<Option<R>> {
        let deadline = Instant::now() + timeout;
        if !self.shared.spool.log().wait_for(seq, Some(deadline)) {
            return Ok(None);
        }
        self.read(f).map(Some)
    }

    /// Why writes that depend on state only the view's checkpoint held are refused
    /// (see [`crate::Error::RebuildLoses`]); `None` normally.
    pub fn lost_state(&self) -> Option<String> {
        self.shared
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lost_state
            .clone()
    }

    /// Locks the view caught up to exactly `end` (no further), for callers that must
    /// decide on the state as of a log position, such as under the writer lock.
    pub fn lock_at(&self, end: u64) -> Result<RwLockWriteGuard<'_, State<V>>> {
        let mut st = self.lock();
        self.apply_to(&mut st, end)?;
        Ok(st)
    }

    /// Applies records up to `end` (exclusive); checkpoints when due.
    fn apply_to(&self, st: &mut State<V>, end: u64) -> Result<()> {
        let log = self.shared.spool.log();
        // Where the state stood before the pass that read the log: a compaction that
        // raised the horizon during that pass may have hidden a tombstone from it.
        let mut from = st.applied_to;
        loop {
            // Compaction dropped a tombstone this state had not applied yet: the
            // deletion is gone from the log, so only a rebuild can forget the value.
            let horizon = log.tombstone_horizon()?;
            if horizon > st.base_horizon {
                if from <= horizon {
                    tracing::info!(
                        dir = %self.shared.spool.dir().display(),
                        view = st.view.name(),
                        horizon,
                        "compaction dropped a deletion this view had not applied: rebuilding it"
                    );
                    let oldest = self.shared.spool.oldest_seq();
                    st.view.reset();
                    st.applied_to = oldest;
                    st.checkpointed_at = oldest;
                    st.lost = 0;
                    st.reader.seek(oldest);
                }
                st.base_horizon = horizon;
            }
            from = st.applied_to;
            self.apply_range(st, end)?;
            // A compaction that ran meanwhile may have hidden a tombstone from this pass.
            if log.tombstone_horizon()? == horizon {
                break;
            }
        }
        self.maybe_checkpoint(st);
        Ok(())
    }

    /// Writes a checkpoint if the view says one is due; a failure is only logged.
    fn maybe_checkpoint(&self, st: &mut State<V>) {
        let log = self.shared.spool.log();
        if st.applied_to > st.checkpointed_at
            && log.is_writable()
            && st.view.checkpoint_due(
                st.applied_to - st.checkpointed_at,
                st.last_checkpoint.elapsed(),
            )
            && let Err(e) = write_checkpoint(&self.shared.spool, &self.shared.files, st)
        {
            // A checkpoint only shortens the next opener's catch-up: failing to write one
            // must not fail the read that triggered it. Try again after the interval.
            tracing::warn!(dir = %self.shared.spool.dir().display(), view = st.view.name(), "cannot write the view checkpoint: {e}");
            st.last_checkpoint = Instant::now();
            st.checkpointed_at = st.applied_to;
        }
    }

    fn apply_range(&self, st: &mut State<V>, end: u64) -> Result<()> {
        // Far behind a checkpoint another process wrote: load it instead of replaying.
        if st.view.uses_files()
            && !st.rebuilding
            && end.saturating_sub(st.applied_to) > 4096
            && let Some((_, cp_applied)) = Checkpoint::peek(
                &*self.shared.files.storage,
                &checkpoint::checkpoint_path(self.shared.spool.dir(), st.view.name()),
            )
            && cp_applied > st.applied_to + 4096
            && cp_applied <= end
        {
            let _ = try_adopt(&self.shared.spool, &self.shared.files, st, false);
        }
        while st.applied_to < end {
            if !apply_chunk(st, end)? {
                break;
            }
            if st.view.uses_files() {
                self.maybe_checkpoint(st);
            }
        }
        Ok(())
    }

    /// Catches up and writes a checkpoint now.
    pub fn checkpoint(&self) -> Result<()> {
        let mut st = self.lock();
        let end = self.shared.spool.next_seq();
        self.apply_to(&mut st, end)?;
        write_checkpoint(&self.shared.spool, &self.shared.files, &mut st)
    }

    /// Catches up, then writes a checkpoint whose files are merged into as few as the
    /// view can (one sorted table for the kv and lists views): reads then probe one table
    /// instead of one per size class. Returns the number of files before and after.
    pub fn compact(&self) -> Result<(usize, usize)> {
        let mut st = self.lock();
        let end = self.shared.spool.next_seq();
        self.apply_to(&mut st, end)?;
        let before = st.view.files_in_use().len();
        // Writing may adopt another process's newer checkpoint instead: then compact that.
        for _ in 0..3 {
            st.view.compact_at_next_save();
            write_checkpoint(&self.shared.spool, &self.shared.files, &mut st)?;
            if st.view.files_in_use().len() <= 1 {
                break;
            }
        }
        Ok((before, st.view.files_in_use().len()))
    }

    /// Every record below this seq is applied (without catching up).
    pub fn applied_to(&self) -> u64 {
        self.lock().applied_to
    }
}

impl<V: View> Drop for Shared<V> {
    fn drop(&mut self) {
        // Save progress for the next opener; failures only cost a longer catch-up.
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.applied_to > st.checkpointed_at
            && self.spool.log().is_writable()
            && st
                .view
                .checkpoint_on_close(st.applied_to - st.checkpointed_at)
            && let Err(e) = write_checkpoint(&self.spool, &self.files, st)
        {
            tracing::warn!(dir = %self.spool.dir().display(), view = st.view.name(), "cannot write the view checkpoint: {e}");
        }
    }
}

/// A view as listed by `reel view list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ViewInfo {
    /// Name.
    pub name: String,
    /// Version of the checkpoint.
    pub version: u32,
    /// Last seq applied in the checkpoint (`null` when none).
    pub since: Option<u64>,
    /// Records committed after the checkpoint.
    pub lag: u64,
}

/// Lists the views that have a checkpoint in the spool.
pub fn list_views(spool: &Spool) -> Result<Vec<ViewInfo>> {
    let storage = spool.log().storage();
    let dir = checkpoint::views_dir(spool.dir());
    let names = match storage.list_dir(&dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(reel_log::Error::io("list", dir, e).into()),
    };
    let next = spool.next_seq();
    let mut out: Vec<ViewInfo> = names
        .iter()
        .filter_map(|n| n.to_str())
        .filter_map(|name| {
            let (version, applied_to) =
                Checkpoint::peek(&**storage, &checkpoint::checkpoint_path(spool.dir(), name))?;
            Some(ViewInfo {
                name: name.to_string(),
                version,
                since: applied_to.checked_sub(1),
                lag: next.saturating_sub(applied_to),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
