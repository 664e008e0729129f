//! Views: state derived from the log in seq order (flumedb's model, made crash-safe).
//!
//! A [`View`] consumes records in order and keeps its own state; a [`ViewHandle`] feeds it
//! from a spool, persists checkpoints (`views/<name>/checkpoint`) so that opening does not
//! replay the whole log, and rebuilds it from the oldest record when its version changes.
//! Every read through a handle first catches the view up with everything committed to
//! the log (by any process) at the moment of the read: read-your-writes, with no
//! background thread. Each process keeps its own copy of a view's state in memory.

pub mod checkpoint;
mod reduce;

pub use checkpoint::Checkpoint;
pub use reduce::Reduce;

use crate::error::Result;
use crate::spool::Spool;
use reel_log::{FramePos, LogReader, RecordRef};
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
    /// Serializes the state for a checkpoint.
    fn save(&self) -> Result<Vec<u8>>;
    /// Restores a state written by `save` of the same version.
    fn load(&mut self, bytes: &[u8]) -> Result<()>;
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
    state: RwLock<State<V>>,
}

/// A view with its position, locked while applied or read.
#[derive(Debug)]
pub struct State<V> {
    view: V,
    applied_to: u64,
    checkpointed_at: u64,
    reader: LogReader,
    lost: u64,
    /// The tombstone horizon this state is known to be consistent with.
    base_horizon: u64,
    /// When this process last wrote (or loaded) the checkpoint.
    last_checkpoint: Instant,
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
        let next = spool.next_seq();
        let mut applied_to = spool.oldest_seq();
        let horizon = spool.log().tombstone_horizon()?;
        if let Some(cp) = Checkpoint::read(&*storage, spool.dir(), view.name())? {
            // A checkpoint from another log, version, or from beyond the log's end (a
            // power cut lost records it had applied) cannot be used; nor one that stops
            // before a tombstone compaction has since dropped (it would keep the value).
            let unusable = if cp.version != view.version() {
                Some(format!(
                    "it is of version {} and the view is now version {}",
                    cp.version,
                    view.version()
                ))
            } else if cp.log_id != spool.log().log_id() {
                Some("it belongs to another log".to_string())
            } else if cp.applied_to > next {
                Some(format!(
                    "it applied records up to seq {} but the log ends at {next} (a power cut lost records)",
                    cp.applied_to
                ))
            } else if cp.applied_to <= horizon {
                Some(format!(
                    "compaction dropped a deletion (seq {horizon}) it had not applied"
                ))
            } else {
                None
            };
            match unusable {
                None => {
                    view.reset();
                    if let Err(e) = view.load(&cp.state) {
                        tracing::warn!(dir = %spool.dir().display(), view = view.name(), "view checkpoint cannot be loaded ({e}): rebuilding from the log");
                        view.reset();
                    } else {
                        applied_to = cp.applied_to;
                    }
                }
                Some(why) => {
                    tracing::info!(dir = %spool.dir().display(), view = view.name(), "view checkpoint not used ({why}): rebuilding from the log");
                }
            }
        }
        let reader = spool.log().reader(applied_to);
        let state = State {
            view,
            applied_to,
            checkpointed_at: applied_to,
            reader,
            lost: 0,
            base_horizon: horizon,
            last_checkpoint: Instant::now(),
        };
        Ok(ViewHandle {
            shared: Arc::new(Shared {
                spool: spool.clone(),
                state: RwLock::new(state),
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
        if st.applied_to >= st.checkpointed_at + CHECKPOINT_EVERY
            && st.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
            && log.is_writable()
            && let Err(e) = self.write_checkpoint(st)
        {
            // A checkpoint only shortens the next opener's catch-up: failing to write one
            // must not fail the read that triggered it. Try again after the interval.
            tracing::warn!(dir = %self.shared.spool.dir().display(), view = st.view.name(), "cannot write the view checkpoint: {e}");
            st.last_checkpoint = Instant::now();
        }
        Ok(())
    }

    fn apply_range(&self, st: &mut State<V>, end: u64) -> Result<()> {
        while st.applied_to < end {
            let want = (end - st.applied_to).min(4096) as usize;
            let State {
                view,
                reader,
                applied_to,
                lost,
                ..
            } = &mut *st;
            let batch = reader.read_batch(want)?;
            if let Some(l) = batch.lost() {
                *lost += l.end - l.start;
            }
            if batch.is_empty() {
                break;
            }
            let mut failed = None;
            batch.for_each_at(|r, pos| {
                if failed.is_none() && r.seq < end {
                    match view.apply_at(&r, pos) {
                        Ok(()) => *applied_to = r.seq + 1,
                        Err(e) => failed = Some(e),
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            // Compacted gaps: the reader may be past records that no longer exist.
            *applied_to = (*applied_to).max(reader.position().min(end));
        }
        Ok(())
    }

    fn write_checkpoint(&self, st: &mut State<V>) -> Result<()> {
        let spool = &self.shared.spool;
        let cp = Checkpoint {
            version: st.view.version(),
            applied_to: st.applied_to,
            log_id: spool.log().log_id(),
            state: st.view.save()?,
        };
        cp.write(&**spool.log().storage(), spool.dir(), st.view.name())?;
        st.checkpointed_at = st.applied_to;
        st.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Catches up and writes a checkpoint now.
    pub fn checkpoint(&self) -> Result<()> {
        let mut st = self.lock();
        let end = self.shared.spool.next_seq();
        self.apply_to(&mut st, end)?;
        self.write_checkpoint(&mut st)
    }

    /// Every record below this seq is applied (without catching up).
    pub fn applied_to(&self) -> u64 {
        self.lock().applied_to
    }

    /// Forgets the state and applies the whole log again from the oldest record,
    /// reporting progress as (records applied, records to apply); then checkpoints.
    pub fn rebuild(&self, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let mut st = self.lock();
        let spool = &self.shared.spool;
        let start = spool.oldest_seq();
        st.view.reset();
        st.applied_to = start;
        st.checkpointed_at = start;
        st.lost = 0;
        st.base_horizon = spool.log().tombstone_horizon()?;
        st.reader.seek(start);
        let end = spool.next_seq();
        let total = end - start;
        while st.applied_to < end {
            let step = (st.applied_to + 50_000).min(end);
            self.apply_to(&mut st, step)?;
            progress(st.applied_to - start, total);
            if st.applied_to < step {
                break;
            }
        }
        if spool.log().is_writable() {
            self.write_checkpoint(&mut st)?;
        }
        Ok(())
    }
}

impl<V: View> Drop for Shared<V> {
    fn drop(&mut self) {
        // Save progress for the next opener; failures only cost a longer catch-up.
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.applied_to > st.checkpointed_at
            && self.spool.log().is_writable()
            && let Ok(state) = st.view.save()
        {
            let cp = Checkpoint {
                version: st.view.version(),
                applied_to: st.applied_to,
                log_id: self.spool.log().log_id(),
                state,
            };
            if let Err(e) = cp.write(
                &**self.spool.log().storage(),
                self.spool.dir(),
                st.view.name(),
            ) {
                tracing::warn!(dir = %self.spool.dir().display(), view = st.view.name(), "cannot write the view checkpoint: {e}");
            }
        }
    }
}

/// A view as listed by `reel view list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
