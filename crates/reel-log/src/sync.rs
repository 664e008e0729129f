//! Group commit: one `fdatasync` covers every append written to a file before it began,
//! from any thread; appenders that arrive while a sync runs wait for the next one
//! together instead of queueing one sync each.

use crate::error::{Error, Result};
use crate::storage::StorageFile;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Durability of an append, chosen per writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Durability {
    /// Written to the page cache before the append returns: survives a process crash,
    /// not a power cut. Sealed segments are still synced when they are closed.
    #[default]
    None,
    /// Group commit in the background: the append returns once written; a flusher
    /// syncs at most [`BATCH_INTERVAL`](crate::BATCH_INTERVAL) later, one `fdatasync`
    /// covering many appends. [`Log::sync`](crate::Log::sync) waits for it.
    Batch,
    /// The append returns only after an `fdatasync` that covers it. Concurrent appends
    /// share syncs (group commit), so many threads still make progress together.
    Always,
}

impl Durability {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Batch => "batch",
            Durability::Always => "always",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Durability::None),
            "batch" => Ok(Durability::Batch),
            "always" => Ok(Durability::Always),
            other => Err(Error::InvalidArgument(format!(
                "unknown durability `{other}` (expected none, batch or always)"
            ))),
        }
    }
}

/// A segment file being appended to, with its group-commit state.
#[derive(Debug)]
pub struct SyncedFile {
    pub(crate) file: Arc<dyn StorageFile>,
    pub(crate) path: PathBuf,
    /// End of the bytes this process has written (all of them precede any later sync).
    pub(crate) written_end: AtomicU64,
    state: Mutex<SyncProgress>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct SyncProgress {
    synced_to: u64,
    running: bool,
    failed: Option<String>,
}

impl SyncedFile {
    pub(crate) fn new(file: Arc<dyn StorageFile>, path: PathBuf, end: u64) -> Arc<Self> {
        Arc::new(SyncedFile {
            file,
            path,
            written_end: AtomicU64::new(end),
            state: Mutex::new(SyncProgress::default()),
            done: Condvar::new(),
        })
    }

    /// True when bytes up to `end` are known durable.
    pub(crate) fn is_synced(&self, end: u64) -> bool {
        self.state
            .lock()
            .map(|s| s.synced_to >= end)
            .unwrap_or(false)
    }

    /// Returns once bytes up to `end` are durable, running the sync itself or waiting
    /// for one already under way.
    pub(crate) fn sync_to(&self, end: u64) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(cause) = &st.failed {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if st.synced_to >= end {
                return Ok(());
            }
            if st.running {
                st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.running = true;
            let target = self.written_end.load(Ordering::Acquire);
            drop(st);
            let outcome = self.file.sync_data();
            st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            match outcome {
                Ok(()) => st.synced_to = st.synced_to.max(target),
                Err(e) => st.failed = Some(format!("fdatasync {}: {e}", self.path.display())),
            }
            self.done.notify_all();
        }
    }
}
