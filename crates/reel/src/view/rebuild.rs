//! Rebuilding a view: forgetting its state and applying the whole log again, refused
//! where it would lose state or stop at damage before anything changes.

use super::{View, ViewHandle, write_checkpoint};
use crate::error::Result;

impl<V: View> ViewHandle<V> {
    /// Forgets the state and applies the whole log again from the oldest record,
    /// reporting progress as (records applied, records to apply); then checkpoints.
    pub fn rebuild(&self, progress: impl FnMut(u64, u64)) -> Result<()> {
        self.rebuild_with(false, progress)
    }

    /// [`ViewHandle::rebuild`]; with `force`, also when the view's damaged files held
    /// state the log no longer does ([`crate::Error::RebuildLoses`] otherwise).
    pub fn rebuild_with(&self, force: bool, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let spool = &self.shared.spool;
        // A rebuild that could not save its result would only claim to have rebuilt.
        spool.log().check_writable()?;
        let mut st = self.lock();
        if let (Some(why), false) = (&st.lost_state, force) {
            return Err(crate::Error::RebuildLoses(why.clone()));
        }
        // A rebuild stops at the first damaged record, and the checkpoints it writes on
        // the way replace the one that answered reads past the damage: refused before
        // anything changes.
        if let Some(d) = spool
            .log()
            .verify()?
            .damage
            .into_iter()
            .find(|d| d.path.extension().is_some_and(|e| e == "seg"))
        {
            return Err(crate::Error::InvalidArgument(format!(
                "the log has damaged records ({}, offset {}: {}), where a rebuild of view \
                 `{}` would stop; the view is left as it is (see `reel verify`)",
                d.path.display(),
                d.offset,
                d.what,
                st.view.name()
            )));
        }
        let start = spool.oldest_seq();
        st.view.reset_for_rebuild(start > 0, force)?;
        st.lost_state = None;
        st.applied_to = start;
        st.checkpointed_at = start;
        st.lost = 0;
        st.base_horizon = spool.log().tombstone_horizon()?;
        st.reader.seek(start);
        // Another process's checkpoint is what this rebuild replaces: never adopt it.
        st.rebuilding = true;
        let end = spool.next_seq();
        let total = end - start;
        let mut outcome = Ok(());
        while st.applied_to < end {
            let step = (st.applied_to + 50_000).min(end);
            if let Err(e) = self.apply_to(&mut st, step) {
                outcome = Err(e);
                break;
            }
            progress(st.applied_to - start, total);
            if st.applied_to < step {
                break;
            }
        }
        if outcome.is_ok() && spool.log().is_writable() {
            outcome = write_checkpoint(spool, &self.shared.files, &mut st);
        }
        st.rebuilding = false;
        outcome
    }
}
