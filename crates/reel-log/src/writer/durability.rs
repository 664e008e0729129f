//! Durability after an append, and a writer's poisoning: `always` waits for an
//! `fdatasync` covering the append (group commit, see `crate::sync`); `batch` leaves it
//! to a flusher thread per handle that syncs what was written every [`BATCH_INTERVAL`]; a
//! failed sync poisons the handle, since the kernel may have dropped the dirty pages it
//! could not write and a later sync would report success over lost records.

use super::BATCH_INTERVAL;
use crate::error::{Error, IoContext, Result};
use crate::log::Log;
use crate::sync::{Durability, SyncedFile};
use std::sync::{Arc, Weak};

impl Log {
    pub(super) fn make_durable(
        &self,
        durability: Durability,
        file: &SyncedFile,
        end: u64,
    ) -> Result<()> {
        match durability {
            Durability::None => Ok(()),
            Durability::Batch => {
                self.start_flusher();
                Ok(())
            }
            Durability::Always => self.sync_written(file, end),
        }
    }

    /// Makes every record this handle appended durable.
    pub fn sync(&self) -> Result<()> {
        match self.last_written() {
            Some((file, end)) => self.sync_written(&file, end),
            None => Ok(()),
        }
    }

    /// Makes every record published so far durable, whichever process appended it:
    /// sealed segments were synced when sealed, so this syncs the tail segment. For
    /// state derived from the log (a view checkpoint) that must never get ahead of what
    /// a power cut leaves of the log.
    pub fn sync_published(&self) -> Result<()> {
        let first = self.inner.head.tail().first_seq;
        let path = crate::segment::segment_path(&self.inner.dir, first);
        match self
            .inner
            .storage
            .open(&path, crate::storage::OpenMode::Read)
        {
            Ok(f) => f.sync_data().ctx("sync", &path),
            // Rolled and dropped meanwhile: a sealed segment was synced when sealed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    /// The tail file this handle last wrote and where its writes end.
    fn last_written(&self) -> Option<(Arc<SyncedFile>, u64)> {
        self.inner
            .last_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Syncs `file` up to `end`; a failure poisons the handle.
    fn sync_written(&self, file: &SyncedFile, end: u64) -> Result<()> {
        file.sync_to(end)
            .inspect_err(|e| self.poison(&e.to_string()))
    }

    fn start_flusher(&self) {
        self.inner.flusher_started.call_once(|| {
            let weak: Weak<_> = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("reel-flusher".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(BATCH_INTERVAL);
                        let Some(inner) = weak.upgrade() else { return };
                        let log = Log { inner };
                        if let Some((file, end)) = log.last_written()
                            && !file.is_synced(end)
                            && log.sync_written(&file, end).is_err()
                        {
                            return;
                        }
                    }
                });
            if spawned.is_err() {
                self.poison("cannot start the batch flusher thread");
            }
        });
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &*self
            .inner
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(super) fn poison(&self, cause: &str) {
        let mut p = self
            .inner
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if p.is_none() {
            tracing::error!(dir = %self.inner.dir.display(), cause, "reel writer poisoned");
            *p = Some(cause.to_string());
        }
    }
}
