//! Catching a view's state up with the log: applying records a chunk at a time,
//! adopting a checkpoint another process wrote instead of replaying, and writing
//! checkpoints (with the reasons a stored one cannot be used).

use super::{Checkpoint, State, View, ViewFiles};
use crate::error::Result;
use crate::spool::Spool;
use std::time::Instant;

/// Applies the next batch of records below `end`; false when there was none.
pub(super) fn apply_chunk<V: View>(st: &mut State<V>, end: u64) -> Result<bool> {
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
        return Ok(false);
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
        // The reader is past the whole batch: the next attempt must start again at the
        // record that failed, not after the batch (that would skip records for good).
        reader.seek(*applied_to);
        return Err(e);
    }
    // Compacted gaps: the reader may be past records that no longer exist.
    *applied_to = (*applied_to).max(reader.position().min(end));
    Ok(true)
}

/// Loads the checkpoint on disk into `st` if it is usable and at least as far as `st`
/// (or at any position with `behind_too`; the caller then replays what `st` had beyond).
pub(super) fn try_adopt<V: View>(
    spool: &Spool,
    files: &ViewFiles,
    st: &mut State<V>,
    behind_too: bool,
) -> Result<bool> {
    let horizon = spool.log().tombstone_horizon()?;
    let Some(cp) = Checkpoint::read(&*files.storage, spool.dir(), st.view.name())? else {
        return Ok(false);
    };
    if (cp.applied_to < st.applied_to && !behind_too)
        || horizon > st.base_horizon
        || unusable(&cp, &st.view, spool, horizon).is_some()
    {
        return Ok(false);
    }
    if let Err(e) = st.view.load_files(files, &cp.state) {
        // The state is unchanged (see `View::load_files`): keep it; the next checkpoint
        // this process writes replaces the one it could not load.
        tracing::warn!(dir = %spool.dir().display(), view = st.view.name(), "cannot load the view checkpoint another process wrote ({e}): keeping this process's state");
        return Ok(false);
    }
    st.applied_to = cp.applied_to;
    st.checkpointed_at = cp.applied_to;
    st.durable_at = cp.applied_to;
    st.reader.seek(cp.applied_to);
    st.manifest = Some(cp.state);
    st.last_checkpoint = Instant::now();
    Ok(true)
}

/// Writes `st` as the view's checkpoint. A view in files does so under the view's lock:
/// if another process checkpointed since `st` was loaded, `st` first builds on that
/// checkpoint (or adopts it when it is as far), so no checkpoint ever names a table
/// another one has replaced; afterwards the tables no checkpoint names are removed.
pub(super) fn write_checkpoint<V: View>(
    spool: &Spool,
    files: &ViewFiles,
    st: &mut State<V>,
) -> Result<()> {
    if st.lost_state.is_some() {
        // It would replace the checkpoint that still holds the state this one lacks
        // (damaged, but perhaps restorable) with one that does not.
        return Ok(());
    }
    let storage = &*files.storage;
    let io = |op, p: &std::path::Path, e| crate::Error::from(reel_log::Error::io(op, p, e));
    let _lock = if st.view.uses_files() {
        storage
            .create_dir_all(&files.dir)
            .map_err(|e| io("create directory", &files.dir, e))?;
        let lock_path = files.dir.join("lock");
        let lock = storage
            .lock_file(&lock_path)
            .map_err(|e| io("open", &lock_path, e))?;
        lock.lock().map_err(|e| io("lock", &lock_path, e))?;
        if !st.rebuilding
            && let Some(cp) = Checkpoint::read(storage, spool.dir(), st.view.name())?
            && st.manifest.as_ref() != Some(&cp.state)
        {
            // Its tables may have replaced (and removed) the ones this state reads: build
            // on it, replaying the records this state had applied beyond it.
            let target = st.applied_to;
            if try_adopt(spool, files, st, true)? && st.applied_to >= target {
                return Ok(());
            }
            while st.applied_to < target && apply_chunk(st, target)? {}
        }
        Some(lock)
    } else {
        None
    };
    // The records it applied are made durable first: a power cut must not leave a
    // checkpoint ahead of the log, whose seqs new records would then reuse, and which
    // would be adopted again once the log grew past it (wrong values and list items).
    spool.log().sync_published()?;
    let cp = Checkpoint {
        version: st.view.version(),
        applied_to: st.applied_to,
        log_id: spool.log().log_id(),
        state: st.view.save_files(files)?,
    };
    cp.write(storage, spool.dir(), st.view.name())?;
    st.checkpointed_at = st.applied_to;
    st.durable_at = st.applied_to;
    st.last_checkpoint = Instant::now();
    if st.view.uses_files() {
        let keep = st.view.files_in_use();
        if let Ok(names) = storage.list_dir(&files.dir) {
            for name in names.iter().filter_map(|n| n.to_str()) {
                // Also a checkpoint's temporary file left by a process killed while
                // writing one: every writer of this checkpoint holds the lock held here.
                let stale = (name.ends_with(".tbl") && !keep.iter().any(|k| k == name))
                    || name.starts_with("checkpoint.tmp.");
                if stale {
                    let _ = storage.remove_file(&files.dir.join(name));
                }
            }
        }
    }
    st.manifest = Some(cp.state);
    Ok(())
}

/// Removes `name`'s checkpoint when it applied records beyond the log's end (the log
/// lost its tail to damage, or views were restored apart from the segments), under the
/// view's lock and only if it still is ahead: once new records reached its
/// `applied_to` it would be taken as theirs (wrong values, another list's items).
/// Nothing is removed through a read-only handle.
pub(super) fn discard_if_ahead(spool: &Spool, files: &ViewFiles, name: &str) -> Result<()> {
    if !spool.log().is_writable() {
        return Ok(());
    }
    let storage = &*files.storage;
    let lock_path = files.dir.join("lock");
    let lock = storage
        .lock_file(&lock_path)
        .map_err(|e| reel_log::Error::io("open", &lock_path, e))?;
    lock.lock()
        .map_err(|e| reel_log::Error::io("lock", &lock_path, e))?;
    if let Some(cp) = Checkpoint::read(storage, spool.dir(), name)?
        && cp.applied_to > spool.next_seq()
    {
        tracing::warn!(dir = %spool.dir().display(), view = name, applied_to = cp.applied_to, next = spool.next_seq(), "the view checkpoint applied records the log no longer holds: removed");
        Checkpoint::remove(storage, spool.dir(), name)?;
    }
    Ok(())
}

/// Why a checkpoint cannot be used for `view` on `spool` (`None`: it can).
pub(super) fn unusable<V: View>(
    cp: &Checkpoint,
    view: &V,
    spool: &Spool,
    horizon: u64,
) -> Option<String> {
    let next = spool.next_seq();
    // A checkpoint from another log, version, or from beyond the log's end (a power cut
    // lost records it had applied) cannot be used; nor one that stops before a
    // tombstone compaction has since dropped (it would keep the value).
    if cp.version != view.version() {
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
    }
}

/// Why a view that outlives the log lacks state only its checkpoint held (`problem`:
/// what is wrong with the checkpoint), once the log starts at `oldest` (retention
/// dropped the records before it, or a follower never got them): the refusal its writes
/// then get.
pub(super) fn lost_state(view: &str, problem: &str, oldest: u64) -> String {
    format!(
        "the {view} view {problem}, and the log no longer holds its records before seq \
         {oldest}, so state that only the checkpoint held is missing (for \
         lists: the next offset and last nonce of a list all of whose items were dropped; \
         appends are refused rather than give offsets again or take a used nonce again). \
         Restore views/{view} from a copy of the store, or rebuild without that state with \
         `reel view rebuild --force DIR {view}`"
    )
}
